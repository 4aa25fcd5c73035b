"""Noise worlds of the OSSE (``simulate(..., world=NAME)``): what each world puts in the files, and the truth."""
from __future__ import annotations

from dataclasses import replace

import netCDF4
import numpy as np
import pandas as pd
import pytest

from core.cli import build_parser, main
from core.lite_reader import read_lite
from core.simulate import OsseSettings, simulate
from core.worlds import WORLD_DESCRIPTIONS, WORLDS, ar1_along_track
from osse_factory import CLEAR, SOURCES

MAD_TO_SD = 1.482602218505602


def _sim(path, world=None, **kw):
    args = dict(days=2, seed=7, passes_per_day=3, pass_km=1500.0, plume_fraction=0.5, sources=SOURCES,
                settings=CLEAR, keep_soundings=True)
    args.update(kw)
    if world is not None:
        args["world"] = world
    return simulate(path, **args)


@pytest.fixture(scope="module")
def sims(tmp_path_factory):
    """Every world, same seed: 6 passes of 1500 km each (3 plume, 3 plume-free)."""
    root = tmp_path_factory.mktemp("worlds")
    return {w: _sim(root / w, w) for w in WORLDS}


def _read_back(result) -> pd.DataFrame:
    """The good soundings as the reader returns them from the files, with the simulator's truth beside them and
    ``error`` = xco2 - (background + plumes + nuisances): the correlated errors and the white noise."""
    got = pd.concat([read_lite(p)[0] for p in result.files], ignore_index=True)
    truth = result.soundings_truth().drop(columns=["orbit", "footprint"])
    good = got.merge(truth, on="sounding_id", how="left", validate="one_to_one")
    assert good["good"].all()
    good["error"] = good["xco2"].astype(float) - good["background_ppm"] - good["plume_ppm"] - good["nuisance_ppm"]
    good["frame"] = good["sounding_id"] // 10
    return good.sort_values("sounding_id").reset_index(drop=True)


def _consecutive(frame: pd.DataFrame, keys) -> list:
    """Pairs of (earlier, later) index arrays of neighbouring frames (2.0-2.6 km apart) within each group."""
    pairs = []
    for _, f in frame.groupby(keys, sort=False):
        d = np.diff(f["along_track_km"].to_numpy())
        m = (d > 2.0) & (d < 2.6)
        pairs.append((f.index.to_numpy()[:-1][m], f.index.to_numpy()[1:][m]))
    return pairs


def _lag1(frame: pd.DataFrame, column: str, keys) -> float:
    """Correlation of ``column`` between neighbouring frames (same orbit and the given keys)."""
    pairs = _consecutive(frame, keys)
    a = np.concatenate([frame[column].to_numpy()[i] for i, _ in pairs])
    b = np.concatenate([frame[column].to_numpy()[j] for _, j in pairs])
    return float(np.corrcoef(a, b)[0, 1])


def _robust_sd(x) -> float:
    """Standard deviation of the values within 4 robust sd (1.4826 MAD) of the median: insensitive to outliers and,
    unlike the MAD itself, nearly as precise as the plain sd for Gaussian noise (~2 % for 1,000 values)."""
    x = np.asarray(x, float)
    centre = np.median(x)
    mad_sd = MAD_TO_SD * np.median(np.abs(x - centre))
    return float(np.std(x[np.abs(x - centre) <= 4.0 * mad_sd]))


# -- the as-stated world is today's world ------------------------------------------------------------------------

