"""Crash safety (issue 6): ``python -m core ingest`` and ``detect`` killed with SIGKILL, for real, mid-write.

A killed writer must leave the cache readable (DuckDB, pandas, pyarrow) and consistent: every visible day file
whole, no sounding twice, manifest rows = day files; stored detections either the previous ones or absent, never
part of a Parquet file. Re-running the same command completes the work, with the same rows as a clean run, and
the killed process's hidden temporaries are removed by the next write into their folder.

The kill point is deterministic: with ``OCO2PEAK_PAUSE_WRITE=N`` (:data:`core.cache.PAUSE_ENV`) the writer stops in
its N-th atomic write, after the batches and before the footer and the rename, says so on stderr and waits; the
test kills it there. No polling race: the write cannot finish before the kill.

All waits are bounded; every process is started here and killed by its own pid.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.cache import PAUSE_ENV, SoundingsCache, write_parquet_atomic
from core.ingest import ingest_paths
from core.paths import REPO_ROOT
from core.simulate import simulate
from lite_factory import sounding_columns, write_lite

N_DAYS = 8
N_PER_DAY = 100_000  # ~70k good soundings a day: a day file takes tens of ms to write, long enough to be hit
FIRST_DAY = dt.date(2019, 8, 1)
POLL_S = 0.05
PAUSED = b"paused writing "


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "core", *args]


def _paused_env(nth_write: int) -> dict:
    """The environment that makes the process stop in its ``nth_write``-th atomic write (see the docstring)."""
    return {**os.environ, PAUSE_ENV: str(nth_write)}


def _paused_at(log: Path) -> Path | None:
    """The file the process says it stopped writing, once it says so."""
    for line in log.read_bytes().splitlines():
        if PAUSE_ENV.encode() in line and PAUSED in line:
            return Path(os.fsdecode(line.split(PAUSED, 1)[1].split(b" (temporary ", 1)[0]))
    return None


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL our own child by its pid and reap it."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _wait_for(proc: subprocess.Popen, ready, what: str, timeout_s: float = 120.0) -> None:
    """Poll ``ready()`` until true while ``proc`` runs; fail (after killing it) if it ends or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            pytest.fail(f"the process ended (status {proc.returncode}) before {what}")
        time.sleep(POLL_S)
    _kill(proc)
    pytest.fail(f"no {what} within {timeout_s:.0f} s")


# -- ingest ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def raw_days(tmp_path_factory):
    """N_DAYS real Lite files, ~30 % flagged and a few fills each; and the good sounding ids of each day."""
    folder = tmp_path_factory.mktemp("raw")
    expected = {}
    for i in range(N_DAYS):
        day = FIRST_DAY + dt.timedelta(days=i)
        cols = sounding_columns(N_PER_DAY, day=day, seed=i)
        rng = np.random.default_rng(100 + i)
        cols["xco2_quality_flag"][rng.random(N_PER_DAY) < 0.3] = 1
        cols["xco2"][rng.choice(N_PER_DAY, 50, replace=False)] = -999999.0
        write_lite(folder, cols, day=day)
        good = (cols["xco2_quality_flag"] == 0) & (cols["xco2"] > 0)
        expected[day] = np.sort(cols["sounding_id"][good])
    return folder, expected


def assert_consistent(cache: SoundingsCache, expected: dict) -> list[dt.date]:
    """Every visible day file is whole and readable; no duplicate; manifest = day files. Returns the days held."""
    files = cache.day_files()
    days = [dt.date.fromisoformat(p.stem) for p in files]
    for path, day in zip(files, days):
        ids = pq.read_table(path, columns=["sounding_id"]).column(0).to_numpy()
        np.testing.assert_array_equal(ids, expected[day])  # the whole day, not half of it
    manifest = cache.manifest()
    assert len(manifest) == len(files)
    assert sorted(manifest["partition_file"]) == sorted(map(str, files))
    assert manifest["n_kept"].tolist() == [len(expected[d]) for d in days]
    if files:
        total, distinct = duckdb.connect().execute(
            "SELECT count(*), count(DISTINCT sounding_id) FROM read_parquet(?, hive_partitioning=true)",
            [cache.month_glob()]).fetchone()
        assert total == distinct == sum(len(expected[d]) for d in days)
        assert len(pd.read_parquet(cache.soundings_dir, columns=["sounding_id"])) == total
    return days


