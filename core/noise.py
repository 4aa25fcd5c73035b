"""The noise of one orbit as the data show it, not as the files state it.

OCO-2's ``xco2_uncertainty`` is the retrieval's posterior error. Real single-sounding scatter is larger, and part
of the error is correlated along the track over tens of km (docs/NOISE.md). A significance in units of the
stated uncertainty therefore has a false-alarm rate that depends on the unknown real noise. Three estimates,
each from the orbit's own soundings:

* :func:`variogram_noise` - the white scatter and a correlated term: the robust semivariogram of same-footprint
  pairs (constant footprint biases cancel) fitted with ``nugget + c^2 (1 - exp(-h / L)) + b h^2``: the nugget is
  the white variance (its square root over the stated uncertainty is ``noise_scale``), ``c`` [ppm] and ``L``
  [km] the correlated part, ``b h^2`` the smooth background's contribution.
* :func:`surface_offsets_ppm` - not noise but a bias that would pass for it: the retrieval's bias differs over
  land and water, so XCO2 steps at every coast and lake shore. Each stretch of water is given the offset between
  its soundings and the land beside it (medians near its edges), which detection subtracts before the screen,
  the noise estimates and the fits (``noise.surface_offsets``): steps left in would inflate the screen's spread
  of every width on an orbit that crosses many coasts, and lower every significance with it.
* :func:`screen_spread` - what the detector needs directly: for each screen width, the robust spread of the
  screen's significance A / stderr(A) over the orbit. With white noise as stated it is ~1; correlated errors and
  background structure at that scale make it larger. Significances are divided by it (per width), so one
  threshold means the same on a quiet orbit and on a noisy one. Short orbits shrink it towards a stated
  conservative prior (:func:`shrunk_spread`).

References
----------
Worden, J. R. et al. (2017), Evaluation and attribution of OCO-2 XCO2 uncertainties, AMT 10, 2759-2771.
Kulawik, S. S. et al. (2019), Characterization of OCO-2 and ACOS-GOSAT biases and errors, AMT 12, 5317-5334.
Cressie, N. and Hawkins, D. M. (1980), Robust estimation of the variogram, Math. Geol. 12, 115-125.
Efron, B. (2004), Large-scale simultaneous hypothesis testing: the choice of a null hypothesis, JASA 99, 96-104
(an empirical null: the spread of the statistics themselves, estimated robustly).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

#: 1 / Phi^-1(3/4): the median absolute deviation of a normal sample times this is its standard deviation.
MAD_TO_SD = 1.482602218505602
#: Lags of the semivariogram [km]: one frame (2.25 km) to ~100 km, in bins about 1.5x apart.
LAG_EDGES_KM = np.array([1.0, 3.0, 5.5, 8.5, 12.5, 18.0, 26.0, 38.0, 55.0, 80.0, 110.0])
#: Correlation lengths tried by the fit [km].
CORRELATION_GRID_KM = np.geomspace(2.0, 200.0, 41)
#: Land/water stretches (:func:`surface_offsets_ppm`): the track is cut in bins of this length [km], a bin is water
#: when most of its soundings are; a water stretch's offset compares medians within this distance of its edges
#: [km], each side with at least this many soundings.
SURFACE_BIN_KM = 5.0
SURFACE_EDGE_KM = 50.0
SURFACE_MIN_SOUNDINGS = 20


@dataclass(frozen=True)
class VariogramNoise:
    """White and correlated noise of one orbit (NaN where too few pairs)."""

    noise_scale: float  # white scatter / stated uncertainty (root mean square of xco2_uncertainty) [1]
    white_ppm: float  # white scatter [ppm]
    correlated_ppm: float  # standard deviation of the correlated part [ppm]
    correlation_km: float  # its e-folding length [km]
    n_pairs: int  # same-footprint pairs used


def robust_sd(values) -> float:
    """Standard deviation from the median absolute deviation (NaN for fewer than 3 values)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size < 3:
        return float("nan")
    return float(MAD_TO_SD * np.median(np.abs(v - np.median(v))))


def _pair_differences(x_km, y_ppm, footprint, max_lag_km: float) -> tuple[np.ndarray, np.ndarray]:
    """``(lag_km, |dy| ppm)`` of every pair of soundings of the same footprint at most ``max_lag_km`` apart.

    The soundings are sorted by footprint, then position; a pair is a sounding and the m-th next one of its
    footprint (m = 1, 2, ... until no pair is close enough). Pairs come m by m, in sorted order within each m.
    """
    order = np.lexsort((x_km, footprint))
    xs, ys, fs = x_km[order], y_ppm[order], footprint[order]
    lags, steps = [], []
    for m in range(1, 400):  # offsets in the footprint's own sequence
        if m >= xs.size:
            break
        lag = xs[m:] - xs[:-m]  # >= 0 within a footprint: sorted by position
        same = (fs[m:] == fs[:-m]) & (lag <= max_lag_km)
        if not same.any():
            break
        hit = np.flatnonzero(same)
        lags.append(lag[hit])
        steps.append(np.abs(ys[m:][hit] - ys[:-m][hit]))
    if not lags:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(lags), np.concatenate(steps)


