"""The noise estimated from the data, and the false-alarm rate estimated from the mirrored depletions."""
import numpy as np
import pandas as pd
import pytest

from core.batch import detect_soundings
from core.detect import orbit_noise, prepare_orbit
from core.false_alarms import MirrorNull, month_summary, poisson_interval
from core.noise import robust_sd, shrunk_spread, variogram_noise
from core.settings import DetectionSettings
from orbit_factory import crafted_orbit

FRAME_KM = 2.25


def _frames(n_frames: int):
    x = np.repeat(np.arange(n_frames) * FRAME_KM, 8)
    return x, np.tile(np.arange(1, 9), n_frames)


def _ar1(rng, n: int, length_km: float, sd_ppm: float) -> np.ndarray:
    """AR(1) along frames: correlation exp(-lag / length_km), standard deviation sd_ppm."""
    rho = np.exp(-FRAME_KM / length_km)
    shocks = rng.normal(0.0, sd_ppm * np.sqrt(1 - rho ** 2), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sd_ppm)
    for i in range(1, n):
        out[i] = rho * out[i - 1] + shocks[i]
    return out


@pytest.mark.parametrize("scale", [1.0, 1.6])
def test_white_noise_scale_is_recovered(scale):
    rng = np.random.default_rng(3)
    x, footprint = _frames(3000)
    stated = rng.uniform(0.4, 0.7, x.size)
    y = 410 + rng.normal(0.0, 1.0, x.size) * stated * scale + np.tile(rng.normal(0, 0.2, 8), 3000)
    keep = rng.random(x.size) > 0.3  # missing soundings, as cloud gaps leave them
    est = variogram_noise(x[keep], y[keep], stated[keep], footprint[keep])
    assert est.noise_scale == pytest.approx(scale, rel=0.10)
    assert est.correlated_ppm < 0.15  # no correlated part to speak of


@pytest.mark.parametrize("length_km, sd_ppm", [(15.0, 0.4), (40.0, 0.3)])
def test_ar1_amplitude_and_white_part_are_recovered(length_km, sd_ppm):
    rng = np.random.default_rng(5)
    n_frames = 4000
    x, footprint = _frames(n_frames)
    y = 410 + rng.normal(0.0, 0.5, x.size) + np.repeat(_ar1(rng, n_frames, length_km, sd_ppm), 8)
    est = variogram_noise(x, y, np.full(x.size, 0.5), footprint)
    assert est.correlated_ppm == pytest.approx(sd_ppm, rel=0.10)
    assert est.noise_scale == pytest.approx(1.0, rel=0.10)
    assert 0.5 * length_km < est.correlation_km < 2 * length_km


def test_screen_spread_is_one_on_stated_noise_and_grows_with_correlated_noise():
    od = prepare_orbit(crafted_orbit(3000, 0.5, seed=1))
    settings = DetectionSettings()
    quiet = orbit_noise(od, settings)
    assert quiet.raw_spread[0] == pytest.approx(1.0, abs=0.1)  # the narrowest width: many independent values
    df = crafted_orbit(3000, 0.5, seed=1)
    frame = np.arange(len(df)) // 8
    df["xco2"] = (df["xco2"] + _ar1(np.random.default_rng(2), frame.max() + 1, 20.0, 0.4)[frame]).astype(np.float32)
    noisy = orbit_noise(prepare_orbit(df), settings)
    assert np.all(noisy.raw_spread[:8] > 1.3 * quiet.raw_spread[:8])  # widths 1-7 km: the plume scales
    assert noisy.variogram.correlated_ppm == pytest.approx(0.4, rel=0.25)


def test_short_orbit_leans_on_the_conservative_prior_and_says_so():
    settings = DetectionSettings()
    short = orbit_noise(prepare_orbit(crafted_orbit(60, 0.5, seed=1)), settings)
    assert short.fallback
    assert short.spread[0] == pytest.approx(settings["noise.prior_spread"], rel=0.25)
    long = orbit_noise(prepare_orbit(crafted_orbit(3000, 0.5, seed=1)), settings)
    assert not long.fallback and long.spread[0] < 1.2
    assert np.all(shrunk_spread(np.array([0.8, np.nan]), np.array([1e6, 0.0]), 1.5, 20) == [1.0, 1.5])


def test_robust_sd_ignores_a_few_outliers():
    rng = np.random.default_rng(0)
    values = np.r_[rng.normal(0, 2.0, 2000), np.full(40, 50.0)]
    assert robust_sd(values) == pytest.approx(2.0, rel=0.08)


