"""Rejection rules: per-candidate statistics (computed once per fit) and the rules evaluated over them.

Statistics depend on the data and the fit only; the rules compare them with the thresholds of a
:class:`core.settings.DetectionSettings`. So changing a threshold re-evaluates the rules over a table of
candidates in milliseconds, without refitting, and every candidate gets the list of the rules it failed
(``rejected_by``), not just a verdict.

References
----------
Chevallier, F. et al. (2020), GRL 47, e2020GL090007, as implemented by oco2peak (2020): the rules
``min-soundings`` .. ``fit-quality``. The rules ``significance``, ``step-like``, ``box-like`` (with its
two-plume alternative, :func:`best_pair_chi2`), ``surface-transition`` and ``support`` are this project's
(docs/METHOD.md section 2, known weaknesses).
"""
from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd

from .fitting import FitResult, gaussian_line, unit_gaussian
from .settings import RULES, DetectionSettings
from .track import MIN_WIND_ANGLE_DEG

#: Span of the step and plateau comparisons: this many widths either side of the centre, at least this many km
#: (bench/bench_quality.py: 10 widths gave recall +0.015 at +0.01 false events per 1,000 km over the whole window;
#: 6 and 16 widths did worse).
LOCAL_SPAN_SIGMA = 10.0
LOCAL_SPAN_MIN_KM = 15.0
#: The step's edges are searched within this many widths of the centre, the plateau's within this many.
STEP_SPAN_SIGMA = 2.0
PLATEAU_SPAN_SIGMA = 3.0
#: The blend of two plumes (:func:`best_pair_chi2`): a grid of this many centres by this many widths.
PAIR_CENTRES, PAIR_WIDTHS = 13, 3
#: At most this many candidate plateau edges (:func:`best_plateau_chi2`).
MAX_PLATEAU_EDGES = 96
#: Footprint shift ratios tried without the wind (``shift_gain``, ``burst_advantage``): every crossing from 15 deg
#: off the track on either side (:data:`core.track.MIN_WIND_ANGLE_DEG`; ratio = cot(angle)), 0 among them.
FREE_RATIOS = np.linspace(-1.0, 1.0, 37) / np.tan(np.radians(MIN_WIND_ANGLE_DEG))
#: A surface-pressure error term enters a window's covariate model where its coefficient is this significant.
DP_MIN_T = 3.0
#: Statistics columns each fitted candidate carries (inputs of the rules).
STAT_COLUMNS = ("n_window", "n_orbit", "near_left", "near_right", "flank_left", "flank_right", "r", "r2",
                "snr", "delta_chi2_step", "delta_chi2_box", "delta_chi2_pair", "surface_transition", "support_frames",
                "support_footprints", "top_share", "delta_chi2_frame", "footprint_chi2", "geometry_tells",
                "shift_gain", "burst_advantage", "covariate_share")


def window_stats(x_km, y_ppm, unc_ppm, frame, footprint, land_water, fit: FitResult, n_orbit: int,
                 settings, x_track_km=None, dp_hpa=None) -> dict:
    """Statistics of one fitted window (arrays: the window's soundings, sorted by ``x_km``).

    ``x_km`` is the coordinate the Gaussian was fitted in; ``x_track_km`` (default: the same) the distance along
    the track. The step and plateau alternatives are fitted along the track, where a land/water edge or a burst
    of contaminated frames is sharp; the chi-squares compare the same soundings under either model: those within
    ``max(LOCAL_SPAN_SIGMA sigma, LOCAL_SPAN_MIN_KM)`` of the centre, each model with its own line (the
    Gaussian's shape kept from the fit). Over the whole window, a stronger plume 15-30 km away made a step
    fit better than the Gaussian (4 real plumes of the OSSE rejected as step-like).

    Where the plateau beats the Gaussian, ``delta_chi2_pair`` is chi2(plateau) - chi2(best pair of Gaussians)
    (:func:`best_pair_chi2`, on the same soundings in the fit's coordinate): two plumes a few km apart make one
    flat-topped bump, which a plateau fits better than one Gaussian and a pair better still.

    ``covariate_share`` (:func:`covariate_share`, ``dp_hpa``: the window's ``psurf - psurf_apriori`` or None) is
    the share of the Gaussian's significance left when the surface is modelled beside it on the same soundings.

    Two settings shape statistics rather than thresholds: ``rules.surface_transition.margin_km`` widens the
    +-2 sigma span searched for a land/water transition, ``rules.box_like.min_width_km`` is the narrowest
    plateau compared with the Gaussian.
    """
    surface_margin_km = settings["rules.surface_transition.margin_km"]
    v = fit.values
    x0, sigma = v["center"], v["sigma"]
    d = x_km - x0
    stats = {"n_window": int(x_km.size), "n_orbit": int(n_orbit)}
    stats["near_left"] = int(np.count_nonzero((d >= -sigma) & (d < 0)))
    stats["near_right"] = int(np.count_nonzero((d >= 0) & (d <= sigma)))
    stats["flank_left"] = int(np.count_nonzero((d >= -3 * sigma) & (d <= -2 * sigma)))
    stats["flank_right"] = int(np.count_nonzero((d >= 2 * sigma) & (d <= 3 * sigma)))

    core = np.abs(d) <= 4 * sigma
    r = _correlation(gaussian_line(x_km[core], **v), y_ppm[core]) if core.sum() >= 3 else 0.0
    stats["r"], stats["r2"] = r, r * r
    se = fit.stderr["amplitude"]
    stats["snr"] = float(v["amplitude"] / se) if se and np.isfinite(se) and se > 0 else 0.0

    weight = 1.0 / unc_ppm ** 2
    d_track = d if x_track_km is None else x_track_km - x0
    # the alternatives are compared with the Gaussian on the data around it: a neighbouring plume or background
    # feature elsewhere in the 200 km window must not make the candidate look step- or plateau-like
    local = np.abs(d_track) <= max(LOCAL_SPAN_SIGMA * sigma, LOCAL_SPAN_MIN_KM)
    d_local, y_local, w_local = d_track[local], y_ppm[local], weight[local]
    gaussian_chi2 = _gaussian_line_chi2(d[local], y_local, w_local, sigma)
    track = _SortedTrack(d_local, y_local, w_local)  # the step and the plateau share its line and sums
    stats["delta_chi2_step"] = float(track.best_step_chi2(STEP_SPAN_SIGMA * sigma) - gaussian_chi2)
    plateau_chi2 = track.best_plateau_chi2(PLATEAU_SPAN_SIGMA * sigma, settings["rules.box_like.min_width_km"])
    stats["delta_chi2_box"] = float(plateau_chi2 - gaussian_chi2)
    # where a plateau beats the Gaussian (two thirds of the fits): is the bump a blend of two plumes? A burst's
    # sharp edges beat any pair. Elsewhere NaN: a plateau that loses to the Gaussian rejects nothing (threshold <= 0)
    stats["delta_chi2_pair"] = (float(plateau_chi2 - best_pair_chi2(d[local], y_local, w_local, sigma))
                                if stats["delta_chi2_box"] < 0 else np.nan)
    stats["covariate_share"] = covariate_share(d[local], y_local, w_local, sigma, land_water[local],
                                               None if dp_hpa is None else dp_hpa[local])

    span = np.abs(d) <= 2 * sigma + surface_margin_km
    kinds = np.unique(np.where(land_water[span] == 0, 0, 1)) if span.any() else np.zeros(0)
    stats["surface_transition"] = bool(kinds.size > 1 or np.any(land_water[span] == 3))

    near = np.abs(d) <= 2 * sigma
    excess = y_ppm[near] - (v["slope"] * d[near] + v["intercept"])
    if excess.size:
        stats["support_frames"] = _groups_above(frame[near], excess)
        stats["support_footprints"] = _groups_above(footprint[near], excess)
        positive = np.clip(excess, 0, None)
        total = positive.sum()
        top = np.sort(positive)[::-1][: max(1, int(np.ceil(0.1 * positive.size)))]
        stats["top_share"] = float(top.sum() / total) if total > 0 else 1.0
    else:
        stats["support_frames"] = stats["support_footprints"] = 0
        stats["top_share"] = 1.0
    return stats


