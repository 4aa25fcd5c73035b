"""core.fitting against stock lmfit: the values and standard errors of ``fit_window`` are those of
``lmfit.Model(gaussian_line).fit`` with the same bounds and weights.

The windows are built like the detector's (core.detect.fit_candidates): along-track positions [km] over the
200 km window around a candidate, 100-600 soundings, xco2_uncertainty 0.4-1.5 ppm, a Gaussian of area A
[ppm km] and width 0.9-40 km on a sloped background, started where the screen would start it (A and sigma off
by tens of percent, centre at the candidate, flat background at the window's median), with the recommended
preset's bounds (sigma 0.6-50 km, centre within 10 km, A free).

Three comparisons, each as tight as the fits allow (measured on these windows and on 300 random ones):

1. Same path: stock ``Model.fit`` given the fitter's analytic Jacobian and tolerance follows the same MINPACK
   iterations, so values and standard errors agree to 1e-9, also for fits stuck at a bound. This pins the
   covariance -> standard-error step: any replacement of lmfit's (scaled by the reduced chi-square) fails it.
2. Independent derivatives: stock ``Model.fit`` with its finite-difference Jacobian, both converged tightly
   (tolerance 1e-10): values agree to 1e-3 of their standard error (tighter than 1e-3 relative for A and sigma;
   the centre and background are offsets, for which a relative tolerance means nothing), standard errors to
   1e-3 relative (measured on these windows: 8e-5 standard error, 5e-5 relative). This checks the analytic
   Jacobian and the errors computed from it, e.g. a reduced chi-square with one degree of freedom too many.
3. As shipped: ``fit_window`` (tolerance 1e-6) against stock ``Model.fit`` with lmfit's defaults (1.5e-8):
   values agree to 0.05 standard error (the 1e-6 chi-square tolerance moves a parameter by up to
   ~sqrt(2e-6 chi2) ~ 0.03 of its error; measured 6e-3 here) and standard errors to 2e-2 (measured 9e-3).

Fits whose width or centre end at a bound are in (1) only: lmfit's bound transform has zero slope at the
bound, so the standard error of a parameter stuck there (and the others', through the covariance) depends on
how close each optimizer stopped to it (measured: factors of 2-80 between two converged fits of the same
minimum); they are not comparable between two different optimizer paths.
"""
from __future__ import annotations

import copy

import lmfit
import numpy as np
import pytest

from core import fitting
from core.fitting import PARAMS, fit_window, gaussian_line, make_params
from core.settings import DetectionSettings

SETTINGS = DetectionSettings.preset("recommended")
POSITIVE = SETTINGS.replace({"fit.positive_amplitude": True})
MODEL = lmfit.Model(gaussian_line)  # the stock reference, as a user of lmfit would write it

# (soundings, sigma km, area ppm km, slope ppm/km, intercept ppm, true centre - candidate km, gap km)
INTERIOR = [
    (420, 3.0, 20.0, 0.0, 410.0, 0.0, 0),
    (300, 1.5, 8.0, 0.004, 405.0, 1.0, 0),
    (550, 5.0, 40.0, -0.01, 415.0, -2.0, 0),
    (150, 8.0, 60.0, 0.002, 412.0, 3.0, 0),
    (600, 10.0, 45.0, 0.02, 408.0, 0.5, 0),
    (250, 2.0, -12.0, 0.0, 411.0, -1.0, 0),  # a depletion (A free in the recommended preset)
    (480, 4.0, -25.0, -0.005, 409.0, 2.0, 0),
    (350, 6.0, 30.0, 0.015, 418.0, -4.0, 30),  # a cloud gap beside the plume
    (200, 2.5, 15.0, -0.02, 402.0, 2.5, 0),
    (500, 1.2, 10.0, 0.001, 410.0, 0.0, 0),
    (120, 7.0, 55.0, 0.0, 414.0, -3.0, 0),  # few soundings
    (580, 3.5, 12.0, 0.008, 407.0, 1.5, 40),
    (330, 9.0, 70.0, -0.012, 416.0, 5.0, 0),
    (450, 2.2, 9.0, 0.0, 412.0, -0.5, 0),
    (270, 4.5, 35.0, 0.003, 406.0, 0.0, 0),
    (390, 20.0, 150.0, 0.005, 411.0, 2.0, 0),  # broad
    (520, 40.0, 400.0, 0.0, 410.0, 0.0, 0),  # broad, still inside sigma <= 50 km
    (410, 0.9, 8.0, 0.0, 410.0, 0.0, 0),  # near the lower width bound (0.6 km)
    (360, 1.0, -9.0, 0.006, 413.0, 0.5, 0),
    (300, 3.0, 25.0, 0.0, 410.0, 7.5, 0),  # near the centre bound (10 km from the candidate)
    (440, 5.0, 30.0, -0.008, 409.0, -8.0, 0),
    (320, 2.0, 18.0, 0.01, 404.0, 1.0, 0),
]
# fits that end with a parameter at its bound: compared on the same path only (see the module docstring)
AT_BOUND = [
    (400, 0.3, 6.0, 0.0, 410.0, 0.0, 0),  # a spike narrower than sigma_min: sigma at 0.6 km
    (300, 3.0, 20.0, 0.0, 410.0, 14.0, 0),  # the peak beyond the centre bound: centre at candidate + 10 km
    (500, 120.0, 1500.0, 0.0, 410.0, 0.0, 0),  # a wave broader than sigma_max: sigma at 50 km
    (350, 4.0, 0.0, 0.0, 410.0, 0.0, 0),  # noise only
    (250, 2.0, 1.5, 0.003, 411.0, -6.0, 0),  # weak
]