def _lag_bins(lag_km: np.ndarray, edges_km: np.ndarray) -> np.ndarray:
    """``np.digitize(lag_km, edges_km) - 1`` for lags in 0 .. edges_km[-1]: the lag bin (-1 below the first edge,
    ``edges_km.size - 1`` at the last one).

    With every edge on a half-km grid (as :data:`LAG_EDGES_KM`), a lag's bin is that of its half-km step, so it is
    looked up (exact: doubling a lag and flooring it lose nothing); otherwise :func:`numpy.digitize`.
    """
    half_steps = edges_km * 2
    if not (np.all(half_steps == np.floor(half_steps)) and lag_km.size and lag_km.max() <= edges_km[-1]):
        return np.digitize(lag_km, edges_km) - 1
    top = int(half_steps[-1])
    table = np.digitize(np.arange(top + 1) / 2, edges_km) - 1
    return table[np.floor(lag_km * 2).astype(np.intp)]


def semivariogram(x_km, xco2_ppm, footprint, lag_edges_km=LAG_EDGES_KM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robust semivariogram of same-footprint pairs: ``(lag_km, gamma_ppm2, n_pairs)`` per lag bin.

    gamma(h) = (mean |y_i - y_j|^(1/2))^4 / (0.457 + 0.494 / n) / 2 over the pairs at lag h (Cressie and Hawkins
    1980): a few plumes or bad soundings move it little, where a mean of squares follows them.
    """
    x = np.asarray(x_km, float)
    y = np.asarray(xco2_ppm, float)
    fp = np.asarray(footprint)
    edges = np.asarray(lag_edges_km, float)
    lag, step = _pair_differences(x, y, fp, edges[-1])
    root = np.sqrt(step)
    n_bins = edges.size - 1
    # shifted by one: bin 0 collects the lags below the first edge, the last bin those at the last edge (dropped)
    which = _lag_bins(lag, edges) + 1
    n = np.bincount(which, minlength=n_bins + 2)[1:n_bins + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_root = np.bincount(which, weights=root, minlength=n_bins + 2)[1:n_bins + 1] / n
        mean_lag = np.bincount(which, weights=lag, minlength=n_bins + 2)[1:n_bins + 1] / n
        gamma = mean_root ** 4 / (0.457 + 0.494 / n) / 2
    return mean_lag, gamma, n


def variogram_noise(x_km, xco2_ppm, uncertainty_ppm, footprint, min_pairs: int = 200) -> VariogramNoise:
    """White scatter and correlated term of one orbit (see the module docstring).

    Parameters
    ----------
    x_km : array_like
        Along-track distance of each sounding [km].
    xco2_ppm, uncertainty_ppm : array_like
        XCO2 and its stated 1-sigma [ppm].
    footprint : array_like of int
        Footprint number (1-8): pairs are taken within a footprint, so its constant bias cancels.
    min_pairs : int
        Fewest pairs in the first lag bin for an estimate (else NaN).
    """
    lag, gamma, n = semivariogram(x_km, xco2_ppm, footprint)
    unc = np.asarray(uncertainty_ppm, float)
    stated = float(np.sqrt(np.mean(unc * unc))) if unc.size else np.nan
    ok = (n >= 20) & np.isfinite(gamma) & (gamma > 0)
    if n[0] < min_pairs or ok.sum() < 4:
        return VariogramNoise(np.nan, np.nan, np.nan, np.nan, int(n.sum()))
    h, g, weight = lag[ok], gamma[ok], np.sqrt(n[ok]) / gamma[ok]  # relative errors ~ 1/sqrt(n)
    best = None
    for length in CORRELATION_GRID_KM:  # linear in (nugget, c^2, b) for a given length: non-negative LSQ
        basis = np.stack([np.ones_like(h), 1 - np.exp(-h / length), h * h], axis=1)
        coef, residual = nnls(basis * weight[:, None], g * weight)
        if best is None or residual < best[0]:
            best = (residual, coef, length)
    _, (nugget, c2, _), length = best
    white = float(np.sqrt(nugget))
    return VariogramNoise(white / stated if stated > 0 else np.nan, white, float(np.sqrt(c2)),
                          float(length) if c2 > 0 else np.nan, int(n.sum()))


def screen_spread(snr: np.ndarray, sigma_km: np.ndarray, data_km: float) -> tuple[np.ndarray, np.ndarray]:
    """Robust spread of the screen's significance for each width, and its effective sample size.

    Parameters
    ----------
    snr : ndarray, shape (n_sigma, n_bins)
        The screen's A / stderr(A) at every bin for every width (0 where no fit).
    sigma_km : ndarray, shape (n_sigma,)
        The widths [km].
    data_km : float
        Along-track length covered by data [km]: the significance at one width is correlated over a few widths,
        so an orbit holds about ``data_km / (4 sigma)`` independent values (at most the number of bins).
    """
    snr = np.asarray(snr, float)
    spread = np.full(snr.shape[0], np.nan)
    n_eff = np.zeros(snr.shape[0])
    for k in range(snr.shape[0]):
        values = snr[k][snr[k] != 0]
        if values.size >= 20:
            spread[k] = robust_sd(values)
            n_eff[k] = min(values.size, data_km / (4.0 * sigma_km[k]))
    return spread, n_eff


def shrunk_spread(spread: np.ndarray, n_eff: np.ndarray, prior: float, prior_samples: float) -> np.ndarray:
    """Spread shrunk towards a conservative ``prior`` by its sample size: variances averaged with weights
    ``n_eff`` and ``prior_samples`` (a short orbit, or a wide width that it holds few times, leans on the prior),
    and never below 1 (never more sensitive than the stated noise)."""
    s2 = np.where(np.isfinite(spread), spread, 0.0) ** 2
    n = np.where(np.isfinite(spread), n_eff, 0.0)
    pooled = (n * s2 + prior_samples * prior ** 2) / (n + prior_samples)
    return np.maximum(np.sqrt(pooled), 1.0)


def surface_offsets_ppm(x_km, xco2_ppm, land_water) -> np.ndarray:
    """The offset [ppm] of each sounding's surface stretch against the land beside it (0 on land).

    ``land_water`` is ``land_water_indicator`` (0 land, 1 water, 2 inland water, 3 mixed: water is 1 and 2); ``x_km``
    the distance along the track, sorted. The track is cut into :data:`SURFACE_BIN_KM` bins; runs of bins where
    most soundings are water are stretches. A stretch's offset is the median of its water soundings within
    :data:`SURFACE_EDGE_KM` of its edges minus the median of the land soundings within that distance outside them
    (both edges pooled; an edge with too few soundings on either side is left out; no edge, no offset), and it
    applies to the stretch's water soundings. Medians over 50 km barely move for a plume of a few km at a coast
    (one in ten soundings raised shifts a median by a tenth of the noise's sd), so a coastal plume is not taken
    away as an offset. Real retrievals differ over land and ocean by tenths of a ppm (glint and nadir, surface
    albedo; Wunch et al. 2017, AMT 10, 2209-2238; the bias correction's surface terms, O'Dell et al. 2018, AMT 11,
    6539-6576)."""
    x = np.asarray(x_km, float)
    y = np.asarray(xco2_ppm, float)
    water = np.isin(np.asarray(land_water), (1, 2))
    out = np.zeros(x.size)
    if x.size == 0 or not water.any() or water.all():
        return out
    bins = np.floor((x - x[0]) / SURFACE_BIN_KM).astype(np.int64)
    n_bins = int(bins[-1]) + 1
    share = np.bincount(bins, water, n_bins) / np.maximum(np.bincount(bins, None, n_bins), 1)
    wet = np.r_[False, share > 0.5, False]
    starts = np.flatnonzero(~wet[:-1] & wet[1:])  # first wet bin of each run
    stops = np.flatnonzero(wet[:-1] & ~wet[1:])  # one past its last
    for b0, b1 in zip(starts, stops):
        lo, hi = x[0] + b0 * SURFACE_BIN_KM, x[0] + b1 * SURFACE_BIN_KM
        inside = water & (x >= lo) & (x < hi)
        diffs = []
        for edge, side in ((lo, -1.0), (hi, 1.0)):
            near_in = inside & (np.abs(x - edge) <= SURFACE_EDGE_KM)
            beyond = (side * (x - edge) >= 0) & (side * (x - edge) <= SURFACE_EDGE_KM) & ~water
            if np.count_nonzero(near_in) >= SURFACE_MIN_SOUNDINGS and np.count_nonzero(beyond) >= SURFACE_MIN_SOUNDINGS:
                diffs.append(np.median(y[near_in]) - np.median(y[beyond]))
        if diffs:
            out[inside] = float(np.mean(diffs))
    return out
