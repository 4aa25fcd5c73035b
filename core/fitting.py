"""The along-track model, Gaussian + line, fitted with lmfit under the declared constraints.

    XCO2(x) = m (x - x0) + b + A / (sigma sqrt(2 pi)) exp(-(x - x0)^2 / (2 sigma^2))

``A`` [ppm km] is the Gaussian area (it carries the emission), ``sigma`` [km] its width, ``x0`` [km] its centre,
``m`` [ppm/km] and ``b`` [ppm] the background line. Fits are weighted by ``xco2_uncertainty``, bounded
(``fit.sigma_min_km`` .. ``fit.sigma_max_km``, centre within ``fit.centre_shift_km`` of the candidate, optionally
A >= 0), capped at ``fit.max_nfev`` evaluations, and converged (Levenberg-Marquardt with an analytic Jacobian to
relative tolerances of 1e-6, not the single step that the original ``ftol=xtol=0.5`` allowed). Standard errors
come from the covariance, scaled by the reduced chi-square (lmfit's default).

A fit that raises, does not converge, hits the evaluation cap or has no standard errors is reported as failed,
never raised: the caller turns it into a rejected candidate with reason ``fit-failed``.

References
----------
Zheng, T. et al. (2020), ACP 20, 8501-8510; Chevallier, F. et al. (2020), GRL 47, e2020GL090007;
Newville, M. et al., LMFIT: Non-Linear Least-Square Minimization and Curve-Fitting for Python (Zenodo).
"""
from __future__ import annotations

from dataclasses import dataclass

import threading

import lmfit
import numpy as np

SQRT_2PI = np.sqrt(2 * np.pi)
PARAMS = ("amplitude", "sigma", "center", "slope", "intercept")
#: Relative tolerances of the Levenberg-Marquardt stop (chi-square and parameters): far below any standard
#: error, and a third fewer evaluations than MINPACK's default 1.5e-8.
TOLERANCE = 1e-6


def unit_gaussian(d_km, sigma_km):
    """Gaussian of unit area [1/km] at distance ``d_km`` [km] from its centre, of width ``sigma_km`` [km].

    ``exp(-d^2 / (2 sigma^2)) / (sigma sqrt(2 pi))``: the plume term of the along-track model is the area A
    [ppm km] times this (docs/METHOD.md section 1; Zheng et al. 2020). The one definition the fit, the screen's
    kernels and the rules' alternatives share; broadcasts (e.g. ``d`` of shape (k, n) against ``sigma`` of shape
    (k, 1)).
    """
    return _bell(d_km, sigma_km) / (sigma_km * SQRT_2PI)


def _bell(d_km, sigma_km):
    """``exp(-d^2 / (2 sigma^2))``: :func:`unit_gaussian` before its normalisation."""
    return np.exp(-0.5 * (d_km / sigma_km) ** 2)


def gaussian_line(x, amplitude, sigma, center, slope, intercept):
    """Gaussian of area ``amplitude`` [ppm km] and width ``sigma`` [km] at ``center`` [km] on a line.

    Parameters
    ----------
    x : array_like
        Along-track distance [km].
    amplitude : float
        Gaussian area A [ppm km].
    sigma : float
        Gaussian width [km].
    center : float
        Gaussian centre x0 [km].
    slope : float
        Background slope [ppm/km], relative to the centre.
    intercept : float
        Background at the centre [ppm].
    """
    d = np.asarray(x, float) - center
    # amplitude * unit_gaussian(d, sigma), with the normalisation folded into the scalar first: the fit's arithmetic
    # (one array operation fewer per evaluation). Rounded the other way, 1 fit in ~400 stops one MINPACK iteration
    # apart (values moved by ~1e-4 of their standard error), so the fitted values would no longer be reproduced.
    return slope * d + intercept + amplitude / (sigma * SQRT_2PI) * _bell(d, sigma)


@dataclass(frozen=True)
class FitResult:
    """Outcome of one window fit; ``ok`` False means ``fit-failed`` (``message`` says why)."""

    ok: bool
    message: str
    values: dict
    stderr: dict
    nfev: int
    chi2: float
    redchi: float
    n: int


_TEMPLATE = threading.local()  # one Parameters per thread, re-bounded for each fit (creating one is slow)


def make_params(start: dict, settings) -> lmfit.Parameters:
    """Parameters with the bounds the settings declare, starting at ``start`` (e.g. the screen's values).

    The returned object is this thread's template, re-set for every fit (a fit given its Parameter objects as a
    list, as :func:`fit_window` does, moves them to its result); take a ``copy.deepcopy`` to keep one.
    """
    shift = float(settings["fit.centre_shift_km"])
    lo_sigma, hi_sigma = float(settings["fit.sigma_min_km"]), float(settings["fit.sigma_max_km"])
    positive = bool(settings["fit.positive_amplitude"])
    amplitude = float(start["amplitude"])
    c = float(start["center"])
    params = getattr(_TEMPLATE, "params", None)
    if params is None:
        params = _TEMPLATE.params = lmfit.Parameters()
        params.add_many(*((name, 0.0) for name in PARAMS))
    params["amplitude"].set(value=max(amplitude, 1e-3) if positive else amplitude, vary=True,
                            min=0.0 if positive else -np.inf, max=np.inf)
    params["sigma"].set(value=float(np.clip(start["sigma"], lo_sigma, hi_sigma)), vary=True, min=lo_sigma,
                        max=hi_sigma)
    # a centre held fixed (no shift allowed) gets no bounds: lmfit refuses min == max
    params["center"].set(value=c, vary=shift > 0, min=c - shift if shift > 0 else -np.inf,
                         max=c + shift if shift > 0 else np.inf)
    params["slope"].set(value=float(start.get("slope", 0.0)), vary=True, min=-np.inf, max=np.inf)
    params["intercept"].set(value=float(start["intercept"]), vary=True, min=-np.inf, max=np.inf)
    return params