def _noise_month(n_orbits: int, length_km: float, seed: int) -> pd.DataFrame:
    """Plume-free orbits: stated 0.5 ppm, true white 0.6 ppm plus AR(1) 0.3 ppm over 15 km (the files understate)."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(n_orbits):
        df = crafted_orbit(length_km, 0.0, seed=seed + k, orbit=30000 + k, lat0=-30 + 2 * k)
        frame = np.arange(len(df)) // 8
        df["xco2"] = (410 + rng.normal(0, 0.6, len(df))
                      + _ar1(rng, frame.max() + 1, 15.0, 0.3)[frame]).astype(np.float32)
        parts.append(df.drop(columns="x_true_km"))
    return pd.concat(parts, ignore_index=True)


def test_mirror_estimate_agrees_with_the_false_events_counted_on_a_pure_noise_month():
    """No plume anywhere: every accepted event is false. The month's estimate, from the mirrored depletions,
    must agree with the count (its 90 % interval holds it, or within a factor 1.5)."""
    settings = DetectionSettings().replace({"detection.false_alarms_per_1000km": 1.0, "rules.significance.min_snr": 1.0,
                                            "screen.min_significance": 2.0, "screen.min_significance_beside": 2.0})
    candidates = detect_soundings(_noise_month(16, 1500.0, seed=11), settings, attribute_events=False)
    summary = month_summary(candidates)
    assert summary.method.split("+")[0] in ("mirror", "mirror-tail")  # (+control: part of the track is far)
    accepted = int((candidates["is_event"] & candidates["status"].eq("accepted")).sum())
    counted = 1000 * accepted / summary.track_km
    lo, hi = summary.interval_per_1000km
    assert accepted > 5  # the threshold is set for ~24 false events: the test has something to count
    assert lo <= counted <= hi or 1 / 1.5 <= counted / summary.false_per_1000km <= 1.5, (counted, summary.line())
    assert candidates.loc[candidates["sign"] < 0, "status"].eq("rejected").all()


def test_a_one_orbit_month_takes_the_stated_fallback():
    settings = DetectionSettings()
    candidates = detect_soundings(_noise_month(1, 300.0, seed=4), settings, attribute_events=False)
    summary = month_summary(candidates)
    assert summary.method == "fallback"
    assert summary.threshold == settings["detection.fallback_significance"]
    assert candidates["threshold_method"].eq("fallback").all()
    accepted = candidates[candidates["status"].eq("accepted")]
    assert (accepted["significance"] >= summary.threshold).all()


def test_mirror_null_counts_then_extrapolates():
    null = MirrorNull(np.linspace(6.0, 2.0, 41), min_events=8)  # 41 mirror events, 0.1 apart
    assert null.threshold_for(20.0) == (pytest.approx(4.05), "mirror")  # 20 above 4.05
    t, method = null.threshold_for(2.0)
    assert method == "mirror-tail" and t > 6.0  # fewer expected than counted anywhere: beyond the data
    assert null.expected(t) == pytest.approx(2.0)
    lo, hi = null.interval(t)
    assert lo < 2.0 < hi
    assert poisson_interval(0)[0] == 0 and poisson_interval(10) == pytest.approx((5.43, 16.96), abs=0.01)


@pytest.mark.parametrize("value", [0, -0.5])
def test_an_impossible_false_rate_is_refused_by_name(value):
    with pytest.raises(ValueError, match="detection.false_alarms_per_1000km"):
        DetectionSettings({"detection.false_alarms_per_1000km": value})


def _coasts(df: pd.DataFrame, stretches_km, offset_ppm: float) -> pd.DataFrame:
    """Water stretches ``[(start, end), ...]`` along the crafted track, their XCO2 raised by ``offset_ppm``."""
    out = df.copy()
    for a, b in stretches_km:
        wet = (out["x_true_km"] >= a) & (out["x_true_km"] < b)
        out.loc[wet, "land_water_indicator"] = np.int8(1)
        out.loc[wet, "xco2"] = (out.loc[wet, "xco2"] + offset_ppm).astype(np.float32)
    return out


def test_surface_offsets_recover_each_stretch_and_leave_a_coastal_plume():
    from core.noise import surface_offsets_ppm
    from orbit_factory import add_gaussian

    df = _coasts(crafted_orbit(1000, seed=41), [(200, 260), (600, 900)], 0.8)
    x = df["x_true_km"].to_numpy()
    offset = surface_offsets_ppm(x, df["xco2"].to_numpy(float), df["land_water_indicator"].to_numpy())
    wet = df["land_water_indicator"].to_numpy() == 1
    assert np.all(offset[~wet] == 0)
    assert np.abs(offset[wet] - 0.8).max() < 0.1
    # a 2 ppm plume one width inside a coast barely moves the stretch's offset (medians over 50 km)
    plume = add_gaussian(df, 203.0, 2.0 * 3.0 * np.sqrt(2 * np.pi), 3.0)
    moved = surface_offsets_ppm(x, plume["xco2"].to_numpy(float), plume["land_water_indicator"].to_numpy())
    assert np.abs(moved[wet] - offset[wet]).max() < 0.15
    # nothing to compare: no water, or water everywhere
    land = crafted_orbit(300, seed=42)
    assert not surface_offsets_ppm(land["x_true_km"].to_numpy(), land["xco2"].to_numpy(float),
                                   land["land_water_indicator"].to_numpy()).any()
    assert not surface_offsets_ppm(x, df["xco2"].to_numpy(float), np.ones(x.size, np.int8)).any()


def test_coast_steps_do_not_inflate_the_orbit_noise_when_their_offsets_are_removed():
    """Twenty 1 ppm steps (ten water stretches) on an orbit of stated white noise: left in, they inflate the
    screen's spread, which would lower every significance of the orbit; their offsets removed, it is ~1 again."""
    df = _coasts(crafted_orbit(2000, seed=43), [(100 + 190 * k, 160 + 190 * k) for k in range(10)], 1.0)
    od = prepare_orbit(df)
    on = orbit_noise(od, DetectionSettings())
    off = orbit_noise(od, DetectionSettings().replace({"noise.surface_offsets": False}))
    assert off.raw_spread[0] > 1.3 * on.raw_spread[0]
    assert on.raw_spread[0] < 1.2


