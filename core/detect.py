"""Detection of one orbit: soundings -> candidates (screen or stride) -> lmfit fits -> rules -> plume events.

Stages, each cached by what it depends on so a workbench can re-run only what a change invalidates:

1. :func:`prepare_orbit` - along-track geometry (depends on the soundings only).
2. :func:`find_candidates` - every window screened at once (``screen.*``, window and sigma bounds); candidates
   are the screen's local extrema. ``screen.stride > 0`` instead takes a candidate every N-th sounding and fits
   them all, as the 2020 project did.
3. :func:`fit_candidates` - a bounded, converged lmfit fit per candidate the screen found strong enough, plus
   the statistics the rules need (``fit.*``).
4. :func:`judge` - rules (thresholds only: milliseconds), de-duplication into one event per plume, emission.

Attribution to inventory sources is a separate step (:mod:`core.attribution`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy.spatial import cKDTree

from . import emission as em
from .fitting import SQRT_2PI, fit_window, gaussian_line
from .noise import VariogramNoise, screen_spread, shrunk_spread, surface_offsets_ppm, variogram_noise
from .paths import EMBEDDED_INVENTORY
from .rules import (LOCAL_SPAN_MIN_KM, LOCAL_SPAN_SIGMA, STAT_COLUMNS, burst_like, gaussian_line_chi2_many,
                    geometry_stats, rule_verdicts, window_stats)
from .screen import ScreenResult, best_width, local_extrema, screen_widths, width_extrema, window_snr
from .settings import DetectionSettings
from .track import (EARTH_RADIUS_KM, MIN_WIND_ANGLE_DEG, along_track, cross_track_wind_ms, shift_ratio,
                    unit_vectors, wind_aligned_km)

#: Along-track distance between OCO-2 frames [km] (3 frames/s at ~6.75 km/s ground speed).
FRAME_KM = 2.25
#: The screen looks for humps up to this factor wider than the widest the too-wide rule accepts (a hump just over
#: the limit must still be found, fitted and rejected, not mask a plume inside it).
SCREEN_WIDTH_SLACK = 1.15
#: A strong fit is modelled in a candidate's window when it reaches into it: within this many of its widths.
NEIGHBOUR_REACH_WIDTHS = 5.0
#: Two fits of one sign are one event when their centres are within the smaller width, at least this far [km].
MERGE_MIN_KM = 1.0
FIT_COLUMNS = ("amplitude_ppm_km", "sigma_km", "center_km", "slope_ppm_km", "intercept_ppm")
_FIT_PARAM = dict(zip(FIT_COLUMNS, ("amplitude", "sigma", "center", "slope", "intercept")))
#: Where a fit starts (and what a candidate not fitted keeps): the screen's values.
_SCREEN_START = {"amplitude_ppm_km": "screen_amplitude", "sigma_km": "screen_sigma", "center_km": "center_km",
                 "slope_ppm_km": "screen_slope", "intercept_ppm": "screen_intercept"}


@dataclass(frozen=True)
class OrbitData:
    """One orbit's soundings sorted by the detection coordinate ``x_km``, with their geometry.

    ``x_track_km`` is the distance along the track; ``x_wind_km`` the wind-aligned position
    (:func:`core.track.wind_aligned_km`); ``x_km`` is the one detection uses (see :func:`detection_view`).
    """

    orbit: int
    soundings: pd.DataFrame
    views: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def x_km(self) -> np.ndarray:
        return self.soundings["x_km"].to_numpy()


def prepare_orbit(soundings: pd.DataFrame) -> OrbitData:
    """Geometry for one orbit's soundings (any order in; sorted along the track out)."""
    df = _sorted_by(soundings, "sounding_id")
    track = along_track(df["sounding_id"].to_numpy(), df["latitude"].to_numpy(), df["longitude"].to_numpy())
    x_wind = wind_aligned_km(track.x_km, track.cross_km, track.bearing_deg, df["windspeed_u"].to_numpy(float),
                             df["windspeed_v"].to_numpy(float))
    geometry = {"x_km": track.x_km, "x_track_km": track.x_km, "x_wind_km": x_wind, "cross_km": track.cross_km,
                "bearing_deg": track.bearing_deg, "frame": track.frame}
    if geometry.keys() & set(df.columns):  # geometry already there: replaced in place
        df = _sorted_by(df.assign(**geometry), "x_km")
    else:  # sorted by x_km (stable, as _sorted_by) before the columns are added: one copy of the table, not two
        x = track.x_km
        if not np.all(x[1:] >= x[:-1]):
            order = np.argsort(x, kind="stable")
            df = df.take(order).reset_index(drop=True)
            geometry = {name: values[order] for name, values in geometry.items()}
        df = pd.concat([df, pd.DataFrame(geometry, index=df.index)], axis=1)
    orbit = int(df["orbit"].iloc[0]) if len(df) else -1
    return OrbitData(orbit, df)


