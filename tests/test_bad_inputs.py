"""The bad-input corpus (issue 6): every file or rules TOML an analyst may feed the tool, with its clear message.

Each Lite case is a real file on disk (NetCDF4 written by :mod:`lite_factory`, or the bytes of a broken one).
A *rejected* case must give a :class:`LiteFileError` whose message names the file and the field or value, and,
ingested next to two good files with :func:`core.ingest.ingest_paths`, leave the cache holding exactly the good
days (no partial day, no temporary, manifest = day files). A *survived* case goes in, and the reader says what
it survived (counts and ``warnings``, which reach the summary line and the manifest). Rules TOML cases must give
a ``ValueError`` naming the file, the key and the value. A few cases run the real CLI to check that the user sees
one line, never a traceback.
"""
from __future__ import annotations

import datetime as dt
import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import netCDF4
import numpy as np
import pytest

from core.cache import SoundingsCache
from core.detect import detect_orbit
from core.ingest import ingest_paths
from core.lite_format import FILL_VALUE, VALID_RANGES, lite_file_name
from core.lite_reader import LiteFileError, printable, read_lite
from core.paths import REPO_ROOT
from core.settings import DetectionSettings
from lite_factory import sounding_columns, write_lite

GOOD_DAYS = (dt.date(2019, 8, 1), dt.date(2019, 8, 2))
N_GOOD = 240
#: Every odd file is named for this day: a partial write of it would show as a third day in the cache.
ODD_DAY = dt.date(2019, 8, 20)
PRODUCED = dt.datetime(2020, 7, 29, 17, 59, 9)
ODD_NAME = lite_file_name(ODD_DAY, "B10206Ar", PRODUCED)
LATIN1_NAME = b"oco2_LtCO2_190820_caf\xe9_r\xe9sum\xe9.nc4"  # not UTF-8: what a Windows share may hand over


def cols(n: int = 12, **changes) -> dict:
    """Good soundings of the odd day, with some columns replaced."""
    out = sounding_columns(n, day=ODD_DAY, seed=n)
    for key, value in changes.items():
        out[key] = np.asarray(value)
    return out


def lite(folder, columns=None, **kwargs) -> Path:
    kwargs.setdefault("day", ODD_DAY)
    return write_lite(folder, cols() if columns is None else columns, **kwargs)


def raw(folder, data: bytes, name: str = ODD_NAME) -> Path:
    path = Path(folder) / name
    path.write_bytes(data)
    return path


def whole_file(folder, n: int = 3000) -> bytes:
    """The bytes of a valid Lite file (written under a scratch name, then removed)."""
    scratch = Path(folder) / "scratch"
    scratch.mkdir(exist_ok=True)
    data = write_lite(scratch, sounding_columns(n, day=ODD_DAY), day=ODD_DAY).read_bytes()
    for p in scratch.iterdir():
        p.unlink()
    scratch.rmdir()
    return data


def with_extra(folder, omit: str, add) -> Path:
    """A valid file without variable ``omit``, then ``add(ds)`` run on it in append mode."""
    path = lite(folder, omit=(omit,))
    with netCDF4.Dataset(path, "a") as ds:
        add(ds)
    return path


def _string_latitude(ds):
    var = ds.createVariable("latitude", str, ("sounding_id",))
    for i in range(len(ds.dimensions["sounding_id"])):
        var[i] = "45.0N"


def _vlen_xco2(ds):
    var = ds.createVariable("xco2", ds.createVLType(np.float32, "xco2_list"), ("sounding_id",))
    for i in range(len(ds.dimensions["sounding_id"])):
        var[i] = np.array([410.0, 411.0], np.float32)


def _compound_orbit(ds):
    kind = ds.createCompoundType(np.dtype([("number", "i4"), ("phase", "f4")]), "orbit_t")
    ds.groups["Sounding"].createVariable("orbit", kind, ("sounding_id",))


def _longer_xco2(ds):
    ds.createDimension("other", 13)
    ds.createVariable("xco2", "f4", ("other",))[:] = np.full(13, 410, np.float32)


def _two_d_xco2(ds):
    ds.createDimension("band", 2)
    ds.createVariable("xco2", "f4", ("sounding_id", "band"))[:] = np.full((12, 2), 410, np.float32)


