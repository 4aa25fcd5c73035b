"""Lite reader, Parquet cache and `python -m core ingest`, on real NetCDF4 files written by the tests."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.cache import SoundingsCache, UnreadableDayFileError, write_parquet_atomic
from core.ingest import ingest_paths
from core.lite_format import FIELDS, FILL_VALUE, SOUNDINGS_SCHEMA
from core.lite_reader import LiteFileError, read_lite
from core.paths import REPO_ROOT
from lite_factory import sounding_columns, write_lite

DAY = dt.date(2019, 8, 1)


@pytest.mark.parametrize("build", ["B9", "B10", "B11"])
def test_each_build_reads_back_every_column(tmp_path, build):
    cols = sounding_columns(400, seed=1)
    path = write_lite(tmp_path, cols, build=build)
    df, meta = read_lite(path)
    assert meta.build_family == build and meta.day == DAY and meta.n_read == meta.n_kept == 400
    assert list(df.columns) == SOUNDINGS_SCHEMA.names
    for f in FIELDS:
        np.testing.assert_array_equal(df[f.column].to_numpy(), cols[f.column].astype(f.file_dtype))
        assert df[f.column].dtype == np.dtype(f.file_dtype)
    assert df["sounding_id"].is_monotonic_increasing and df["sounding_id"].dtype == np.int64
    expected_time = pd.to_datetime(np.round(cols["time"] * 1e6).astype(np.int64), unit="us", utc=True)
    assert (df["time"].to_numpy() == expected_time.to_numpy()).all()
    assert (df["source_file"] == path.name).all()


def test_build_detected_from_variables_without_buildid_or_standard_name(tmp_path):
    cols = sounding_columns(50)
    b9 = write_lite(tmp_path, cols, build="B9", name="upload_a.nc4", build_attr=False)
    b11 = write_lite(tmp_path, cols, build="B11", name="upload_b.nc4", build_attr=False)
    assert read_lite(b9)[1].build_family == "B9"
    assert read_lite(b11)[1].build_family == "B11"
    assert read_lite(b9)[1].day == DAY  # from the soundings' times when the name has no day


def test_fill_nan_and_flags_are_dropped_and_counted(tmp_path):
    cols = sounding_columns(100)
    cols["xco2_quality_flag"][:10] = 1
    cols["xco2"][10:13] = FILL_VALUE
    cols["latitude"][13] = FILL_VALUE
    cols["longitude"][14] = np.nan
    cols["time"][15] = FILL_VALUE
    cols["latitude"][16] = 95.0  # out of range
    cols["xco2"][0] = FILL_VALUE  # flagged and fill: counted once, as flagged
    cols["windspeed_u"][50] = FILL_VALUE  # a non-essential fill becomes NaN, the sounding stays
    df, meta = read_lite(write_lite(tmp_path, cols))
    assert (meta.n_read, meta.n_flagged, meta.n_fill, meta.n_kept) == (100, 10, 7, 83)
    assert not df["sounding_id"].isin(cols["sounding_id"][:17]).any()
    assert np.isnan(df.loc[df["sounding_id"] == cols["sounding_id"][50], "windspeed_u"]).all()


def test_duplicated_sounding_ids_keep_the_first(tmp_path):
    cols = sounding_columns(20)
    cols["sounding_id"][5] = cols["sounding_id"][4]
    df, meta = read_lite(write_lite(tmp_path, cols))
    assert meta.n_duplicate == 1 and len(df) == 19 and df["sounding_id"].is_unique


def _truncated(tmp_path):
    good = write_lite(tmp_path, sounding_columns(3000), name="whole.nc4")
    data = good.read_bytes()
    path = tmp_path / "oco2_LtCO2_190802_B10206Ar_200729175909s.nc4"
    path.write_bytes(data[: len(data) // 2])
    return path


BAD_FILES = {
    "empty": (lambda d: _write(d / "empty.nc4", b""), "empty file (0 bytes)"),
    "not-netcdf": (lambda d: _write(d / "noise.nc4", bytes(range(256)) * 4), "not a NetCDF4/HDF5 file"),
    "html": (lambda d: _write(d / "login.nc4", b"<!DOCTYPE html><html><body>Earthdata Login</body></html>"),
             "an HTML/XML page saved as .nc4"),
    "truncated": (_truncated, "truncated"),
    "missing-group": (lambda d: write_lite(d, sounding_columns(10), omit=("Meteorology",)),
                      "missing group 'Meteorology'"),
    "missing-variable": (lambda d: write_lite(d, sounding_columns(10), omit=("Retrieval/psurf",)),
                         "missing variable 'Retrieval/psurf'"),
    "b10-variable-in-b11": (lambda d: write_lite(d, sounding_columns(10), build="B11",
                                                 omit=("Meteorology/psurf_apriori_o2a",)),
                            "missing variable 'Meteorology/psurf_apriori_o2a' (build B11)"),
    "wrong-dtype": (lambda d: write_lite(d, sounding_columns(10), dtypes={"xco2": "int16"}),
                    "variable 'xco2' has dtype int16, expected a float type"),
    "no-good-soundings": (lambda d: write_lite(d, {**sounding_columns(10),
                                                   "xco2_quality_flag": np.ones(10, np.int8)}),
                          "no good soundings (10 read: 10 flagged"),
    "all-fill-xco2": (lambda d: write_lite(d, {**sounding_columns(10), "xco2": np.full(10, FILL_VALUE)}),
                      "no good soundings (10 read: 0 flagged, 10 with fill"),
}


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_gives_a_clear_reason(tmp_path, kind):
    make, reason = BAD_FILES[kind]
    path = make(tmp_path)
    with pytest.raises(LiteFileError) as err:
        read_lite(path)
    assert str(err.value).startswith(path.name + ": ")
    assert reason in str(err.value)


def test_cli_skips_bad_files_ingests_the_rest_and_exits_1(tmp_path):
    raw = tmp_path / "raw" / "nested"
    raw.mkdir(parents=True)
    for i in range(3):
        day = DAY + dt.timedelta(days=i)
        write_lite(raw, sounding_columns(300, day=day, seed=i), day=day)
    _write(raw / "broken.nc4", b"<html>404</html>")
    cache = tmp_path / "cache"
    run = subprocess.run([sys.executable, "-m", "core", "ingest", str(tmp_path / "raw"), "--cache", str(cache)],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    assert run.returncode == 1, run.stderr
    assert "broken.nc4: an HTML/XML page" in run.stderr
    assert "4 file(s): 3 ok, 1 bad; 900 soundings read, 900 kept" in run.stdout
    assert len(SoundingsCache(cache).manifest()) == 3
    ok = subprocess.run([sys.executable, "-m", "core", "ingest", str(raw / "oco2_LtCO2_190801_B10206Ar_200729175909s.nc4"),
                         "--cache", str(cache)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert ok.returncode == 0 and "re-ingested" in ok.stdout


def test_reingest_replaces_rows_never_duplicates(tmp_path):
    path = write_lite(tmp_path, sounding_columns(500))
    cache = SoundingsCache(tmp_path / "cache")
    first = ingest_paths([path], cache=cache)
    second = ingest_paths([path, path], cache=cache)
    assert [r.status for r in first.files] == ["ingested"]
    assert [r.status for r in second.files] == ["re-ingested", "re-ingested"]
    month = cache.read_month("2019-08")
    assert len(month) == 500 and month["sounding_id"].is_unique
    assert cache.manifest()["file_name"].tolist() == [path.name]


def test_same_day_keeps_the_newer_production_only(tmp_path):
    cache = SoundingsCache(tmp_path / "cache")
    old_cols, new_cols = sounding_columns(300, seed=1), sounding_columns(300, seed=2)
    old = write_lite(tmp_path, old_cols, produced=dt.datetime(2020, 7, 29, 17, 59, 9))
    new = write_lite(tmp_path, new_cols, produced=dt.datetime(2021, 3, 1, 8, 0, 0))
    assert ingest_paths([old], cache=cache).files[0].status == "ingested"
    assert ingest_paths([new], cache=cache).files[0].status == "replaced"
    again = ingest_paths([old], cache=cache).files[0]
    assert again.status == "skipped-older" and new.name in again.detail
    month = cache.read_month("2019-08")
    assert len(month) == 300
    np.testing.assert_array_equal(month["xco2"].to_numpy(), new_cols["xco2"].astype(np.float32))
    assert cache.manifest()["file_name"].tolist() == [new.name]


def test_interrupted_write_leaves_the_old_partition_intact(tmp_path):
    cache = SoundingsCache(tmp_path / "cache")
    path = write_lite(tmp_path, sounding_columns(1000))
    ingest_paths([path], cache=cache)
    day_file = cache.day_path(DAY)
    before = day_file.read_bytes()
    table = pa.Table.from_pandas(cache.read_month("2019-08"), schema=SOUNDINGS_SCHEMA, preserve_index=False)

    def batches_then_crash():
        yield table.to_batches(max_chunksize=100)[0]
        raise OSError("disk full")  # the writer has written a row group when this strikes

    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(day_file, batches_then_crash(), table.schema)
    assert day_file.read_bytes() == before
    assert [p.name for p in day_file.parent.iterdir()] == [day_file.name]  # no temporary left behind
    assert len(cache.read_month("2019-08")) == 1000


def test_cache_is_readable_by_duckdb_pandas_and_arrow_sorted(tmp_path):
    cache = SoundingsCache(tmp_path / "cache")
    files = [write_lite(tmp_path, sounding_columns(700, day=DAY + dt.timedelta(days=d), seed=d),
                        day=DAY + dt.timedelta(days=d)) for d in (2, 0, 1)]
    files.append(write_lite(tmp_path, sounding_columns(200, day=dt.date(2019, 9, 3)), day=dt.date(2019, 9, 3)))
    assert ingest_paths(files, cache=cache).n_bad == 0
    assert cache.months() == ["2019-08", "2019-09"]
    con = duckdb.connect()
    rows = con.execute("SELECT month, count(*) FROM read_parquet(?, hive_partitioning=true) GROUP BY month "
                       "ORDER BY month", [cache.month_glob()]).fetchall()
    assert rows == [("2019-08", 2100), ("2019-09", 200)]
    pdf = pd.read_parquet(cache.soundings_dir)
    assert set(pdf["month"].astype(str)) == {"2019-08", "2019-09"} and len(pdf) == 2300
    august = cache.read_month("2019-08")
    assert august["sounding_id"].is_monotonic_increasing and august["sounding_id"].is_unique
    manifest = cache.manifest()
    assert manifest["n_kept"].sum() == 2300 and set(manifest["build_family"]) == {"B10"}


# -- an unreadable day file: listed, named, replaced only with a status that says so, its bytes kept -------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)


def _truncate_footer(path) -> bytes:
    """Cut a Parquet file's footer off (as a full disk or a copy cut short would): return the bytes left."""
    data = path.read_bytes()
    cut = data[: len(data) // 2]
    path.write_bytes(cut)
    return cut


def _not_ours(path) -> bytes:
    """Overwrite a day file with a valid Parquet file that carries no provenance (not written by this cache)."""
    pq.write_table(pa.table({"sounding_id": pa.array([1, 2, 3], pa.int64())}), path)
    return path.read_bytes()


@pytest.mark.parametrize("spoil, reason", [(_truncate_footer, "its footer cannot be read"),
                                           (_not_ours, "holds no oco2peak provenance")])
def test_an_unreadable_day_file_is_listed_named_and_replaced_only_saying_so(tmp_path, spoil, reason):
    cache = SoundingsCache(tmp_path / "cache")
    days = [DAY, DAY + dt.timedelta(days=1)]
    lite = [write_lite(tmp_path, sounding_columns(600, day=d, seed=i), day=d) for i, d in enumerate(days)]
    assert ingest_paths(lite, cache=cache).n_bad == 0
    spoiled = cache.day_path(days[1])
    spoiled_bytes = spoil(spoiled)

    # months() and manifest() agree: the month is listed, both day files have a row, the bad one says why
    assert cache.months() == ["2019-08"]
    manifest = cache.manifest().set_index("day")
    assert list(manifest.index) == ["2019-08-01", "2019-08-02"]
    assert manifest.loc["2019-08-01", "problem"] == "" and manifest.loc["2019-08-01", "n_kept"] == 600
    bad = manifest.loc["2019-08-02"]
    assert bad["problem"].startswith(f"unreadable day file {spoiled}: ") and reason in bad["problem"]
    assert (bad["month"], bad["partition_file"], bad["size_bytes"]) == ("2019-08", str(spoiled), len(spoiled_bytes))
    assert bad["file_name"] == "" and pd.isna(bad["n_kept"])
    assert cache.unreadable("2019-08")["partition_file"].tolist() == [str(spoiled)]
    if spoil is _truncate_footer:
        with pytest.raises(UnreadableDayFileError, match=f"unreadable day file {spoiled} .*ingest the Lite file"):
            cache.read_month("2019-08")

    # the CLI lists it (exit 1, the file named on stderr) and detect refuses the month naming it (exit 2)
    months = _cli("months", "--cache", cache.root)
    assert months.returncode == 1
    assert f"error: unreadable day file {spoiled}: " in months.stderr and "Traceback" not in months.stderr
    header, row = months.stdout.splitlines()[1:]
    assert header.split() == ["month", "day", "files", "first", "day", "last", "day", "good", "soundings", "size",
                              "[MB]", "unreadable"]
    size_mb = (spoiled.stat().st_size + cache.day_path(DAY).stat().st_size) / 1e6
    assert row.split() == ["2019-08", "2", "2019-08-01", "2019-08-02", "600", f"{size_mb:,.1f}", "1"]
    detect = _cli("detect", "--month", "2019-08", "--cache", cache.root)
    assert detect.returncode == 2 and f"error: unreadable day file {spoiled}: " in detect.stderr
    assert "Traceback" not in detect.stderr and not (cache.root / "detections").exists()

    # ingesting that day again replaces it, saying so and naming the file; its bytes are kept, not deleted
    [report] = ingest_paths([lite[1]], cache=cache).files
    assert report.status == "replaced-unreadable" and not report.bad
    assert report.detail.startswith(f"replaces the unreadable day file {spoiled}: ") and reason in report.detail
    assert "replaced-unreadable" in report.summary_line() and str(spoiled) in report.summary_line()
    [kept] = (cache.root / "unreadable").iterdir()
    assert str(kept) in report.detail and kept.read_bytes() == spoiled_bytes
    assert cache.manifest()["problem"].tolist() == ["", ""] and cache.unreadable().empty
    month = cache.read_month("2019-08")
    assert len(month) == 1200 and month["sounding_id"].is_unique
    # the day is readable again: ingesting it once more is an ordinary re-ingest
    assert ingest_paths([lite[1]], cache=cache).files[0].status == "re-ingested"