def test_as_stated_is_the_world_without_worlds(tmp_path, sims):
    before = _sim(tmp_path / "default")  # no world argument: the simulator as it was
    stated = sims["as-stated"]
    pd.testing.assert_frame_equal(before.good_soundings(), stated.good_soundings(), check_exact=True)
    pd.testing.assert_frame_equal(before.soundings_truth(), stated.soundings_truth(), check_exact=True)
    for key in ("plumes", "passes", "nuisances"):
        pd.testing.assert_frame_equal(getattr(before, key), getattr(stated, key))
    passes = stated.passes
    assert set(passes["world"]) == {"as-stated"} and set(passes["effects"]) == {"none"}
    assert np.all(passes[["noise_scale"]] == 1.0) and np.all(passes[["wind_error_u_ms", "wind_error_v_ms"]] == 0)
    assert np.all(passes[["correlated_sd_ppm", "footprint_drift_sd_ppm", "dp_sd_hpa", "dp_ppm_per_hpa"]] == 0)
    assert set(stated.nuisances["kind"]) <= {"land_water_step", "cloud_burst"}
    assert np.all(stated.soundings_truth()["correlated_ppm"] == 0)
    # noise exactly as stated: unit scatter in units of xco2_uncertainty, no correlation along the track
    good = _read_back(stated)
    for _, p in good.groupby("orbit"):
        assert 0.95 < _robust_sd(p["error"] / p["xco2_uncertainty"]) < 1.05
    assert abs(_lag1(good, "error", ["orbit", "footprint"])) < 0.05
    with netCDF4.Dataset(stated.files[0]) as ds:
        assert "simulation_world" not in ds.ncattrs()


def test_as_stated_calls_no_world_effect(tmp_path, monkeypatch, sims):
    """The as-stated world skips every new effect (none is even called), so it draws nothing new."""
    from core import osse_nuisances, osse_pass

    def refuse(*args, **kwargs):
        raise AssertionError("a world effect was called in the as-stated world")

    for module, names in ((osse_pass, ("fine_waves_ppm", "dp_field_hpa", "dp_offset_ppm", "world_artefacts",
                                       "correlated_ppm")),
                          (osse_nuisances, ("correlated_errors_ppm", "footprint_drift_ppm"))):
        for name in names:
            monkeypatch.setattr(module, name, refuse)
    again = _sim(tmp_path, "as-stated")
    pd.testing.assert_frame_equal(again.good_soundings(), sims["as-stated"].good_soundings(), check_exact=True)
    with pytest.raises(AssertionError, match="world effect"):
        _sim(tmp_path / "b", "correlated", days=1, passes_per_day=1)


def test_world_effects_draw_from_their_own_streams(tmp_path, sims):
    """Understated without wind error: the same soundings, flags and stated uncertainties as as-stated, and the
    same noise draws, scaled by the recorded factor."""
    stated, scaled = sims["as-stated"], _sim(tmp_path, "understated", wind_error_ms=0.0)
    a, b = stated.good_soundings(), scaled.good_soundings()
    pd.testing.assert_frame_equal(a.drop(columns="xco2"), b.drop(columns="xco2"), check_exact=True)
    ta, tb = stated.soundings_truth(), scaled.soundings_truth()
    scale = tb["orbit"].map(scaled.passes.set_index("orbit")["noise_scale"])
    good = ta["good"].to_numpy()
    np.testing.assert_allclose(tb["noise_ppm"][good], (scale * ta["noise_ppm"])[good], rtol=1e-12, atol=1e-12)
    assert not np.allclose(a["xco2"], b["xco2"])


def test_truth_columns_add_up_to_the_file_xco2(sims):
    for world, result in sims.items():
        good = _read_back(result)
        total = good[["background_ppm", "plume_ppm", "nuisance_ppm", "correlated_ppm", "noise_ppm"]].sum(axis=1)
        np.testing.assert_allclose(good["xco2"].astype(float), total, atol=5e-5, rtol=0, err_msg=world)


def test_unknown_world_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"'no-such-world'.*as-stated.*understated.*mixture"):
        _sim(tmp_path, "no-such-world")
    assert list(WORLDS) == ["as-stated", "understated", "correlated", "drifting", "artefacts", "mixture",
                            "one-sided", "heavy-tailed"]
    assert set(WORLD_DESCRIPTIONS) == set(WORLDS) and WORLDS["as-stated"] == {}
    assert all(set(o) <= set(OsseSettings.__dataclass_fields__) for o in WORLDS.values())


# -- (b) understated scatter -------------------------------------------------------------------------------------

