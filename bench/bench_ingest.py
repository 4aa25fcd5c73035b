"""Benchmark: ingest speed of Lite files into the Parquet cache (soundings per second).

Writes a simulated month slice in the real Lite layout (at least 1 million good soundings, zlib-compressed
NetCDF4 like the real files) once under ``bench/out/ingest/``, then ingests it into a fresh cache three times
and prints the figures of each run and the best. Target (issue 2): >= 500k soundings/s on a 2-core machine.

    python bench/bench_ingest.py [--days 22] [--passes-per-day 12]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.ingest import ingest_paths  # noqa: E402
from core.simulate import simulate  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "ingest"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=22)
    parser.add_argument("--passes-per-day", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    raw = OUT / f"raw-{args.days}x{args.passes_per_day}"
    if not raw.exists():
        start = time.perf_counter()
        simulate(raw, days=args.days, seed=11, passes_per_day=args.passes_per_day, pass_km=3000.0)
        print(f"wrote simulated Lite files in {time.perf_counter() - start:.1f} s")
    files = sorted(raw.glob("*.nc4"))
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    best = None
    for run in range(1, args.runs + 1):
        cache = OUT / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        summary = ingest_paths(files, cache=cache)
        assert summary.n_bad == 0, [r.summary_line() for r in summary.files if r.bad]
        read_rate = summary.n_read / summary.seconds
        kept_rate = summary.n_kept / summary.seconds
        print(f"run {run}: {len(files)} files ({size_mb:.0f} MB), {summary.n_read:,} soundings read, "
              f"{summary.n_kept:,} good kept, {summary.seconds:.2f} s -> {read_rate:,.0f} read/s, "
              f"{kept_rate:,.0f} kept/s")
        best = max(best or 0.0, read_rate)
        if summary.n_kept < 1_000_000:
            print(f"warning: only {summary.n_kept:,} good soundings (< 1 million): raise --days")
    target = 500_000
    print(f"best: {best:,.0f} soundings read/s = {best / target:.1f}x the 500k/s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