def test_sigkill_mid_ingest_keeps_the_cache_consistent_and_a_rerun_completes(tmp_path, raw_days):
    folder, expected = raw_days
    cache = SoundingsCache(tmp_path / "cache")
    log = tmp_path / "ingest.out"
    with open(log, "wb") as out:
        # the first day stored whole, the second being written (stopped before its footer): kill there
        proc = subprocess.Popen(_cli("ingest", str(folder), "--cache", str(cache.root)), stdout=out,
                                stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=_paused_env(2))
        _wait_for(proc, lambda: _paused_at(log) is not None, "the second day file was being written")
        _kill(proc)
    second = FIRST_DAY + dt.timedelta(days=1)
    assert _paused_at(log) == cache.day_path(second)

    stale = list(cache.soundings_dir.glob(f"month=*/.*.tmp-{proc.pid}"))
    assert [p.name for p in stale] == [f".{second}.parquet.tmp-{proc.pid}"], "the kill interrupted that write"
    held = assert_consistent(cache, expected)
    assert held == [FIRST_DAY]

    rerun = subprocess.run(_cli("ingest", str(folder), "--cache", str(cache.root)), capture_output=True,
                           text=True, cwd=REPO_ROOT, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{N_DAYS} file(s): {N_DAYS} ok, 0 bad" in rerun.stdout
    assert rerun.stdout.count("re-ingested") == len(held)
    assert not any(p.exists() for p in stale), "the killed process's temporary survived the next write"
    assert assert_consistent(cache, expected) == sorted(expected)
    assert not [p for p in cache.soundings_dir.rglob(".*") if p.is_file()]


def test_stale_temporary_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    """Killed inside ``write_parquet_atomic`` after a row group: old file intact, temporary invisible to readers,
    removed by the next write (a live writer's temporary is left alone)."""
    folder = tmp_path / "cache" / "month=2019-08"
    target = folder / "2019-08-01.parquet"
    old = pa.table({"sounding_id": pa.array(np.arange(100), pa.int64())})
    write_parquet_atomic(target, old.to_batches(), old.schema)
    before = target.read_bytes()
    marker = tmp_path / "one-row-group-written"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        import numpy as np, pyarrow as pa
        from core.cache import write_parquet_atomic

        def batches():
            for k in range(1000):
                yield pa.record_batch([pa.array(np.arange(200_000) + k * 200_000, pa.int64())], ["sounding_id"])
                if k == 2:
                    Path({str(marker)!r}).touch()
                    time.sleep(120)

        write_parquet_atomic(Path({str(target)!r}), batches(), pa.schema([("sounding_id", pa.int64())]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT)
    _wait_for(proc, marker.exists, "the writer wrote its row groups", timeout_s=60)
    _kill(proc)
    tmp = folder / f".{target.name}.tmp-{proc.pid}"
    assert tmp.exists() and tmp.stat().st_size > 0
    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(tmp)  # a partial Parquet file (no footer): the reason it must never be visible
    assert target.read_bytes() == before
    assert duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)",
                                    [str(folder / "*.parquet")]).fetchone() == (100,)
    assert len(pd.read_parquet(folder.parent)) == 100

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = folder / f".other.parquet.tmp-{sleeper.pid}"
        live.write_bytes(b"being written")
        new = pa.table({"sounding_id": pa.array(np.arange(7), pa.int64())})
        write_parquet_atomic(target, new.to_batches(), new.schema)
        assert not tmp.exists() and live.exists()
        assert pq.read_table(target).num_rows == 7
    finally:
        _kill(sleeper)


# -- detect ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def month_cache(tmp_path_factory):
    """A simulated month (2 days, 6 orbits) ingested into a cache."""
    root = tmp_path_factory.mktemp("detect")
    simulate(root / "raw", days=2, seed=3, passes_per_day=3, pass_km=2500)
    cache = SoundingsCache(root / "cache")
    assert ingest_paths([root / "raw"], cache=cache).n_bad == 0
    return cache


def _detections(cache: SoundingsCache) -> list[Path]:
    return sorted((cache.root / "detections").rglob("*.parquet")) if (cache.root / "detections").exists() else []


def _detect_killed_storing(cache: SoundingsCache, log: Path) -> int:
    """Run detect, kill it in the write of its detections (every orbit detected, the Parquet file half written)."""
    with open(log, "wb") as err:
        proc = subprocess.Popen(_cli("detect", "--month", "2019-08", "--cache", str(cache.root)),
                                stdout=subprocess.DEVNULL, stderr=err, cwd=REPO_ROOT, env=_paused_env(1))
        _wait_for(proc, lambda: _paused_at(log) is not None, "the detections were being stored")
        _kill(proc)
    assert _paused_at(log).name == "candidates.parquet"
    assert re.search(rb"\] ([0-9]+)/\1 orbit", log.read_bytes()), "every orbit was detected before the write"
    return proc.pid


def _temporaries(cache: SoundingsCache, pid: int) -> list[Path]:
    return sorted((cache.root / "detections").rglob(f".candidates.parquet.tmp-{pid}"))


def _assert_no_partial_parquet(cache: SoundingsCache) -> None:
    for path in _detections(cache):
        pq.read_table(path)  # every visible Parquet file is whole
    glob = str(cache.root / "detections" / "month=*" / "*" / "*.parquet")
    if _detections(cache):
        duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [glob]).fetchone()


def test_sigkill_mid_detect_keeps_previous_detections_and_a_rerun_completes(tmp_path, month_cache):
    cache = month_cache
    # 1. killed writing the first detections of a cache: they stay absent (the half-written temporary is hidden)
    pid = _detect_killed_storing(cache, tmp_path / "kill1.err")
    assert _detections(cache) == [] and len(_temporaries(cache, pid)) == 1
    _assert_no_partial_parquet(cache)

    # 2. a re-run completes
    run = subprocess.run(_cli("detect", "--month", "2019-08", "--cache", str(cache.root)), capture_output=True,
                         text=True, cwd=REPO_ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    [stored] = _detections(cache)
    first = pd.read_parquet(stored)
    first_bytes = stored.read_bytes()
    assert len(first) > 0 and first["orbit"].nunique() > 1

    assert _temporaries(cache, pid) == []  # the killed writer's temporary went with the next write

    # 3. killed again writing new detections over them: the previous ones are untouched and readable
    pid = _detect_killed_storing(cache, tmp_path / "kill2.err")
    assert _detections(cache) == [stored] and stored.read_bytes() == first_bytes
    assert len(_temporaries(cache, pid)) == 1
    _assert_no_partial_parquet(cache)

    # 4. a re-run completes with the same candidates
    run = subprocess.run(_cli("detect", "--month", "2019-08", "--cache", str(cache.root)), capture_output=True,
                         text=True, cwd=REPO_ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    assert _detections(cache) == [stored] and _temporaries(cache, pid) == []
    pd.testing.assert_frame_equal(pd.read_parquet(stored), first)