def test_understated_scatter_is_the_recorded_factor_times_the_stated_uncertainty(sims):
    result = sims["understated"]
    good = _read_back(result)
    assert np.all(good["correlated_ppm"] == 0)
    scales = result.passes.set_index("orbit")["noise_scale"]
    assert len(scales) == 6 and scales.between(1.2, 2.0).all() and scales.nunique() == 6  # drawn per pass
    for orbit, p in good.groupby("orbit"):
        measured = _robust_sd(p["error"] / p["xco2_uncertainty"])
        assert 1.2 * 0.95 < measured < 2.0 * 1.05
        assert measured == pytest.approx(scales[orbit], rel=0.10), orbit
    # the files still state the unscaled uncertainty (0.4-0.7 ppm for good soundings)
    assert good["xco2_uncertainty"].between(0.4, 0.7).all()


# -- (c) correlated errors ---------------------------------------------------------------------------------------

def test_correlated_errors_are_correlated_between_neighbouring_frames(sims):
    correlated, stated = _read_back(sims["correlated"]), _read_back(sims["as-stated"])
    passes = sims["correlated"].passes.set_index("orbit")
    assert passes["correlated_sd_ppm"].between(0.3, 0.5).all() and passes["noise_scale"].between(1.1, 1.4).all()
    # same footprint, neighbouring frames (2.25 km): what the brief's sd of 0.3-0.5 ppm over white noise of
    # (1.1-1.4) x 0.4-0.7 ppm allows (~0.1-0.3), and as predicted from the truth; ~0 in the as-stated world
    r_fp = _lag1(correlated, "error", ["orbit", "footprint"])
    rho = np.mean([np.exp(-2.25 / L) for L in OsseSettings().correlated_length_km])
    sd_c = correlated["orbit"].map(passes["correlated_sd_ppm"])
    white = (correlated["orbit"].map(passes["noise_scale"]) * correlated["xco2_uncertainty"].astype(float)) ** 2
    predicted = float(np.mean(sd_c ** 2 * rho) / np.mean(sd_c ** 2 + white))
    assert r_fp > 0.1 and r_fp == pytest.approx(predicted, abs=0.06), (r_fp, predicted)
    assert abs(_lag1(stated, "error", ["orbit", "footprint"])) < 0.05
    # frame means (most of the correlated error is common to the 8 footprints): clearly correlated
    means = {}
    for name, good in (("correlated", correlated), ("as-stated", stated)):
        f = good.groupby(["orbit", "frame"]).agg(error=("error", "mean"), n=("error", "size"),
                                                  along_track_km=("along_track_km", "first")).reset_index()
        means[name] = _lag1(f[f["n"] >= 6].reset_index(drop=True), "error", ["orbit"])
    assert means["correlated"] > 0.4 and abs(means["as-stated"]) < 0.08, means
    # the correlated part itself decays with lag as a sum of 5, 15 and 50 km exponentials
    assert _lag1(correlated, "correlated_ppm", ["orbit", "footprint"]) == pytest.approx(rho, abs=0.05)


def test_ar1_process_has_the_stated_sd_and_correlation():
    x = ar1_along_track(200_000, 2.25, 15.0, 0.4, np.random.default_rng(1))
    assert x.std() == pytest.approx(0.4, rel=0.03)
    assert np.corrcoef(x[:-1], x[1:])[0, 1] == pytest.approx(np.exp(-2.25 / 15.0), abs=0.01)
    assert np.corrcoef(x[:-20], x[20:])[0, 1] == pytest.approx(np.exp(-45.0 / 15.0), abs=0.02)


# -- (d) drifting footprint biases -------------------------------------------------------------------------------

