"""End to end on a small OSSE: simulate -> ingest -> `python -m core detect` -> CSV, and a recall check.

The OSSE is twelve days of one month (48 passes of 2,000 km, three in four over a plume of a real inventory
source): large enough that the month's threshold comes from its own mirror events (a three-day month falls back to
the floor, leaving the calibration untested) and that one plume is about 1 % of the recall.
"""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from core.batch import PEAK_COLUMNS, load_detections
from core.settings import DetectionSettings
from core.simulate import simulate
from core.validation import load_osse, score
from core.paths import REPO_ROOT

CONTRACT = ["sounding_id", "orbit", "time", "latitude", "longitude", "status", "rejected_by", "amplitude_ppm_km",
            "amplitude_stderr", "sigma_km", "delta_ppm", "r2", "n_soundings", "wind_perp_ms", "emission_gCO2_s",
            "emission_gCO2_s_stderr", "source_id", "source_name", "source_distance_km", "source_emission_tCO2_yr",
            "rules_hash"]


def _core(*args):
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def small_osse(tmp_path_factory):
    root = tmp_path_factory.mktemp("osse")
    simulate(root / "raw", days=12, seed=6, passes_per_day=4, pass_km=2000.0, plume_fraction=0.75)
    assert _core("ingest", root / "raw", "--cache", root / "cache").returncode == 0
    return root


def test_detect_cli_writes_the_peaks_contract(small_osse):
    out, everything = small_osse / "peaks.csv", small_osse / "all.csv"
    run = _core("detect", "--month", "2019-08", "--cache", small_osse / "cache", "--out", out)
    assert run.returncode == 0, run.stderr
    assert "accepted" in run.stdout and "attributed" in run.stdout
    peaks = pd.read_csv(out)
    assert list(peaks.columns[:len(PEAK_COLUMNS)]) == PEAK_COLUMNS and set(CONTRACT) <= set(peaks.columns)
    assert len(peaks) > 0 and (peaks["status"] == "accepted").all()
    assert (peaks["rules_hash"] == DetectionSettings().hash).all()
    assert peaks["sounding_id"].is_unique  # one row per event
    with_emission = peaks.dropna(subset=["emission_gCO2_s"])  # none where the cross-track wind is < 0.5 m/s
    assert len(with_emission) >= 0.8 * len(peaks) and (with_emission["emission_gCO2_s_stderr"] > 0).all()
    assert peaks["source_id"].notna().any()  # plumes of real inventory sources are attributed
    # burst-like events (one pass cannot tell them from bursts of bad frames) are flagged in the CSV and counted,
    # with the false rate they could add, on the summary line
    n_burst = int(peaks["burst_like"].astype(bool).sum())
    if n_burst:
        assert f"; {n_burst} accepted events burst-like (up to " in run.stdout, run.stdout
    else:
        assert "burst-like" not in run.stdout, run.stdout
    export = _core("export", "--month", "2019-08", "--cache", small_osse / "cache", "--all", "--out", everything)
    assert export.returncode == 0, export.stderr
    rejected = pd.read_csv(everything)
    assert (rejected["status"] == "rejected").any() and rejected["rejected_by"].notna().any()


def test_detect_cli_names_a_bad_rules_file(small_osse, tmp_path):
    bad = tmp_path / "rules.toml"
    bad.write_text("[fit]\nwindow_km = 'wide'\n")
    run = _core("detect", "--month", "2019-08", "--cache", small_osse / "cache", "--rules", bad)
    assert run.returncode == 2 and "rules.toml: fit.window_km must be a number" in run.stderr
    assert "Traceback" not in run.stderr


def test_small_osse_recall(small_osse):
    candidates = load_detections(small_osse / "cache", "2019-08", DetectionSettings())
    if candidates is None:
        assert _core("detect", "--month", "2019-08", "--cache", small_osse / "cache").returncode == 0
        candidates = load_detections(small_osse / "cache", "2019-08", DetectionSettings())
    result = score(candidates, load_osse(small_osse / "raw"))
    # What the detector achieves on this month (as-stated noise, perfect winds; recommended preset, one process):
    # 49 of 80 detectable plumes (0.613), 13 of 17 isolated ones (0.765), 9 false events on 95,891 km (0.094
    # per 1,000 km) at the month's own threshold (mirror+control, 3.18: the control region far from every source
    # holds the simulator's positive cloud bursts, which lift the threshold; 52, 13 and 18 at 2.45 from the mirror
    # alone). The recall is below the headline 0.8 of bench_worlds because three passes in four carry plumes here:
    # 63 of the 80 overlap another plume along the track, where one event covers both (core.validation). The data
    # are fixed, so these figures move only when the code does; the bounds let a benign change trade a few
    # borderline plumes or events (4 plumes, 1 isolated plume, 5 false events) and fail a regression beyond that:
    # 5 points of recall, a false rate a quarter above the calibrated 0.2 per 1,000 km.
    assert result.n_detectable == 80 and result.track_km == pytest.approx(95_891, abs=1), result.line()
    assert candidates["threshold_method"].iloc[0].startswith("mirror"), "the month's threshold from its own null"
    assert result.recall >= 0.56, result.line()
    assert result.recall_isolated >= 12 / 17, result.line()
    assert result.false_per_1000_km <= 0.25, result.line()
