"""Score detections against OSSE truth: recall, precision, false events per 1,000 km, emission error and its
1-sigma coverage, each with a bootstrap 90 % interval.

Used by ``bench/bench_quality.py`` and the workbench's Validation page.

Definitions (documented here because every figure depends on them):

* **Accepted event**: a candidate row with ``is_event`` true and ``status == "accepted"``.
* **Detectable plume**: a truth plume whose footprint-averaged peak height is at least ``min_peak_ppm``
  (0.8 ppm) and that the satellite actually saw: at least half of the soundings a clear sky would give lie
  within +-2 sigma_along of the crossing, on each side (a plume under a cloud is not a detection failure).
* **Distance**: along the track, from sounding times at 6.75 km/s (so the footprints' sideways spread does not
  count): ``|t_event - t_crossing| * GROUND_SPEED_KM_S``.
* **Match** (one to one, per orbit): accepted events are paired with the orbit's detectable plumes by an optimal
  assignment (``scipy.optimize.linear_sum_assignment``, the shortest augmenting path algorithm of Crouse 2016,
  IEEE Trans. Aerosp. Electron. Syst. 52(4), 1679-1696). A pair is allowed when the distance is at most the
  plume's gate ``max(2 sigma_footprint, 6 km) + 2 km``; each event matches at most one plume and each plume at
  most one event. The assignment first maximises the number of pairs and, among assignments with that many,
  minimises their total distance (see :func:`_assign`).
* **Recall**: matched detectable plumes / detectable plumes. **Recall of isolated plumes**: the same on the
  detectable plumes that are isolated (below); reported beside the recall, never instead of it, to show how much
  of the loss is plumes overlapping another plume along the track (one event sees both; no detector of one
  enhancement per crossing can match both).
* **Precision**: matched events / accepted events.
* **False event**: an accepted event farther than :data:`FALSE_DISTANCE_KM` (30 km) from every truth plume of its
  orbit (any plume of the truth: detectable or not, target or secondary), on any pass. Rates: false events per
  1,000 km of all track (every pass's ``length_km``), and, separately, the false events of plume-free passes per
  1,000 km of plume-free track (those passes carry the nuisances: land/water steps and cloud-contaminated bursts).
* **Near-unmatched event**: an accepted event within 30 km of a truth plume but not matched (a second event on one
  plume, an event on a plume too faint or unseen to be detectable, or one just outside the gate): neither matched
  nor false. Accepted events = matched + false + near-unmatched.
* **Emission error**: ``|estimate - truth| / truth`` for matched detectable plumes that are isolated (no other
  truth plume carrying a tenth of their along-track area within ``3 max(sigma) + 5 km``), so one plume's area
  is compared with one source's emission (a fit over two overlapping plumes measures their sum).
* **1-sigma coverage**: on the same plumes, the share whose true emission lies within the event's
  ``emission_gCO2_s +- emission_gCO2_s_stderr``; with right standard errors and Gaussian errors it is 68.3 %, and
  the median of ``z = |estimate - truth| / stderr`` is 0.674 (the median of a half-normal distribution).
* **The wind's share of the error**: on the same plumes, how far the file's wind across the track is from the
  true one (``|file| - |true|`` over ``|true|``: the simulated worlds put an error in the files' winds), and the
  emission error the same estimate would have with the true cross-track wind (the estimate times true over file
  wind): what is left is the fitted area's error. The flux is proportional to that wind (Varon et al. 2018), so
  no fit of the soundings can take the wind's share away.
* **Intervals**: 90 % percentile intervals (5th and 95th percentiles of the bootstrap distribution; Efron &
  Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 13) of a cluster bootstrap that resamples passes with
  replacement (Davison & Hinkley 1997, *Bootstrap Methods and their Application*, sect. 3.8): a drawn pass
  brings its plumes, its events and its track length, so what the soundings of one pass share (its clouds, its
  cluster of sources) widens the interval as it should. Resamples where a ratio is undefined (no detectable
  plume, no accepted event) are left out of that ratio's interval.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from .lite_reader import read_lite
from .simulate import TRUTH_FILES

CLEAR_SKY_SOUNDINGS_PER_KM = 8 / 2.25  # 8 footprints per 2.25 km frame
GROUND_SPEED_KM_S = 6.75  # OCO-2 ground-track speed (docs/METHOD.md section 5)
GATE_MIN_KM = 6.0  # a match gate is max(2 sigma_footprint, GATE_MIN_KM) + GATE_MARGIN_KM along the track
GATE_MARGIN_KM = 2.0
FALSE_DISTANCE_KM = 30.0  # an accepted event farther than this from every truth plume of its orbit is false
INTERVAL_PERCENTILES = (5.0, 95.0)  # a 90 % percentile interval
INTERVAL_FIELDS = ("recall", "recall_isolated", "precision", "false_per_1000_km", "false_per_1000_km_plume_free",
                   "median_emission_error", "emission_coverage_1sigma")


@dataclass(frozen=True)
class Osse:
    """An OSSE read back: its good soundings (all files) and its truth tables."""

    soundings: pd.DataFrame
    plumes: pd.DataFrame
    passes: pd.DataFrame
    nuisances: pd.DataFrame


@dataclass(frozen=True)
class Score:
    """The scores of one or several pooled OSSEs (definitions: the module docstring).

    ``intervals`` maps the names in :data:`INTERVAL_FIELDS` to their bootstrap 90 % interval ``(low, high)``
    (NaN when ``n_boot`` is 0 or the figure is undefined)."""

    n_passes: int
    n_detectable: int
    n_matched: int
    recall: float
    n_accepted: int
    precision: float
    track_km: float
    plume_free_km: float
    n_false: int
    false_per_1000_km: float  # all track
    n_false_plume_free: int
    false_per_1000_km_plume_free: float
    n_unmatched_near: int
    n_emission: int
    n_detectable_isolated: int
    n_matched_isolated: int
    recall_isolated: float
    median_emission_error: float  # fraction
    emission_coverage_1sigma: float  # fraction
    median_emission_z: float
    median_wind_error: float  # fraction: |file's cross-track wind - true| / true at the same plumes
    median_emission_error_true_wind: float  # fraction: the same estimates with the true cross-track wind
    n_boot: int = 0
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)

    def line(self) -> str:
        def v(name, fmt=".3f", scale=1.0, unit=""):
            return with_interval(getattr(self, name), self.intervals.get(name), fmt, scale, unit)

        return (f"recall {v('recall')} = {self.n_matched}/{self.n_detectable} (isolated plumes "
                f"{v('recall_isolated')} = {self.n_matched_isolated}/{self.n_detectable_isolated}); "
                f"precision {v('precision')} = {self.n_matched}/{self.n_accepted}; "
                f"false events {v('false_per_1000_km')} per 1,000 km of all track ({self.n_false} on "
                f"{self.track_km:,.0f} km), plume-free {v('false_per_1000_km_plume_free')} ({self.n_false_plume_free} "
                f"on {self.plume_free_km:,.0f} km); {self.n_unmatched_near} near-unmatched; "
                f"median |emission error| {v('median_emission_error', '.1f', 100, ' %')} (n={self.n_emission}), "
                f"1-sigma coverage {v('emission_coverage_1sigma', '.0f', 100, ' %')}, median z "
                f"{v('median_emission_z', '.2f')}; with the true wind "
                f"{v('median_emission_error_true_wind', '.1f', 100, ' %')}, the file's wind across the track off by "
                f"{v('median_wind_error', '.1f', 100, ' %')}; 90 % intervals from {self.n_boot} resamples of "
                f"{self.n_passes} passes")


def with_interval(value: float, interval=None, fmt: str = ".3f", scale: float = 1.0, unit: str = "") -> str:
    """``"0.912 (0.870-0.950)"``: a figure and its interval (left out when missing or NaN); ``-`` for NaN."""
    if value is None or not np.isfinite(value):
        return "-"
    text = f"{scale * value:{fmt}}{unit}"
    if interval is not None and np.all(np.isfinite(interval)):
        text += f" ({scale * interval[0]:{fmt}}-{scale * interval[1]:{fmt}}{unit})"
    return text


def load_osse(folder) -> Osse:
    """Read every Lite file of a simulated folder and its truth files."""
    folder = Path(folder)
    frames = [read_lite(f)[0] for f in sorted(folder.glob("*.nc4"))]
    soundings = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    tables = {k: pd.read_csv(folder / name) for k, name in TRUTH_FILES.items()}
    return Osse(soundings, tables["plumes"], tables["passes"], tables["nuisances"])


def osse_fingerprint(folder) -> str:
    """First 12 hex digits of a sha256 over the names and bytes of a simulated OSSE's files: the same digits, the
    same simulated data (the benchmarks print it beside their figures)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def detectable_plumes(osse: Osse, min_peak_ppm: float = 0.8) -> pd.DataFrame:
    """Truth plumes a perfect detector could find (see the module docstring), with their isolation flag."""
    plumes = osse.plumes.copy()
    plumes["cross_time"] = pd.to_datetime(plumes["cross_time"], utc=True)
    soundings = osse.soundings
    times = ({orbit: np.sort(_epoch_s(g["time"])) for orbit, g in soundings.groupby("orbit")}
             if len(soundings) else {})
    cross_s = _epoch_s(plumes["cross_time"]) if len(plumes) else np.zeros(0)
    observed = np.zeros(len(plumes), bool)
    for i, (orbit, sigma_km) in enumerate(zip(plumes["orbit"], plumes["sigma_footprint_km"])):
        t = times.get(orbit)
        if t is None:
            continue
        half_km = 2 * sigma_km
        half_s, tc = half_km / GROUND_SPEED_KM_S, cross_s[i]
        at = np.searchsorted(t, tc, side="left")  # soundings before the crossing: [tc - half, tc); after: [tc, tc + half]
        before = at - np.searchsorted(t, tc - half_s, side="left")
        after = np.searchsorted(t, tc + half_s, side="right") - at
        observed[i] = min(before, after) >= 0.5 * half_km * CLEAR_SKY_SOUNDINGS_PER_KM
    plumes["observed"] = observed
    plumes["detectable"] = observed & (plumes["peak_footprint_ppm"] >= min_peak_ppm)
    plumes["isolated"] = _isolated(plumes, cross_s)
    return plumes


