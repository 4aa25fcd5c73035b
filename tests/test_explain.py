"""Explaining a verdict: each rule's statistic, threshold and pass/fail, and the alternative models drawn."""
from __future__ import annotations

import numpy as np
import pytest

from core.detect import detect_orbit
from core.rules import (LOCAL_SPAN_MIN_KM, alternative_models, best_pair_chi2, best_plateau_chi2, best_step_chi2,
                        explain_rules)
from core.settings import RULES, DetectionSettings
from orbit_factory import add_gaussian, add_step, crafted_orbit

RECOMMENDED = DetectionSettings()


@pytest.mark.parametrize("preset", ["recommended", "chevallier-2020"])
def test_the_explanation_fails_exactly_the_rules_that_rejected_each_candidate(preset):
    settings = DetectionSettings(preset=preset)
    df = add_step(add_gaussian(crafted_orbit(1200, seed=11), 300.0, 30.0, 4.0), 800.0, 1.2)
    cands = detect_orbit(df, settings)
    fitted = cands[cands["fixed_reason"].eq("")]
    assert len(fitted) >= 2  # the plume and the step at least
    for _, row in fitted.iterrows():
        table = explain_rules(row, settings, row.get("significance_threshold"))
        assert table["rule"].tolist() == [r.name for r in RULES]
        failed = set(table.loc[table["verdict"].eq("FAIL"), "rule"])
        assert failed == set(row["rejected_by"].split("+")) & {r.name for r in RULES}  # not mirror, duplicate
        off = set(table.loc[table["verdict"].eq("off"), "rule"])
        assert off == {r.name for r in RULES if not settings.enabled(r.name)}
        assert not table["needs"].str.contains(r"\{").any()  # every threshold filled in
    plume = fitted.iloc[(fitted["center_km"] - 300).abs().argmin()]
    sig = explain_rules(plume, settings, 5.0).set_index("rule").loc["significance"]
    assert sig["needs"] == "≥ 5.00" and sig["value"] == f"{plume.get('significance', plume['snr']):.3g}"


def test_alternative_models_are_the_ones_the_rules_compared():
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(-60, 60, 600))
    unc = np.full(x.size, 0.5)
    y = 400 + 0.01 * x + np.where((x > -4) & (x < 5), 2.0, 0.0) + rng.normal(0, 0.5, x.size)  # a burst: a plateau
    sigma = 3.0
    models = alternative_models(x, x, y, unc, 0.0, sigma, RECOMMENDED)
    assert set(models) == {"step", "plateau", "two plumes"}
    local = np.abs(x) <= max(10 * sigma, LOCAL_SPAN_MIN_KM)
    w = 1 / unc[local] ** 2
    assert models["step"].attrs["chi2"] == pytest.approx(best_step_chi2(x[local], y[local], w, 2 * sigma), rel=1e-6)
    assert models["plateau"].attrs["chi2"] == pytest.approx(
        best_plateau_chi2(x[local], y[local], w, 3 * sigma, RECOMMENDED["rules.box_like.min_width_km"]), rel=1e-6)
    assert models["two plumes"].attrs["chi2"] == pytest.approx(best_pair_chi2(x[local], y[local], w, sigma),
                                                               rel=1e-6)
    plateau = models["plateau"]
    inside = plateau[(plateau["x_km"] > -3) & (plateau["x_km"] < 4)]["model_ppm"].mean()
    outside = plateau[(plateau["x_km"].abs() > 8) & (plateau["x_km"].abs() < 12)]["model_ppm"].mean()
    assert inside - outside == pytest.approx(2.0, abs=0.3)  # the burst's height, drawn where it is
    assert np.all(np.diff(plateau["x_km"]) >= 0)


def test_too_few_soundings_give_no_alternative():
    x = np.linspace(-5, 5, 5)
    assert alternative_models(x, x, np.full(5, 400.0), np.full(5, 0.5), 0.0, 2.0, RECOMMENDED) == {}