def _gaussian_line_chi2(d, y, w, sigma):
    """Chi-square of the best ``b + m d + A g(d; sigma)`` (Gaussian shape fixed at the fit's centre and width)."""
    if np.size(d) < 4:
        return np.inf
    return float(gaussian_line_chi2_many(np.asarray(d, float)[None, :], y, w, sigma)[0])


def gaussian_line_chi2_many(d, y, w, sigma) -> np.ndarray:
    """:func:`_gaussian_line_chi2` for several coordinates of the same soundings at once: ``d`` of shape (k, n)
    (e.g. one row per footprint shift tried), one chi-square per row (inf where the 3x3 system is singular)."""
    d = np.asarray(d, float)
    basis = np.empty((d.shape[0], 3, d.shape[1]))  # (k, 3, n): 1, d, g
    basis[:, 0] = 1.0
    basis[:, 1] = d
    basis[:, 2] = unit_gaussian(d, sigma)
    weighted = basis * w
    a = weighted @ basis.transpose(0, 2, 1)  # (k, 3, 3)
    rhs = weighted @ y  # (k, 3)
    a = a + np.eye(3) * (1e-12 * np.trace(a, axis1=1, axis2=2))[:, None, None]
    try:
        p = np.linalg.solve(a, rhs[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        return np.array([_gaussian_line_chi2(row, y, w, sigma) for row in d]) if d.shape[0] > 1 else np.array([np.inf])
    return np.maximum((w * y * y).sum() - np.einsum("kj,kj->k", p, rhs), 0.0)


def _weighted_line(d, y, w):
    """The weighted line ``y = b + m d`` alone: ``w d``, ``w y``, the normal matrix's entries and determinant
    ``(sw, swd, swdd, det)``, and ``(b0, m0, chi2_line)`` (NaN when the line is undetermined). A further
    regressor is projected off the line with these (Schur complement)."""
    wd, wy = w * d, w * y
    sw, swd, swdd, swy, swdy = w.sum(), wd.sum(), (wd * d).sum(), wy.sum(), (wy * d).sum()
    det = sw * swdd - swd * swd
    with np.errstate(all="ignore"):
        b0, m0 = (swdd * swy - swd * swdy) / det, (sw * swdy - swd * swy) / det
        chi2_line = (wy * y).sum() - (b0 * swy + m0 * swdy)
    return wd, wy, (sw, swd, swdd, det), (b0, m0, chi2_line)


def best_pair_chi2(d, y, w, sigma_km: float, n_centres: int = PAIR_CENTRES,
                   n_widths: int = PAIR_WIDTHS) -> float:
    """Smallest chi-square of ``y = b + m d + A1 g(d - c1; s1) + A2 g(d - c2; s2)`` over a grid of centres
    (|c| <= 2.5 sigma) and widths (sigma/4 .. sigma, at least 0.6 km), the two bumps at least the wider's width
    apart: two plumes blended into one wide bump.

    Given the centres and widths the model is linear. The line is solved once and each grid component projected
    off it (Schur complement, as in :func:`_best_indicator_chi2`): with t_jk = g_j.W.g_k - u_j.L^-1.u_k and
    q_j = g_j.W.y - u_j.p0, a pair lowers the line's chi-square by the 2x2 form q.T^-1.q, for every pair at once.
    """
    if d.size < 8:
        return np.inf
    found = _pair_gains(d, y, w, sigma_km, n_centres, n_widths)
    if found is None:
        return np.inf
    chi2_line, gain = found[0], found[-1]
    return float(max(chi2_line - gain.max(), 0.0)) if gain.size else float(chi2_line)


def _pair_gains(d, y, w, sigma_km: float, n_centres: int = PAIR_CENTRES, n_widths: int = PAIR_WIDTHS):
    """``(chi2_line, centres, widths, j, k, gain)`` of :func:`best_pair_chi2`: the pairs (j, k) of the grid's
    (centre, width) tried and how much each lowers the line's chi-square; None when the line is undetermined."""
    centres = np.linspace(-2.5 * sigma_km, 2.5 * sigma_km, n_centres)
    widths = np.geomspace(max(0.6, sigma_km / 4), max(sigma_km, 0.6), n_widths)
    c, s = np.repeat(centres, n_widths), np.tile(widths, n_centres)  # every (centre, width), centre-major
    g = unit_gaussian(d[None, :] - c[:, None], s[:, None])
    wd, _, (sw, swd, swdd, det), (b0, m0, chi2_line) = _weighted_line(d, y, w)
    if not det > 0:
        return None
    u0, u1 = g @ w, g @ wd  # (K,)
    gw = g * w
    t = gw @ g.T - (swdd * np.outer(u0, u0) - swd * (np.outer(u0, u1) + np.outer(u1, u0))
                    + sw * np.outer(u1, u1)) / det
    q = gw @ y - (b0 * u0 + m0 * u1)
    j, k = _pairs(c.size)
    apart = np.abs(c[j] - c[k]) >= np.maximum(s[j], s[k])  # two bumps, not one split in two
    j, k = j[apart], k[apart]
    tjj, tkk, tjk = t[j, j], t[k, k], t[j, k]
    with np.errstate(all="ignore"):
        det2 = tjj * tkk - tjk * tjk
        gain = (tkk * q[j] ** 2 - 2 * tjk * q[j] * q[k] + tjj * q[k] ** 2) / det2
    ok = np.isfinite(gain) & (det2 > 1e-9 * np.maximum(tjj * tkk, 1e-300))
    return chi2_line, c, s, j[ok], k[ok], gain[ok]


def geometry_stats(x_track_km, cross_km, footprint, y_ppm, weight, centre_km: float, sigma_km: float,
                   ratio: float, ratio_sd: float, n_steps: int = 7) -> dict:
    """Is the bump a plume (wind-aligned across the 8 footprints) or a burst of bad frames (frame-aligned)?

    A burst raises the same frames on every footprint it touches: its edges are the frames', at the same
    along-track position on each footprint (shift ratio 0), and it may touch part of the footprints only. A plume
    crossed obliquely meets footprint k ``cross_k * ratio`` further along (:func:`core.track.shift_ratio`), and
    covers the whole swath. On the soundings within ``max(10 sigma, 15 km)`` of the centre, with a Gaussian of the
    fitted width and a line:

    * ``delta_chi2_frame`` = min chi2 over the ratios the wind allows (within two sigma of ``ratio``, 0 excluded
      when that range excludes it) - chi2 at ratio 0: positive where the frame-aligned geometry fits better;
    * ``geometry_tells``: the wind-allowed footprint shifts spread the plume across the swath by at least one
      width (``|ratio| - 2 sd`` times the swath >= sigma); where they do not (a wind near perpendicular to the
      track, or too uncertain), geometry cannot tell a burst from a plume and the row says so;
    * ``footprint_chi2`` = chi2(one amplitude) - chi2(one amplitude per footprint), divided by the common fit's
      reduced chi-square (at least 1): ~chi2 with (footprints - 1) degrees of freedom for a plume, large for a
      burst on part of the footprints.

    Without the wind (which may be off by tens of degrees), over every shift ratio :data:`FREE_RATIOS` (odd in
    number, 0 in the middle), with chi-squares divided by the best one's reduced chi-square (at least 1: noise
    above the stated one):

    * ``shift_gain`` = chi2 at ratio 0 - the smallest chi2 over the ratios: how much better the footprints fit
      shifted against each other than aligned on the frames (~0-2 for a burst, and for a plume crossed at right
      angles; tens for most plumes);
    * ``burst_advantage`` = that smallest chi2 - chi2 of the burst's own model (frame-aligned, one amplitude per
      footprint): positive where a burst on some footprints explains the bump better than any plume crossing
      (~chi2 with 7 degrees of freedom minus the crossing's gain for a plume; large for a burst on part of the
      swath).

    Both models fit one offset per footprint: footprint biases (Kulawik et al. 2019) are neither a crossing nor a
    burst.
    """
    x, cross, y, w = (np.asarray(a, float) for a in (x_track_km, cross_km, y_ppm, weight))
    fp = np.asarray(footprint)
    local = np.abs(x - centre_km) <= max(LOCAL_SPAN_SIGMA * sigma_km, LOCAL_SPAN_MIN_KM)
    x, cross, y, w, fp = x[local], cross[local], y[local], w[local], fp[local]
    out = {"delta_chi2_frame": np.nan, "footprint_chi2": np.nan, "geometry_tells": False, "shift_gain": np.nan,
           "burst_advantage": np.nan}
    if x.size < 12:
        return out
    swath_km = float(np.ptp(cross)) if cross.size else 0.0
    lo, hi = abs(ratio) - 2 * ratio_sd, abs(ratio) + 2 * ratio_sd
    out["geometry_tells"] = bool(lo * swath_km >= sigma_km)
    allowed = np.sign(ratio) * np.linspace(max(lo, 0.0), hi, n_steps) if ratio != 0 else np.zeros(1)
    chi2_all = gaussian_line_chi2_many(x[None, :] + cross[None, :] * np.r_[0.0, allowed][:, None] - centre_km, y, w,
                                       sigma_km)
    frame_chi2, chi2 = float(chi2_all[0]), chi2_all[1:]
    wind_chi2 = float(chi2.min())
    out["delta_chi2_frame"] = float(wind_chi2 - frame_chi2)
    # footprint consistency, in the geometry that fits best of the two
    d = x - centre_km if frame_chi2 <= wind_chi2 else x + cross * allowed[int(np.argmin(chi2))] - centre_km
    best = min(frame_chi2, wind_chi2)
    per_footprint = _per_footprint_chi2(d, fp, y, w, sigma_km)
    if per_footprint is None:
        return out
    redchi = max(best / max(x.size - 3, 1), 1.0)
    out["footprint_chi2"] = float((best - per_footprint) / redchi)
    # without the wind: any crossing against frame-aligned edges, and against the burst's own model, each with one
    # offset per footprint (footprint biases, Kulawik et al. 2019, are neither a crossing nor a burst)
    onehot = (fp[:, None] == np.unique(fp)[None, :]).astype(float)
    yt = _demeaned(y[None, :], w, onehot)[0]  # the data less its footprints' offsets, for both models
    crossings = _offset_chi2_many(x[None, :] + cross[None, :] * FREE_RATIOS[:, None] - centre_km, yt, w, onehot,
                                  sigma_km)
    free, aligned = float(crossings.min()), float(crossings[FREE_RATIOS.size // 2])  # the middle ratio is 0
    redchi_free = max(free / max(x.size - 2 - onehot.shape[1], 1), 1.0)
    out["shift_gain"] = float(max(aligned - free, 0.0) / redchi_free)
    burst = _offset_burst_chi2(x - centre_km, yt, w, onehot, sigma_km)
    if burst is not None:
        out["burst_advantage"] = float((free - burst) / redchi_free)
    return out


def _demeaned(values, w, onehot):
    """``values`` (rows of soundings) less their weighted mean on each footprint (``onehot``: soundings x
    footprints): what is left once one offset per footprint is fitted."""
    means = ((values * w) @ onehot) / (w @ onehot)
    return values - means @ onehot.T


def _offset_chi2_many(d, yt, w, onehot, sigma_km: float) -> np.ndarray:
    """Chi-square of ``b_k + m d + A g(d; sigma)`` with one offset ``b_k`` per footprint, for each row of ``d``
    (k, n) (e.g. one per footprint shift); ``yt``: the data already :func:`_demeaned`. The offsets projected out,
    a 2x2 system per row (inf if singular)."""
    dt, gt = _demeaned(d, w, onehot), _demeaned(unit_gaussian(d, sigma_km), w, onehot)
    a11, a12, a22 = (w * dt * dt).sum(1), (w * dt * gt).sum(1), (w * gt * gt).sum(1)
    r1, r2 = (w * dt * yt).sum(1), (w * gt * yt).sum(1)
    det = a11 * a22 - a12 * a12
    with np.errstate(all="ignore"):
        gain = (a22 * r1 * r1 - 2 * a12 * r1 * r2 + a11 * r2 * r2) / det
    return np.where(det > 1e-12 * np.maximum(a11 * a22, 1e-300), np.maximum((w * yt * yt).sum() - gain, 0.0), np.inf)


def _offset_burst_chi2(d, yt, w, onehot, sigma_km: float) -> float | None:
    """Chi-square of the burst's model, frame-aligned: ``b_k + m d + A_k g(d; sigma)``, an offset and an amplitude
    per footprint ``k`` (``yt``: the data already :func:`_demeaned`; None: singular)."""
    basis = np.vstack([_demeaned(d[None, :], w, onehot),
                       _demeaned(unit_gaussian(d, sigma_km)[None, :] * onehot.T, w, onehot)])
    return _linear_chi2(basis, yt, w)


def covariate_share(d, y, w, sigma_km: float, land_water, dp_hpa=None) -> float:
    """Share of the Gaussian's significance left when the surface is modelled beside it: ``t(A)`` of
    ``b + m d + A g(d; sigma) + covariates`` over ``t(A)`` of the model without them, on the same soundings, at
    most 1 (1 where no covariate enters). Covariates: one offset per surface kind (``land_water_indicator``) where
    the soundings hold more than one (a coast, a lake: the retrieval's bias differs over water), and ``dp_hpa``
    (``psurf - psurf_apriori``: the bias correction's surface-pressure term leaves an error proportional to it,
    Kiel et al. 2019, AMT 12, 2241-2259) where its coefficient is significant (``|t| >= DP_MIN_T``).

    A plume one width from a coast keeps about half of its significance (the step and the bump overlap there; the
    water stretches' offsets are mostly removed before, ``noise.surface_offsets``); a land/water step or a pressure
    artefact fitted as a Gaussian keeps a quarter or less. The mirror's depletions get the same treatment, so the
    month's threshold stays calibrated (docs/METHOD.md section 2)."""
    d = np.asarray(d, float)
    if d.size < 8:
        return 1.0
    g = unit_gaussian(d, sigma_km)
    base = [np.ones_like(d), d, g]
    extra = [(land_water == k).astype(float) for k in np.unique(land_water)[1:]]
    if dp_hpa is not None and np.all(np.isfinite(dp_hpa)) and np.ptp(dp_hpa) > 0:
        dp = np.asarray(dp_hpa, float) - np.mean(dp_hpa)
        t = _t_values(np.vstack(base + extra + [dp]), y, w)
        if t is not None and abs(t[-1]) >= DP_MIN_T:
            extra.append(dp)
    if not extra:
        return 1.0
    t0, t1 = _t_values(np.vstack(base), y, w), _t_values(np.vstack(base + extra), y, w)
    if t0 is None or t1 is None or not t0[2] > 0:
        return 1.0
    return float(np.clip(t1[2] / t0[2], 0.0, 1.0))


def _t_values(basis, y, w) -> np.ndarray | None:
    """Coefficient / standard error of each row of ``basis`` in the weighted least-squares fit of ``y`` (the
    weights as inverse variances; None: singular)."""
    a = (basis * w) @ basis.T
    try:
        cov = np.linalg.inv(a + np.eye(a.shape[0]) * 1e-12 * np.trace(a))
    except np.linalg.LinAlgError:
        return None
    p = cov @ ((basis * w) @ y)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, p / se, 0.0)


def _per_footprint_chi2(d, footprint, y, w, sigma_km: float) -> float | None:
    """Chi-square of ``b + m d + A_k g(d; sigma)`` with one amplitude per footprint ``k`` (None: singular)."""
    g = unit_gaussian(d, sigma_km)
    return _linear_chi2(np.vstack([np.ones_like(d), d] + [g * (footprint == k) for k in np.unique(footprint)]), y, w)


def _linear_chi2(basis, y, w) -> float | None:
    """Chi-square of the weighted least-squares fit of ``y`` on the rows of ``basis`` (None: singular)."""
    a = (basis * w) @ basis.T
    rhs = (basis * w) @ y
    try:
        p = np.linalg.solve(a + np.eye(a.shape[0]) * 1e-12 * np.trace(a), rhs)
    except np.linalg.LinAlgError:
        return None
    return float(max((w * y * y).sum() - p @ rhs, 0.0))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two samples; 0 when either is constant."""
    da, db = a - a.mean(), b - b.mean()
    saa, sbb = float(da @ da), float(db @ db)
    if not (saa > 0 and sbb > 0):
        return 0.0
    return float(np.clip((da @ db) / np.sqrt(saa * sbb), -1.0, 1.0))


def _groups_above(groups: np.ndarray, excess: np.ndarray) -> int:
    """How many distinct groups (frames, footprints: integers) have a positive mean excess."""
    first = groups.min()
    sums = np.bincount(groups - first, weights=excess)
    return int(np.count_nonzero(sums > 0))


@functools.lru_cache(maxsize=256)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.triu_indices(n, k=1)``: every pair (j < k) of ``n`` items (kept: the same few sizes recur)."""
    j, k = np.triu_indices(n, k=1)
    j.flags.writeable = k.flags.writeable = False
    return j, k


class _SortedTrack:
    """Soundings sorted by ``d`` [km] (stable), with the weighted line alone and the cumulative sums of
    ``w``, ``w d``, ``w y`` that every indicator regressor (:func:`_best_indicator_chi2`) projects off it: computed
    once for the step and the plateau of a window."""

    def __init__(self, d_km, y_ppm, weight):
        order = np.argsort(d_km, kind="stable")
        self.d, self.y, self.w = d_km[order], y_ppm[order], weight[order]
        self._prepared = None

    def prepared(self):
        if self._prepared is None:
            wd, wy, normal, line = _weighted_line(self.d, self.y, self.w)
            cum = np.concatenate([np.zeros((3, 1)), np.cumsum(np.stack([self.w, wd, wy]), axis=1)], axis=1)
            self._prepared = normal, line, cum
        return self._prepared

    def best_step_chi2(self, half_span_km: float) -> float:
        """:func:`best_step_chi2` of these soundings."""
        if self.d.size < 6:
            return np.inf
        return _best_indicator_chi2(self, *self.step_indicators(half_span_km))

    def step_indicators(self, half_span_km: float) -> tuple[np.ndarray, np.ndarray]:
        """``(starts, stops)`` of the steps :meth:`best_step_chi2` tries (sorted positions)."""
        d, n = self.d, self.d.size
        splits = np.flatnonzero((d[:-1] >= -half_span_km) & (d[1:] <= half_span_km)) + 1
        splits = splits[(splits >= 2) & (splits <= n - 2)]
        return splits, np.full(splits.size, n)

    def best_plateau_chi2(self, half_span_km: float, min_width_km: float = 0.0,
                          max_edges: int = MAX_PLATEAU_EDGES) -> float:
        """:func:`best_plateau_chi2` of these soundings."""
        if self.d.size < 8:
            return np.inf
        return _best_indicator_chi2(self, *self.plateau_indicators(half_span_km, min_width_km, max_edges))

    def plateau_indicators(self, half_span_km: float, min_width_km: float = 0.0,
                           max_edges: int = MAX_PLATEAU_EDGES) -> tuple[np.ndarray, np.ndarray]:
        """``(starts, stops)`` of the plateaus :meth:`best_plateau_chi2` tries (sorted positions)."""
        d, n = self.d, self.d.size
        edges = np.flatnonzero((d[:-1] >= -half_span_km) & (d[1:] <= half_span_km) & (d[1:] > d[:-1])) + 1
        edges = edges[(edges >= 2) & (edges <= n - 2)]
        if edges.size > max_edges:
            edges = edges[np.linspace(0, edges.size - 1, max_edges).astype(int)]
        first, second = _pairs(edges.size)
        starts, stops = edges[first], edges[second]
        wide = (d[stops - 1] - d[starts]) >= min_width_km
        return starts[wide], stops[wide]


def _best_indicator_chi2(track: _SortedTrack, starts: np.ndarray, stops: np.ndarray) -> float:
    """Smallest chi-square of ``y = b + m d + s H`` where H is 1 on sorted soundings [start, stop).

    The line alone is solved once; H is one more regressor (Schur complement, as in :mod:`core.screen`): with
    u = [sum w H, sum w d H], p0 the line's coefficients and L its normal matrix, chi2 = chi2_line - q^2 / t
    where q = sum w y H - u.p0 and t = sum w H - u.L^-1.u (H^2 = H). An H the line already spans (t ~ 0) leaves
    the line's chi-square.
    """
    if starts.size == 0:
        return np.inf
    return float(max(_indicator_chi2s(track, starts, stops).min(), 0.0))


def _indicator_chi2s(track: _SortedTrack, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The chi-square of each indicator of :func:`_best_indicator_chi2` (inf where undetermined)."""
    (sw, swd, swdd, det), (b0, m0, chi2_line), cum = track.prepared()
    hw, hwd, hwy = cum[:, stops] - cum[:, starts]
    with np.errstate(all="ignore"):
        t = hw - (swdd * hw * hw - 2 * swd * hw * hwd + sw * hwd * hwd) / det
        q = hwy - (b0 * hw + m0 * hwd)
        chi2 = np.where(t > 1e-12 * np.maximum(hw, 1e-300), chi2_line - q * q / t, chi2_line)
    return np.where(np.isfinite(chi2), chi2, np.inf)


def best_step_chi2(d_km, y_ppm, weight, half_span_km: float) -> float:
    """Smallest weighted chi-square of ``y = b + m d + s H(d - d_s)`` over step positions |d_s| <= half_span.

    Every split between consecutive soundings in the span is tried at once from cumulative sums (3x3 normal
    equations per split), so a land/water edge or a bias jump is compared fairly with the Gaussian.
    """
    return _SortedTrack(d_km, y_ppm, weight).best_step_chi2(half_span_km)


def best_plateau_chi2(d_km, y_ppm, weight, half_span_km: float, min_width_km: float = 0.0,
                      max_edges: int = MAX_PLATEAU_EDGES) -> float:
    """Smallest chi-square of ``y = b + m d + s 1[d_a <= d < d_b]`` (a plateau with sharp edges, the shape of a
    burst of cloud-contaminated soundings), over plateaus at least ``min_width_km`` wide with both edges within
    |d| <= half_span (at most ``max_edges`` candidate edges, evenly spread: at most ~4,600 pairs).

    Edges are every position where the sorted track advances, so a burst's edges are found where they are: with
    32 edges spread over a span of ~100 soundings, the plateau's edges missed the burst's by up to a frame and the
    Gaussian won (on the OSSE, 14 of 37 false events on plume-free passes were cloud bursts; with 96, 4).

    A plateau one or two frames wide is also what a narrow plume looks like at 2.25 km sampling, so only wide
    plateaus are compared with the Gaussian.
    """
    return _SortedTrack(d_km, y_ppm, weight).best_plateau_chi2(half_span_km, min_width_km, max_edges)


def rule_failures(stats, settings: DetectionSettings, significance_threshold: float | None = None
                  ) -> dict[str, np.ndarray]:
    """For each enabled rule, a boolean array: True where the candidate fails it (``stats``: a table or a mapping
    of column name to array).

    The significance rule compares ``significance`` (A / stderr(A) over the orbit's noise calibration; ``snr``
    where a table has none) with ``significance_threshold`` (the month's, :mod:`core.false_alarms`), by default
    ``rules.significance.min_snr``."""
    s = settings
    threshold = s["rules.significance.min_snr"] if significance_threshold is None else significance_threshold
    significance = lambda: np.asarray(stats["significance"] if "significance" in stats else stats["snr"], float)  # noqa: E731
    sigma = np.asarray(stats["sigma_km"], float)
    amplitude = np.asarray(stats["amplitude_ppm_km"], float)
    col = {c: np.asarray(stats[c]) for c in STAT_COLUMNS if c in stats}
    need_near = np.floor(s["rules.near_sides.per_sigma_km"] * sigma)
    need_flank = np.floor(s["rules.flanks.per_sigma_km"] * sigma)
    tests = {
        "min-soundings": lambda: col["n_window"] < s["rules.min_soundings.threshold"],
        "min-orbit-soundings": lambda: col["n_orbit"] < s["rules.min_orbit_soundings.threshold"],
        "too-narrow": lambda: sigma < s["rules.too_narrow.min_sigma_km"],
        "too-wide": lambda: s["rules.too_wide.n_sigma"] * sigma > s["fit.window_km"] / 2,
        "depletion": lambda: ~(amplitude > 0),
        "near-sides": lambda: (col["near_left"] < need_near) | (col["near_right"] < need_near),
        "flanks": lambda: (col["flank_left"] < need_flank) | (col["flank_right"] < need_flank),
        "fit-quality": lambda: ~((col["r"] > 0) & (col["r2"] >= s["rules.fit_quality.min_r2"])),
        "significance": lambda: ~(significance() >= threshold),
        "step-like": lambda: ~(col["delta_chi2_step"] > s["rules.step_like.min_delta_chi2"]),
        "box-like": lambda: (~(col["delta_chi2_box"] > s["rules.box_like.min_delta_chi2"])
                             & ~(s["rules.box_like.spare_blends"]
                                 & (col["delta_chi2_pair"] > s["rules.box_like.min_pair_advantage"])
                                 & ~burst_like(stats, s))),
        "surface-transition": lambda: col["surface_transition"].astype(bool),
        "frame-aligned": lambda: ((col["footprint_chi2"] > s["rules.frame_aligned.max_footprint_chi2"])
                                  | (col["geometry_tells"].astype(bool)
                                     & (col["delta_chi2_frame"] > s["rules.frame_aligned.max_frame_advantage"]))
                                  | (col.get("burst_advantage", np.full(sigma.shape, np.nan))  # older tables
                                     > s["rules.frame_aligned.max_burst_advantage"])
                                  | (s["rules.frame_aligned.reject_burst_like"] & burst_like(stats, s))),
        "support": lambda: ((col["support_frames"] < s["rules.support.min_frames"])
                            | (col["support_footprints"] < s["rules.support.min_footprints"])
                            | (col["top_share"] > s["rules.support.max_top_share"])),
    }
    assert set(tests) == {r.name for r in RULES}, "every declared rule needs a test"
    return {name: np.asarray(test(), bool) for name, test in tests.items() if settings.enabled(name)}


def burst_like(stats, settings: DetectionSettings) -> np.ndarray:
    """Fitted bumps that one pass cannot tell from a burst of bad frames: narrower than
    ``rules.frame_aligned.burst_sigma_km`` and no footprint shift fitting better than the frames' edges by
    ``rules.frame_aligned.min_shift_gain`` (a plume crossed at right angles, or a burst). The mirror samples bursts
    of either sign; one-sided ones it cannot see, so the month's summary counts these events (``stats``: a table
    or a mapping of column name to array; False where the statistics are missing)."""
    sigma = np.asarray(stats["sigma_km"], float)
    gain = np.asarray(stats["shift_gain"], float) if "shift_gain" in stats else np.full(sigma.shape, np.nan)
    return ((sigma <= settings["rules.frame_aligned.burst_sigma_km"])
            & (gain < settings["rules.frame_aligned.min_shift_gain"]))


def rule_verdicts(candidates: pd.DataFrame, settings: DetectionSettings, significance_threshold: float | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(rejected_by, status)`` of each candidate: ``rejected_by`` the '+'-joined names of the rules it fails
    (fitted candidates) or its ``fixed_reason`` (``screen``, ``fit-failed``, ...: rejected by that reason alone);
    ``status`` "accepted" where nothing rejects it. A mirror candidate (``sign`` -1: a depletion
    fitted upside down) lists ``mirror`` first: it is judged like the others but never accepted."""
    fitted = candidates["fixed_reason"].eq("").to_numpy()
    reasons = np.full(len(candidates), "", dtype=object)
    if fitted.any():
        needed = [c for c in (*STAT_COLUMNS, "significance", "sigma_km", "amplitude_ppm_km") if c in candidates]
        failures = rule_failures({c: candidates[c].to_numpy()[fitted] for c in needed}, settings,
                                 significance_threshold)
        names = np.array(list(failures))
        mirror = (candidates["sign"].to_numpy()[fitted] < 0) if "sign" in candidates else np.zeros(fitted.sum(), bool)
        if names.size:
            matrix = np.stack([failures[n] for n in names], axis=1)
            joined = ["+".join((["mirror"] if m else []) + list(names[row])) for row, m in zip(matrix, mirror)]
        else:
            joined = ["mirror" if m else "" for m in mirror]
        reasons[fitted] = joined
    reasons[~fitted] = candidates["fixed_reason"].to_numpy()[~fitted]
    return reasons, np.where(reasons == "", "accepted", "rejected").astype(object)


# ------------------------------------------------------------------------------------------ explaining a verdict

#: How each rule is explained: the statistic (its column), what it is, and the condition it must meet (the setting
#: in braces; ``{threshold}`` is the month's significance threshold).
_EXPLAIN = {
    "min-soundings": ("n_window", "soundings in the window", "≥ {rules.min_soundings.threshold:g}"),
    "min-orbit-soundings": ("n_orbit", "good soundings in the orbit", "≥ {rules.min_orbit_soundings.threshold:g}"),
    "too-narrow": ("sigma_km", "fitted width sigma [km]", "≥ {rules.too_narrow.min_sigma_km:g} km"),
    "too-wide": ("sigma_km", "fitted width sigma [km]",
                 "{rules.too_wide.n_sigma:g} sigma ≤ half the window ({fit.window_km:g} km / 2)"),
    "depletion": ("amplitude_ppm_km", "Gaussian area A [ppm km]", "above 0 (an enhancement)"),
    "near-sides": (("near_left", "near_right"), "soundings in [-sigma, 0] and [0, sigma]",
                   "≥ {rules.near_sides.per_sigma_km:g} per km of sigma, each side"),
    "flanks": (("flank_left", "flank_right"), "soundings in [-3, -2] and [2, 3] sigma",
               "≥ {rules.flanks.per_sigma_km:g} per km of sigma, each side"),
    "fit-quality": ("r2", "r^2 of the fit within +-4 sigma", "≥ {rules.fit_quality.min_r2:g} (and r positive)"),
    "significance": ("significance", "A / stderr(A) over the orbit's own noise (times the share left with the "
                     "surface modelled, fit.surface_covariates)", "≥ {threshold:.2f}"),
    "step-like": ("delta_chi2_step", "chi2(best step) - chi2(Gaussian)", "above {rules.step_like.min_delta_chi2:g}"),
    "box-like": (("delta_chi2_box", "delta_chi2_pair"), "chi2(best plateau) - chi2(Gaussian); "
                 "chi2(plateau) - chi2(two plumes)", "above {rules.box_like.min_delta_chi2:g}; or, blends spared "
                 "({rules.box_like.spare_blends}), two plumes better by more than {rules.box_like.min_pair_advantage:g}"
                 " and not burst-like"),
    "surface-transition": ("surface_transition", "land/water change within 2 sigma + "
                           "{rules.surface_transition.margin_km:g} km", "none"),
    "frame-aligned": (("footprint_chi2", "delta_chi2_frame", "geometry_tells", "burst_advantage", "shift_gain"),
                      "footprint disagreement; chi2(wind-aligned) - chi2(frame-aligned); geometry can tell; "
                      "chi2(best crossing) - chi2(burst, one amplitude per footprint); chi2(frames) - chi2(best "
                      "crossing)",
                      "≤ {rules.frame_aligned.max_footprint_chi2:g}; ≤ {rules.frame_aligned.max_frame_advantage:g}"
                      " where geometry can tell; ≤ {rules.frame_aligned.max_burst_advantage:g}; burst-like (sigma ≤ "
                      "{rules.frame_aligned.burst_sigma_km:g} km, shift gain < {rules.frame_aligned.min_shift_gain:g})"
                      " rejected only if rules.frame_aligned.reject_burst_like"),
    "support": (("support_frames", "support_footprints", "top_share"),
                "frames and footprints above the background within 2 sigma; share of the excess in the top 10 %",
                "≥ {rules.support.min_frames:g}; ≥ {rules.support.min_footprints:g}; "
                "≤ {rules.support.max_top_share:g}"),
}


def _shown(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "-" if not np.isfinite(number) else f"{number:.3g}" if abs(number) < 1000 else f"{number:,.0f}"


def _filled(text: str, values: dict) -> str:
    """``text`` with each ``{key:spec}`` replaced by the formatted value (keys hold dots, so no ``str.format``)."""
    return re.sub(r"\{([^}:]+)(?::([^}]*))?\}", lambda m: format(values[m.group(1)], m.group(2) or ""), text)


def explain_rules(row, settings: DetectionSettings, significance_threshold: float | None = None) -> pd.DataFrame:
    """Every rule on one fitted candidate: ``rule``, ``statistic`` (what is measured), ``value`` (text), ``needs``
    (the condition to pass, with the settings' thresholds), ``verdict`` ("pass", "FAIL" or "off": disabled).

    The verdicts come from :func:`rule_failures` itself, so the table says exactly why the row was judged so."""
    threshold = settings["rules.significance.min_snr"] if significance_threshold is None else significance_threshold
    columns = [c for c in (*STAT_COLUMNS, "significance", "sigma_km", "amplitude_ppm_km") if c in row]
    stats = {c: np.asarray([row[c]]) for c in columns}
    if "significance" not in stats:
        stats["significance"] = np.asarray([row.get("snr", np.nan)])
    failures = rule_failures(stats, settings, threshold)
    names = {**settings.as_dict(), "threshold": threshold}
    rows = []
    for rule in RULES:
        column, what, needs = _EXPLAIN[rule.name]
        picked = column if isinstance(column, tuple) else (column,)
        value = "; ".join(_shown(stats["significance"][0]) if c == "significance" else
                          _shown(bool(row.get(c))) if c in ("surface_transition", "geometry_tells") else
                          _shown(row.get(c, np.nan)) for c in picked)
        if rule.name == "too-wide":
            value = f"{_shown(row.get('sigma_km'))} ({settings['rules.too_wide.n_sigma']:g} sigma = " \
                    f"{_shown(settings['rules.too_wide.n_sigma'] * float(row.get('sigma_km', np.nan)))} km)"
        share = float(row.get("covariate_share", np.nan))
        if rule.name == "significance" and settings["fit.surface_covariates"] and share < 1:  # NaN: no fit
            value += f" (x {share:.2f}: the share left with the land/water and pressure terms modelled)"
        verdict = "off" if rule.name not in failures else "FAIL" if failures[rule.name][0] else "pass"
        rows.append({"rule": rule.name, "statistic": _filled(what, names), "value": value,
                     "needs": _filled(needs, names), "verdict": verdict})
    return pd.DataFrame(rows)


def alternative_models(x_km, x_track_km, y_ppm, unc_ppm, centre_km: float, sigma_km: float,
                       settings: DetectionSettings) -> dict[str, pd.DataFrame]:
    """The step, plateau and two-plume models that the rules compared with the Gaussian (for drawing them).

    The same searches as :func:`window_stats` (the soundings within ``max(LOCAL_SPAN_SIGMA sigma,
    LOCAL_SPAN_MIN_KM)`` of the centre; step and plateau along the track, the pair in the fit's coordinate), keeping
    the best model instead of its chi-square only. Each value: ``x_km`` (the fit's coordinate, sorted) and
    ``model_ppm``, the model with its own line at each sounding; ``chi2`` in ``attrs``. A kind the window cannot
    take (too few soundings) is left out.
    """
    x, xt, y = (np.asarray(a, float) for a in (x_km, x_track_km, y_ppm))
    w = 1.0 / np.asarray(unc_ppm, float) ** 2
    d, dt = x - centre_km, xt - centre_km
    local = np.abs(dt) <= max(LOCAL_SPAN_SIGMA * sigma_km, LOCAL_SPAN_MIN_KM)
    d, dt, y, w, x = d[local], dt[local], y[local], w[local], x[local]
    out: dict[str, pd.DataFrame] = {}

    def solved(kind: str, basis: np.ndarray) -> None:
        a = (basis * w) @ basis.T
        p = np.linalg.lstsq(a + np.eye(a.shape[0]) * 1e-12 * np.trace(a), (basis * w) @ y, rcond=None)[0]
        model = p @ basis
        order = np.argsort(x, kind="stable")
        frame = pd.DataFrame({"x_km": x[order], "model_ppm": model[order]})
        frame.attrs["chi2"] = float((w * (y - model) ** 2).sum())
        out[kind] = frame

    track = _SortedTrack(dt, y, w)
    rank = np.empty(dt.size, np.int64)
    rank[np.argsort(dt, kind="stable")] = np.arange(dt.size)  # each sounding's place on the sorted track
    for kind, (starts, stops) in (
            ("step", track.step_indicators(STEP_SPAN_SIGMA * sigma_km) if dt.size >= 6 else (np.empty(0),) * 2),
            ("plateau", track.plateau_indicators(PLATEAU_SPAN_SIGMA * sigma_km,
                                                 settings["rules.box_like.min_width_km"])
             if dt.size >= 8 else (np.empty(0),) * 2)):
        if np.size(starts):
            best = int(np.argmin(_indicator_chi2s(track, starts, stops)))
            inside = (rank >= starts[best]) & (rank < stops[best])
            solved(kind, np.vstack([np.ones_like(d), dt, inside.astype(float)]))
    found = _pair_gains(d, y, w, sigma_km) if d.size >= 8 else None
    if found is not None and found[-1].size:
        _, c, s, j, k, gain = found
        best = int(np.argmax(gain))
        solved("two plumes", np.vstack([np.ones_like(d), d, unit_gaussian(d - c[j[best]], s[j[best]]),
                                        unit_gaussian(d - c[k[best]], s[k[best]])]))
    return out