def _epoch_s(times) -> np.ndarray:
    """Times (datetimes or ISO 8601 strings) as seconds since 1970-01-01 UTC [s]."""
    t = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    return (t - pd.Timestamp(0, tz="UTC")).total_seconds().to_numpy(float)


def _isolated(plumes: pd.DataFrame, cross_s: np.ndarray) -> np.ndarray:
    """For each plume: no other plume of the pass carries a tenth of its area within reach of a fit of either
    (3 widths of the wider + 5 km along the track)."""
    out = np.ones(len(plumes), bool)
    orbit = plumes["orbit"].to_numpy()
    sigma = plumes["sigma_footprint_km"].to_numpy(float)
    area = plumes["amplitude_ppm_km"].to_numpy(float)
    for rows in pd.Series(np.arange(len(plumes))).groupby(orbit).indices.values():
        if rows.size < 2:
            continue
        d = np.abs(cross_s[rows][:, None] - cross_s[rows][None, :]) * GROUND_SPEED_KM_S
        reach = 3 * np.maximum(sigma[rows][:, None], sigma[rows][None, :]) + 5.0
        strong = area[rows][None, :] > 0.1 * area[rows][:, None]  # the other (column) against this one (row)
        near = (d <= reach) & strong
        np.fill_diagonal(near, False)
        out[rows] = ~near.any(axis=1)
    return out


