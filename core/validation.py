"""Score detections against OSSE truth: recall, false events per 1,000 km, emission error.

Used by ``bench/bench_quality.py`` and the workbench's Validation page.

Definitions (documented here because every figure depends on them):

* **Detectable plume**: a truth plume whose footprint-averaged peak height is at least ``min_peak_ppm``
  (0.8 ppm) and that the satellite actually saw: at least half of the soundings a clear sky would give lie
  within +-2 sigma_along of the crossing, on each side (a plume under a cloud is not a detection failure).
* **Match**: an accepted event on the same orbit within ``max(2 sigma_footprint, 6 km) + 2 km`` of a truth
  crossing, along the track (distances along the track come from sounding times at 6.75 km/s, so the
  footprints' sideways spread does not count).
* **Recall**: matched detectable plumes / detectable plumes.
* **False events**: accepted events on plume-free passes, per 1,000 km of plume-free track (plume-free passes
  carry the nuisances: land/water steps and cloud-contaminated bursts).
* **Emission error**: ``|estimate - truth| / truth`` for matched detectable plumes that are isolated (no other
  truth plume carrying a tenth of their along-track area within ``3 max(sigma) + 5 km``), so one plume's area
  is compared with one source's emission (a fit over two overlapping plumes measures their sum).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .lite_reader import read_lite
from .simulate import TRUTH_FILES
from .track import haversine_km

CLEAR_SKY_SOUNDINGS_PER_KM = 8 / 2.25  # 8 footprints per 2.25 km frame
GROUND_SPEED_KM_S = 6.75  # OCO-2 ground-track speed (OCO2_LITE_FORMAT.md)


@dataclass(frozen=True)
class Osse:
    """An OSSE read back: its good soundings (all files) and its truth tables."""

    soundings: pd.DataFrame
    plumes: pd.DataFrame
    passes: pd.DataFrame
    nuisances: pd.DataFrame


@dataclass(frozen=True)
class Score:
    n_detectable: int
    n_matched: int
    recall: float
    plume_free_km: float
    n_false: int
    false_per_1000_km: float
    n_emission: int
    median_emission_error: float  # fraction

    def line(self) -> str:
        return (f"recall {self.recall:.3f} ({self.n_matched}/{self.n_detectable}), "
                f"false events {self.false_per_1000_km:.3f} per 1,000 km ({self.n_false} on "
                f"{self.plume_free_km:,.0f} km), median |emission error| {100 * self.median_emission_error:.1f} % "
                f"(n={self.n_emission})")


def load_osse(folder) -> Osse:
    """Read every Lite file of a simulated folder and its truth files."""
    folder = Path(folder)
    frames = [read_lite(f)[0] for f in sorted(folder.glob("*.nc4"))]
    soundings = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    tables = {k: pd.read_csv(folder / name) for k, name in TRUTH_FILES.items()}
    return Osse(soundings, tables["plumes"], tables["passes"], tables["nuisances"])


def detectable_plumes(osse: Osse, min_peak_ppm: float = 0.8) -> pd.DataFrame:
    """Truth plumes a perfect detector could find (see the module docstring), with their isolation flag."""
    plumes = osse.plumes.copy()
    plumes["cross_time"] = pd.to_datetime(plumes["cross_time"], utc=True)
    soundings = osse.soundings
    by_orbit = {orbit: g for orbit, g in soundings.groupby("orbit")}
    observed = np.zeros(len(plumes), bool)
    for i, p in enumerate(plumes.itertuples(index=False)):
        g = by_orbit.get(p.orbit)
        if g is None:
            continue
        half_km = 2 * p.sigma_footprint_km
        along_km = _along_track_offset_km(g["time"], p.cross_time)
        near = np.abs(along_km) <= half_km
        expected = half_km * CLEAR_SKY_SOUNDINGS_PER_KM
        observed[i] = min((near & (along_km < 0)).sum(), (near & (along_km >= 0)).sum()) >= 0.5 * expected
    plumes["observed"] = observed
    plumes["detectable"] = observed & (plumes["peak_footprint_ppm"] >= min_peak_ppm)
    plumes["isolated"] = [_isolated(plumes, i) for i in range(len(plumes))]
    return plumes


def _along_track_offset_km(times, cross_time) -> np.ndarray:
    """Along-track distance from a crossing [km], from the sounding times (ground speed ~6.75 km/s)."""
    return (pd.to_datetime(times, utc=True) - cross_time).dt.total_seconds().to_numpy() * GROUND_SPEED_KM_S


def _isolated(plumes: pd.DataFrame, i: int) -> bool:
    """No other plume of the pass carries a tenth of this one's area within reach of a fit of either."""
    p = plumes.iloc[i]
    same = plumes[(plumes["orbit"] == p["orbit"]) & (plumes.index != plumes.index[i])]
    if same.empty:
        return True
    d = np.abs(_along_track_offset_km(same["cross_time"], p["cross_time"]))
    reach = 3 * np.maximum(same["sigma_footprint_km"], p["sigma_footprint_km"]) + 5.0
    return not bool(((d <= reach) & (same["amplitude_ppm_km"] > 0.1 * p["amplitude_ppm_km"])).any())