def test_drifting_biases_are_per_footprint_and_slow(sims):
    result = sims["drifting"]
    truth = result.soundings_truth().sort_values("sounding_id").reset_index(drop=True)
    passes = result.passes.set_index("orbit")
    assert passes["footprint_drift_sd_ppm"].between(0.2, 0.4).all() and passes["correlated_sd_ppm"].eq(0).all()
    pairs = _consecutive(truth, ["orbit", "footprint"])
    step = np.concatenate([truth["correlated_ppm"].to_numpy()[j] - truth["correlated_ppm"].to_numpy()[i]
                           for i, j in pairs])
    orbit_of_step = np.concatenate([truth["orbit"].to_numpy()[i] for i, _ in pairs])
    for orbit, p in truth.groupby("orbit"):
        sd = passes.loc[orbit, "footprint_drift_sd_ppm"]
        wide = p.pivot_table(index="along_track_km", columns="footprint", values="correlated_ppm")
        # each footprint wanders by about the recorded sd over the pass (1,500 km: ~5 e-folding lengths) ...
        assert 0.3 * sd < wide.std().median() < 2.0 * sd
        # ... slowly: from one frame to the next (2.25 km) by ~0.12 sd (an e-folding length of 300 km) ...
        assert np.std(step[orbit_of_step == orbit]) < 0.2 * sd
        # ... and each footprint its own way
        assert np.median(np.abs(np.corrcoef(wide.dropna().to_numpy().T)[np.triu_indices(8, 1)])) < 0.7


# -- (e) artefacts -----------------------------------------------------------------------------------------------

def test_artefacts_bursts_of_both_signs_and_unflagged_steps(sims):
    result = sims["artefacts"]
    nuis, truth = result.nuisances, result.soundings_truth()
    good = _read_back(result)
    bursts = nuis[nuis["kind"] == "bad_frames"]
    assert (bursts["magnitude_ppm"] > 0).any() and (bursts["magnitude_ppm"] < 0).any()
    assert bursts["magnitude_ppm"].abs().between(1.0, 6.0).all()
    assert set(bursts["n_footprints"]) - {8} and bursts["n_footprints"].between(3, 8).all()
    assert bursts["extent_km"].between(2.0, 4 * 2.3).all()
    for _, b in bursts.iterrows():  # each burst is in the files, good, of its sign, on its footprints
        near = good[(good["orbit"] == b.orbit) & ((good["along_track_km"] - b.along_track_km).abs()
                                                   <= b.extent_km / 2 + 1.2)]
        hit = near[np.sign(near["nuisance_ppm"]) == np.sign(b.magnitude_ppm)]
        hit = hit[hit["nuisance_ppm"].abs() >= 0.7 * abs(b.magnitude_ppm) - 0.5]
        assert len(hit) and hit["footprint"].between(b.first_footprint, b.first_footprint + b.n_footprints - 1).all()
    steps = nuis[nuis["kind"] == "unflagged_step"]
    assert len(steps) >= 1
    checked = 0
    for _, st in steps.iterrows():
        sel = (good["orbit"] == st.orbit) & ((good["along_track_km"] - st.along_track_km).abs() <= 20.0)
        assert sel.sum() and np.all(good.loc[sel, "land_water_indicator"] == 0)  # nothing marks the step
        t = truth[truth["orbit"] == st.orbit]
        before = t[(t["along_track_km"] < st.along_track_km) & (t["along_track_km"] > st.along_track_km - 8)]
        after = t[(t["along_track_km"] > st.along_track_km) & (t["along_track_km"] < st.along_track_km + 8)]
        if len(before) and len(after):
            jump = after["nuisance_ppm"].median() - before["nuisance_ppm"].median()
            assert abs(jump) == pytest.approx(abs(st.magnitude_ppm), abs=0.25)
            checked += 1
    assert checked
    # the steps, and bursts of plume passes, keep away from the plumes (the truth stays clean)
    plume_orbits = set(result.passes.loc[result.passes["kind"] == "plume", "orbit"])
    for _, n in nuis[nuis["orbit"].isin(plume_orbits)].iterrows():
        near = result.plumes[(result.plumes["orbit"] == n.orbit) & (result.plumes["peak_height_ppm"] >= 0.1)]
        assert np.all(np.abs(near["cross_along_track_km"] - n.along_track_km) >= 150.0 - 2.5)


