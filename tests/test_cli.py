"""`python -m core` as people use it: help that reads as plain text, `months` as an aligned table, and `export`
refusing detections older than the month's data (the freshness check the workbench uses, core.batch)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from core.batch import stored_detections
from core.cli import build_parser
from core.paths import REPO_ROOT
from core.settings import DetectionSettings
from core.simulate import simulate

MONTH = "2019-08"
COMMANDS = ["ingest", "simulate", "demo", "detect", "fetch", "export", "grid", "months"]


def _core(*args, check_rc: int | None = None):
    run = subprocess.run([sys.executable, "-m", "core", *map(str, args)], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=300)
    if check_rc is not None:
        assert run.returncode == check_rc, (run.stdout, run.stderr)
    return run


# -- help ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_is_plain_text(command):
    run = _core(*([command] if command else []), "--help", check_rc=0)
    text = run.stdout
    for markup in ("``", ":func:", ":class:", ":mod:", ":meth:", ".. "):
        assert markup not in text, f"{markup!r} in the help of {command or 'python -m core'}:\n{text}"
    if command is None:
        assert text.startswith("usage: python -m core [-h] COMMAND ...")
        assert all(re.search(rf"^\s+{c}\s+\S", text, re.M) for c in COMMANDS)  # every command with its summary
        assert "Exit status: 0 done; 1 some input was bad; 2 the command cannot run" in text
    else:
        assert f"usage: python -m core {command} " in text and "--cache DIR" in text


def test_every_argument_has_a_help_text():
    [sub] = build_parser()._subparsers._group_actions
    assert sorted(sub.choices) == sorted(COMMANDS)
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help text"


# -- months ----------------------------------------------------------------------------------------------------

def test_months_of_an_empty_cache(tmp_path):
    run = _core("months", "--cache", tmp_path / "cache", check_rc=0)
    assert run.stdout.strip() == f"the cache {tmp_path / 'cache'} holds no soundings" and not run.stderr


def test_contradictory_rules_file_is_refused_naming_both_keys(detected, tmp_path):
    rules = tmp_path / "mine.toml"
    rules.write_text(DetectionSettings().replace({"fit.sigma_min_km": 20.0, "fit.sigma_max_km": 5.0}).to_toml())
    run = _core("detect", "--month", MONTH, "--cache", detected / "cache", "--rules", rules, check_rc=2)
    assert "mine.toml" in run.stderr and "fit.sigma_min_km (20 km) must be below fit.sigma_max_km (5 km)" in run.stderr
    assert not run.stdout


# -- grid --------------------------------------------------------------------------------------------------------

def test_grid_writes_the_months_map_as_netcdf(detected, tmp_path):
    import xarray as xr

    from core.xco2_grid import month_grid

    cache, out = detected / "cache", tmp_path / "grid.nc"
    run = _core("grid", "--month", MONTH, "--cache", cache, "--resolution", 2, "--out", out, check_rc=0)
    with xr.open_dataset(out) as written:
        expected = month_grid(MONTH, cache=cache, resolution_deg=2.0)
        xr.testing.assert_allclose(written.load(), expected)
        cells = int((written["n_soundings"] > 0).sum())
        n = int(written["n_soundings"].sum())
    assert 0 < cells and n == len(pd.concat(pd.read_parquet(p) for p in (cache / "soundings").rglob("*.parquet")))
    assert run.stdout.strip() == (f"wrote {out}: {MONTH} on a 2 degree grid, {cells:,} cells with data, "
                                  f"{n:,} good soundings")
    bad = _core("grid", "--month", MONTH, "--cache", cache, "--resolution", 7, "--out", tmp_path / "x.nc",
                check_rc=2)
    assert "resolution_deg must divide 180 and 360" in bad.stderr and not (tmp_path / "x.nc").exists()
    absent = _core("grid", "--month", "2020-01", "--cache", cache, "--out", tmp_path / "y.nc", check_rc=2)
    assert "holds no soundings of 2020-01" in absent.stderr


# -- export and the freshness of stored detections ---------------------------------------------------------------

@pytest.fixture(scope="module")
def detected(tmp_path_factory):
    """A small simulated month ingested and detected with the CLI; a second simulation of the same days."""
    root = tmp_path_factory.mktemp("cli")
    simulate(root / "raw", days=2, seed=4, passes_per_day=2, pass_km=1000.0)
    simulate(root / "raw2", days=2, seed=5, passes_per_day=2, pass_km=1000.0)  # other data, same days
    _core("ingest", root / "raw", "--cache", root / "cache", check_rc=0)
    _core("detect", "--month", MONTH, "--cache", root / "cache", check_rc=0)
    return root


def test_months_prints_an_aligned_table_with_units(detected):
    run = _core("months", "--cache", detected / "cache", check_rc=0)
    lines = run.stdout.splitlines()
    assert lines[0] == f"cache {detected / 'cache'}"
    assert re.fullmatch(r"month +day files +first day +last day +good soundings +size \[MB\]", lines[1])
    manifest = pd.concat([pd.read_parquet(p) for p in sorted((detected / "cache" / "soundings").rglob("*.parquet"))])
    kept = len(manifest)
    assert re.fullmatch(rf"{MONTH} +2 +2019-08-01 +2019-08-02 +{kept:,} +\d+\.\d", lines[2]), lines[2]
    assert len(lines) == 3  # one month: no total line, no index column, no dtype line
    assert lines[1].index("good soundings") + len("good soundings") == lines[2].index(f"{kept:,}") + len(f"{kept:,}")
    assert "dtype" not in run.stdout and "NaN" not in run.stdout and not run.stderr


def test_export_refuses_detections_older_than_the_data_until_detect_runs_again(detected, tmp_path):
    cache, out = detected / "cache", tmp_path / "peaks.csv"
    fresh = _core("export", "--month", MONTH, "--cache", cache, "--all", "--out", out, check_rc=0)
    assert not fresh.stderr and out.exists()
    exported = pd.read_csv(out)
    assert len(exported) > 0
    assert stored_detections(cache, MONTH, DetectionSettings()).fresh

    # the month's days re-ingested with other data (another simulation; --force: whichever production is newer)
    ingest = _core("ingest", detected / "raw2", "--cache", cache, "--force", check_rc=0)
    assert [line.split()[0] for line in ingest.stdout.splitlines()[:2]] == ["replaced", "replaced"]
    out.unlink()
    stale = _core("export", "--month", MONTH, "--cache", cache, "--all", "--out", out, check_rc=2)
    [line] = stale.stderr.splitlines()
    assert line.startswith(f"error: the stored detections of {MONTH} (")
    assert "2019-08-01.parquet, 2019-08-02.parquet changed after them" in line
    assert f"re-run `python -m core detect --month {MONTH}`" in line and "--allow-stale" in line
    assert not out.exists() and not stale.stdout

    # --allow-stale exports them, saying so
    allowed = _core("export", "--month", MONTH, "--cache", cache, "--all", "--out", out, "--allow-stale",
                    check_rc=0)
    assert allowed.stderr.startswith(f"warning: exporting stale detections: the stored detections of {MONTH}")
    pd.testing.assert_frame_equal(pd.read_csv(out), exported)

    # detect again: fresh, and the export is of the new data
    _core("detect", "--month", MONTH, "--cache", cache, check_rc=0)
    again = _core("export", "--month", MONTH, "--cache", cache, "--all", "--out", out, check_rc=0)
    assert not again.stderr
    assert not pd.read_csv(out).equals(exported)  # the detections of the re-ingested data

    # a day file removed after the detections: refused, naming the month's folder
    (cache / "soundings" / f"month={MONTH}" / "2019-08-02.parquet").unlink()
    removed = _core("export", "--month", MONTH, "--cache", cache, "--out", out, check_rc=2)
    assert f"the folder month={MONTH} (a day file removed) changed after them" in removed.stderr


def test_freshness_counts_equal_times_as_stale(detected, tmp_path):
    """Detections stored in the same clock tick as a day file cannot be told apart from older ones: stale."""
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(detected / "cache", cache)
    settings = DetectionSettings()
    stored = stored_detections(cache, MONTH, settings)
    day_files = sorted((cache / "soundings" / f"month={MONTH}").glob("*.parquet"))
    folder = day_files[0].parent
    later = max(p.stat().st_mtime_ns for p in [*day_files, folder]) + 10**9
    for p in [*day_files, folder]:
        os.utime(p, ns=(later - 10**9, later - 10**9))
    os.utime(stored.path, ns=(later, later))
    assert stored_detections(cache, MONTH, settings).fresh
    os.utime(day_files[0], ns=(later, later))
    assert stored_detections(cache, MONTH, settings).changed_after == (day_files[0].name,)
    os.utime(day_files[0], ns=(later - 10**9, later - 10**9))
    os.utime(folder, ns=(later, later))
    removed = f"the folder month={MONTH} (a day file removed)"
    assert stored_detections(cache, MONTH, settings).changed_after == (removed,)
    assert stored_detections(cache, "2019-09", settings) is None