def match_gate_km(sigma_footprint_km) -> np.ndarray:
    """The along-track distance [km] within which an event may match a plume of this footprint-scale width."""
    return np.maximum(2.0 * np.asarray(sigma_footprint_km, float), GATE_MIN_KM) + GATE_MARGIN_KM


def _assign(distance_km: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one pairs (rows, columns) of a distance matrix [km], allowed pairs only.

    Choice: the most pairs first, then the least total distance among them. Allowed pairs cost
    ``distance - big`` and forbidden ones 0, with ``big`` larger than any achievable total distance, so one pair
    more always outweighs any saving in distance (a plain distance minimisation could leave a plume unmatched to
    shorten another pair); forbidden pairs the solver had to fill a rectangular assignment with are dropped.
    """
    if not allowed.any():
        return np.zeros(0, int), np.zeros(0, int)
    big = 1.0 + min(allowed.shape) * float(distance_km[allowed].max())
    rows, cols = linear_sum_assignment(np.where(allowed, distance_km - big, 0.0))
    keep = allowed[rows, cols]
    return rows[keep], cols[keep]


def _accepted(candidates: pd.DataFrame | None) -> pd.DataFrame:
    if candidates is None or candidates.empty or not {"is_event", "status"} <= set(candidates.columns):
        return pd.DataFrame({"orbit": pd.Series(dtype=int), "time": pd.Series(dtype="datetime64[ns, UTC]")})
    return candidates[candidates["is_event"].eq(True) & candidates["status"].eq("accepted")]


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    return table[name].to_numpy(float) if name in table.columns else np.full(len(table), np.nan)


def _match(candidates: pd.DataFrame, plumes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The one-to-one match (module docstring): the plume table and the accepted events, both annotated."""
    out = plumes.copy()
    events = _accepted(candidates).copy()
    n_p, n_e = len(out), len(events)
    event_of = np.full(n_p, -1)  # position in events of each plume's match
    plume_of = np.full(n_e, -1)  # position in plumes of each event's match
    nearest_km = np.full(n_e, np.inf)  # distance to the nearest truth plume of the orbit [km]
    if n_p and n_e:
        t_plume, t_event = _epoch_s(out["cross_time"]), _epoch_s(events["time"])
        gate_km = match_gate_km(out["sigma_footprint_km"])
        detectable = out["detectable"].to_numpy(bool)
        p_orbit, e_orbit = out["orbit"].to_numpy(), events["orbit"].to_numpy()
        p_groups = pd.Series(np.arange(n_p)).groupby(p_orbit).indices
        for orbit, ei in pd.Series(np.arange(n_e)).groupby(e_orbit).indices.items():
            pi = p_groups.get(orbit)
            if pi is None:
                continue
            d_km = np.abs(t_event[ei, None] - t_plume[None, pi]) * GROUND_SPEED_KM_S
            nearest_km[ei] = d_km.min(axis=1)
            r, c = _assign(d_km, detectable[pi][None, :] & (d_km <= gate_km[pi][None, :]))
            event_of[pi[c]], plume_of[ei[r]] = ei[r], pi[c]

    hit = event_of >= 0
    at = np.maximum(event_of, 0)
    estimate = _column(events, "emission_gCO2_s")[at] if n_e else np.full(n_p, np.nan)
    stderr = _column(events, "emission_gCO2_s_stderr")[at] if n_e else np.full(n_p, np.nan)
    snr = _column(events, "snr")[at] if n_e else np.full(n_p, np.nan)
    truth = _column(out, "emission_gCO2_s")
    file_perp = np.abs(_column(events, "wind_perp_ms")[at]) if n_e else np.full(n_p, np.nan)
    true_perp = np.abs(_column(out, "wind_perp_ms"))
    isolated = out["isolated"].to_numpy(bool) if "isolated" in out.columns else np.ones(n_p, bool)
    scored = hit & isolated
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.where(scored, np.abs(estimate - truth) / truth, np.nan)
        z = np.where(scored & (stderr > 0), np.abs(estimate - truth) / stderr, np.nan)
        wind = np.where(scored, np.abs(file_perp - true_perp) / true_perp, np.nan)
        # the estimate had the file's wind been the true one: what is left is the fitted area's error
        area = np.where(scored, np.abs(estimate * true_perp / file_perp - truth) / truth, np.nan)
    out["matched"] = hit
    out["event_index"] = np.where(hit, events.index.to_numpy()[at] if n_e else -1, -1)
    out["event_snr"] = np.where(hit, snr, np.nan)
    out["emission_error"] = np.where(np.isfinite(error), error, np.nan)
    out["emission_z"] = np.where(np.isfinite(error) & np.isfinite(z), z, np.nan)
    out["wind_error"] = np.where(np.isfinite(error) & np.isfinite(wind), wind, np.nan)
    out["emission_error_true_wind"] = np.where(np.isfinite(error) & np.isfinite(area), area, np.nan)

    events["outcome"] = np.where(plume_of >= 0, "matched",
                                 np.where(nearest_km > FALSE_DISTANCE_KM, "false", "near-unmatched"))
    events["plume_index"] = np.where(plume_of >= 0, out.index.to_numpy()[np.maximum(plume_of, 0)] if n_p else -1, -1)
    events["nearest_plume_km"] = nearest_km
    return out, events


def match_plumes(candidates: pd.DataFrame, plumes: pd.DataFrame) -> pd.DataFrame:
    """The truth plumes (a :func:`detectable_plumes` table) with ``matched``, ``event_index`` (the row label in
    ``candidates`` of the matched event, -1 if none), ``event_snr`` and, for matched isolated ones,
    ``emission_error`` (a fraction), ``emission_z`` (``|estimate - truth| / stderr``), ``wind_error`` (the file's
    cross-track wind against the true one, a fraction of it) and ``emission_error_true_wind`` (the error the same
    estimate would have with the true cross-track wind: the fitted area's share)."""
    return _match(candidates, plumes)[0]


def event_outcomes(candidates: pd.DataFrame, osse: Osse, plumes: pd.DataFrame | None = None) -> pd.DataFrame:
    """The accepted events with ``outcome`` ("matched", "false" or "near-unmatched"), ``plume_index`` (the
    matched plume's row label in ``plumes``, -1 if none), ``nearest_plume_km`` and their pass's ``pass_kind``."""
    plumes = detectable_plumes(osse) if plumes is None else plumes
    events = _match(candidates, plumes)[1]
    kinds = osse.passes.drop_duplicates("orbit").set_index("orbit")["kind"]
    events["pass_kind"] = events["orbit"].map(kinds).fillna("unknown").to_numpy(object)
    return events


def score(candidates: pd.DataFrame, osse: Osse, plumes: pd.DataFrame | None = None, min_peak_ppm: float = 0.8,
          n_boot: int = 1000, seed: int = 0) -> Score:
    """Score a candidates table (from :func:`core.batch.detect_soundings`) against the OSSE truth (``plumes``:
    :func:`detectable_plumes` of it, computed when None), with ``n_boot`` bootstrap resamples of its passes."""
    return score_many([(candidates, osse, plumes)], n_boot=n_boot, seed=seed, min_peak_ppm=min_peak_ppm)


def score_many(parts, n_boot: int = 1000, seed: int = 0, min_peak_ppm: float = 0.8) -> Score:
    """Score several OSSEs (seeds, simulated worlds) pooled: ``parts`` is a list of ``(candidates, osse,
    plumes_or_None)``. Passes are keyed by (part, orbit), so orbit numbers may repeat across parts; the bootstrap
    resamples the pooled passes ``n_boot`` times with ``numpy.random.default_rng(seed)``."""
    passes, plume_rows, event_rows = [], [], []
    for k, (candidates, osse, plumes) in enumerate(parts):
        plumes = detectable_plumes(osse, min_peak_ppm) if plumes is None else plumes
        matched, events = _match(candidates, plumes)
        p = osse.passes
        passes.append(pd.DataFrame({"part": k, "orbit": p["orbit"].to_numpy(np.int64), "kind": p["kind"].to_numpy(),
                                    "length_km": p["length_km"].to_numpy(float)}))
        plume_rows.append(pd.DataFrame({"part": k, "orbit": matched["orbit"].to_numpy(np.int64),
                                        "detectable": matched["detectable"].to_numpy(bool),
                                        "isolated": (matched["isolated"] if "isolated" in matched else True),
                                        "matched": matched["matched"].to_numpy(bool),
                                        "error": matched["emission_error"].to_numpy(float),
                                        "z": matched["emission_z"].to_numpy(float),
                                        "wind": matched["wind_error"].to_numpy(float),
                                        "area": matched["emission_error_true_wind"].to_numpy(float)}))
        event_rows.append(pd.DataFrame({"part": k, "orbit": events["orbit"].to_numpy(np.int64),
                                        "outcome": events["outcome"].to_numpy(object)}))
    plumes, events = pd.concat(plume_rows, ignore_index=True), pd.concat(event_rows, ignore_index=True)
    # the passes (clusters of the bootstrap); an orbit with plumes or events but no pass row has no track length
    units = pd.concat(passes + [plumes[["part", "orbit"]], events[["part", "orbit"]]], ignore_index=True)
    units = units.drop_duplicates(["part", "orbit"]).reset_index(drop=True)
    units["kind"] = units["kind"].fillna("unknown")
    units["length_km"] = units["length_km"].fillna(0.0)
    index = pd.MultiIndex.from_frame(units[["part", "orbit"]])
    p_unit = index.get_indexer(pd.MultiIndex.from_frame(plumes[["part", "orbit"]]))
    e_unit = index.get_indexer(pd.MultiIndex.from_frame(events[["part", "orbit"]]))

    n_units = len(units)
    free = units["kind"].eq("plume-free").to_numpy()
    is_false = events["outcome"].eq("false").to_numpy()

    def per_unit(owner, weights):
        return np.bincount(owner, weights=np.asarray(weights, float), minlength=n_units)

    per = {  # per-pass sums; a bootstrap resample's sums are counts-weighted sums of these
        "detectable": per_unit(p_unit, plumes["detectable"]),
        "matched": per_unit(p_unit, plumes["matched"]),  # only detectable plumes are matched
        "detectable_isolated": per_unit(p_unit, plumes["detectable"] & plumes["isolated"]),
        "matched_isolated": per_unit(p_unit, plumes["matched"] & plumes["isolated"]),
        "accepted": per_unit(e_unit, np.ones(len(events))),
        "false": per_unit(e_unit, is_false),
        "false_free": per_unit(e_unit, is_false & free[e_unit]),
        "near": per_unit(e_unit, events["outcome"].eq("near-unmatched")),
        "track_km": units["length_km"].to_numpy(float),
        "free_km": np.where(free, units["length_km"].to_numpy(float), 0.0),
    }
    errors = plumes["error"].to_numpy(float)
    has_error = np.isfinite(errors)
    z = plumes["z"].to_numpy(float)
    wind, area = plumes["wind"].to_numpy(float), plumes["area"].to_numpy(float)
    has_z = np.isfinite(z)
    per["n_z"] = per_unit(p_unit[has_z], np.ones(has_z.sum()))
    per["covered"] = per_unit(p_unit[has_z], z[has_z] <= 1.0)

    def figures(s: dict) -> dict:
        with np.errstate(divide="ignore", invalid="ignore"):
            return {"recall": s["matched"] / s["detectable"],
                    "recall_isolated": s["matched_isolated"] / s["detectable_isolated"], "precision": s["matched"] / s["accepted"],
                    "false_per_1000_km": 1000 * s["false"] / s["track_km"],
                    "false_per_1000_km_plume_free": 1000 * s["false_free"] / s["free_km"],
                    "emission_coverage_1sigma": s["covered"] / s["n_z"]}

    total = {k: np.float64(v.sum()) for k, v in per.items()}
    point = {k: float(v) for k, v in figures(total).items()}
    intervals = {name: (float("nan"), float("nan")) for name in INTERVAL_FIELDS}
    if n_boot > 0 and n_units:
        counts = _resample_counts(n_units, n_boot, seed)
        boot = figures({k: counts @ v for k, v in per.items()})
        boot["median_emission_error"] = _resampled_medians(errors[has_error], p_unit[has_error], counts)
        intervals = {name: _interval(boot[name]) for name in INTERVAL_FIELDS}
    return Score(
        n_passes=n_units, n_detectable=int(total["detectable"]), n_matched=int(total["matched"]),
        recall=point["recall"], n_accepted=int(total["accepted"]), precision=point["precision"],
        track_km=total["track_km"], plume_free_km=total["free_km"], n_false=int(total["false"]),
        false_per_1000_km=point["false_per_1000_km"], n_false_plume_free=int(total["false_free"]),
        false_per_1000_km_plume_free=point["false_per_1000_km_plume_free"], n_unmatched_near=int(total["near"]),
        n_emission=int(has_error.sum()), n_detectable_isolated=int(total["detectable_isolated"]),
        n_matched_isolated=int(total["matched_isolated"]), recall_isolated=point["recall_isolated"],
        median_emission_error=float(np.median(errors[has_error])) if has_error.any() else float("nan"),
        emission_coverage_1sigma=point["emission_coverage_1sigma"],
        median_emission_z=float(np.median(z[has_z])) if has_z.any() else float("nan"),
        median_wind_error=float(np.nanmedian(wind)) if np.isfinite(wind).any() else float("nan"),
        median_emission_error_true_wind=float(np.nanmedian(area)) if np.isfinite(area).any() else float("nan"),
        n_boot=int(n_boot), intervals=intervals)


def _resample_counts(n_units: int, n_boot: int, seed: int) -> np.ndarray:
    """How many times each pass is drawn in each of ``n_boot`` resamples of ``n_units`` passes, (n_boot, n_units)."""
    draws = np.random.default_rng(seed).integers(0, n_units, size=(n_boot, n_units))
    flat = (draws + n_units * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n_units).reshape(n_boot, n_units).astype(float)


def _resampled_medians(values: np.ndarray, owner: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The median of ``values`` (each belonging to pass ``owner``) in each resample, as ``np.median`` of the
    values repeated as often as their pass was drawn (NaN for a resample without any)."""
    if values.size == 0:
        return np.full(len(counts), np.nan)
    order = np.argsort(values)
    v = values[order]
    cum = np.cumsum(counts[:, owner[order]], axis=1)  # (n_boot, n values): copies up to each sorted value
    n = cum[:, -1]
    # the value at 0-based position k of the expanded sorted list is the first whose cumulative count exceeds k
    lo = np.minimum((cum <= ((n - 1) // 2)[:, None]).sum(axis=1), v.size - 1)
    hi = np.minimum((cum <= (n // 2)[:, None]).sum(axis=1), v.size - 1)
    return np.where(n > 0, 0.5 * (v[lo] + v[hi]), np.nan)


def _interval(samples: np.ndarray) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(finite, INTERVAL_PERCENTILES)
    return float(lo), float(hi)


def recall_by_peak(matched_plumes: pd.DataFrame, bins=(0.8, 1.2, 2.0, 4.0, np.inf)) -> pd.DataFrame:
    """Recall of the detectable plumes of a :func:`match_plumes` table in bins of ``peak_footprint_ppm``
    (``lower <= peak < upper``): columns ``peak_footprint_ppm`` (the bin's label), ``n``, ``matched``, ``recall``."""
    rows = matched_plumes[matched_plumes["detectable"]] if "detectable" in matched_plumes else matched_plumes
    peak_ppm = rows["peak_footprint_ppm"].to_numpy(float)
    hit = rows["matched"].to_numpy(bool)
    edges = np.asarray(bins, float)
    which = np.searchsorted(edges, peak_ppm, side="right") - 1
    out = []
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        inside = which == k
        n, m = int(inside.sum()), int(hit[inside].sum())
        out.append({"peak_footprint_ppm": f">= {lo:g}" if np.isinf(hi) else f"{lo:g}-{hi:g}", "n": n, "matched": m,
                    "recall": m / n if n else float("nan")})
    return pd.DataFrame(out)


def breakdown(matched: pd.DataFrame) -> dict:
    """Recall by along-track width and emission error by significance, from :func:`match_plumes` tables."""
    det = matched[matched["detectable"]]
    narrow = det["sigma_footprint_km"] < 2.0
    strong = matched["event_snr"] >= 8
    errors = matched["emission_error"]
    return {
        "recall_narrow": float(det.loc[narrow, "matched"].mean()), "n_narrow": int(narrow.sum()),
        "recall_wide": float(det.loc[~narrow, "matched"].mean()), "n_wide": int((~narrow).sum()),
        "median_error_strong": float(errors[strong].median()), "n_strong": int(errors[strong].notna().sum()),
    }