class _Window:
    """One window's weighted residual and its analytic Jacobian, as lmfit calls them during one fit.

    A fit evaluates them ~30 times on the same soundings; MINPACK asks for the Jacobian at the point whose residual
    it has just evaluated, so the Gaussian's shape ``unit_gaussian(x - x0, sigma)`` is computed once for both (the
    same arithmetic as :func:`gaussian_line`: the values are those of evaluating each from scratch).
    """

    def __init__(self, x, y, weight, vary=None):
        self.x, self.y, self.weight = x, y, weight
        self.vary = vary  # the varied parameters (None: read them from the Parameters at each call)
        self._shape_at = None  # (sigma, centre) of the cached d and bell
        self._d = self._bell = None

    def _shape(self, sigma, c):
        """``x - c`` and ``_bell(x - c, sigma)``."""
        if self._shape_at != (sigma, c):
            self._d = self.x - c
            self._bell = _bell(self._d, sigma)
            self._shape_at = (sigma, c)
        return self._d, self._bell

    def residual(self, params):
        """(model - data) * weight, in lmfit's ``fcn(params, ...)`` form (the model: :func:`gaussian_line`)."""
        a, sigma, c, m, b = (params[name].value for name in PARAMS)
        d, bell = self._shape(sigma, c)
        return (m * d + b + a / (sigma * SQRT_2PI) * bell - self.y) * self.weight

    def jacobian(self, params):
        """Analytic derivatives of the weighted residual, one row per varied parameter (lmfit's ``Dfun`` with
        ``col_deriv=True``: MINPACK takes the rows as they are)."""
        a, sigma, c, m = (params[name].value for name in PARAMS[:4])
        d, bell = self._shape(sigma, c)
        g = bell / (sigma * SQRT_2PI)  # unit_gaussian(d, sigma)
        rows = np.empty((len(PARAMS), d.size))
        rows[0] = g  # d/dA
        ag = a * g
        rows[1] = ag * (d * d / sigma ** 3 - 1.0 / sigma)  # d/dsigma
        rows[2] = ag * d / sigma ** 2 - m  # d/dx0
        rows[3] = d  # d/dm
        rows[4] = 1.0  # d/db
        rows *= self.weight
        vary = self.vary if self.vary is not None else [params[name].vary for name in PARAMS]
        return rows if all(vary) else rows[vary]


def fit_window(x_km, xco2_ppm, uncertainty_ppm, start: dict, settings) -> FitResult:
    """Fit the model to one window's soundings; never raises (see the module docstring)."""
    x = np.asarray(x_km, float)
    y = np.asarray(xco2_ppm, float)
    weight = 1.0 / np.asarray(uncertainty_ppm, float)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(weight)
    x, y, weight = x[ok], y[ok], weight[ok]
    n = int(x.size)
    empty = {p: np.nan for p in PARAMS}
    if n < max(int(settings["fit.min_soundings"]), len(PARAMS) + 1):
        return FitResult(False, f"only {n} usable soundings in the window", empty, empty, 0, np.nan, np.nan, n)
    if np.ptp(y) == 0:
        return FitResult(False, "constant data: nothing to fit", empty, empty, 0, np.nan, np.nan, n)
    max_nfev = int(settings["fit.max_nfev"])
    try:
        params = make_params(start, settings)
        # the window is finite (filtered above); "propagate" skips lmfit's NaN scan of every residual vector, and a
        # fit that still ends non-finite is caught below. The Parameter objects as a list: lmfit then fits them
        # in place instead of deep-copying a Parameters (a third of a fit's fixed cost; the results are identical).
        # Stock lmfit.Minimizer, public API only. lmfit also builds ``result.uvars`` (uncertainties objects) after
        # every fit, which we never read; lmfit 1.3.4 has no public switch for it (``calc_covar`` does not apply
        # to leastsq). Skipping it by overriding the private ``_calculate_uncertainties_correlations`` (as this
        # module once did) saved 0.09 ms of 1.09 ms per fit on the 6,684 windows of bench_detect's month (9-11 %),
        # i.e. ~0.6 s of a ~40 s one-process month and ~1 % of an orbit re-detect: not worth a private door.
        window = _Window(x, y, weight, [params[name].vary for name in PARAMS])
        minimizer = lmfit.Minimizer(window.residual, list(params.values()), max_nfev=max_nfev,
                                    nan_policy="propagate")
        result = minimizer.minimize(method="leastsq", Dfun=window.jacobian, col_deriv=True, ftol=TOLERANCE,
                                    xtol=TOLERANCE)
    # ArithmeticError: also OverflowError, which lmfit's bound transforms raise for a huge start value
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        return FitResult(False, f"fit raised {type(exc).__name__}: {exc}", empty, empty, 0, np.nan, np.nan, n)
    values = {p: float(result.params[p].value) for p in PARAMS}
    stderr = {p: (float(result.params[p].stderr) if result.params[p].stderr is not None else np.nan)
              for p in PARAMS}
    if not result.success or result.nfev >= max_nfev:
        return FitResult(False, f"did not converge in {result.nfev} evaluations ({result.message})", values,
                         stderr, result.nfev, float(result.chisqr), float(result.redchi), n)
    if not np.isfinite(stderr["amplitude"]) or not all(np.isfinite(list(values.values()))):
        return FitResult(False, "no standard errors (singular covariance: a parameter at its bound?)", values,
                         stderr, result.nfev, float(result.chisqr), float(result.redchi), n)
    return FitResult(True, "converged", values, stderr, result.nfev, float(result.chisqr), float(result.redchi), n)