def test_one_sided_bursts_all_raise_xco2_where_the_artefacts_world_puts_them(sims):
    both, one = sims["artefacts"].nuisances, sims["one-sided"].nuisances
    assert len(one) == len(both) and (both["kind"] == "bad_frames").any()
    np.testing.assert_array_equal(one["along_track_km"], both["along_track_km"])  # same places, same draws
    bursts, others = one["kind"] == "bad_frames", one["kind"] != "bad_frames"
    assert (both.loc[bursts, "magnitude_ppm"] < 0).any() and (one.loc[bursts, "magnitude_ppm"] > 0).all()
    np.testing.assert_array_equal(one.loc[bursts, "magnitude_ppm"], both.loc[bursts, "magnitude_ppm"].abs())
    np.testing.assert_array_equal(one.loc[others, "magnitude_ppm"], both.loc[others, "magnitude_ppm"])
    good = _read_back(sims["one-sided"])  # in the files: no burst lowers a sounding
    assert good["nuisance_ppm"].max() >= 1.0 * 0.7 and (good.loc[good["nuisance_ppm"] < -0.01, "nuisance_ppm"]
                                                        .min() > -2.0)  # only steps and dp offsets go down


def test_heavy_tailed_scatter_keeps_its_sd_with_heavier_tails(sims, tmp_path):
    result = sims["heavy-tailed"]
    good, stated = _read_back(result), _read_back(sims["understated"])
    scales = result.passes.set_index("orbit")["noise_scale"]
    assert scales.between(1.0, 1.3).all()
    z = good["error"] / good["xco2_uncertainty"] / good["orbit"].map(scales)
    z_gauss = stated["error"] / stated["xco2_uncertainty"] / stated["orbit"].map(
        sims["understated"].passes.set_index("orbit")["noise_scale"])
    assert np.std(z) == pytest.approx(1.0, abs=0.06)  # the sd is the world's scale x the stated one ...
    # ... with heavier tails: for Student-t of 4 dof at unit sd, the MAD's sd is 0.78 and 1 in 60 is beyond 3 sd
    def mad_sd(x):
        return MAD_TO_SD * float(np.median(np.abs(x - np.median(x))))

    assert 0.72 < mad_sd(z) < 0.84 and 0.95 < mad_sd(z_gauss) < 1.05
    assert (np.abs(z) > 3).mean() > 3 * (np.abs(z_gauss) > 3).mean()  # 1.3 % against 0.27 %
    with pytest.raises(ValueError, match=r"noise_dof must be 0 .* got 2.0"):
        _sim(tmp_path, settings=replace(CLEAR, noise_dof=2.0))


def test_artefacts_offsets_follow_psurf_minus_apriori(sims):
    result = sims["artefacts"]
    good = _read_back(result)
    passes = result.passes.set_index("orbit")
    assert passes["dp_ppm_per_hpa"].between(0.05, 0.1).all() and passes["dp_sd_hpa"].between(1.5, 4.0).all()
    good["dp"] = good["surface_pressure"].astype(float) - good["surface_pressure_apriori"].astype(float)
    pairs = _consecutive(good, ["orbit", "footprint"])
    i, j = np.concatenate([a for a, _ in pairs]), np.concatenate([b for _, b in pairs])
    d_nuisance = good["nuisance_ppm"].to_numpy()[j] - good["nuisance_ppm"].to_numpy()[i]
    d_dp = good["dp"].to_numpy()[j] - good["dp"].to_numpy()[i]
    k = good["orbit"].map(passes["dp_ppm_per_hpa"]).to_numpy()[i]
    for orbit, p in good.groupby("orbit"):
        assert 1.0 < p["dp"].std() < 6.0  # the retrieved psurf is off by a few hPa ...
    # ... and the XCO2 offset follows k * dp: between neighbouring frames the other nuisances (stretches) cancel,
    # except at their edges and inside bursts, whose soundings vary (float32 psurf in the file: ~1e-5 ppm)
    assert np.mean(np.abs(d_nuisance - k * d_dp) < 1e-3) > 0.85
    assert np.std(k * d_dp) > 0.05  # (the test means something: dp changes by ~1 hPa from frame to frame)
    assert _lag1(good, "dp", ["orbit", "footprint"]) > 0.5  # a smooth field plus 1 hPa noise


# -- every world's files read back; the wind error ----------------------------------------------------------------

def test_every_world_writes_files_the_reader_reads_back(sims):
    for world, result in sims.items():
        assert result.files
        for path in result.files:
            got, meta = read_lite(path)
            pd.testing.assert_frame_equal(got, result.good_soundings(path), check_exact=True)
            with netCDF4.Dataset(path) as ds:
                assert ds.getncattr("simulation_world") == world if world != "as-stated" else True


