"""Scoring against truth (core.validation) on hand-built truth and candidate tables: one-to-one matching, false
events on every pass, precision, 1-sigma coverage, bootstrap intervals and pooling."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import pytest

from core.validation import (FALSE_DISTANCE_KM, GROUND_SPEED_KM_S, Osse, _assign, _resampled_medians,
                             event_outcomes, match_plumes, recall_by_peak, score, score_many)

T0 = pd.Timestamp("2019-08-01T12:00:00Z")


def _at(km: float) -> pd.Timestamp:
    """The time the satellite is ``km`` along the track from T0."""
    return T0 + pd.Timedelta(seconds=km / GROUND_SPEED_KM_S)


def _plume(orbit, km, emission=1000.0, sigma_km=1.0, detectable=True, isolated=True, peak_ppm=2.0):
    return {"orbit": orbit, "cross_time": _at(km), "sigma_footprint_km": sigma_km, "emission_gCO2_s": emission,
            "detectable": detectable, "isolated": isolated, "peak_footprint_ppm": peak_ppm,
            "amplitude_ppm_km": 5.0, "role": "target"}


def _event(orbit, km, emission=1000.0, stderr=100.0, snr=6.0, status="accepted", is_event=True):
    return {"orbit": orbit, "time": _at(km), "is_event": is_event, "status": status, "snr": snr,
            "emission_gCO2_s": emission, "emission_gCO2_s_stderr": stderr}


def _osse(plumes: list[dict], passes: list[tuple[int, str, float]]) -> Osse:
    plume_table = pd.DataFrame(plumes, columns=list(_plume(0, 0).keys()))
    pass_table = pd.DataFrame(passes, columns=["orbit", "kind", "length_km"])
    return Osse(pd.DataFrame(), plume_table, pass_table, pd.DataFrame())


def _score(plumes, events, passes, **kw):
    osse = _osse(plumes, passes)
    return score(pd.DataFrame(events), osse, osse.plumes, **kw)


def test_one_event_between_two_close_plumes_matches_one():
    plumes = [_plume(1, 100.0), _plume(1, 105.0)]
    s = _score(plumes, [_event(1, 102.5)], [(1, "plume", 2000.0)])
    assert (s.n_detectable, s.n_matched, s.recall) == (2, 1, 0.5)
    assert (s.n_accepted, s.precision, s.n_false, s.n_unmatched_near) == (1, 1.0, 0, 0)
    table = match_plumes(pd.DataFrame([_event(1, 102.5)]), _osse(plumes, []).plumes)
    assert table["matched"].sum() == 1 and sorted(table["event_index"]) == [-1, 0]


def test_two_events_on_one_plume_one_match_one_near():
    events = [_event(1, 100.5), _event(1, 103.0)]
    osse = _osse([_plume(1, 100.0)], [(1, "plume", 2000.0)])
    s = score(pd.DataFrame(events), osse, osse.plumes)
    assert (s.n_matched, s.n_accepted, s.n_unmatched_near, s.n_false) == (1, 2, 1, 0)
    assert s.precision == 0.5
    outcome = event_outcomes(pd.DataFrame(events), osse, osse.plumes)
    assert list(outcome["outcome"]) == ["matched", "near-unmatched"]  # the nearer one is matched
    assert list(outcome["plume_index"]) == [0, -1] and list(outcome["pass_kind"]) == ["plume", "plume"]


def test_assignment_prefers_more_matches_over_shorter_distance():
    # event 0 is nearest plume 1, but taking it there would leave plume 0 (reachable by event 0 only) unmatched
    d = np.array([[5.0, 1.0], [np.inf, 2.0]])
    rows, cols = _assign(np.where(np.isfinite(d), d, 1e9), np.isfinite(d) & (d <= 6.0))
    assert sorted(zip(rows, cols)) == [(0, 0), (1, 1)]


def test_far_event_on_a_plume_pass_is_false_on_all_track_only():
    plumes = [_plume(1, 100.0)]
    events = [_event(1, 100.0), _event(1, 100.0 + FALSE_DISTANCE_KM + 10.0)]
    s = _score(plumes, events, [(1, "plume", 1000.0), (2, "plume-free", 3000.0)])
    assert (s.n_false, s.n_false_plume_free, s.n_matched, s.n_unmatched_near) == (1, 0, 1, 0)
    assert s.track_km == 4000.0 and s.plume_free_km == 3000.0
    assert s.false_per_1000_km == pytest.approx(0.25) and s.false_per_1000_km_plume_free == 0.0
    # an event just inside 30 km is near, not false; on the plume-free pass every event is false, on both rates
    s = _score(plumes, [_event(1, 100.0 + FALSE_DISTANCE_KM - 1.0), _event(2, 50.0)],
               [(1, "plume", 1000.0), (2, "plume-free", 3000.0)])
    assert (s.n_false, s.n_false_plume_free, s.n_unmatched_near, s.n_matched) == (1, 1, 1, 0)
    assert s.false_per_1000_km_plume_free == pytest.approx(1000 / 3000)


def test_undetectable_plume_makes_a_near_event_not_false_nor_match():
    s = _score([_plume(1, 100.0, detectable=False)], [_event(1, 101.0)], [(1, "plume", 1000.0)])
    assert (s.n_detectable, s.n_matched, s.n_false, s.n_unmatched_near) == (0, 0, 0, 1)
    assert np.isnan(s.recall) and s.precision == 0.0


def test_rejected_candidates_and_non_events_do_not_count():
    events = [_event(1, 100.0, status="rejected"), _event(1, 100.0, is_event=False), _event(1, 500.0)]
    s = _score([_plume(1, 100.0)], events, [(1, "plume", 1000.0)])
    assert (s.n_accepted, s.n_matched, s.n_false) == (1, 0, 1)


def test_emission_error_coverage_and_z():
    plumes = [_plume(1, 100.0, emission=1000.0), _plume(1, 400.0, emission=1000.0),
              _plume(1, 700.0, emission=1000.0), _plume(1, 900.0, emission=1000.0, isolated=False)]
    events = [_event(1, 100.0, emission=1050.0, stderr=100.0),  # z 0.5: covered
              _event(1, 400.0, emission=1300.0, stderr=100.0),  # z 3: not covered
              _event(1, 700.0, emission=900.0, stderr=200.0),  # z 0.5: covered
              _event(1, 900.0, emission=5000.0, stderr=1.0)]  # not isolated: left out
    s = _score(plumes, events, [(1, "plume", 1000.0)])
    assert s.n_emission == 3 and s.median_emission_error == pytest.approx(0.1)
    assert s.emission_coverage_1sigma == pytest.approx(2 / 3) and s.median_emission_z == pytest.approx(0.5)


def test_the_winds_share_of_the_emission_error():
    """The file's cross-track wind 25 % above the true one: the estimate is 25 % high for the wind alone; with the
    true wind the estimate's error is the fitted area's (here 4 %). Signs of the winds do not matter."""
    plumes = [dict(_plume(1, 100.0, emission=1000.0), wind_perp_ms=-4.0),
              dict(_plume(1, 400.0, emission=1000.0), wind_perp_ms=2.0)]
    events = [dict(_event(1, 100.0, emission=1000.0 * 1.04 * 1.25), wind_perp_ms=5.0),
              dict(_event(1, 400.0, emission=1000.0 * 0.96 * 0.75), wind_perp_ms=-1.5)]
    osse = _osse(plumes, [(1, "plume", 1000.0)])
    table = match_plumes(pd.DataFrame(events), pd.DataFrame(plumes))
    assert np.allclose(table["wind_error"], [0.25, 0.25])
    assert np.allclose(table["emission_error_true_wind"], [0.04, 0.04])
    s = score(pd.DataFrame(events), osse, pd.DataFrame(plumes))
    assert s.median_wind_error == pytest.approx(0.25) and s.median_emission_error_true_wind == pytest.approx(0.04)
    assert s.median_emission_error == pytest.approx((0.30 + 0.28) / 2)  # 1.04 x 1.25 and 0.96 x 0.75: the wind's


def _many_passes(n_passes: int, seed: int = 1):
    """``n_passes`` plume passes with two plumes each; events found on a random share of them, some false."""
    rng = np.random.default_rng(seed)
    plumes, events, passes = [], [], []
    for orbit in range(n_passes):
        passes.append((orbit, "plume", 1000.0))
        for km in (100.0, 500.0):
            plumes.append(_plume(orbit, km, emission=1000.0))
            if rng.random() < 0.7:
                events.append(_event(orbit, km, emission=1000.0 * (1 + rng.normal(0, 0.2)), stderr=200.0))
        if rng.random() < 0.3:
            events.append(_event(orbit, 800.0))
    return plumes, events, passes


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_passes():
    widths = {}
    for n in (20, 200):
        s = _score(*_many_passes(n), n_boot=500, seed=3)
        for name in ("recall", "precision", "false_per_1000_km", "median_emission_error",
                     "emission_coverage_1sigma"):
            lo, hi = s.intervals[name]
            assert lo <= getattr(s, name) <= hi, (n, name, s.intervals[name])
        widths[n] = {name: hi - lo for name, (lo, hi) in s.intervals.items() if name != "false_per_1000_km_plume_free"}
        assert np.isnan(s.intervals["false_per_1000_km_plume_free"]).all()  # no plume-free track: undefined
    for name, wide in widths[20].items():
        assert widths[200][name] < wide, (name, widths)
    assert dataclasses.asdict(s)["intervals"]["recall"] == s.intervals["recall"]
    assert "recall" in s.line() and "(" in s.line()


def test_bootstrap_is_seeded_and_fast():
    args = _many_passes(200)
    osse = _osse(args[0], args[2])
    candidates = pd.DataFrame(args[1])
    start = time.perf_counter()
    a = score(candidates, osse, osse.plumes, n_boot=1000, seed=5)
    assert time.perf_counter() - start < 1.0
    np.testing.assert_equal(dataclasses.asdict(a), dataclasses.asdict(score(candidates, osse, osse.plumes, seed=5)))
    assert a.intervals["recall"] != score(candidates, osse, osse.plumes, seed=6).intervals["recall"]


def test_resampled_medians_equal_numpy_median_of_repeated_values():
    rng = np.random.default_rng(0)
    values, owner = rng.random(25), rng.integers(0, 7, 25)
    counts = np.random.default_rng(1).integers(0, 3, size=(40, 7)).astype(float)
    got = _resampled_medians(values, owner, counts)
    for b in range(len(counts)):
        repeated = np.repeat(values, counts[b, owner].astype(int))
        assert got[b] == pytest.approx(np.median(repeated)) if repeated.size else np.isnan(got[b])


def test_score_many_keeps_parts_with_the_same_orbit_apart():
    # part 0: plume at 100 km on orbit 7, no event; part 1: orbit 7 again, an event at 100 km but no plume
    a = _osse([_plume(7, 100.0)], [(7, "plume", 1000.0)])
    b = _osse([], [(7, "plume-free", 2000.0)])
    s = score_many([(pd.DataFrame(), a, a.plumes), (pd.DataFrame([_event(7, 100.0)]), b, b.plumes)], n_boot=200)
    assert (s.n_passes, s.n_detectable, s.n_matched, s.n_false, s.n_false_plume_free) == (2, 1, 0, 1, 1)
    assert s.track_km == 3000.0 and s.plume_free_km == 2000.0
    # the same part twice counts twice
    twice = score_many([(pd.DataFrame([_event(7, 100.0)]), a, a.plumes)] * 2, n_boot=0)
    assert (twice.n_passes, twice.n_detectable, twice.n_matched, twice.recall) == (2, 2, 2, 1.0)
    assert np.isnan(twice.intervals["recall"]).all()


def test_recall_by_peak():
    plumes = pd.DataFrame([_plume(1, 0, peak_ppm=p) for p in (0.9, 1.0, 1.5, 3.0, 5.0, 0.5)])
    plumes["detectable"] = plumes["peak_footprint_ppm"] >= 0.8
    plumes["matched"] = [False, True, True, True, True, True]
    table = recall_by_peak(plumes)
    assert list(table["peak_footprint_ppm"]) == ["0.8-1.2", "1.2-2", "2-4", ">= 4"]
    assert list(table["n"]) == [2, 1, 1, 1] and list(table["recall"]) == [0.5, 1.0, 1.0, 1.0]


def test_recall_of_isolated_plumes_leaves_out_overlapping_ones_only():
    plumes = [_plume(1, 100.0, isolated=False), _plume(1, 105.0, isolated=False), _plume(1, 500.0),
              _plume(1, 900.0)]
    s = _score(plumes, [_event(1, 102.5), _event(1, 500.5)], [(1, "plume", 2000.0)], n_boot=50)
    assert (s.n_matched, s.n_detectable, s.recall) == (2, 4, 0.5)
    assert (s.n_matched_isolated, s.n_detectable_isolated, s.recall_isolated) == (1, 2, 0.5)
    assert "isolated plumes 0.500" in s.line()


def test_osse_fingerprint_names_the_data(tmp_path):
    from core.validation import osse_fingerprint

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.nc4").write_bytes(b"soundings")
        (tmp_path / name / "truth_plumes.csv").write_text("orbit\n1\n")
    assert osse_fingerprint(tmp_path / "a") == osse_fingerprint(tmp_path / "b")
    (tmp_path / "b" / "truth_plumes.csv").write_text("orbit\n2\n")  # one byte of one file
    assert osse_fingerprint(tmp_path / "a") != osse_fingerprint(tmp_path / "b")
    (tmp_path / "b" / "truth_plumes.csv").write_text("orbit\n1\n")
    (tmp_path / "b" / "x.nc4").rename(tmp_path / "b" / "y.nc4")  # same bytes, another name
    assert osse_fingerprint(tmp_path / "a") != osse_fingerprint(tmp_path / "b")
    assert len(osse_fingerprint(tmp_path / "a")) == 12