def match_plumes(candidates: pd.DataFrame, plumes: pd.DataFrame) -> pd.DataFrame:
    """The truth plumes with ``matched`` and, for matched isolated ones, ``emission_error`` (a fraction)."""
    out = plumes.copy()
    out["matched"] = False
    out["emission_error"] = np.nan
    out["event_snr"] = np.nan
    if candidates.empty:
        return out
    events = candidates[candidates["is_event"] & candidates["status"].eq("accepted")]
    ev_by_orbit = {orbit: g for orbit, g in events.groupby("orbit")}
    for i, p in zip(out.index, out.itertuples(index=False)):
        g = ev_by_orbit.get(p.orbit)
        if g is None or not p.detectable:
            continue
        d = np.abs(_along_track_offset_km(g["time"], pd.Timestamp(p.cross_time)))
        if d.min() <= max(2 * p.sigma_footprint_km, 6.0) + 2.0:
            out.at[i, "matched"] = True
            out.at[i, "event_snr"] = g["snr"].to_numpy(float)[np.argmin(d)]
            if p.isolated:
                estimate = g["emission_gCO2_s"].to_numpy(float)[np.argmin(d)]
                out.at[i, "emission_error"] = abs(estimate - p.emission_gCO2_s) / p.emission_gCO2_s
    return out


def emission_errors(candidates: pd.DataFrame, osse: Osse, plumes: pd.DataFrame) -> np.ndarray:
    """Relative emission errors of the matched isolated detectable plumes."""
    errors = match_plumes(candidates, plumes)["emission_error"].to_numpy(float)
    return errors[np.isfinite(errors)]


def false_events(candidates: pd.DataFrame, osse: Osse) -> tuple[int, float]:
    """Accepted events on plume-free passes, and the plume-free track length [km]."""
    free = osse.passes[osse.passes["kind"] == "plume-free"]
    if candidates.empty:
        return 0, float(free["length_km"].sum())
    events = candidates[candidates["is_event"] & candidates["status"].eq("accepted")]
    return int(events["orbit"].isin(free["orbit"]).sum()), float(free["length_km"].sum())


def score(candidates: pd.DataFrame, osse: Osse, plumes: pd.DataFrame | None = None,
          min_peak_ppm: float = 0.8) -> Score:
    """Score a candidates table (from :func:`core.batch.detect_soundings`) against the OSSE truth."""
    plumes = detectable_plumes(osse, min_peak_ppm) if plumes is None else plumes
    matched = match_plumes(candidates, plumes)
    n_false, free_km = false_events(candidates, osse)
    errors = matched["emission_error"].to_numpy(float)
    errors = errors[np.isfinite(errors)]
    n_detectable, n_matched = int(matched["detectable"].sum()), int(matched["matched"].sum())
    return Score(n_detectable, n_matched, n_matched / n_detectable if n_detectable else float("nan"), free_km,
                 n_false, 1000 * n_false / free_km if free_km else float("nan"), int(errors.size),
                 float(np.median(errors)) if errors.size else float("nan"))


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