@pytest.mark.parametrize("build", ["B9", "B10", "B11"])
def test_mixture_reads_back_in_every_build(tmp_path, build):
    result = _sim(tmp_path, "mixture", build=build, days=1, passes_per_day=2, pass_km=700.0, plume_fraction=0.5)
    for path in result.files:
        got, meta = read_lite(path)
        pd.testing.assert_frame_equal(got, result.good_soundings(path), check_exact=True)
        assert meta.n_read > 0


def test_mixture_varies_the_effects_from_pass_to_pass(sims):
    passes = sims["mixture"].passes
    assert passes["effects"].nunique() >= 3
    on = {e: passes["effects"].str.contains(e) for e in ("understated", "correlated", "drifting", "artefacts")}
    assert all(0 < v.sum() <= len(passes) for v in on.values())
    assert np.all((passes["noise_scale"] > 1.0) == on["understated"])
    assert np.all((passes["correlated_sd_ppm"] > 0) == on["correlated"])
    assert np.all((passes["footprint_drift_sd_ppm"] > 0) == on["drifting"])


@pytest.mark.parametrize("world", ["understated", "mixture"])
def test_file_wind_is_the_plume_wind_plus_the_recorded_error(sims, world):
    result = sims[world]
    passes = result.passes.set_index("orbit")
    err = passes[["wind_error_u_ms", "wind_error_v_ms"]].to_numpy()
    assert np.all(err != 0) and 0.5 < np.sqrt(np.mean(err ** 2)) < 3.0  # N(0, 1.5 m/s) per pass and component
    targets = result.plumes[result.plumes["role"] == "target"]
    assert len(targets) >= 2
    for _, p in targets.iterrows():
        good = result.good_soundings(p.file)
        good = good[good["orbit"] == p.orbit]
        i = np.argmin(np.abs(good["time"] - pd.Timestamp(p.cross_time)).to_numpy())
        assert good["windspeed_u"].iloc[i] - p.wind_u_ms == pytest.approx(passes.loc[p.orbit, "wind_error_u_ms"],
                                                                           abs=0.02)
        assert good["windspeed_v"].iloc[i] - p.wind_v_ms == pytest.approx(passes.loc[p.orbit, "wind_error_v_ms"],
                                                                           abs=0.02)
    # the plumes are those of the true wind: same crossings and amplitudes as in the as-stated world
    stated = sims["as-stated"].plumes.set_index("plume_id")
    here = result.plumes.set_index("plume_id")
    pd.testing.assert_series_equal(here["amplitude_ppm_km"], stated["amplitude_ppm_km"], rtol=1e-9)
    pd.testing.assert_series_equal(here["wind_u_ms"], stated["wind_u_ms"])


def test_wind_error_override(tmp_path):
    result = _sim(tmp_path, "understated", wind_error_ms=0.0, days=1, passes_per_day=2)
    assert np.all(result.passes[["wind_error_u_ms", "wind_error_v_ms"]] == 0)
    assert (result.passes["noise_scale"] > 1.0).all()


# -- the command line --------------------------------------------------------------------------------------------

def test_cli_simulate_world(tmp_path, capsys):
    help_text = build_parser()._subparsers._group_actions[0].choices["simulate"].format_help()
    for world in WORLDS:
        assert world in help_text
    assert "--wind-error-ms" in help_text
    code = main(["simulate", str(tmp_path / "out"), "--days", "1", "--passes-per-day", "1", "--pass-km", "500",
                 "--seed", "3", "--world", "drifting", "--wind-error-ms", "2.5", "--cache", str(tmp_path / "c")])
    assert code == 0 and "world drifting" in capsys.readouterr().out
    passes = pd.read_csv(tmp_path / "out" / "truth_passes.csv")
    assert set(passes["world"]) == {"drifting"} and passes["footprint_drift_sd_ppm"].between(0.2, 0.4).all()
    nuisances = pd.read_csv(tmp_path / "out" / "truth_nuisances.csv")
    assert list(nuisances.columns[-2:]) == ["n_footprints", "first_footprint"]
