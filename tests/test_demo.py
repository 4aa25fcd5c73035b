"""The embedded default: `python -m core demo` builds the demo month once; a second run does nothing."""
from __future__ import annotations

import subprocess
import sys

import duckdb

from core.cache import SoundingsCache
from core.demo import ensure_demo
from core.paths import REPO_ROOT


def test_demo_month_is_big_enough_real_and_idempotent(tmp_path):
    first = ensure_demo(cache=tmp_path)
    assert first["status"] == "created" and first["n_bad"] == 0
    assert first["passes"] >= 60 and first["plume_free_passes"] > 0
    assert first["distinct_emitters"] >= 30
    cache = SoundingsCache(tmp_path)
    assert cache.months() == ["2019-08"]
    n_good = duckdb.execute("SELECT count(*) FROM read_parquet(?)", [cache.month_glob("2019-08")]).fetchall()[0][0]
    assert n_good == first["good_soundings"] >= 300_000
    stamps = {p: p.stat().st_mtime_ns for p in cache.day_files()}

    run = subprocess.run([sys.executable, "-m", "core", "demo", "--cache", str(tmp_path)], capture_output=True,
                         text=True, cwd=REPO_ROOT)
    assert run.returncode == 0 and "nothing to do" in run.stdout
    assert {p: p.stat().st_mtime_ns for p in cache.day_files()} == stamps  # nothing rewritten
