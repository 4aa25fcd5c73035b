"""Detection engine: model, emission, geometry, rules on crafted windows, de-duplication, robustness."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.detect import detect_orbit, find_candidates, fit_candidates, judge, prepare_orbit
from core.emission import emission_kg_s
from core.fitting import fit_window, gaussian_line
from core.rules import explain_rules
from core.settings import DetectionSettings
from core.track import along_track, cross_track_wind_ms, haversine_km
from orbit_factory import add_gaussian, add_step, crafted_orbit

RECOMMENDED = DetectionSettings()


def test_emission_hand_worked_example():
    # 1 ppm km at 5 m/s cross-track, psurf 1000 hPa, tcwv 20 kg/m2:
    # 1e3 m * 1e-6 * (44.01/28.96) * (1e5/9.80665 - 20) kg/m2 * 5 m/s = 77.33 kg/s
    assert emission_kg_s(1.0, 5.0, 1000.0, 20.0) == pytest.approx(77.33, abs=0.01)
    assert emission_kg_s(1.0, -5.0, 1000.0, 20.0) == pytest.approx(77.33, abs=0.01)  # |u_perp|


def test_model_is_a_gaussian_of_area_a_on_a_line():
    x = np.linspace(-100, 100, 200_001)
    y = gaussian_line(x, amplitude=3.0, sigma=4.0, center=2.0, slope=0.01, intercept=410.0)
    background = 0.01 * (x - 2.0) + 410.0
    assert np.trapezoid(y - background, x) == pytest.approx(3.0, rel=1e-6)
    assert (y - background).max() == pytest.approx(3.0 / (4.0 * np.sqrt(2 * np.pi)), rel=1e-6)


def test_fit_recovers_parameters_with_standard_errors():
    df = add_gaussian(crafted_orbit(400, seed=3), 200.0, 12.0, 5.0)
    x, y, unc = df["x_true_km"].to_numpy(), df["xco2"].to_numpy(), df["xco2_uncertainty"].to_numpy()
    fit = fit_window(x, y, unc, {"amplitude": 8, "sigma": 3, "center": 198, "slope": 0, "intercept": 410},
                     RECOMMENDED)
    assert fit.ok, fit.message
    assert abs(fit.values["amplitude"] - 12.0) < 3 * fit.stderr["amplitude"]
    assert abs(fit.values["sigma"] - 5.0) < 3 * fit.stderr["sigma"]
    assert 0 < fit.stderr["amplitude"] < 3


def test_fit_with_the_centre_held_fixed():
    """``fit.centre_shift_km`` 0 holds the centre at the candidate (every fit failed with 'min == max' before)."""
    df = add_gaussian(crafted_orbit(400, seed=3), 200.0, 12.0, 5.0)
    x, y, unc = df["x_true_km"].to_numpy(), df["xco2"].to_numpy(), df["xco2_uncertainty"].to_numpy()
    fixed = RECOMMENDED.replace({"fit.centre_shift_km": 0.0})
    fit = fit_window(x, y, unc, {"amplitude": 8, "sigma": 3, "center": 199.0, "slope": 0, "intercept": 410},
                     fixed)
    assert fit.ok, fit.message
    assert fit.values["center"] == 199.0
    assert abs(fit.values["amplitude"] - 12.0) < 3 * fit.stderr["amplitude"]
    events = detect_orbit(df, fixed)
    assert not events["fit_message"].str.contains("min == max").any()
    assert (events["is_event"] & events["status"].eq("accepted")).sum() == 1


def test_along_track_follows_frames_and_never_folds_back():
    df = crafted_orbit(900, noise_ppm=0)
    track = along_track(df["sounding_id"], df["latitude"], df["longitude"])
    assert np.allclose(track.x_km, df["x_true_km"], atol=0.05)  # footprints sideways do not add distance
    assert np.allclose(track.bearing_deg[(track.bearing_deg > 180)] - 360, 0, atol=0.01) \
        and np.allclose(track.bearing_deg[track.bearing_deg <= 180], 0, atol=0.01)
    # a day-side orbit of 18,000 km: along a meridian through both poles
    lat = np.concatenate([np.linspace(-80, 89.9, 4000), np.linspace(89.9, 20, 2000)])
    lon = np.concatenate([np.full(4000, 10.0), np.full(2000, -170.0)])
    ids = (np.arange(6000, dtype=np.int64) + 2019080112000000) * 10 + 1
    long_track = along_track(ids, lat, lon)
    assert np.all(np.diff(long_track.frame_x_km) > 0)
    expected = haversine_km(-80, 10, 89.9, 10) + haversine_km(89.9, 10, 20, -170)
    assert long_track.frame_x_km[-1] == pytest.approx(expected, rel=1e-3)
    assert long_track.frame_x_km[-1] > 20_000 * 0.8  # haversine from the start would fold back below 12,000


def test_cloud_gap_is_kept_as_a_gap():
    df = crafted_orbit(600, noise_ppm=0, gaps_km=((200, 320),))
    track = along_track(df["sounding_id"], df["latitude"], df["longitude"])
    assert np.allclose(track.x_km, df["x_true_km"], atol=0.05)


def test_cross_track_wind_in_local_metres():
    assert cross_track_wind_ms(5.0, 0.0, 0.0) == pytest.approx(5.0)  # eastward wind, northward track
    assert cross_track_wind_ms(0.0, 5.0, 0.0) == pytest.approx(0.0)  # along the track
    assert cross_track_wind_ms(0.0, 5.0, 90.0) == pytest.approx(-5.0)


def _best_near(cands: pd.DataFrame, x_km: float) -> pd.Series:
    """The candidate the screen found strongest near a feature (fitted or not)."""
    near = cands[(cands["center_km"] - x_km).abs() < 15]
    assert not near.empty, "no candidate near the feature"
    return near.loc[near["screen_snr"].abs().idxmax()]


def test_clean_plume_is_accepted_with_its_emission():
    df = add_gaussian(crafted_orbit(1000, seed=1), 500.0, 15.0, 4.0)
    cands = detect_orbit(df, RECOMMENDED)
    best = _best_near(cands, 500)
    assert best["status"] == "accepted", best["rejected_by"]
    expected_g_s = emission_kg_s(15.0, 5.0, 1000.0, 20.0) * 1e3
    assert abs(best["emission_gCO2_s"] - expected_g_s) < 3 * best["emission_gCO2_s_stderr"]
    accepted = cands[cands["status"].eq("accepted")]
    assert len(accepted) == 1  # one event per plume, no false event on 1,000 km of noise


@pytest.mark.parametrize("preset, reasons", [("chevallier-2020", {"too-narrow"}),
                                             ("recommended", {"too-narrow", "support"})])
def test_narrow_spike_is_rejected(preset, reasons):
    # one frame raised: narrower than the 2.25 km sampling (recommended: also seen by too few frames)
    df = add_gaussian(crafted_orbit(1000, seed=2), 500.0, 6.0, 0.4)
    best = _best_near(detect_orbit(df, DetectionSettings.preset(preset)), 500)
    assert best["status"] == "rejected" and reasons & set(best["rejected_by"].split("+")), best["rejected_by"]


@pytest.mark.parametrize("preset, reason", [("chevallier-2020", "depletion"), ("recommended", "mirror")])
def test_depletion_is_never_accepted(preset, reason):
    """The 2020 rules reject a depletion; the recommended preset fits it upside down as a mirror event (the
    null that sets the month's threshold), with the sign -1 and its fit as strong as the enhancement's would be."""
    df = add_gaussian(crafted_orbit(1000, seed=4), 500.0, -15.0, 4.0)
    best = _best_near(detect_orbit(df, DetectionSettings.preset(preset)), 500)
    assert best["status"] == "rejected" and best["rejected_by"].split("+")[0] == reason, best["rejected_by"]
    if reason == "mirror":
        assert best["sign"] == -1 and best["amplitude_ppm_km"] == pytest.approx(15.0, rel=0.2)


@pytest.mark.parametrize("preset", ["chevallier-2020", "recommended"])
def test_wide_hump_fails_too_wide(preset):
    df = add_gaussian(crafted_orbit(1200, seed=5), 600.0, 200.0, 45.0)
    assert "too-wide" in _best_near(detect_orbit(df, DetectionSettings.preset(preset)), 600)["rejected_by"]


def test_one_sided_data_fails_the_sides_rules():
    # the plume's centre sits at the edge of a cloud gap: data on one side only
    df = add_gaussian(crafted_orbit(1000, seed=6, gaps_km=((500.5, 640),)), 500.0, 20.0, 5.0)
    reasons = _best_near(detect_orbit(df, DetectionSettings.preset("chevallier-2020")), 500)["rejected_by"]
    assert "near-sides" in reasons or "flanks" in reasons


def test_land_water_step_is_not_an_accepted_peak():
    df = add_step(crafted_orbit(1000, seed=7), 500.0, 1.0)
    cands = detect_orbit(df, RECOMMENDED)
    near = cands[(cands["center_km"] - 500).abs() < 60]
    assert not near["status"].eq("accepted").any()
    fitted = near[near["fixed_reason"].eq("") & near["sign"].gt(0)]  # enhancements (mirrors are never accepted)
    assert fitted.empty or fitted["rejected_by"].str.contains("step-like|surface-transition").all()


def test_a_plume_at_a_coast_is_accepted_with_the_coast_modelled():
    """A plume whose window holds a land/water edge (and a bias step there) one width from its centre: the
    recommended preset models the step beside the Gaussian (fit.surface_covariates) and accepts it; the rule that
    rejects any fit near a land/water change (the preset before) loses it."""
    df = add_step(add_gaussian(crafted_orbit(1000, seed=31), 500.0, 20.0, 4.0), 504.0, -0.8)
    best = _best_near(detect_orbit(df, RECOMMENDED), 500)
    assert best["status"] == "accepted", best["rejected_by"]
    assert 0.3 < best["covariate_share"] < 1.0  # the step took part of its significance, not all
    why = explain_rules(best, RECOMMENDED, best["significance_threshold"]).set_index("rule")
    assert why.loc["significance", "verdict"] == "pass" and "share left" in why.loc["significance", "value"]
    assert why.loc["surface-transition", "verdict"] == "off"
    old = RECOMMENDED.replace({"fit.surface_covariates": False, "rules.surface_transition.enabled": True})
    assert "surface-transition" in _best_near(detect_orbit(df, old), 500)["rejected_by"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_covariate_share_keeps_a_plume_and_drops_a_step_or_a_pressure_artefact(seed):
    from core.fitting import unit_gaussian
    from core.rules import covariate_share

    rng = np.random.default_rng(seed)
    d = np.repeat(np.arange(-30.0, 30.0, 2.25), 8)
    w = np.full(d.size, 1 / 0.5 ** 2)
    noise = rng.normal(0.0, 0.5, d.size)
    land = np.zeros(d.size, np.int8)
    water = (d > 4).astype(np.int8)  # a coast one width from the centre
    plume = 15 * unit_gaussian(d, 4.0)
    # a plume at the coast keeps half or more of its significance; a bare step fitted as a bump keeps little
    assert covariate_share(d, plume - 0.8 * water + noise, w, 4.0, water) > 0.45
    assert covariate_share(d, -0.8 * water + noise, w, 3.0, water) < 0.3
    # a bump that follows psurf - psurf_apriori is the pressure's, not a plume; pure pressure noise does not enter
    dp = rng.normal(0.0, 1.0, d.size)
    bump_dp = dp + 3 * np.exp(-0.5 * (d / 3) ** 2)
    assert covariate_share(d, 0.3 * bump_dp + noise, w, 3.0, land, bump_dp) < 0.3
    assert covariate_share(d, plume + noise, w, 4.0, land, dp) == 1.0
    assert covariate_share(d, plume + noise, w, 4.0, land) == 1.0  # one surface kind: nothing to model


def test_step_rule_alone_rejects_a_step_without_surface_flag():
    df = add_step(crafted_orbit(1000, seed=8), 500.0, 1.2, water_after=False)
    settings = RECOMMENDED.replace({"rules.surface_transition.enabled": False})
    cands = detect_orbit(df, settings)
    near = cands[(cands["center_km"] - 500).abs() < 60]
    assert not near["status"].eq("accepted").any()


def test_overlapping_windows_make_one_event():
    df = add_gaussian(crafted_orbit(800, seed=9), 400.0, 15.0, 4.0)
    stride = DetectionSettings.preset("chevallier-2020").replace({"screen.stride": 15})
    cands = detect_orbit(df, stride)
    near = cands[cands["fixed_reason"].eq("") & ((cands["center_km"] - 400).abs() < 4)]
    assert len(near) >= 3  # several windows see the plume
    events = near[near["is_event"]]
    assert len(events) == 1 and events["n_windows"].iloc[0] == len(near)
    assert near[~near["is_event"]]["rejected_by"].str.contains("duplicate").all()


def test_a_candidate_starting_inside_a_stronger_fit_is_its_duplicate_without_a_fit():
    """Candidates at several widths on one plume: the strongest is fitted, the others start within its fitted
    width and join its event unfitted; a candidate of the opposite sign there is not swallowed."""
    df = add_gaussian(crafted_orbit(800, seed=9), 400.0, 15.0, 4.0)
    od = prepare_orbit(df)
    cands = find_candidates(od, RECOMMENDED)
    strongest = cands["screen_snr"].abs().idxmax()
    extra = cands.loc[[strongest] * 3].reset_index(drop=True).assign(center_km=[399.0, 401.5, 400.5],
                                                                      screen_sigma=[2.0, 6.0, 3.0])
    extra.loc[2, ["screen_snr", "screen_amplitude"]] = [-4.0, -5.0]  # a depletion there: fitted on its own
    cands = pd.concat([cands, extra], ignore_index=True)
    fitted = fit_candidates(od, cands, RECOMMENDED.replace({"rules.depletion.enabled": False}))
    skipped = fitted.iloc[len(cands) - 3:len(cands) - 1]
    assert skipped["fixed_reason"].eq("duplicate").all() and skipped["nfev"].eq(0).all()
    assert (skipped["duplicate_of"] == strongest).all()
    assert fitted.iloc[-1]["duplicate_of"] == -1 and fitted.iloc[-1]["nfev"] > 0  # fitted: the other sign
    out = judge(od, fitted, RECOMMENDED.replace({"rules.depletion.enabled": False}))
    event = out.loc[strongest]
    assert event["is_event"] and event["status"] == "accepted"
    assert (out.iloc[len(cands) - 3:len(cands) - 1]["event_id"] == strongest).all()
    assert event["n_windows"] == int((out["event_id"] == strongest).sum()) >= 3
    assert out.iloc[len(cands) - 3:len(cands) - 1]["rejected_by"].eq("duplicate").all()
    # the original method fits every candidate
    strided = fit_candidates(od, cands.assign(screen_snr=np.nan), RECOMMENDED.replace({"screen.stride": 15}))
    assert not strided["fixed_reason"].eq("duplicate").any()


@pytest.mark.parametrize("kind", ["nan", "constant"])
def test_nan_or_constant_window_is_a_rejected_candidate_not_an_exception(kind):
    df = crafted_orbit(300, noise_ppm=0)
    x, unc = df["x_true_km"].to_numpy(), df["xco2_uncertainty"].to_numpy()
    y = np.full(x.size, np.nan) if kind == "nan" else np.full(x.size, 410.0)
    fit = fit_window(x, y, unc, {"amplitude": 1, "sigma": 3, "center": 150, "slope": 0, "intercept": 410},
                     RECOMMENDED)
    assert not fit.ok and fit.message
    df["xco2"] = np.float32(np.nan) if kind == "nan" else np.float32(410.0)
    od = prepare_orbit(df)
    cands = pd.DataFrame({"center_km": [150.0], "screen_snr": [9.0], "screen_amplitude": [1.0],
                          "screen_sigma": [3.0], "screen_slope": [0.0], "screen_intercept": [410.0]})
    fitted = fit_candidates(od, cands, RECOMMENDED)
    assert fitted["fixed_reason"].tolist() == ["fit-failed"]
    assert isinstance(detect_orbit(df, RECOMMENDED), pd.DataFrame)


def test_rules_only_change_needs_no_refit():
    df = add_gaussian(crafted_orbit(1000, seed=10), 500.0, 9.0, 4.0)
    od = prepare_orbit(df)
    fitted = fit_candidates(od, find_candidates(od, RECOMMENDED), RECOMMENDED)
    strict = judge(od, fitted, RECOMMENDED.replace({"rules.significance.min_snr": 50.0}), 50.0)
    loose = judge(od, fitted, RECOMMENDED.replace({"rules.significance.min_snr": 0.0}), 0.0)
    assert strict["status"].eq("accepted").sum() == 0
    assert loose["status"].eq("accepted").sum() >= 1


def test_missing_footprints_do_not_inflate_the_distance():
    # the cache holds good soundings only: frames miss footprints at random, shifting their centres sideways
    df = crafted_orbit(1500, noise_ppm=0)
    keep = np.random.default_rng(0).random(len(df)) > 0.45
    df = df[keep]
    track = along_track(df["sounding_id"], df["latitude"], df["longitude"])
    error_km = track.x_km - df["x_true_km"].to_numpy()
    assert np.abs(error_km).max() < 1.0  # summing raw centre-to-centre steps gave ~ +15 % (~200 km here)
    assert np.median(np.abs(error_km)) < 0.3


def test_candidate_at_the_end_of_an_orbit_is_located():
    # a screen bin past the last sounding: the meteorology span must not run past the end of the orbit
    df = add_gaussian(crafted_orbit(600, seed=11), 598.0, 15.0, 3.0)
    od = prepare_orbit(df)
    end = float(od.x_km[-1]) + 10.0  # beyond the last sounding by more than the +-3 km meteorology span
    cands = pd.DataFrame({"center_km": [end], "screen_snr": [9.0], "screen_amplitude": [5.0],
                          "screen_sigma": [3.0], "screen_slope": [0.0], "screen_intercept": [410.0]})
    judged = judge(od, fit_candidates(od, cands, RECOMMENDED), RECOMMENDED)
    assert judged["wind_u_ms"].notna().all()
    assert judged["sounding_id"].iloc[0] // 10 == od.soundings["sounding_id"].iloc[-1] // 10  # the last frame


def test_wind_aligned_coordinate_sharpens_an_oblique_plume():
    # wind from the south-west at 45 deg to a northward track: footprint k (c_k km east of the track) meets the
    # plume axis at x = x0 + c_k, so in track coordinates the 8 footprints smear the plume over ~9 km
    df = crafted_orbit(1000, seed=12, wind_u_ms=3.5, wind_v_ms=3.5)
    c_km = (df["footprint"].to_numpy() - 4.5) * 1.29
    d = df["x_true_km"].to_numpy() - c_km - 500.0
    df["xco2"] = (df["xco2"] + 8.0 / (1.5 * np.sqrt(2 * np.pi)) * np.exp(-0.5 * (d / 1.5) ** 2)).astype(np.float32)
    aligned = RECOMMENDED
    along = RECOMMENDED.replace({"fit.wind_aligned": False})
    best_aligned = _best_near(detect_orbit(df, aligned), 500)
    best_along = _best_near(detect_orbit(df, along), 500)
    assert abs(best_aligned["sigma_km"] - 1.5) < 0.5 and best_along["sigma_km"] > 2.0
    assert best_aligned["snr"] > best_along["snr"]
    assert abs(best_aligned["amplitude_ppm_km"] - 8.0) < 3 * best_aligned["amplitude_stderr"]


def test_every_width_keeps_a_narrow_plume_beside_a_stronger_one():
    # a 60 ppm km plume (sigma 6 km) and a narrow 10 ppm km one 20 km away: the best width's significance rises
    # monotonically through the narrow one, so only the per-width extrema give it a candidate of its own
    df = add_gaussian(add_gaussian(crafted_orbit(1000, seed=3), 500.0, 60.0, 6.0), 520.0, 10.0, 1.5)
    near = {}
    for every_width in (False, True):
        cands = detect_orbit(df, RECOMMENDED.replace({"screen.every_width": every_width}))
        fitted = cands[cands["fixed_reason"].eq("") & cands["is_event"]]
        near[every_width] = fitted[(fitted["center_km"] - 520.0).abs() < 3]
        strong = fitted[(fitted["center_km"] - 500.0).abs() < 3]
        assert strong["status"].eq("accepted").any()  # the strong plume either way
    assert near[False].empty
    assert len(near[True]) == 1 and abs(near[True]["sigma_km"].iloc[0] - 1.5) < 0.6
    assert near[True]["snr"].iloc[0] > 3  # judged by the rules on its own fit (reasons, if rejected, listed)


def test_width_extrema_include_the_best_width_extrema_and_respect_the_width_cap():
    from core.screen import best_width, local_extrema, screen_widths, width_extrema

    df = add_gaussian(add_gaussian(crafted_orbit(1000, seed=3), 500.0, 60.0, 6.0), 520.0, 10.0, 1.5)
    od = prepare_orbit(df)
    x, y, u = od.x_km, od.soundings["xco2"].to_numpy(float), od.soundings["xco2_uncertainty"].to_numpy(float)
    scr = best_width(*screen_widths(x, y, u, sigma_min_km=0.6, sigma_max_km=38.0))
    best = set(local_extrema(scr, 3.0, 2.0))
    bins, widths = width_extrema(scr, 3.0, 2.0, max_sigma_km=4.0)
    extra = [(b, k) for b, k in zip(bins, widths) if b not in best]
    assert best <= set(bins) and extra, "the best width's extrema, and more"
    assert all(scr.widths.sigma_km[k] <= 4.0 for _, k in extra)
    strength = np.abs(scr.widths.snr[widths, bins])
    assert (np.diff(strength) <= 1e-12).all()  # strongest first
    assert np.min(np.abs(scr.x_km[bins] - 520.0)) < 3.0


def test_a_weak_plume_beside_a_strong_one_is_fitted_with_the_strong_one_modelled():
    """``fit.neighbour_min_snr``: the strong plume's fitted Gaussian is part of the weak candidate's model, so its
    4 ppm peak 25 km away no longer inflates the weak fit's chi-square (and standard error); the strong plume's
    own fit models no neighbour (it was fitted first)."""
    df = add_gaussian(add_gaussian(crafted_orbit(1000, seed=4), 500.0, 60.0, 6.0), 525.0, 8.0, 2.0)
    od = prepare_orbit(df)
    uncalibrated = RECOMMENDED.replace({"noise.calibrate": False})  # the stated noise: the neighbour's effect alone
    cands = find_candidates(od, uncalibrated)
    fits = {}
    for snr in (0.0, 4.0):
        settings = uncalibrated.replace({"fit.neighbour_min_snr": snr})
        fitted = fit_candidates(od, cands, settings)
        fitted = fitted[fitted["fixed_reason"].eq("")]
        weak = fitted[(fitted["center_km"] - 525.0).abs() < 3]
        strong = fitted[(fitted["center_km"] - 500.0).abs() < 3]
        assert len(weak) == 1 and len(strong) == 1
        assert strong["n_neighbours"].iloc[0] == 0
        fits[snr] = weak.iloc[0]
    assert fits[0.0]["n_neighbours"] == 0 and fits[4.0]["n_neighbours"] == 1
    assert fits[4.0]["redchi"] < 0.8 * fits[0.0]["redchi"]
    assert fits[4.0]["snr"] > fits[0.0]["snr"]
    assert abs(fits[4.0]["amplitude_ppm_km"] - 8.0) < 3 * fits[4.0]["amplitude_stderr"]


def test_a_candidate_below_the_screen_threshold_is_fitted_only_beside_a_modelled_neighbour():
    """Screen maxima between ``screen.min_significance_beside`` and ``screen.min_significance`` (here given 2.8):
    beside a modelled neighbour the screen's statistic is taken again with the neighbour subtracted, and the
    candidate is fitted if it then reaches the screen threshold; alone, or on noise, it is not fitted."""
    df = add_gaussian(crafted_orbit(1000, seed=4), 500.0, 60.0, 6.0)
    df = add_gaussian(add_gaussian(df, 530.0, 8.0, 2.0), 850.0, 8.0, 2.0)
    od = prepare_orbit(df)
    settings = RECOMMENDED.replace({"screen.min_significance": 3.3, "screen.min_significance_beside": 2.5})
    cands = find_candidates(od, settings)
    cands = cands[(cands["center_km"] - 500.0).abs() < 3]  # the strong plume's candidate only
    weak = cands.iloc[[0, 0, 0]].assign(center_km=[530.0, 850.0, 565.0], screen_snr=2.8, screen_amplitude=3.0,
                                        screen_sigma=2.0)
    cands = pd.concat([cands, weak], ignore_index=True)
    assert settings["screen.min_significance_beside"] < 2.8 < settings["screen.min_significance"]
    fitted = fit_candidates(od, cands, settings)
    beside, alone, noise = fitted.iloc[-3], fitted.iloc[-2], fitted.iloc[-1]
    assert beside["fixed_reason"] == "" and beside["nfev"] > 0 and beside["n_neighbours"] == 1
    assert alone["fixed_reason"] == "screen" and alone["nfev"] == 0 and "no neighbour" in alone["fit_message"]
    assert noise["fixed_reason"] == "screen" and noise["nfev"] == 0 and "modelled" in noise["fit_message"]
    off = fit_candidates(od, cands, settings.replace({"fit.neighbour_min_snr": 0.0}))
    assert off.iloc[-3]["fixed_reason"] == "screen"  # no neighbour modelled: the screen threshold holds


def test_window_snr_is_the_screen_statistic():
    """The one-window statistic used beside neighbours equals the vectorised screen's at the same centre and width
    (soundings on the bin grid, so that binning moves none of them)."""
    from core.screen import best_width, screen_widths, window_snr

    df = add_gaussian(crafted_orbit(400, seed=5), 200.0, 6.0, 2.0)
    x = np.floor(df["x_true_km"].to_numpy() * 2) / 2  # on the 0.5 km grid the screen bins on
    y, u = df["xco2"].to_numpy(float), df["xco2_uncertainty"].to_numpy(float)
    scr = best_width(*screen_widths(x, y, u, window_km=100.0, sigma_min_km=1.0, sigma_max_km=8.0, n_sigma=4))
    k, b = 1, int(np.argmin(np.abs(scr.x_km - 200.25)))
    sigma = scr.widths.sigma_km[k]
    d = x - (scr.x_km[b] - 0.25)  # the screen places a bin's soundings at one point: distances are whole bins
    inside = np.abs(d) <= 50.0 + 1e-9
    expected = scr.widths.snr[k, b]
    assert abs(expected) > 3
    assert window_snr(d[inside], y[inside], u[inside], sigma) == pytest.approx(expected, rel=1e-6)


def _two_plumes_and_a_burst(seed=11):
    """Noisy soundings (0.5 ppm, 3.5 per km) around 0: two 12 ppm km plumes (sigma 2 km) 7 km apart, and the same
    soundings with a 2 ppm plateau with sharp edges 14 km wide (a burst of cloud-contaminated frames) instead."""
    rng = np.random.default_rng(seed)
    d = np.sort(rng.uniform(-40, 40, 280))
    w = np.full(d.size, 4.0)
    noise = rng.normal(0, 0.5, d.size)
    gauss = lambda c: 12.0 / (2.0 * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((d - c) / 2.0) ** 2)
    return d, w, noise + gauss(-3.5) + gauss(3.5), noise + 2.0 * (np.abs(d) < 7.0)


def test_pair_chi2_is_the_best_two_gaussian_fit_on_its_grid():
    from core.rules import best_pair_chi2

    d, w, pair, _ = _two_plumes_and_a_burst()
    grid_best = np.inf
    for c1 in np.linspace(-10, 10, 13):
        for c2 in np.linspace(-10, 10, 13):
            for s1 in (1.0, 2.0, 4.0):
                for s2 in (1.0, 2.0, 4.0):
                    if c2 <= c1 or abs(c1 - c2) < max(s1, s2):
                        continue
                    g = [np.exp(-0.5 * ((d - c) / s) ** 2) / (s * np.sqrt(2 * np.pi)) for c, s in ((c1, s1), (c2, s2))]
                    basis = np.stack([np.ones_like(d), d, *g], axis=1) * np.sqrt(w)[:, None]
                    p, *_ = np.linalg.lstsq(basis, pair * np.sqrt(w), rcond=None)
                    grid_best = min(grid_best, float(((pair * np.sqrt(w) - basis @ p) ** 2).sum()))
    assert best_pair_chi2(d, pair, w, 4.0) == pytest.approx(grid_best, rel=1e-9)


def test_two_gaussians_beat_a_plateau_on_a_blend_but_not_on_a_burst():
    from core.rules import best_pair_chi2, best_plateau_chi2

    d, w, pair, burst = _two_plumes_and_a_burst()
    advantage = {name: best_plateau_chi2(d, y, w, 12.0, 5.0) - best_pair_chi2(d, y, w, 4.0)
                 for name, y in (("pair", pair), ("burst", burst))}
    threshold = RECOMMENDED["rules.box_like.min_pair_advantage"]
    assert advantage["pair"] > threshold and advantage["burst"] < 0, advantage


def test_box_like_rule_spares_a_blend_of_plumes_only():
    from core.rules import rule_failures

    # the last two: narrow (sigma 2.5 km) with no footprint shift (burst-like), or with one (a crossing)
    stats = pd.DataFrame({"delta_chi2_box": [-30.0, -30.0, -30.0, 5.0, -30.0, -30.0],
                          "delta_chi2_pair": [25.0, 3.0, np.nan, np.nan, 25.0, 25.0],
                          "sigma_km": [4.0, 4.0, 4.0, 4.0, 2.5, 2.5], "shift_gain": [np.nan] * 4 + [0.0, 9.0],
                          "amplitude_ppm_km": 10.0})
    only_box = RECOMMENDED.replace({f"rules.{r}.enabled": False for r in (
        "near_sides", "flanks", "significance", "step_like", "surface_transition", "support", "too_narrow",
        "too_wide", "depletion", "min_orbit_soundings", "frame_aligned")})
    assert rule_failures(stats, only_box)["box-like"].tolist() == [False, True, True, False, True, False]
    plateau_alone = only_box.replace({"rules.box_like.spare_blends": False})
    assert rule_failures(stats, plateau_alone)["box-like"].tolist() == [True, True, True, False, True, True]


def test_a_three_frame_burst_is_not_spared_as_a_blend_of_two_plumes():
    """Three frames of every footprint raised by ~2.8 ppm (x 0.7-1.3 a sounding): a plateau beats the Gaussian,
    two Gaussians beat the plateau, and the bump is burst-like (sigma ~2.5 km, no footprint shift). Spared as a
    blend it would pass; burst-like, it is not spared."""
    df = crafted_orbit(1000, seed=203)
    rng = np.random.default_rng(3)
    burst = (df["x_true_km"] >= 499) & (df["x_true_km"] < 505.5)
    df.loc[burst, "xco2"] = (df.loc[burst, "xco2"] + 2.8 * rng.uniform(0.7, 1.3, burst.sum())).astype(np.float32)
    for settings, rejected in ((RECOMMENDED, True), (RECOMMENDED.replace({"rules.frame_aligned.burst_sigma_km": 0.0}),
                                                     False)):
        c = detect_orbit(df, settings, calibrate=False)
        near = c[((c["center_km"] - 502).abs() < 10) & c["fixed_reason"].eq("") & c["sign"].eq(1)]
        best = near.loc[near["significance"].idxmax()]
        assert best["delta_chi2_box"] < -10 and best["delta_chi2_pair"] > 10
        assert ("box-like" in best["rejected_by"].split("+")) == rejected, best["rejected_by"]


def test_a_burst_of_contaminated_frames_is_not_an_accepted_peak():
    df = crafted_orbit(1000, seed=12)
    burst = (df["x_true_km"] >= 500) & (df["x_true_km"] < 514)  # six frames raised by 2 ppm, sharp edges
    df.loc[burst, "xco2"] = (df.loc[burst, "xco2"] + 2.0).astype(np.float32)
    cands = detect_orbit(df, RECOMMENDED)
    near = cands[(cands["center_km"] - 507).abs() < 15]
    assert not near["status"].eq("accepted").any()
    best = _best_near(cands, 507)
    assert "box-like" in best["rejected_by"], best["rejected_by"]


def _oblique_plume(df: pd.DataFrame, centre_km: float, amplitude_ppm_km: float, sigma_km: float) -> pd.DataFrame:
    """A plume crossed obliquely: footprint k meets its axis where its wind-aligned position ``x + cross_k * ratio``
    is the centre (the crafted pass runs north, footprints step east, so ``cross`` = (footprint - 4.5) x 1.29 km)."""
    from core.track import shift_ratio

    ratio, _ = shift_ratio(0.0, float(df["windspeed_u"].iloc[0]), float(df["windspeed_v"].iloc[0]))
    out = df.copy()
    d = out["x_true_km"] + (out["footprint"] - 4.5) * 1.29 * float(ratio) - centre_km
    out["xco2"] = (out["xco2"] + amplitude_ppm_km / (sigma_km * np.sqrt(2 * np.pi)) * np.exp(-0.5 * (d / sigma_km) ** 2)
                   ).astype(np.float32)
    return out


def _burst(df: pd.DataFrame, at_km: float, n_frames: int, ppm: float, footprints=range(1, 9)) -> pd.DataFrame:
    out = df.copy()
    hit = (out["x_true_km"] >= at_km) & (out["x_true_km"] < at_km + n_frames * 2.25) & out["footprint"].isin(list(footprints))
    out.loc[hit, "xco2"] = (out.loc[hit, "xco2"] + ppm).astype(np.float32)
    return out


@pytest.mark.parametrize("wind", [(8.0, 8.0), (8.0, -6.0)])  # 45 and 37 deg off the northward track, strong
def test_a_burst_of_frames_and_an_oblique_plume_are_told_apart_by_their_geometry(wind):
    """Two frames raised on every footprint, and a plume of the same size crossed obliquely: the plume's footprints
    meet it at shifted positions, the burst's at the same frames. The burst fails frame-aligned, the plume passes."""
    base = crafted_orbit(1000, seed=21, wind_u_ms=wind[0], wind_v_ms=wind[1])
    df = _oblique_plume(_burst(base, 300.0, 3, 3.0), 700.0, 12.0, 1.2)
    cands = detect_orbit(df, RECOMMENDED)
    burst, plume = _best_near(cands, 303), _best_near(cands, 700)
    assert burst["geometry_tells"] and burst["delta_chi2_frame"] > RECOMMENDED["rules.frame_aligned.max_frame_advantage"]
    assert burst["status"] == "rejected" and "frame-aligned" in burst["rejected_by"], burst["rejected_by"]
    assert plume["geometry_tells"] and plume["delta_chi2_frame"] < 0
    assert "frame-aligned" not in plume["rejected_by"], plume["rejected_by"]


def test_a_burst_on_part_of_the_footprints_fails_their_consistency():
    df = _burst(crafted_orbit(1000, seed=22, wind_u_ms=5.0, wind_v_ms=0.0), 500.0, 3, 4.0, footprints=range(1, 5))
    burst = _best_near(detect_orbit(df, RECOMMENDED), 503)
    assert burst["footprint_chi2"] > RECOMMENDED["rules.frame_aligned.max_footprint_chi2"]
    assert burst["status"] == "rejected" and "frame-aligned" in burst["rejected_by"], burst["rejected_by"]


def test_a_weak_burst_on_part_of_the_swath_beats_every_plume_crossing():
    """Two frames raised by 1.8 ppm on footprints 3-6: the footprints' disagreement (~22) stays under its limit (30),
    but the burst's own model (frame-aligned, one amplitude per footprint) beats the best common-amplitude fit at
    any footprint shift by more than rules.frame_aligned.max_burst_advantage."""
    df = _burst(crafted_orbit(1000, seed=31, wind_u_ms=5.0, wind_v_ms=0.0), 500.0, 2, 1.8, footprints=range(3, 7))
    burst = _best_near(detect_orbit(df, RECOMMENDED), 502)
    assert burst["footprint_chi2"] < RECOMMENDED["rules.frame_aligned.max_footprint_chi2"]
    assert burst["burst_advantage"] > RECOMMENDED["rules.frame_aligned.max_burst_advantage"]
    assert burst["status"] == "rejected" and burst["rejected_by"] == "frame-aligned", burst["rejected_by"]
    looser = RECOMMENDED.replace({"rules.frame_aligned.max_burst_advantage": 30.0})
    assert _best_near(detect_orbit(df, looser), 502)["status"] == "accepted"


def test_a_plume_shows_its_crossing_even_where_the_files_wind_is_wrong():
    """A plume crossed at 45 deg while the file's wind points 90 deg away: the shift search within the wind's
    uncertainty misses its crossing, the free search over every crossing finds it (large shift gain, the burst's
    model far worse): not burst-like."""
    df = _oblique_plume(crafted_orbit(1000, seed=24, wind_u_ms=6.0, wind_v_ms=6.0), 700.0, 12.0, 1.2)
    df["windspeed_v"] = np.float32(-6.0)
    plume = _best_near(detect_orbit(df, RECOMMENDED), 700)
    assert plume["shift_gain"] > 20 and plume["burst_advantage"] < 0 and not plume["burst_like"]


def test_burst_like_events_are_flagged_counted_and_rejected_only_when_asked():
    """Wind across the track: a full-swath burst of two frames and a narrow plume both fit best unshifted. Neither
    can be told from the other by one pass: both are accepted and flagged burst_like, the month's summary counts
    them and bounds the false rate with them; rules.frame_aligned.reject_burst_like rejects them."""
    from core.false_alarms import month_summary

    df = _oblique_plume(_burst(crafted_orbit(1000, seed=23, wind_u_ms=6.0, wind_v_ms=0.0), 300.0, 2, 3.5),
                        700.0, 12.0, 1.2)
    cands = detect_orbit(df, RECOMMENDED)
    burst, plume = _best_near(cands, 302), _best_near(cands, 700)
    for row in (burst, plume):
        assert row["status"] == "accepted" and row["burst_like"] and row["shift_gain"] < 2, row
    summary = month_summary(cands)
    assert summary.n_burst_like == 2 and summary.n_accepted >= 2
    assert summary.burst_like_per_1000km == pytest.approx(summary.false_per_1000km + 2000 / summary.track_km)
    assert "2 of the" in summary.line() and "burst-like" in summary.line()
    strict = detect_orbit(df, RECOMMENDED.replace({"rules.frame_aligned.reject_burst_like": True}))
    for x in (302, 700):
        row = _best_near(strict, x)
        assert row["status"] == "rejected" and "frame-aligned" in row["rejected_by"], row["rejected_by"]
    narrow_only = RECOMMENDED.replace({"rules.frame_aligned.burst_sigma_km": 1.0})  # wider than that: not burst-like
    assert not _best_near(detect_orbit(df, narrow_only), 302)["burst_like"]


def test_with_the_wind_across_the_track_geometry_cannot_tell_and_says_so():
    """Wind perpendicular to the track: a plume's footprints are not shifted, so a full-swath burst and a plume look
    alike; the row says geometry cannot tell (``geometry_tells`` False) instead of guessing."""
    df = _burst(crafted_orbit(1000, seed=23, wind_u_ms=6.0, wind_v_ms=0.0), 500.0, 2, 3.5)
    burst = _best_near(detect_orbit(df, RECOMMENDED), 502)
    assert not burst["geometry_tells"]
    assert "frame-aligned" not in burst["rejected_by"] or burst["footprint_chi2"] > 30