def _burst_month(n_orbits: int, seed: int) -> pd.DataFrame:
    """Plume-free orbits over the South Pacific (thousands of km from any source) with stated white noise and
    three bursts of three frames raising XCO2 by ~2 ppm on every footprint: artefacts no mirror sees."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(n_orbits):
        df = crafted_orbit(1500.0, 0.5, seed=seed + k, orbit=31000 + k, lat0=-45 + 2 * k, lon0=-130.0)
        for at_km in rng.uniform(100, 1400, 3):
            burst = (df["x_true_km"] >= at_km) & (df["x_true_km"] < at_km + 6.75)
            df.loc[burst, "xco2"] = (df.loc[burst, "xco2"] + 2.0 * rng.uniform(0.7, 1.3, burst.sum())
                                     ).astype(np.float32)
        parts.append(df.drop(columns="x_true_km"))
    return pd.concat(parts, ignore_index=True)


def test_the_control_region_sees_the_positive_artefacts_the_mirror_cannot():
    """No plume anywhere, positive bursts everywhere: every accepted event is false. The mirror alone estimates
    the noise's false rate and lets the bursts through; the control region (all of this track lies far from every
    source) adds their excess, the threshold rises, and the count stays within the estimate's interval."""
    month = _burst_month(12, seed=21)
    on = DetectionSettings()
    off = on.replace({"detection.control_distance_km": 0.0})
    counted, summaries = {}, {}
    for name, settings in (("on", on), ("off", off)):
        candidates = detect_soundings(month, settings, attribute_events=False)
        summaries[name] = summary = month_summary(candidates)
        accepted = int((candidates["is_event"] & candidates["status"].eq("accepted")).sum())
        counted[name] = 1000 * accepted / summary.track_km
    assert summaries["on"].control_km == pytest.approx(summaries["on"].track_km, rel=0.01)  # all of it is far
    assert "+control" in summaries["on"].method and summaries["on"].control_excess_per_1000km > 0
    assert counted["off"] > 1.5 * summaries["off"].false_per_1000km  # the mirror alone misses the bursts
    assert counted["on"] <= summaries["on"].interval_per_1000km[1]
    assert counted["on"] < counted["off"]


def test_the_control_region_is_the_track_far_from_every_big_source():
    from core.detect import control_mask

    near = crafted_orbit(400.0, 0.5, seed=3, lat0=50.0, lon0=6.5)  # the Rhineland's power plants
    far = crafted_orbit(400.0, 0.5, seed=3, lat0=-45.0, lon0=-130.0)  # the South Pacific
    settings = DetectionSettings()
    assert not control_mask(prepare_orbit(near), settings).any()
    assert control_mask(prepare_orbit(far), settings).all()
    assert not control_mask(prepare_orbit(far), settings.replace({"detection.control_distance_km": 0.0})).any()
