"""Benchmark: ingest speed of Lite files into the Parquet cache (soundings per second), netCDF4 reader vs xarray.

Writes a simulated month slice in the real Lite layout (at least 1 million good soundings, zlib-compressed
NetCDF4 like the real files) once under ``bench/out/ingest/``, then ingests it into a fresh cache ``--runs`` times
with each reader, in turn (one process, one file at a time, as ``python -m core ingest`` does), and prints the
figures of each run (wall clock, and CPU time of the process, steadier when other work shares the machine), the
best of each reader and whether their caches hold the same data. Target (issue 2): >= 500k soundings/s
(wall clock) on a 2-core machine.

Readers:

* ``netcdf4``: :func:`core.lite_reader.read_lite_table`, the shipped reader (``netCDF4.Dataset``, raw values, one
  open of the file).
* ``xarray``: :func:`read_lite_table_xarray` below, the variant measured for the decision in
  ``docs/ARCHITECTURE.md`` ("xarray"): each group the table needs (root, ``Sounding``, ``Meteorology``,
  ``Retrieval``) read with ``xarray.open_dataset(path, group=..., engine="netcdf4")`` with CF decoding (fill and
  missing values masked to NaN, ``time`` decoded to datetime64), then the same drop/count/warning code
  (:func:`core.lite_reader.soundings_table`), so both give the same columns.
* ``xarray-tree``: the same with all groups from one ``xarray.open_datatree(path, engine="netcdf4")``.

    python bench/bench_ingest.py [--days 22] [--passes-per-day 12] [--runs 3] [--readers netcdf4,xarray,xarray-tree]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import core.ingest  # noqa: E402
from core.cache import META_KEY  # noqa: E402
from core.ingest import ingest_paths  # noqa: E402
from core.lite_format import FIELDS, FILE_NAME_RE, FLAG_VAR, ID_VAR, TIME_VAR, build_family  # noqa: E402
from core.lite_reader import _as_path, _check_container, read_lite_table, soundings_table  # noqa: E402
from core.simulate import simulate  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "ingest"
TARGET = 500_000


def _wanted(family: str) -> dict:
    """The variables the table needs: group (None: the root) -> [(column, variable name)]."""
    wanted = {}
    for column, var_path in [(ID_VAR, ID_VAR), (TIME_VAR, TIME_VAR), (FLAG_VAR, FLAG_VAR)] + \
            [(f.column, f.path(family)) for f in FIELDS]:
        *group, name = var_path.split("/")
        wanted.setdefault(group[0] if group else None, []).append((column, name))
    return wanted


def _decoded_table(path, mtime, build: str, raw: dict):
    """The shipped table code on CF-decoded values: ``time`` (datetime64[ns], NaT for fill) back to seconds."""
    time_ns = raw[TIME_VAR]
    seconds = time_ns.astype("datetime64[ns]").astype(np.int64) / 1e9
    seconds[np.isnat(time_ns)] = np.nan
    raw[TIME_VAR] = seconds
    return soundings_table(path, mtime, build, build_family(build), raw)


def _build(attrs: dict, path) -> str:
    return str(attrs.get("BuildId") or FILE_NAME_RE.match(path.name).group("build")).strip()


def read_lite_table_xarray(path):
    """:func:`core.lite_reader.read_lite_table` with the variables read by ``xarray.open_dataset(path,
    group=...)``, one open per group, CF decoding and masking.

    A benchmark variant for well-formed files: it keeps the container checks and the table code of the shipped
    reader, but not its checks and messages for corrupt groups, wrong dtypes or shapes."""
    import xarray as xr

    path = _as_path(path)
    mtime = _check_container(path)
    raw = {}
    with xr.open_dataset(path, engine="netcdf4") as root:
        build = _build(root.attrs, path)
        wanted = _wanted(build_family(build))
        raw.update({column: root[name].values for column, name in wanted.pop(None) if name in root.variables})
    for group, items in wanted.items():
        with xr.open_dataset(path, group=group, engine="netcdf4") as ds:
            raw.update({column: ds[name].values for column, name in items if name in ds.variables})
    return _decoded_table(path, mtime, build, raw)


def read_lite_table_xarray_tree(path):
    """As :func:`read_lite_table_xarray`, with every group from one ``xarray.open_datatree(path)``."""
    import xarray as xr

    path = _as_path(path)
    mtime = _check_container(path)
    raw = {}
    with xr.open_datatree(path, engine="netcdf4") as tree:
        build = _build(tree.attrs, path)
        for group, items in _wanted(build_family(build)).items():
            node = tree if group is None else tree[group]
            raw.update({column: node[name].values for column, name in items if name in node.variables})
    return _decoded_table(path, mtime, build, raw)


READERS = {"netcdf4": read_lite_table, "xarray": read_lite_table_xarray, "xarray-tree": read_lite_table_xarray_tree}


def ingest_with(reader, files, cache):
    """``ingest_paths`` with ``reader`` in place of the shipped one (restored afterwards)."""
    shipped = core.ingest.read_lite_table
    core.ingest.read_lite_table = reader
    try:
        return ingest_paths(files, cache=cache)
    finally:
        core.ingest.read_lite_table = shipped


def cache_content(cache: Path) -> dict:
    """Each day file's data and footer provenance (without its ingest time), to compare two caches."""
    content = {}
    for path in sorted(cache.glob("soundings/*/*.parquet")):
        table = pq.read_table(path)
        record = json.loads(table.schema.metadata[META_KEY])
        record.pop("ingested_at", None)
        content[path.relative_to(cache).as_posix()] = (table.replace_schema_metadata(None), record)
    return content


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=22)
    parser.add_argument("--passes-per-day", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--readers", default=",".join(READERS), help="comma-separated, of: " + ", ".join(READERS))
    args = parser.parse_args(argv)
    readers = args.readers.split(",")

    raw = OUT / f"raw-{args.days}x{args.passes_per_day}"
    if not raw.exists():
        start = time.perf_counter()
        simulate(raw, days=args.days, seed=11, passes_per_day=args.passes_per_day, pass_km=3000.0)
        print(f"wrote simulated Lite files in {time.perf_counter() - start:.1f} s")
    files = sorted(raw.glob("*.nc4"))
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    best, best_cpu = {}, {}  # wall-clock and CPU-time rates (the CPU figure is steadier on a busy machine)
    for run in range(1, args.runs + 1):
        for name in readers:
            cache = OUT / f"cache-{name}"
            shutil.rmtree(cache, ignore_errors=True)
            cpu = time.process_time()
            summary = ingest_with(READERS[name], files, cache)
            cpu = time.process_time() - cpu
            assert summary.n_bad == 0, [r.summary_line() for r in summary.files if r.bad]
            read_rate = summary.n_read / summary.seconds
            kept_rate = summary.n_kept / summary.seconds
            print(f"run {run} {name:>11}: {len(files)} files ({size_mb:.0f} MB), {summary.n_read:,} soundings read, "
                  f"{summary.n_kept:,} good kept, {summary.seconds:.2f} s -> {read_rate:,.0f} read/s, "
                  f"{kept_rate:,.0f} kept/s (CPU {cpu:.2f} s -> {summary.n_read / cpu:,.0f} read/CPU-s)")
            best[name] = max(best.get(name, 0.0), read_rate)
            best_cpu[name] = max(best_cpu.get(name, 0.0), summary.n_read / cpu)
            if summary.n_kept < 1_000_000:
                print(f"warning: only {summary.n_kept:,} good soundings (< 1 million): raise --days")
    for name in readers:
        print(f"best {name:>11}: {best[name]:,.0f} soundings read/s = {best[name] / TARGET:.2f}x the 500k/s target "
              f"(CPU time: {best_cpu[name]:,.0f} read/CPU-s)")
    if len(readers) > 1:
        first, *others = readers
        reference = cache_content(OUT / f"cache-{first}")
        for name in others:
            same = cache_content(OUT / f"cache-{name}")
            equal = reference.keys() == same.keys() and all(
                reference[k][0].equals(same[k][0]) and reference[k][1] == same[k][1] for k in reference)
            print(f"{name} / {first}: {best[name] / best[first]:.2f}x the speed "
                  f"({best_cpu[name] / best_cpu[first]:.2f}x in CPU time); caches "
                  f"{'identical' if equal else 'DIFFERENT'} ({len(reference)} day files: data and provenance "
                  "but the ingest time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