def _sorted_by(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """``df`` stably sorted by ``column`` with a fresh index; no sort when it already is (the cache stores the
    soundings in id order, and the along-track distance mostly grows with the id)."""
    if df[column].is_monotonic_increasing:
        return df.reset_index(drop=True)
    return df.sort_values(column, kind="stable").reset_index(drop=True)


def detection_view(od: OrbitData, settings: DetectionSettings) -> OrbitData:
    """The orbit with ``x_km`` set to the coordinate the settings detect in, sorted by it (cached).

    With ``noise.surface_offsets``, ``xco2`` is less its water stretch's offset against the land beside it
    (:func:`core.noise.surface_offsets_ppm`, also in ``surface_offset_ppm``): what the screen, the noise estimates,
    the fits and the charts of the fits see."""
    coordinate = "x_wind_km" if settings["fit.wind_aligned"] else "x_track_km"
    offsets = bool(settings["noise.surface_offsets"])
    key = coordinate + ("+surface" if offsets else "")
    if key == "x_track_km":
        return od
    if key not in od.views:
        df = od.soundings  # sorted along the track
        if offsets:
            offset = surface_offsets_ppm(df["x_track_km"].to_numpy(), df["xco2"].to_numpy(float),
                                         df["land_water_indicator"].to_numpy())
            df = df.assign(xco2=(df["xco2"].to_numpy(float) - offset).astype(df["xco2"].dtype),
                           surface_offset_ppm=offset)
        df = _sorted_by(df.assign(x_km=df[coordinate]), "x_km")
        od.views[key] = OrbitData(od.orbit, df, {"x_track_km": od})
    return od.views[key]


def track_view(od: OrbitData) -> OrbitData:
    """The orbit sorted along the track (positions of events are taken on the track centreline)."""
    return od.views.get("x_track_km", od)


@dataclass(frozen=True)
class OrbitNoise:
    """The orbit's noise as its data show it (:mod:`core.noise`), and the calibration detection applies.

    ``spread`` divides the significance of a fit of width ``sigma_km`` (interpolated in log width, see
    :meth:`at`); it is 1 everywhere when ``noise.calibrate`` is off.
    """

    sigma_km: np.ndarray  # the screen's widths [km]
    spread: np.ndarray  # calibration applied at each width (>= 1)
    raw_spread: np.ndarray  # the orbit's own robust spread of the screen significance at each width
    n_eff: np.ndarray  # independent values behind each raw spread
    variogram: VariogramNoise  # white scatter and correlated term
    track_km: float  # along-track span of the orbit's soundings [km]
    fallback: bool  # the conservative prior outweighs the orbit's own values at the narrowest width

    def at(self, sigma_km) -> np.ndarray:
        """The calibration at fitted widths [km] (the end values beyond the grid; 1 where no grid)."""
        sigma = np.asarray(sigma_km, float)
        if self.sigma_km.size == 0:
            return np.ones_like(sigma)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.interp(np.log(np.where(sigma > 0, sigma, self.sigma_km[0])), np.log(self.sigma_km),
                             self.spread)

    def columns(self, n: int) -> dict:
        """Per-orbit values repeated on each of ``n`` candidate rows (stored with the detections)."""
        v = self.variogram
        return {"noise_scale": np.full(n, v.noise_scale), "correlated_ppm": np.full(n, v.correlated_ppm),
                "correlation_km": np.full(n, v.correlation_km), "orbit_track_km": np.full(n, self.track_km),
                "noise_fallback": np.full(n, self.fallback)}


def _screen_sigma_max_km(s: DetectionSettings) -> float:
    sigma_max = s["fit.sigma_max_km"]
    if s.enabled("too-wide"):  # wider humps cannot be accepted: they must not mask a plume inside them
        sigma_max = min(sigma_max, SCREEN_WIDTH_SLACK * s["fit.window_km"] / 2 / s["rules.too_wide.n_sigma"])
    return sigma_max


def _screen(od: OrbitData, settings: DetectionSettings) -> tuple[ScreenResult, OrbitNoise]:
    """The screen of the orbit (in the detection coordinate) and its noise calibration, cached on the view."""
    s = settings
    key = ("screen", s["fit.window_km"], s["fit.sigma_min_km"], _screen_sigma_max_km(s), s["screen.n_sigma"],
           s["screen.bin_km"], s["noise.calibrate"], s["noise.prior_spread"], s["noise.prior_samples"])
    if key in od.views:
        return od.views[key]
    df = od.soundings
    x = df["x_km"].to_numpy()
    centres, n_window, widths = screen_widths(
        x, df["xco2"].to_numpy(), df["xco2_uncertainty"].to_numpy(), window_km=s["fit.window_km"],
        sigma_min_km=s["fit.sigma_min_km"], sigma_max_km=_screen_sigma_max_km(s), n_sigma=s["screen.n_sigma"],
        bin_km=s["screen.bin_km"])
    sigmas = widths.sigma_km
    data_km = np.unique(np.floor(x / FRAME_KM)).size * FRAME_KM  # along-track km that hold data
    raw, n_eff = screen_spread(widths.snr, sigmas, data_km)
    track = df["x_track_km"].to_numpy() if "x_track_km" in df else x
    variogram = variogram_noise(track, df["xco2"].to_numpy(float), df["xco2_uncertainty"].to_numpy(float),
                                df["footprint"].to_numpy())
    if s["noise.calibrate"]:
        spread = shrunk_spread(raw, n_eff, s["noise.prior_spread"], s["noise.prior_samples"])
        scr = best_width(centres, n_window, widths, spread)  # the best width of the calibrated significances
        fallback = bool(n_eff.size == 0 or n_eff[0] < s["noise.prior_samples"])
    else:
        scr = best_width(centres, n_window, widths)
        spread, fallback = np.ones_like(sigmas), False
    span = float(np.ptp(track)) if track.size else 0.0
    od.views[key] = (scr, OrbitNoise(sigmas, spread, raw, n_eff, variogram, span, fallback))
    return od.views[key]


@functools.lru_cache(maxsize=4)
def _source_tree(min_emission_MtCO2_yr: float) -> cKDTree | None:
    """Unit vectors of the embedded inventory's sources of at least ``min_emission_MtCO2_yr`` in a k-d tree."""
    table = pq.read_table(EMBEDDED_INVENTORY / "sources.parquet", columns=["latitude", "longitude",
                                                                           "emission_tCO2_yr"]).to_pandas()
    table = table[table["emission_tCO2_yr"] >= 1e6 * min_emission_MtCO2_yr]
    return cKDTree(unit_vectors(table["latitude"].to_numpy(float), table["longitude"].to_numpy(float))) \
        if len(table) else None


def control_mask(od: OrbitData, settings: DetectionSettings) -> np.ndarray:
    """Soundings of the view farther than ``detection.control_distance_km`` from every source of the embedded
    inventory of at least ``detection.control_min_emission_MtCO2_yr``: track where no plume can be (all False when
    the distance is 0). Cached on the view."""
    distance_km = float(settings["detection.control_distance_km"])
    key = ("control", distance_km, float(settings["detection.control_min_emission_MtCO2_yr"]))
    if key not in od.views:
        df = od.soundings
        mask = np.zeros(len(df), bool)
        if distance_km > 0 and len(df):
            tree = _source_tree(key[2])
            if tree is None:  # no such source at all: no plume anywhere
                mask[:] = True
            else:  # the chord of distance_km bounds the search: a sounding with no source within it is far
                limit = 2 * np.sin(distance_km / (2 * EARTH_RADIUS_KM))
                chord, _ = tree.query(unit_vectors(df["latitude"].to_numpy(float), df["longitude"].to_numpy(float)),
                                      distance_upper_bound=limit)
                mask = ~(chord <= limit)
        od.views[key] = mask
    return od.views[key]


def orbit_noise(od: OrbitData, settings: DetectionSettings) -> OrbitNoise:
    """The noise of the orbit and the calibration the settings apply (:class:`OrbitNoise`)."""
    return _screen(detection_view(od, settings), settings)[1]


def find_candidates(od: OrbitData, settings: DetectionSettings) -> pd.DataFrame:
    """Candidate centres with the screen's values (``screen_*`` columns; ``screen_snr`` calibrated by the
    orbit's own noise when ``noise.calibrate`` is on)."""
    s = settings
    od = detection_view(od, s)
    df = od.soundings
    if len(df) == 0:
        return pd.DataFrame(columns=["center_km", "screen_snr", "screen_amplitude", "screen_sigma",
                                     "screen_slope", "screen_intercept"])
    stride = int(s["screen.stride"])
    if stride > 0:  # the original: a candidate every N-th sounding, started from crude values
        pick = np.arange(0, len(df), stride)
        x = df["x_km"].to_numpy()[pick]
        return pd.DataFrame({"center_km": x, "screen_snr": np.nan, "screen_amplitude": 1.0,
                             "screen_sigma": 5.0, "screen_slope": 0.0,
                             "screen_intercept": df["xco2"].to_numpy()[pick].astype(float)})
    scr, _ = _screen(od, s)
    if s["screen.every_width"]:
        idx, k = width_extrema(scr, min_separation_km=s["screen.min_separation_km"],
                               min_abs_snr=s["screen.min_abs_snr"], max_sigma_km=s["screen.every_width_max_sigma_km"])
        w = scr.widths
        slope, intercept = w.background(k, idx)
        return pd.DataFrame({"center_km": scr.x_km[idx], "screen_snr": w.snr[k, idx],
                             "screen_amplitude": w.amplitude_ppm_km[k, idx], "screen_sigma": w.sigma_km[k],
                             "screen_slope": slope, "screen_intercept": intercept})
    idx = local_extrema(scr, min_separation_km=s["screen.min_separation_km"], min_abs_snr=s["screen.min_abs_snr"])
    return pd.DataFrame({"center_km": scr.x_km[idx], "screen_snr": scr.snr[idx],
                         "screen_amplitude": scr.amplitude_ppm_km[idx], "screen_sigma": scr.sigma_km[idx],
                         "screen_slope": scr.slope_ppm_km[idx], "screen_intercept": scr.intercept_ppm[idx]})


def fit_candidates(od: OrbitData, candidates: pd.DataFrame, settings: DetectionSettings) -> pd.DataFrame:
    """Fit every candidate strong enough (all of them in stride mode); add fit values, errors and statistics.

    Candidates not fitted carry a ``fixed_reason``: ``depletion`` (the screen's area is negative and the
    depletion rule is on), ``too-wide`` (the screen's best width is beyond the too-wide limit: its widths stop one
    grid step, 15 %, beyond it: a background wave, not a plume), ``screen`` (too weak to fit) or
    ``fit-failed`` (with ``fit_message``). These are rules judged on the screen's estimate, which saves the
    fits that could not be accepted.

    Candidates are fitted strongest first (|screen significance|), and one that starts within a width of a
    stronger candidate's fit of the same sign (the mean of its screen width and the fitted width) is not fitted:
    it is ``duplicate`` of that one (``duplicate_of``, its row), one more window of the same event. Such a fit
    would start on the stronger fit's feature and end on it: with the smaller of the two widths, 30 % of the fits
    of the OSSE (273 of 909, seed 1) ended as duplicates of a better fit; with the mean, 734 fits gave the same
    recall (185 of 201 plumes, seeds 1-3; 173 of 190 instead of 174 on seeds 4-6) and 3 fewer false events.
    Stride mode fits every candidate, as the original did.

    Neighbours (``fit.neighbour_min_snr`` > 0): a fit of at least that |A|/stderr is part of the model of every
    weaker candidate's window it reaches (its Gaussian, not its line, subtracted from the data; farther than the
    sum of the two widths, else it is the same feature; ``n_neighbours`` counts them). On a pass over a cluster of
    sources a weak plume 10-50 km from strong ones is then fitted on its own background, not on theirs, and their
    peaks no longer inflate its chi-square and standard error (``neighbours`` lists their rows). A screen maximum
    below ``screen.min_significance`` but at least ``screen.min_significance_beside`` is fitted when a neighbour
    is modelled in its window and the screen's statistic, taken again there with the neighbours subtracted
    (:func:`core.screen.window_snr`), reaches ``screen.min_significance``: the screen saw it beside the
    neighbours' peaks.
    """
    s = settings
    od = detection_view(od, s)
    df = od.soundings
    n = len(candidates)
    if n == 0:
        return pd.DataFrame()
    x, y = df["x_km"].to_numpy(), df["xco2"].to_numpy().astype(float)
    unc = df["xco2_uncertainty"].to_numpy().astype(float)
    frame, footprint = df["frame"].to_numpy(), df["footprint"].to_numpy()
    x_track = df["x_track_km"].to_numpy()
    land_water = df["land_water_indicator"].to_numpy()
    # the surface-pressure error of each sounding, a covariate of the rules' statistics (None: not in the data)
    dp = (df["surface_pressure"].to_numpy(float) - df["surface_pressure_apriori"].to_numpy(float)
          if {"surface_pressure", "surface_pressure_apriori"} <= set(df.columns) else None)
    geometry = _ShiftGeometry.of(df, s)  # the footprints' geometry (None without cross-swath positions)
    half = s["fit.window_km"] / 2
    centre = candidates["center_km"].to_numpy(float)
    snr = candidates["screen_snr"].to_numpy(float)
    screen_sigma = candidates["screen_sigma"].to_numpy(float)
    lo = np.searchsorted(x, centre - half, side="left")
    hi = np.searchsorted(x, centre + half, side="left")
    # fit start = the screen's values; a candidate not fitted keeps them
    out = {"center_km": centre, "screen_snr": snr, "fixed_reason": np.full(n, "", object),
           "fit_message": np.full(n, "", object), "nfev": np.zeros(n, np.int64), "n_window": hi - lo}
    for column, screen_column in _SCREEN_START.items():
        out[column] = candidates[screen_column].to_numpy(float).copy()
    strided = int(s["screen.stride"]) > 0
    noise = _screen(od, s)[1]  # od is already the detection view
    # mirror: a depletion is fitted on the data turned upside down, as an enhancement (sign -1), and judged by the
    # same rules: the noise's own null (never accepted, see core.false_alarms)
    mirror = bool(s["detection.mirror"]) and not strided
    sign = np.where(mirror & (snr < 0), -1, 1).astype(np.int8)
    out["sign"] = sign
    for column in ("amplitude_ppm_km", "slope_ppm_km", "intercept_ppm"):
        out[column] *= sign
    neighbour_snr = float(s["fit.neighbour_min_snr"])  # 0: neighbours are not modelled
    # below screen.min_significance, a candidate is fitted only beside a modelled neighbour (see the docstring)
    near_threshold = s["screen.min_significance_beside"] if neighbour_snr > 0 else np.inf
    if not strided:  # rules judged on the screen's estimate, in this order
        fixed, message = out["fixed_reason"], out["fit_message"]
        for reason, hit, why in (
                ("depletion", (snr < 0) & s.enabled("depletion") & ~mirror,
                 lambda i: "the screen's area is negative"),
                ("too-wide", (screen_sigma > half / s["rules.too_wide.n_sigma"]) & s.enabled("too-wide"),
                 lambda i: f"the screen's best width {screen_sigma[i]:.0f} km is beyond the too-wide limit"),
                ("screen", np.abs(snr) < min(s["screen.min_significance"], near_threshold),
                 lambda i: "below the screen threshold")):
            for i in np.flatnonzero(hit & (fixed == "")):
                fixed[i], message[i] = reason, why(i)
    to_fit = np.flatnonzero(out["fixed_reason"] == "")
    if not strided:
        to_fit = to_fit[np.argsort(-np.abs(snr[to_fit]), kind="stable")]
    errors = {f"{p}_stderr": np.full(n, np.nan) for p in _FIT_PARAM.values()}
    chi2, redchi = np.full(n, np.nan), np.full(n, np.nan)
    out["duplicate_of"] = np.full(n, -1, np.int64)
    out["n_neighbours"] = np.zeros(n, np.int64)
    out["neighbours"] = np.full(n, "", object)  # their rows, comma-separated (the peak page draws them)
    out["shift_ratio"] = np.full(n, np.nan)  # the footprint shift fitted in (NaN: the view's coordinate)
    stats: dict[str, list] = {}
    fitted_rows, strong_rows = [], []  # strong: fits modelled in weaker candidates' windows
    for i in to_fit:
        k = -1 if strided else _covering_fit(i, fitted_rows, out, screen_sigma[i], snr[i])
        if k >= 0:
            out["fixed_reason"][i], out["duplicate_of"][i] = "duplicate", k
            out["fit_message"][i] = (f"starts within a width of the fit of stronger candidate {k} at "
                                     f"{out['center_km'][k]:.1f} km: the same feature, not fitted")
            continue
        neighbours = _neighbours(i, strong_rows, out, screen_sigma[i], half)
        weak = abs(snr[i]) < s["screen.min_significance"]
        if weak and neighbours.size == 0:
            out["fixed_reason"][i], out["fit_message"][i] = "screen", "below the screen threshold, no neighbour"
            continue
        a, b = lo[i], hi[i]
        modelled = _gaussians(x[a:b], out, neighbours, geometry, a, b) if neighbours.size else 0.0
        yw = sign[i] * (y[a:b] - modelled)
        out["n_neighbours"][i] = neighbours.size
        out["neighbours"][i] = ",".join(map(str, neighbours))
        if weak:  # the screen's statistic again, with the neighbours modelled: most are noise, not fitted
            again = window_snr(x[a:b] - centre[i], yw, unc[a:b], screen_sigma[i]) / noise.at(screen_sigma[i])
            if abs(again) < s["screen.min_significance"]:
                out["fixed_reason"][i] = "screen"
                out["fit_message"][i] = f"below the screen threshold with its neighbours modelled ({again:.1f})"
                continue
        start = {param: out[column][i] for column, param in _FIT_PARAM.items()}
        xw = x[a:b]
        if geometry is not None and geometry.search:
            out["shift_ratio"][i] = geometry.best_ratio(a, b, yw, unc[a:b], centre[i], screen_sigma[i])
            xw = geometry.x(a, b, out["shift_ratio"][i])
        fit = fit_window(xw, yw, unc[a:b], start, s)
        out["nfev"][i], out["fit_message"][i] = fit.nfev, fit.message
        if not fit.ok:
            out["fixed_reason"][i] = "fit-failed"
            continue
        for column, param in _FIT_PARAM.items():
            out[column][i] = fit.values[param]
            errors[f"{param}_stderr"][i] = fit.stderr[param]
        chi2[i], redchi[i] = fit.chi2, fit.redchi
        fitted_rows.append(i)
        if neighbour_snr > 0 and abs(fit.values["amplitude"]) >= neighbour_snr * fit.stderr["amplitude"]:
            strong_rows.append(i)
        for key, value in window_stats(xw, yw, unc[a:b], frame[a:b], footprint[a:b], land_water[a:b], fit,
                                       len(df), s, x_track[a:b], None if dp is None else dp[a:b]).items():
            stats.setdefault(key, []).append(value)
        geo = geometry.stats(a, b, footprint[a:b], yw, unc[a:b], fit) if geometry is not None else {}
        for key in ("delta_chi2_frame", "footprint_chi2", "geometry_tells", "shift_gain", "burst_advantage"):
            stats.setdefault(key, []).append(geo.get(key, np.nan))
    out.update(errors, chi2=chi2, redchi=redchi)
    for column in STAT_COLUMNS:
        if column == "n_window":
            continue
        values = np.full(n, np.nan)
        if column in stats:
            values[fitted_rows] = np.asarray(stats[column], float)
        out[column] = values
    out["surface_transition"] = pd.array(out["surface_transition"], dtype="Float64").astype("boolean")  # NA: no fit
    out["delta_ppm"] = out["amplitude_ppm_km"] / (out["sigma_km"] * SQRT_2PI)
    out["noise_spread"] = noise.at(out["sigma_km"])
    out["significance"] = out["snr"] / out["noise_spread"]
    if s["fit.surface_covariates"]:  # the significance left with the surface modelled beside the Gaussian
        out["significance"] = out["significance"] * np.where(np.isfinite(out["covariate_share"]),
                                                             out["covariate_share"], 1.0)
    out.update(noise.columns(n))
    # the control region (detection.control_distance_km): where the candidate sits, and how much of the orbit
    control = control_mask(od, s)
    nearest = np.clip(np.searchsorted(x, centre), 0, len(x) - 1)
    out["control"] = control[nearest]
    out["orbit_control_km"] = np.full(n, noise.track_km * control.mean() if control.size else 0.0)
    return pd.DataFrame(out)


def _neighbours(i: int, strong_rows: list[int], out: dict, sigma_km: float, half_km: float) -> np.ndarray:
    """Rows of the strong fits modelled in candidate ``i``'s window: apart from its start by more than the sum of
    their widths (closer, they are the same feature) and near enough to reach into the window
    (:data:`NEIGHBOUR_REACH_WIDTHS`)."""
    if not strong_rows:
        return np.zeros(0, np.int64)
    rows = np.asarray(strong_rows)
    width = out["sigma_km"][rows]
    distance = np.abs(out["center_km"][rows] - out["center_km"][i])
    return rows[(distance > width + sigma_km) & (distance < half_km + NEIGHBOUR_REACH_WIDTHS * width)]


def _gaussians(x_km: np.ndarray, out, rows: np.ndarray, geometry: "_ShiftGeometry | None" = None, a: int = 0,
               b: int | None = None) -> np.ndarray:
    """Sum of the fitted Gaussians of ``rows`` at ``x_km`` [ppm] (their lines are not included); ``out``: columns
    by name (a candidates table or the arrays being filled). With ``geometry``, each Gaussian is evaluated in the
    coordinate its own fit chose (its ``shift_ratio``) over the soundings ``a:b``."""
    column = {name: np.asarray(out[name], float)[rows, None] for name in ("amplitude_ppm_km", "sigma_km", "center_km")}
    sign = np.asarray(out["sign"], float)[rows, None] if "sign" in out else 1.0  # a mirror fit is a depletion
    x = np.asarray(x_km, float)[None, :]
    if geometry is not None:
        ratio = np.asarray(out["shift_ratio"], float)[rows, None]
        x = np.where(np.isfinite(ratio), geometry.x_track[a:b][None, :] + geometry.cross[a:b][None, :] * ratio, x)
    return gaussian_line(x, sign * column["amplitude_ppm_km"], column["sigma_km"], column["center_km"],
                         0.0, 0.0).sum(axis=0)


@dataclass(frozen=True)
class _ShiftGeometry:
    """The footprint shift fitted per candidate within the wind's uncertainty (``fit.shift_search``).

    The wind-aligned coordinate shifts each footprint by ``cross * ratio`` (:func:`core.track.shift_ratio`), but
    the file's wind is uncertain (``emission.wind_uncertainty_ms``): at 1.5 m/s per component its direction is off
    by 10-40 deg, and an oblique plume is smeared again by a wrong ratio. Each candidate therefore tries the
    ratios within two sigma of the file's (and 0, the track) and keeps the one whose Gaussian of the screen's width
    at the candidate's centre, with its line, fits the local data best (a linear solve per ratio). The plume's own
    footprints, shifted against each other, tell the crossing angle the wind only suggests.
    """

    x_track: np.ndarray
    cross: np.ndarray
    ratio: np.ndarray  # the file wind's ratio at each sounding
    ratio_sd: np.ndarray  # its 1-sigma from the wind's uncertainty
    n_steps: int
    search: bool  # fit.wind_aligned and fit.shift_search: each fit in the shift that fits it best

    @classmethod
    def of(cls, df: pd.DataFrame, settings: DetectionSettings) -> "_ShiftGeometry | None":
        if "cross_km" not in df:
            return None
        ratio, sd = shift_ratio(df["bearing_deg"].to_numpy(float), df["windspeed_u"].to_numpy(float),
                                df["windspeed_v"].to_numpy(float), settings["emission.wind_uncertainty_ms"])
        return cls(df["x_track_km"].to_numpy(float), df["cross_km"].to_numpy(float), ratio, sd,
                   int(settings["fit.shift_search_steps"]),
                   bool(settings["fit.wind_aligned"] and settings["fit.shift_search"]))

    def x(self, a: int, b: int, ratio: float) -> np.ndarray:
        return self.x_track[a:b] + self.cross[a:b] * ratio

    def file_ratio(self, a: int, b: int, centre_km: float, sigma_km: float) -> tuple[float, float]:
        """The file wind's ratio and its 1-sigma around a centre (means over +-3 widths: the wind varies slowly)."""
        near = np.abs(self.x_track[a:b] - centre_km) <= max(3 * sigma_km, FRAME_KM)
        if not near.any():
            return 0.0, 0.0
        return float(self.ratio[a:b][near].mean()), float(self.ratio_sd[a:b][near].mean())

    def stats(self, a: int, b: int, footprint, y, unc, fit) -> dict:
        """Plume or burst of bad frames (:func:`core.rules.geometry_stats`), around a fit."""
        centre, sigma = fit.values["center"], fit.values["sigma"]
        r0, sd = self.file_ratio(a, b, centre, sigma)
        return geometry_stats(self.x_track[a:b], self.cross[a:b], footprint, y, 1.0 / unc ** 2, centre, sigma,
                              r0, sd, self.n_steps)

    def best_ratio(self, a: int, b: int, y, unc, centre_km: float, sigma_km: float) -> float:
        r0, sd = self.file_ratio(a, b, centre_km, sigma_km)
        limit = 1 / np.tan(np.radians(MIN_WIND_ANGLE_DEG))
        ratios = np.unique(np.clip(np.r_[0.0, r0 + 2 * sd * np.linspace(-1, 1, self.n_steps)], -limit, limit))
        local = np.abs(self.x_track[a:b] - centre_km) <= max(LOCAL_SPAN_SIGMA * sigma_km, LOCAL_SPAN_MIN_KM)
        if ratios.size == 1 or np.count_nonzero(local) < 8:
            return r0
        w = 1.0 / unc[local] ** 2
        d = self.x_track[a:b][local][None, :] + self.cross[a:b][local][None, :] * ratios[:, None] - centre_km
        return float(ratios[int(np.argmin(gaussian_line_chi2_many(d, y[local], w, sigma_km)))])


def neighbour_model(x_km, candidates: pd.DataFrame, row) -> np.ndarray:
    """The neighbours' Gaussians [ppm] that candidate ``row`` of an orbit's ``candidates`` was fitted with (zero
    where none): its model is ``gaussian_line(x, ...) + neighbour_model(x, ...)``."""
    listed = row.get("neighbours", "")
    if not isinstance(listed, str) or not listed:
        return np.zeros(np.shape(x_km))
    return _gaussians(x_km, candidates, np.array([int(k) for k in listed.split(",")]))


def _covering_fit(i: int, fitted_rows: list[int], out: dict, sigma_km: float, snr: float) -> int:
    """The first fitted row whose fit holds candidate ``i``'s start in its core (see :func:`fit_candidates`), or
    -1."""
    if not fitted_rows:
        return -1
    rows = np.asarray(fitted_rows)
    centre, width = out["center_km"][rows], out["sigma_km"][rows]
    same_sign = np.sign(out["amplitude_ppm_km"][rows] * out["sign"][rows]) == np.sign(snr)
    hit = np.flatnonzero(same_sign & (np.abs(centre - out["center_km"][i]) <= 0.5 * (width + sigma_km)))
    return int(rows[hit[0]]) if hit.size else -1


def judge(od: OrbitData, fitted: pd.DataFrame, settings: DetectionSettings,
          significance_threshold: float | None = None) -> pd.DataFrame:
    """Rules, de-duplication and emission: the candidates table of the orbit (one row per candidate).

    ``significance_threshold``: the month's (:func:`core.false_alarms.calibrate_month`); by default
    ``rules.significance.min_snr``."""
    if fitted.empty:
        return fitted
    od = detection_view(od, settings)
    # every new column computed on arrays, then added at once (each step adding its own copied the table)
    reasons, status = rule_verdicts(fitted, settings, significance_threshold)
    columns = _merged(fitted, reasons, status)
    columns["burst_like"] = burst_like(fitted, settings)
    columns.update(_located(od, fitted["center_km"].to_numpy(float), fitted["sigma_km"].to_numpy(float)))
    columns.update(_emission(fitted, columns, settings))
    columns["orbit"] = np.full(len(fitted), od.orbit, np.int64)
    columns["rules_hash"] = np.full(len(fitted), settings.hash, object)
    return _with_columns(fitted, columns)


def _merged(candidates: pd.DataFrame, rejected_by: np.ndarray, status: np.ndarray) -> dict:
    """One event per plume: fitted candidates whose centres lie within a width of each other are one event.

    The best fit is kept (accepted before rejected, then the highest A/stderr); the others are marked
    ``duplicate`` (added to their ``rejected_by``) and point to it through ``event_id``, as do the candidates not
    fitted because they started inside a stronger fit (``duplicate_of``); ``n_windows`` counts the windows that
    saw the event. Returns the columns to set (``rejected_by`` and ``status`` as the rules left them, updated).
    """
    n = len(candidates)
    event_id, n_windows, is_event = np.full(n, -1), np.zeros(n, np.int64), np.zeros(n, bool)
    rejected_by, status = rejected_by.copy(), status.copy()
    fitted = np.flatnonzero(candidates["fixed_reason"].eq("").to_numpy())
    # accepted before rejected, then the highest |A / stderr| (a stable order, as the rows come)
    priority = fitted[np.lexsort((-np.abs(candidates["snr"].to_numpy(float)[fitted]), status[fitted] != "accepted"))]
    centres, sigmas = candidates["center_km"].to_numpy(float), candidates["sigma_km"].to_numpy(float)
    sign = candidates["sign"].to_numpy() if "sign" in candidates else np.ones(n)  # mirrors merge among themselves
    kept: list[int] = []
    for i in priority:
        match = next((k for k in kept if sign[k] == sign[i]
                      and abs(centres[i] - centres[k]) <= max(MERGE_MIN_KM, min(sigmas[i], sigmas[k]))), None)
        if match is None:
            kept.append(i)
            event_id[i] = i
        else:
            event_id[i] = match
            rejected_by[i] = "+".join(filter(None, [rejected_by[i], "duplicate"]))
            status[i] = "rejected"
    # candidates not fitted because they started inside a stronger fit join that fit's event
    duplicate_of = candidates["duplicate_of"].to_numpy()
    skipped = np.flatnonzero(duplicate_of >= 0)
    event_id[skipped] = event_id[duplicate_of[skipped]]
    if kept:
        windows = event_id[np.concatenate([fitted, skipped])]
        n_windows[kept] = np.bincount(windows[windows >= 0], minlength=n)[kept]
        is_event[kept] = True
    return {"rejected_by": rejected_by, "status": status, "event_id": event_id, "n_windows": n_windows,
            "is_event": is_event}


def rejudge(candidates: pd.DataFrame, settings: DetectionSettings,
            significance_threshold: float | None = None) -> pd.DataFrame:
    """Rules and de-duplication again over a table of judged candidates of one or more orbits (what
    :func:`judge` does that depends on the thresholds; positions, winds and emissions stay)."""
    if candidates.empty:
        return candidates
    reasons, status = rule_verdicts(candidates, settings, significance_threshold)
    columns = {name: np.empty(len(candidates), dtype) for name, dtype in (
        ("rejected_by", object), ("status", object), ("event_id", np.int64), ("n_windows", np.int64),
        ("is_event", bool))}
    orbit = candidates["orbit"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, orbit[1:] != orbit[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):  # orbits are contiguous (each orbit's rows in its own order)
        merged = _merged(candidates.iloc[a:b], reasons[a:b], status[a:b])
        for name, values in merged.items():
            columns[name][a:b] = values
    columns["burst_like"] = burst_like(candidates, settings)
    return _with_columns(candidates, columns)


def _located(od: OrbitData, centre: np.ndarray, sigma_km: np.ndarray) -> dict:
    """Nearest sounding to each centre: its id, time, position; local wind, track bearing, psurf, tcwv.

    On the track centreline the wind-aligned and along-track coordinates agree, so a fitted centre is located
    along the track: searching in the aligned coordinate could pick a swath-edge footprint shifted by km.
    """
    df = track_view(od).soundings
    x = df["x_track_km"].to_numpy()
    nearest = np.clip(np.searchsorted(x, centre), 0, len(x) - 1)
    left = np.clip(nearest - 1, 0, len(x) - 1)
    nearest = np.where(np.abs(x[left] - centre) < np.abs(x[nearest] - centre), left, nearest)
    out = {column: df[column].array.take(nearest)  # .array keeps the UTC timestamps' dtype (no objects)
           for column in ("sounding_id", "time", "latitude", "longitude", "footprint")}
    # meteorology around the peak: soundings within +-max(sigma, 2.5 km) of the centre
    sigma = np.nan_to_num(sigma_km, nan=2.5)
    reach = np.maximum(sigma, 2.5)
    lo = np.minimum(np.searchsorted(x, centre - reach, side="left"), len(x) - 1)
    hi = np.minimum(np.maximum(np.searchsorted(x, centre + reach, side="right"), lo + 1), len(x))
    for column, name in (("windspeed_u", "wind_u_ms"), ("windspeed_v", "wind_v_ms"),
                         ("surface_pressure", "surface_pressure_hpa"), ("tcwv", "tcwv_kg_m2")):
        values = df[column].to_numpy(float)
        out[name] = _span_means(values, lo, hi)
    bearing = np.radians(df["bearing_deg"].to_numpy(float))
    out["track_bearing_deg"] = np.degrees(np.arctan2(_span_means(np.sin(bearing), lo, hi),
                                                     _span_means(np.cos(bearing), lo, hi))) % 360
    return out


def _with_columns(frame: pd.DataFrame, columns: dict) -> pd.DataFrame:
    """``frame`` with ``columns`` added (or replaced) in one step: setting them one by one copies the frame's
    blocks each time, which shows in a month of ~60k candidates."""
    new = pd.DataFrame(columns, index=frame.index)
    return pd.concat([frame.drop(columns=[c for c in columns if c in frame]), new], axis=1)


def _span_means(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """NaN-aware mean of ``values[lo:hi]`` for many spans at once."""
    finite = np.isfinite(values)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    count = ccount[hi] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (csum[hi] - csum[lo]) / count, np.nan)


def _emission(cands: pd.DataFrame, located: dict, settings: DetectionSettings) -> dict:
    """Cross-sectional flux of each candidate and its 1-sigma (:mod:`core.emission`), from the located winds: the
    area's error (calibrated) and the wind's (``emission.wind_uncertainty_ms`` on the cross-track component)
    added in quadrature."""
    amplitude = cands["amplitude_ppm_km"].to_numpy(float)
    u_perp = np.asarray(cross_track_wind_ms(located["wind_u_ms"], located["wind_v_ms"],
                                            located["track_bearing_deg"]), float)
    q = em.emission_kg_s(amplitude, u_perp, located["surface_pressure_hpa"], located["tcwv_kg_m2"])
    ok = np.abs(u_perp) >= settings["emission.min_wind_perp_ms"]
    q = np.where(ok, q, np.nan)
    # A's standard error in units of the orbit's own noise at the fitted width (core.noise): the stated noise
    # understates it where errors are correlated along the track
    spread = cands["noise_spread"].to_numpy(float) if "noise_spread" in cands else 1.0
    rel_a = cands["amplitude_stderr"].to_numpy(float) * spread / np.abs(amplitude)
    rel_w = settings["emission.wind_uncertainty_ms"] / np.abs(u_perp)
    q_se = np.abs(q) * np.sqrt(rel_a ** 2 + rel_w ** 2)
    return {
        "wind_perp_ms": u_perp, "emission_gCO2_s": q * 1e3, "emission_gCO2_s_stderr": q_se * 1e3,
        "emission_ktCO2_h": q * 3600 / 1e6, "emission_MtCO2_yr": q * em.SECONDS_PER_YEAR / 1e9,
        "emission_MtCO2_yr_stderr": q_se * em.SECONDS_PER_YEAR / 1e9}


def detect_orbit(soundings: pd.DataFrame, settings: DetectionSettings | None = None,
                 calibrate: bool = True) -> pd.DataFrame:
    """All stages for one orbit: the candidates table (events are the rows with ``is_event``).

    With ``calibrate`` (and ``detection.mirror``), the orbit is judged as a month of its own
    (:func:`core.false_alarms.calibrate_month`: an orbit alone rarely holds the null it needs, so it usually takes
    the conservative fallback). A month's orbits are detected with ``calibrate=False`` and judged together."""
    settings = settings or DetectionSettings()
    od = prepare_orbit(soundings)
    candidates = judge(od, fit_candidates(od, find_candidates(od, settings), settings), settings)
    if not calibrate:
        return candidates
    from .false_alarms import calibrate_month  # it builds on this module

    return calibrate_month(candidates, settings)