def _window(case, seed):
    """x [km], xco2 [ppm], uncertainty [ppm] and the screen-like start of one window (seeded)."""
    n, sigma, area, slope, intercept, offset, gap = case
    rng = np.random.default_rng(seed)
    candidate = float(rng.uniform(500.0, 20_000.0))  # along-track distance of the candidate
    x = np.sort(rng.uniform(candidate - 100.0, candidate + 100.0, n))
    if gap:  # a cloud gap of `gap` km on one side of the candidate
        side = candidate + (1 if seed % 2 else -1) * (10.0 + gap / 2)
        x = x[np.abs(x - side) > gap / 2]
    unc = rng.uniform(0.4, 1.5, x.size)
    y = gaussian_line(x, area, sigma, candidate + offset, slope, intercept) + rng.normal(0.0, 1.0, x.size) * unc
    start = {"amplitude": area * rng.uniform(0.6, 1.4) if area else 1.0,
             "sigma": sigma * rng.uniform(0.7, 1.5), "center": candidate, "slope": 0.0,
             "intercept": float(np.median(y))}
    return x, y, unc, start


def _stock(x, y, unc, start, settings, **fit_kws):
    """Stock ``lmfit.Model.fit`` of the same model, bounds, start and weights (a copy of the fitter's
    Parameters: the same bounds by construction)."""
    params = copy.deepcopy(make_params(start, settings))
    return MODEL.fit(y, params, x=x, weights=1.0 / unc, fit_kws=fit_kws or None)


def _same_jacobian(params, data, weights, x):
    """The fitter's analytic Jacobian for lmfit.Model's residual, (data - model) * weights: the opposite sign."""
    return -fitting._Window(x, data, weights).jacobian(params)


def _at_bound(result) -> bool:
    return any(min(result.params[p].value - result.params[p].min, result.params[p].max - result.params[p].value)
               < 1e-2 for p in ("sigma", "center"))


CASES = [pytest.param(case, seed, id=f"interior{seed}") for seed, case in enumerate(INTERIOR)]
BOUND_CASES = [pytest.param(case, 100 + seed, id=f"at-bound{seed}") for seed, case in enumerate(AT_BOUND)]


@pytest.mark.parametrize("settings", [SETTINGS, POSITIVE], ids=["A-free", "A>=0"])
@pytest.mark.parametrize("case, seed", CASES + BOUND_CASES)
def test_same_path_as_stock_model_fit(case, seed, settings):
    x, y, unc, start = _window(case, seed)
    ours = fit_window(x, y, unc, start, settings)
    ref = _stock(x, y, unc, start, settings, Dfun=_same_jacobian, col_deriv=True, ftol=fitting.TOLERANCE,
                 xtol=fitting.TOLERANCE)
    assert ours.nfev == ref.nfev
    assert ours.chi2 == pytest.approx(ref.chisqr, rel=1e-12)
    for p in PARAMS:
        assert ours.values[p] == pytest.approx(ref.params[p].value, rel=1e-9, abs=1e-12), p
        if ref.errorbars:
            assert ours.stderr[p] == pytest.approx(ref.params[p].stderr, rel=1e-9, abs=1e-12), p
    if not ref.errorbars:
        assert not ours.ok


@pytest.mark.parametrize("case, seed", CASES)
def test_values_and_errors_match_stock_model_fit_with_its_own_derivatives(case, seed, monkeypatch):
    x, y, unc, start = _window(case, seed)
    monkeypatch.setattr(fitting, "TOLERANCE", 1e-10)
    ours = fit_window(x, y, unc, start, SETTINGS)
    ref = _stock(x, y, unc, start, SETTINGS, ftol=1e-10, xtol=1e-10)
    assert ours.ok and ref.success and ref.errorbars and not _at_bound(ref), ref.message
    assert ours.chi2 == pytest.approx(ref.chisqr, rel=1e-9)
    for p in PARAMS:
        error = ref.params[p].stderr
        assert abs(ours.values[p] - ref.params[p].value) <= 1e-3 * error, p
        assert ours.stderr[p] == pytest.approx(error, rel=1e-3), p


@pytest.mark.parametrize("case, seed", CASES)
def test_fit_window_as_shipped_matches_stock_model_fit(case, seed):
    x, y, unc, start = _window(case, seed)
    ours = fit_window(x, y, unc, start, SETTINGS)
    ref = _stock(x, y, unc, start, SETTINGS)  # lmfit's defaults: finite differences, tolerances 1.5e-8
    assert ours.ok and ref.success and ref.errorbars and not _at_bound(ref), ref.message
    assert ours.chi2 == pytest.approx(ref.chisqr, rel=1e-5)  # the same minimum
    for p in PARAMS:
        error = ref.params[p].stderr
        assert abs(ours.values[p] - ref.params[p].value) <= 0.05 * error, p
        assert ours.stderr[p] == pytest.approx(error, rel=2e-2), p


def test_the_windows_cover_widths_signs_and_bounds():
    """The cases are what the module docstring says (>= 20 interior windows; the at-bound ones end at a bound)."""
    assert len(INTERIOR) >= 20
    sigmas = [case[1] for case in INTERIOR]
    assert min(sigmas) < 1.0 and max(sigmas) > 30 and any(case[2] < 0 for case in INTERIOR)
    at_bound = [_at_bound(_stock(*_window(case, 100 + seed), SETTINGS)) for seed, case in enumerate(AT_BOUND[:3])]
    assert all(at_bound)