def _bit_rot(folder) -> Path:
    data = bytearray(whole_file(folder))
    middle = len(data) // 2
    data[middle:middle + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    return raw(folder, bytes(data))


def _zero_tail(folder) -> Path:
    data = whole_file(folder)
    half = len(data) // 2
    return raw(folder, data[:half] + bytes(len(data) - half))


def _netcdf3(folder) -> Path:
    path = Path(folder) / ODD_NAME
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as ds:
        ds.createDimension("sounding_id", 3)
        ds.createVariable("xco2", "f4", ("sounding_id",))[:] = [410, 411, 412]
    return path


def _directory(folder) -> Path:
    path = Path(folder) / ODD_NAME
    path.mkdir()
    return path


def _dangling_link(folder) -> Path:
    path = Path(folder) / ODD_NAME
    path.symlink_to(Path(folder) / "deleted-after-download.nc4")
    return path


def _latin1_html(folder) -> Path:
    path = Path(os.fsdecode(os.path.join(os.fsencode(str(folder)), LATIN1_NAME)))
    path.write_bytes(b"<html><body>502 Bad Gateway</body></html>")
    return path


#: Files that must be rejected: case -> (make(folder) -> path, substrings the message must hold).
REJECTED = {
    "zero-byte": (lambda d: raw(d, b""), ["empty file (0 bytes)"]),
    "hdf5-signature-only": (lambda d: raw(d, whole_file(d)[:8]),
                            ["truncated: 8 bytes on disk, too short for an HDF5 superblock"]),
    "truncated-half": (lambda d: raw(d, whole_file(d)[:40_000]),
                       ["truncated: 40,000 bytes on disk, the HDF5 header declares"]),
    "zero-filled-tail": (_zero_tail, ["corrupt NetCDF4/HDF5 file", "last 4 KiB are zeros"]),
    "bit-rot-in-data": (_bit_rot, ["corrupt data in variable 'Meteorology/windspeed_v_met'"]),
    "html-error-page": (lambda d: raw(d, b"\n<!DOCTYPE html><html><title>Earthdata Login</title></html>"),
                        ["an HTML/XML page saved as .nc4"]),
    "json-error-body": (lambda d: raw(d, b'{"error": "401 Unauthorized"}'),
                        ["a JSON/text response saved as .nc4", "401 Unauth"]),
    "gzip-compressed": (lambda d: raw(d, gzip.compress(b"\x89HDF\r\n\x1a\n" + bytes(100))),
                        ["a gzip-compressed file", "decompress it first"]),
    "random-bytes": (lambda d: raw(d, bytes(range(7, 256)) * 2), ["not a NetCDF4/HDF5 file (starts with b'\\x07"]),
    "netcdf3-classic": (_netcdf3, ["a NetCDF3 (classic) file"]),
    "hdf5-without-groups": (lambda d: lite(d, omit=("Sounding", "Meteorology", "Retrieval")),
                            ["missing group 'Sounding' (needed for 'Sounding/orbit', build B10)"]),
    "missing-group": (lambda d: lite(d, omit=("Meteorology",)), ["missing group 'Meteorology'"]),
    "missing-variable": (lambda d: lite(d, omit=("Retrieval/psurf",)), ["missing variable 'Retrieval/psurf'"]),
    "missing-sounding-id": (lambda d: lite(d, omit=("sounding_id",)), ["missing variable 'sounding_id'"]),
    "b10-name-in-b11-file": (lambda d: lite(d, build="B11", omit=("Meteorology/psurf_apriori_o2a",)),
                             ["missing variable 'Meteorology/psurf_apriori_o2a' (build B11)"]),
    "xco2-as-integer": (lambda d: lite(d, dtypes={"xco2": "int16"}),
                        ["variable 'xco2' has dtype int16, expected a float type"]),
    "sounding-id-as-float": (lambda d: lite(d, dtypes={"sounding_id": "float64"}),
                             ["variable 'sounding_id' has dtype float64, expected an integer type"]),
    "latitude-as-text": (lambda d: with_extra(d, "latitude", _string_latitude),
                         ["variable 'latitude' has dtype string, expected a float type"]),
    "xco2-variable-length": (lambda d: with_extra(d, "xco2", _vlen_xco2),
                             ["variable 'xco2' is variable-length (float32 arrays), expected a float type"]),
    "orbit-compound-type": (lambda d: with_extra(d, "Sounding/orbit", _compound_orbit),
                            ["variable 'Sounding/orbit' has dtype compound, expected an integer type"]),
    "xco2-on-another-dimension": (lambda d: with_extra(d, "xco2", _longer_xco2),
                                  ["variable 'xco2' has shape (13,), expected (12,) like 'sounding_id'"]),
    "xco2-two-dimensional": (lambda d: with_extra(d, "xco2", _two_d_xco2),
                             ["variable 'xco2' has shape (12, 2)"]),
    "footprint-overflows-int8": (lambda d: lite(d, cols(footprint=np.full(12, 300)),
                                                dtypes={"Sounding/footprint": "int32"}),
                                 ["variable 'Sounding/footprint' holds 300, outside the range of int8"]),
    "sounding-id-overflows-int64": (lambda d: lite(d, cols(sounding_id=np.arange(12, dtype=np.uint64) + 2 ** 63),
                                                   dtypes={"sounding_id": "uint64"}),
                                    ["variable 'sounding_id' holds 9223372036854775808", "outside the range of int64"]),
    "unsupported-build": (lambda d: lite(d, attrs={"BuildId": "B7003r"}), ["unsupported build 'B7003r'"]),
    "build-id-not-text": (lambda d: lite(d, attrs={"BuildId": np.array([10, 2], np.int32)}),
                          ["global attribute 'BuildId' is not text"]),
    "no-build-information": (lambda d: lite(d, name="upload.nc4", build_attr=False,
                                            omit=("Meteorology/psurf_apriori_o2a",)),
                             ["unknown build: no BuildId attribute"]),
    "impossible-day-in-name": (lambda d: lite(d, name="oco2_LtCO2_191399_B10206Ar_200729175909s.nc4"),
                               ["the file name holds an impossible day '191399'"]),
    "no-soundings": (lambda d: lite(d, {k: v[:0] for k, v in cols().items()}),
                     ["no soundings (the sounding_id dimension is empty)"]),
    "all-flagged": (lambda d: lite(d, cols(xco2_quality_flag=np.ones(12, np.int8))),
                    ["no good soundings (12 read: 12 flagged"]),
    "all-fill-xco2": (lambda d: lite(d, cols(xco2=np.full(12, FILL_VALUE))),
                      ["no good soundings (12 read: 0 flagged, 12 with fill"]),
    "all-nan-latitude": (lambda d: lite(d, cols(latitude=np.full(12, np.nan))),
                         ["no good soundings (12 read: 0 flagged, 12 with fill"]),
    "all-absurd-xco2": (lambda d: lite(d, cols(xco2=np.tile([0.0, 5000.0], 6))),
                        ["no good soundings", "xco2 outside [300, 600] ppm in 12 sounding(s) (e.g. 0, 5000)"]),
    "time-at-the-epoch": (lambda d: lite(d, cols(time=np.zeros(12))),
                          ["time outside [2000-01-01, 2100-01-01] UTC in 12 sounding(s) (e.g. 0 s since 1970)"]),
    "directory-named-nc4": (_directory, ["is a directory"]),
    "dangling-symlink": (_dangling_link, ["no such file"]),
    "non-utf8-name-html": (_latin1_html, ["an HTML/XML page saved as .nc4"]),
}


@pytest.fixture(scope="module")
def good_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("good")
    return [write_lite(folder, sounding_columns(N_GOOD, day=day, seed=i), day=day)
            for i, day in enumerate(GOOD_DAYS)]


def assert_cache_holds(cache: SoundingsCache, days: list[dt.date], names: list[str]) -> None:
    """The cache holds exactly these days (one whole file each), nothing hidden, manifest = day files."""
    files = sorted(p for p in cache.soundings_dir.rglob("*") if p.is_file())
    assert files == sorted(cache.day_path(d) for d in days), files  # no temporary, no extra partition
    manifest = cache.manifest()
    assert sorted(manifest["file_name"]) == sorted(names)
    assert sorted(manifest["partition_file"]) == sorted(str(p) for p in files)
    con = duckdb.connect()
    n = con.execute("SELECT count(*), count(DISTINCT sounding_id) FROM read_parquet(?)",
                    [cache.month_glob()]).fetchone()
    assert n[0] == n[1] == manifest["n_kept"].sum()


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_rejected_file_names_file_and_reason_and_writes_nothing(tmp_path, good_files, case):
    make, expected = REJECTED[case]
    folder = tmp_path / "in"
    folder.mkdir()
    path = make(folder)

    with pytest.raises(LiteFileError) as err:
        read_lite(path)
    message = str(err.value)
    assert message.startswith(printable(path.name) + ": "), message
    for text in expected:
        assert text in message, message
    message.encode("utf-8")  # printable on any UTF-8 stream (non-UTF-8 names included)

    cache = SoundingsCache(tmp_path / "cache")
    summary = ingest_paths([*good_files, path], cache=cache)
    statuses = {printable(r.path.name): r.status for r in summary.files}
    assert statuses == {**{p.name: "ingested" for p in good_files}, printable(path.name): "bad"}
    bad = next(r for r in summary.files if r.bad)
    for text in expected:
        assert text in bad.detail, bad.detail
    bad.summary_line().encode("utf-8")
    assert_cache_holds(cache, list(GOOD_DAYS), [p.name for p in good_files])
    assert len(cache.read_month("2019-08")) == N_GOOD * len(GOOD_DAYS)


# -- files that go in, with what they survived told ---------------------------------------------------------------

def _coordinates():
    c = cols(20)
    c["latitude"][[2, 3]] = [np.nan, 95.0]
    c["longitude"][[4, 5]] = [FILL_VALUE, 200.0]
    return c


def _duplicates():
    c = cols(20)
    c["sounding_id"][[5, 9]] = c["sounding_id"][[4, 8]]
    return c


def _time_backwards():
    c = cols(24)
    c["time"][16:] -= 60.0  # the third frame's clock jumped back a minute; ids still increase
    return c


def _absurd_xco2():
    c = cols(20)
    c["xco2"][[0, 7]] = [0.0, 5000.0]
    return c


SURVIVED = {
    # case: (columns, write_lite kwargs, expected (n_read, n_kept, n_flagged, n_fill, n_duplicate, n_out_of_range),
    #        substrings of the warnings)
    "all-fill-windspeed": (cols(20, windspeed_u=np.full(20, FILL_VALUE)), {}, (20, 20, 0, 0, 0, 0),
                           ["variable 'Meteorology/windspeed_u_met' is all fill or NaN in the good soundings: "
                            "column 'windspeed_u' is empty (NaN)"]),
    "all-nan-surface-pressure": (cols(20, surface_pressure=np.full(20, np.nan)), {}, (20, 20, 0, 0, 0, 0),
                                 ["variable 'Retrieval/psurf' is all fill or NaN"]),
    "nan-and-out-of-range-coordinates": (_coordinates(), {}, (20, 16, 0, 4, 0, 2),
                                         ["latitude outside [-90, 90] degrees_north in 1 sounding(s) (e.g. 95)",
                                          "longitude outside [-180, 180] degrees_east in 1 sounding(s) (e.g. 200)"]),
    "duplicated-sounding-ids": (_duplicates(), {}, (20, 18, 0, 0, 2, 0),
                                ["dropped: 2 repeated sounding_id value(s), the first occurrence kept"]),
    "time-going-backwards": (_time_backwards(), {}, (24, 24, 0, 0, 0, 0),
                             ["time goes backwards at 1 sounding(s) in sounding_id order (first at sounding_id "]),
    "absurd-xco2": (_absurd_xco2(), {}, (20, 18, 0, 2, 0, 2),
                    ["xco2 outside [300, 600] ppm in 2 sounding(s) (e.g. 0, 5000)"]),
    "one-sounding-orbit": (cols(1), {}, (1, 1, 0, 0, 0, 0), []),
    "times-off-the-named-day": (sounding_columns(16, day=dt.date(2019, 9, 15)), {}, (16, 16, 0, 0, 0, 0),
                                ["16 of 16 good soundings have times off the file's day 2019-08-20"]),
    "sounding-id-as-uint64": (cols(16), {"dtypes": {"sounding_id": "uint64"}}, (16, 16, 0, 0, 0, 0), []),
    "ids-in-reverse-order": ({k: v[::-1].copy() for k, v in cols(16).items()}, {}, (16, 16, 0, 0, 0, 0), []),
    "non-utf8-name": (cols(16), {"name": LATIN1_NAME}, (16, 16, 0, 0, 0, 0), []),
}


@pytest.mark.parametrize("case", sorted(SURVIVED))
def test_survivable_file_goes_in_and_says_what_it_survived(tmp_path, good_files, case):
    columns, kwargs, counts, warnings = SURVIVED[case]
    folder = tmp_path / "in"
    folder.mkdir()
    path = lite(folder, columns, **kwargs)

    df, meta = read_lite(path)
    got = (meta.n_read, meta.n_kept, meta.n_flagged, meta.n_fill, meta.n_duplicate, meta.n_out_of_range)
    assert got == counts
    assert meta.n_read == meta.n_kept + meta.n_flagged + meta.n_fill + meta.n_duplicate
    assert len(meta.warnings) == len(warnings), meta.warnings
    for text, warning in zip(warnings, meta.warnings):
        assert text in warning
    assert df["sounding_id"].is_monotonic_increasing and df["sounding_id"].is_unique
    assert df["xco2"].between(*VALID_RANGES["xco2"][:2]).all()
    assert df["latitude"].abs().le(90).all() and df["longitude"].abs().le(180).all()

    cache = SoundingsCache(tmp_path / "cache")
    summary = ingest_paths([*good_files, path], cache=cache)
    assert summary.n_bad == 0
    lines = "\n".join(r.summary_line() for r in summary.files)
    lines.encode("utf-8")
    assert lines.count("warning: ") == len(warnings)
    assert_cache_holds(cache, [*GOOD_DAYS, ODD_DAY], [*(p.name for p in good_files), meta.file_name])
    row = cache.manifest().set_index("file_name").loc[meta.file_name]
    assert row["warnings"] == "; ".join(meta.warnings) and row["n_out_of_range"] == counts[-1]
    stored = cache.read_month("2019-08")
    assert (stored["source_file"] == meta.file_name).sum() == meta.n_kept


def test_one_sounding_orbit_detects_nothing_and_says_so(tmp_path):
    """A one-sounding orbit is ingested; detection gives an empty candidates table, the CLI says 0 candidates."""
    path = lite(tmp_path, cols(1))
    df, _ = read_lite(path)
    assert detect_orbit(df).empty
    cache = tmp_path / "cache"
    assert ingest_paths([path], cache=cache).n_bad == 0
    run = subprocess.run([sys.executable, "-m", "core", "detect", "--month", "2019-08", "--cache", str(cache)],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "2019-08: 0 candidates, 0 events, 0 accepted" in run.stdout
    assert "Traceback" not in run.stderr


def test_file_that_vanishes_before_it_is_read(tmp_path, good_files):
    """A file listed by the folder scan but deleted before its turn: reported by name, the others go in."""
    folder = tmp_path / "in"
    folder.mkdir()
    first = lite(folder, cols(8), name="a_first.nc4")
    gone = lite(folder, cols(8), name="b_vanishing.nc4")
    cache = SoundingsCache(tmp_path / "cache")

    def delete_next(i, n, report):
        if report.path == first:
            gone.unlink()

    summary = ingest_paths([folder, *good_files], cache=cache, on_file=delete_next)
    by_name = {r.path.name: r for r in summary.files}
    assert by_name["b_vanishing.nc4"].bad and "no such file" in by_name["b_vanishing.nc4"].detail
    assert by_name["a_first.nc4"].status == "ingested"
    assert_cache_holds(cache, [*GOOD_DAYS, ODD_DAY], [*(p.name for p in good_files), "a_first.nc4"])


def test_reader_bug_is_reported_not_raised(tmp_path, good_files, monkeypatch):
    """An unexpected reader error is one bad file in the summary, not the end of a month's batch."""
    import core.ingest

    real = core.ingest.read_lite_table

    def flaky(path):
        if path.name == good_files[0].name:
            raise ZeroDivisionError("a bug")
        return real(path)

    monkeypatch.setattr(core.ingest, "read_lite_table", flaky)
    summary = ingest_paths(good_files, cache=tmp_path / "cache")
    assert [r.status for r in summary.files] == ["bad", "ingested"]
    assert "unexpected reader error ZeroDivisionError: a bug" in summary.files[0].detail


def test_bytes_path_with_any_bytes_is_read(tmp_path):
    """A bytes path (what ``os.listdir(bytes)`` gives) with a latin-1 name reads like its str twin."""
    path = lite(tmp_path, cols(16), name=LATIN1_NAME)
    raw_path = os.path.join(os.fsencode(str(tmp_path)), LATIN1_NAME)
    df, meta = read_lite(raw_path)
    assert meta.file_name == "oco2_LtCO2_190820_caf\\xe9_r\\xe9sum\\xe9.nc4" == printable(path.name)
    assert (df["source_file"] == meta.file_name).all() and len(df) == 16
    summary = ingest_paths([raw_path], cache=tmp_path / "cache")
    assert [r.status for r in summary.files] == ["ingested"]


def test_cli_prints_non_utf8_names_without_a_traceback(tmp_path, good_files):
    """`python -m core ingest` on a folder with non-UTF-8 names, stdout/stderr strict UTF-8: one line each."""
    folder = tmp_path / "in"
    folder.mkdir()
    lite(folder, cols(16), name=LATIN1_NAME)
    (folder / "broken").mkdir()
    _latin1_html(folder / "broken")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"}  # a strict UTF-8 terminal
    run = subprocess.run([sys.executable, "-m", "core", "ingest", str(folder), *map(str, good_files),
                          "--cache", str(tmp_path / "cache")], capture_output=True, cwd=REPO_ROOT, env=env,
                         timeout=120)
    out, err = run.stdout.decode("utf-8"), run.stderr.decode("utf-8")
    assert run.returncode == 1 and "Traceback" not in err, err
    assert "ingested     oco2_LtCO2_190820_caf\\xe9_r\\xe9sum\\xe9.nc4 [B10 2019-08-20] 16 read, 16 kept" in out
    assert "broken/oco2_LtCO2_190820_caf\\xe9_r\\xe9sum\\xe9.nc4: an HTML/XML page saved as .nc4" in err
    assert "4 file(s): 3 ok, 1 bad" in out
    cache = SoundingsCache(tmp_path / "cache")
    assert "oco2_LtCO2_190820_caf\\xe9_r\\xe9sum\\xe9.nc4" in set(cache.manifest()["file_name"])
    names = duckdb.connect().execute("SELECT DISTINCT source_file FROM read_parquet(?) ORDER BY 1",
                                     [cache.month_glob()]).fetchall()
    assert ("oco2_LtCO2_190820_caf\\xe9_r\\xe9sum\\xe9.nc4",) in names


def test_cli_reports_every_bad_file_on_one_line_without_traceback(tmp_path, good_files):
    """The whole rejected corpus through the real CLI in one run: one BAD line per file, exit status 1."""
    folder = tmp_path / "in"
    folder.mkdir()
    made = []
    for i, (case, (make, expected)) in enumerate(sorted(REJECTED.items())):
        if case in ("directory-named-nc4", "dangling-symlink", "non-utf8-name-html"):
            continue  # path-level cases: covered above (a folder scan skips them by design)
        sub = folder / f"{i:02d}"
        sub.mkdir()
        made.append((make(sub), expected))
    run = subprocess.run([sys.executable, "-m", "core", "ingest", str(folder), *map(str, good_files),
                          "--cache", str(tmp_path / "cache")], capture_output=True, text=True, cwd=REPO_ROOT,
                         timeout=180)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    bad_lines = [line for line in run.stderr.splitlines() if line.startswith("BAD  ")]
    assert len(bad_lines) == len(made)
    for path, expected in made:
        line = next(line for line in bad_lines if line.startswith(f"BAD  {path}: "))
        assert expected[-1].split(" (")[0] in line, line
    assert f"{len(made) + 2} file(s): 2 ok, {len(made)} bad" in run.stdout
    assert_cache_holds(SoundingsCache(tmp_path / "cache"), list(GOOD_DAYS), [p.name for p in good_files])


# -- rules TOML ---------------------------------------------------------------------------------------------------

#: case -> (file content, substrings of the message after "rules.toml: ")
BAD_RULES = {
    "text-for-number": (b'[fit]\nwindow_km = "wide"\n', ["fit.window_km must be a number [km], got 'wide'"]),
    "bool-for-number": (b"[fit]\nwindow_km = true\n", ["fit.window_km must be a number [km], got True"]),
    "number-for-switch": (b"[rules.fit_quality]\nenabled = 1\n",
                          ["rules.fit_quality.enabled must be true or false, got 1"]),
    "fraction-for-count": (b"[fit]\nmax_nfev = 200.5\n", ["fit.max_nfev must be a whole number, got 200.5"]),
    "array-for-number": (b"[fit]\nwindow_km = [100, 200]\n", ["fit.window_km must be a number [km], got [100, 200]"]),
    "date-for-number": (b"[fit]\nwindow_km = 2019-08-01\n", ["fit.window_km must be a number [km], got datetime"]),
    "above-maximum": (b"[fit]\nwindow_km = 5000\n", ["fit.window_km = 5000 is outside [40, 600] km"]),
    "below-minimum": (b"[rules.significance]\nmin_snr = -1.5\n",
                      ["rules.significance.min_snr = -1.5 is outside [0, 50] 1"]),
    "nan": (b"[fit]\nwindow_km = nan\n", ["fit.window_km must be finite, got nan"]),
    "infinity": (b"[fit]\nwindow_km = -inf\n", ["fit.window_km must be finite, got -inf"]),
    "integer-beyond-float": (b"[fit]\nmax_nfev = " + b"9" * 400 + b"\n",
                             ["fit.max_nfev = 999999999999... (400 digits) is outside [20, 5000]"]),
    "unknown-key": (b"[fit]\nwindow_kms = 200\n", ["unknown setting 'fit.window_kms'"]),
    "unknown-section": (b"[fitting]\nwindow_km = 200\n", ["unknown setting 'fitting.window_km'"]),
    "value-for-section": (b"fit = 200\n", ["unknown setting 'fit'"]),
    "unknown-preset": (b'preset = "fast"\n', ["preset must be one of ['chevallier-2020', 'recommended'], got 'fast'"]),
    "invalid-syntax": (b"[fit\nwindow_km = 200\n", ["not valid TOML", "line 1"]),
    "duplicate-key": (b"[fit]\nwindow_km = 200\nwindow_km = 150\n", ["not valid TOML", "line 3"]),
    "non-utf8-bytes": (b"# r\xe9glages\n[fit]\nwindow_km = 200\n",
                       ["cannot read", "can't decode byte 0xe9 in position 3"]),
    "binary-garbage": (bytes(range(256)), ["cannot read"]),
}


@pytest.mark.parametrize("case", sorted(BAD_RULES))
def test_bad_rules_toml_names_file_key_and_value(tmp_path, case):
    content, expected = BAD_RULES[case]
    path = tmp_path / "rules.toml"
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        DetectionSettings.load(path)
    message = str(err.value)
    assert message.startswith("rules.toml: "), message
    for text in expected:
        assert text in message, message


def test_rules_toml_with_byte_order_mark_loads(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_bytes("\ufeff[fit]\nwindow_km = 150.0\n".encode("utf-8"))
    assert DetectionSettings.load(path)["fit.window_km"] == 150.0


def test_missing_or_directory_rules_file_is_a_clear_error(tmp_path):
    for path in (tmp_path / "absent.toml", tmp_path):
        with pytest.raises(ValueError, match=rf"^{re.escape(path.name)}: cannot read \("):
            DetectionSettings.load(path)


def test_cli_bad_rules_is_one_line_exit_2_and_writes_nothing(tmp_path, good_files):
    cache = tmp_path / "cache"
    ingest_paths(good_files, cache=cache)
    rules = tmp_path / "r\u00e9glages.toml"
    rules.write_bytes(b"[fit]\nwindow_km = 5000\n")
    run = subprocess.run([sys.executable, "-m", "core", "detect", "--month", "2019-08", "--cache", str(cache),
                          "--rules", str(rules)], capture_output=True, encoding="utf-8", cwd=REPO_ROOT,
                         env={**os.environ, "LC_ALL": "C.UTF-8"}, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip() == "error: r\u00e9glages.toml: fit.window_km = 5000 is outside [40, 600] km"
    assert not (cache / "detections").exists()
