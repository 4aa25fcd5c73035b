"""Pure table derivations the pages draw: funnel, fitted curves, candidate lists, peak windows, map geometry.

No Streamlit here: each function takes and returns plain pandas / numpy, so it is unit-tested directly.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.detect import neighbour_model
from core.false_alarms import MonthThreshold
from core.fitting import gaussian_line
from core.rules import alternative_models
from core.settings import FIXED_REASONS, RULES, DetectionSettings
from core.track import KM_PER_DEG
from core.vetting import PLUME_COLUMNS, plume_decisions

#: Columns of the candidate tables, in order (those a candidate lacks are left out).
CANDIDATE_COLUMNS = ["cand", "status", "rejected_by", "center_km", "delta_ppm", "significance",
                     "emission_MtCO2_yr", "emission_MtCO2_yr_stderr", "emission_note", "source_name", "sigma_km",
                     "amplitude_ppm_km", "amplitude_stderr", "q_value", "burst_like", "snr", "r2", "n_window",
                     "n_windows", "n_neighbours", "sounding_id", "latitude", "longitude"]


def emission_notes(rows: pd.DataFrame, min_wind_perp_ms: float) -> np.ndarray:
    """Why a row has no emission estimate: not fitted, or the wind across the track below the setting."""
    fitted = rows["fixed_reason"].eq("").to_numpy() if "fixed_reason" in rows else np.ones(len(rows), bool)
    missing = ~np.isfinite(rows["emission_MtCO2_yr"].to_numpy(float)) if "emission_MtCO2_yr" in rows else \
        np.ones(len(rows), bool)
    wind = np.abs(rows["wind_perp_ms"].to_numpy(float)) if "wind_perp_ms" in rows else np.full(len(rows), np.nan)
    return np.where(~fitted, "not fitted",
                    np.where(missing & (wind < min_wind_perp_ms),
                             [f"wind across the track {w:.2f} m/s < {min_wind_perp_ms:g}" for w in wind],
                             np.where(missing, "no estimate", ""))).astype(object)


def funnel_stages(settings: DetectionSettings) -> list[str]:
    """Stages a candidate passes, in order: screen, fit, mirror (``detection.mirror``: depletions fitted upside
    down, never plumes), each enabled rule, de-duplication."""
    mirror = ["mirror"] if settings["detection.mirror"] else []
    return ["screen", "fit-failed", *mirror, *[r.name for r in RULES if settings.enabled(r.name)], "duplicate"]


def funnel(candidates: pd.DataFrame, settings: DetectionSettings) -> pd.DataFrame:
    """How many candidates each stage removed (a candidate counts once, at the first stage it fails).

    Columns: ``stage``, ``removed``, ``remaining`` (after the stage), ``fail_any`` (candidates failing the stage
    whatever else they fail) and ``meaning``. The last ``remaining`` is the number of accepted events.
    """
    stages = funnel_stages(settings)
    order = {name: i for i, name in enumerate(stages)}
    total = len(candidates)
    # a month has ~10^4 candidates but few distinct reason lists: count those, then split each once
    counts = candidates["rejected_by"].fillna("").value_counts() if total else pd.Series([], dtype=int)
    split = {reasons: reasons.split("+") if reasons else [] for reasons in counts.index}
    removed = np.zeros(len(stages) + 1, dtype=int)
    for reasons, n in counts.items():
        if split[reasons]:
            removed[min(order.get(x, len(stages)) for x in split[reasons])] += n
    rows, remaining = [], total
    meanings = {r.name: r.meaning for r in RULES} | FIXED_REASONS
    for i, name in enumerate(stages):
        remaining -= int(removed[i])
        rows.append({"stage": name, "removed": int(removed[i]), "remaining": remaining,
                     "fail_any": int(sum(n for reasons, n in counts.items() if name in split[reasons])),
                     "meaning": meanings.get(name, "")})
    return pd.DataFrame(rows)


def signs(candidates: pd.DataFrame) -> np.ndarray:
    """+1 per row, -1 for a mirror row (a depletion fitted with the data turned upside down: ``sign``)."""
    return candidates["sign"].to_numpy(float) if "sign" in candidates else np.ones(len(candidates))


def label_candidates(candidates: pd.DataFrame) -> pd.DataFrame:
    """The candidates with ``cand`` (their row number, a stable id within the table) and a ``kind``:
    ``accepted``, ``rejected`` (an event the rules rejected), ``mirror`` (an event of the data turned upside down:
    a depletion, the noise's null, never a plume), ``duplicate`` (another window of an event) or ``not fitted``
    (screen too weak, fit failed, or started inside a stronger candidate's fit: ``duplicate``); ``mirror`` is
    also a boolean column (the row's ``sign`` is -1, whatever its kind)."""
    out = candidates.reset_index(drop=True).copy()
    out.insert(0, "cand", np.arange(len(out)))
    out["mirror"] = signs(out) < 0
    if out.empty:
        out["kind"] = []
        return out
    fitted = out["fixed_reason"].eq("")
    kind = np.where(out["status"].eq("accepted"), "accepted", np.where(out["mirror"], "mirror", "rejected"))
    kind = np.where(fitted & ~out["is_event"].astype(bool), "duplicate", kind)
    out["kind"] = np.where(~fitted, "not fitted", kind)
    return out


def event_rows(candidates: pd.DataFrame, mirrors: bool = False) -> pd.DataFrame:
    """Events and unfitted candidates (the rows an analyst looks at), accepted first, then by position; the
    mirror rows (``sign`` -1) only when asked, last."""
    labelled = label_candidates(candidates)
    if labelled.empty:
        return labelled
    rank = labelled["kind"].map({"accepted": 0, "rejected": 1, "not fitted": 2, "mirror": 3}) + 4 * labelled["mirror"]
    keep = (labelled["kind"] != "duplicate") & (mirrors | ~labelled["mirror"])
    rows = labelled.assign(_rank=rank)[keep]
    return rows.sort_values(["_rank", "center_km"]).drop(columns="_rank").reset_index(drop=True)


def fit_curves(candidates: pd.DataFrame, n: int = 60, reach_sigma: float = 4.0,
               kinds=("accepted", "rejected", "duplicate", "mirror"), mirrors: bool = False) -> pd.DataFrame:
    """Each candidate's fitted Gaussian + line over ``centre +- reach_sigma * sigma`` (``n`` points), in the data's
    frame: a mirror fit (``sign`` -1, fitted on the data turned upside down) is turned back, so it dips where the
    depletion is. Mirror rows only when ``mirrors``."""
    info_columns = ["cand", "kind", "rejected_by", "delta_ppm", "snr", "significance", "sigma_km", "amplitude_ppm_km"]
    labelled = label_candidates(candidates)
    for column in set(info_columns) - set(labelled.columns):
        labelled[column] = np.nan
    rows = labelled[labelled["kind"].isin(kinds) & (mirrors | ~labelled["mirror"])]
    params = ["amplitude_ppm_km", "sigma_km", "center_km", "slope_ppm_km", "intercept_ppm"]
    rows = rows[np.isfinite(rows[params].to_numpy(float)).all(axis=1)]
    if rows.empty:
        return pd.DataFrame(columns=["x_km", "xco2_fit", *info_columns])
    t = np.linspace(-1.0, 1.0, n)
    sigma = rows["sigma_km"].to_numpy(float)
    x = rows["center_km"].to_numpy(float)[:, None] + reach_sigma * sigma[:, None] * t[None, :]
    p = {k: rows[k].to_numpy(float)[:, None] for k in params}
    y = signs(rows)[:, None] * gaussian_line(x, p["amplitude_ppm_km"], p["sigma_km"], p["center_km"],
                                             p["slope_ppm_km"], p["intercept_ppm"])
    out = pd.DataFrame({"cand": np.repeat(rows["cand"].to_numpy(), n), "x_km": x.ravel(), "xco2_fit": y.ravel()})
    return out.merge(rows[info_columns], on="cand", how="left")


def peak_window(soundings: pd.DataFrame, row: pd.Series, window_km: float,
                candidates: pd.DataFrame | None = None) -> pd.DataFrame:
    """The soundings of a peak's window with the fitted model, its background line and the residuals.

    When the peak was fitted with neighbouring fits modelled (``fit.neighbour_min_snr``), give the orbit's
    ``candidates``: their Gaussians (``neighbours_ppm``) are then part of the model, as in the fit. A mirror fit
    (``sign`` -1: fitted on the data turned upside down) is turned back into the data's frame."""
    x0 = float(row["center_km"])
    sel = soundings[(soundings["x_km"] >= x0 - window_km / 2) & (soundings["x_km"] <= x0 + window_km / 2)]
    out = sel[["x_km", "xco2", "xco2_uncertainty", "footprint", "land_water_indicator"]].copy()
    out["d_km"] = out["x_km"] - x0
    p = {k: float(row[k]) for k in ("amplitude_ppm_km", "sigma_km", "center_km", "slope_ppm_km", "intercept_ppm")}
    sign = float(row.get("sign", 1))
    out["model_ppm"] = sign * gaussian_line(out["x_km"].to_numpy(), p["amplitude_ppm_km"], p["sigma_km"],
                                            p["center_km"], p["slope_ppm_km"], p["intercept_ppm"])
    out["background_ppm"] = sign * (p["slope_ppm_km"] * (out["x_km"] - p["center_km"]) + p["intercept_ppm"])
    out["neighbours_ppm"] = (neighbour_model(out["x_km"].to_numpy(), candidates, row) if candidates is not None
                             else 0.0)
    out["model_ppm"] += out["neighbours_ppm"]
    out["residual_ppm"] = out["xco2"] - out["model_ppm"]
    return out.reset_index(drop=True)


def parameters_table(row: pd.Series) -> pd.DataFrame:
    """The fitted parameters with their standard errors and units."""
    spec = [("A (Gaussian area)", "amplitude_ppm_km", "amplitude_stderr", "ppm km"),
            ("sigma (width)", "sigma_km", "sigma_stderr", "km"),
            ("centre", "center_km", "center_stderr", "km along track"),
            ("slope", "slope_ppm_km", "slope_stderr", "ppm/km"),
            ("intercept", "intercept_ppm", "intercept_stderr", "ppm")]
    rows = [{"parameter": name, "value": row.get(v), "stderr": row.get(e), "unit": unit} for name, v, e, unit in spec]
    delta = row.get("delta_ppm")
    rows.append({"parameter": "delta (peak height)", "value": delta, "stderr": np.nan, "unit": "ppm"})
    rows.append({"parameter": "A / stderr(A)", "value": row.get("snr"), "stderr": np.nan, "unit": "1"})
    for name, column in (("significance (orbit's noise)", "significance"),
                         ("month's threshold", "significance_threshold"), ("q-value", "q_value")):
        if pd.notna(row.get(column, np.nan)):  # where the table has it (the q-value: events passing every rule)
            rows.append({"parameter": name, "value": row[column], "stderr": np.nan, "unit": "1"})
    rows.append({"parameter": "r2 (+-4 sigma)", "value": row.get("r2"), "stderr": np.nan, "unit": "1"})
    return pd.DataFrame(rows).astype({"value": float, "stderr": float})


def offset_latlon(lat: float, lon: float, east_km, north_km):
    """Positions ``east_km``, ``north_km`` away from (lat, lon) on a local tangent plane [deg]."""
    lat2 = lat + np.asarray(north_km, float) / KM_PER_DEG
    lon2 = lon + np.asarray(east_km, float) / (KM_PER_DEG * max(np.cos(np.radians(lat)), 0.01))
    return lat2, (lon2 + 180.0) % 360.0 - 180.0


def upwind_sector_km(wind_u_ms: float, wind_v_ms: float, length_km: float, half_angle_deg: float,
                     crosswind_km: float, n_arc: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """The upwind search sector of a peak as a closed ring ``(east_km, north_km)`` from the peak (the region of
    :func:`core.attribution.rank_upwind_sources`: upwind 0..L, off-axis <= upwind * tan(theta) + widening); empty
    arrays without a wind."""
    speed = float(np.hypot(wind_u_ms, wind_v_ms))
    if not np.isfinite(speed) or speed == 0:
        return np.empty(0), np.empty(0)
    ue, un = -wind_u_ms / speed, -wind_v_ms / speed  # upwind unit vector (east, north)
    pe, pn = -un, ue  # perpendicular
    spread = np.tan(np.radians(half_angle_deg))
    along = np.linspace(0.0, length_km, n_arc)
    a = np.concatenate([along, along[::-1], along[:1]])
    c = np.concatenate([along * spread + crosswind_km, -(along[::-1] * spread + crosswind_km),
                        [crosswind_km]])
    return a * ue + c * pe, a * un + c * pn


def east_north_km(lat0: float, lon0: float, lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """Positions as km east and north of (lat0, lon0) on a local plane (the inverse of :func:`offset_latlon`;
    a few 0.1 % off at 300 km)."""
    dlon = (np.asarray(lon, float) - lon0 + 180.0) % 360.0 - 180.0
    east = dlon * KM_PER_DEG * max(np.cos(np.radians(lat0)), 0.01)
    return east, (np.asarray(lat, float) - lat0) * KM_PER_DEG


def sector_plan_frames(row, soundings: pd.DataFrame, ranked: pd.DataFrame, length_km: float,
                       settings: DetectionSettings, km_per_ms: float = 4.0) -> tuple[pd.DataFrame, ...]:
    """What :func:`workbench.charts.sector_plan_chart` draws around a peak ``row``, in km east and north of it: the
    orbit's soundings within ``max(50, 0.6 L)`` km along the track (every second one, with their anomaly from the
    fit's intercept), the upwind sector ring of length ``L`` = ``length_km``, the ``ranked`` sources (best first)
    and the wind's arrow (:func:`arrow_km`, ``km_per_ms`` km per m/s; none without a wind)."""
    lat0, lon0 = float(row["latitude"]), float(row["longitude"])
    reach_km = max(50.0, 0.6 * length_km)  # the track near the sector, not the whole fit window
    near = soundings[(soundings["x_km"] - float(row["center_km"])).abs() <= reach_km].iloc[::2]
    east, north = east_north_km(lat0, lon0, near["latitude"], near["longitude"])
    track = pd.DataFrame({"east_km": east, "north_km": north,
                          "anomaly_ppm": near["xco2"].to_numpy(float) - float(row["intercept_ppm"])})
    ring_e, ring_n = upwind_sector_km(float(row["wind_u_ms"]), float(row["wind_v_ms"]), length_km,
                                      settings["attribution.half_angle_deg"], settings["attribution.crosswind_km"])
    s_e, s_n = east_north_km(lat0, lon0, ranked["latitude"], ranked["longitude"])
    sources = pd.DataFrame({"east_km": s_e, "north_km": s_n, "name": ranked["name"].to_numpy(),
                            "sector": ranked["sector"].to_numpy(), "country": ranked["country"].to_numpy(),
                            "emission_MtCO2_yr": ranked["emission_tCO2_yr"].to_numpy(float) / 1e6,
                            "upwind_km": ranked["upwind_km"].to_numpy(float), "rank": np.arange(1, len(ranked) + 1)})
    u, v = float(row["wind_u_ms"]), float(row["wind_v_ms"])
    wind = pd.DataFrame(arrow_km(u * km_per_ms, v * km_per_ms) if np.isfinite(u + v) else [],
                        columns=["x", "y", "x2", "y2"]).assign(label=f"wind {np.hypot(u, v):.1f} m/s")
    return track, pd.DataFrame({"east_km": ring_e, "north_km": ring_n}), sources, wind


def carried_table(carried: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` sources a crossing carries most (:func:`core.attribution.carried_sources`), formatted for a static
    table: emissions in Mt/yr, distances in km, indexed by name."""
    show = carried.head(n)
    return pd.DataFrame({
        "name": show["name"], "sector": show["sector"], "country": show["country"],
        "inventory [Mt/yr]": (show["emission_tCO2_yr"] / 1e6).map("{:.2f}".format),
        "seen": show["weight"].map("{:.2f}".format),
        "carried [Mt/yr]": (show["carried_tCO2_yr"] / 1e6).map("{:.2f}".format),
        "upwind [km]": show["upwind_km"].map("{:.0f}".format),
        "off axis [km]": show["crosswind_km"].map("{:.1f}".format),
        "rank score": show["score"].map("{:.2f}".format)}).set_index("name")


def arrow_km(east_km: float, north_km: float, head: float = 0.3, turn_deg: float = 150.0) -> list[tuple]:
    """An arrow from the origin to (east_km, north_km) as segments ``(x0, y0, x1, y1)`` [km]: the shaft and two
    head strokes (``head`` x the shaft's length, turned +-``turn_deg`` from it at the tip)."""
    e, n = float(east_km), float(north_km)
    segments = [(0.0, 0.0, e, n)]
    for turn in (turn_deg, -turn_deg):
        a = np.radians(turn)
        segments.append((e, n, e + head * (e * np.cos(a) - n * np.sin(a)), n + head * (e * np.sin(a) + n * np.cos(a))))
    return segments


def wind_arrows(frame: pd.DataFrame, km_per_ms: float, lat="latitude", lon="longitude", u="wind_u_ms",
                v="wind_v_ms") -> pd.DataFrame:
    """Arrow segments (:func:`arrow_km`, ``km_per_ms`` km per m/s) for the wind at each row: ``source`` and
    ``target`` [lon, lat]."""
    rows = frame[np.isfinite(frame[[lat, lon, u, v]].to_numpy(float)).all(axis=1)]
    segments = []
    for r in rows.itertuples(index=False):  # plain floats: pydeck writes numpy float32 as JSON strings
        la, lo, uu, vv = (float(getattr(r, c)) for c in (lat, lon, u, v))
        for x0, y0, x1, y1 in arrow_km(uu * km_per_ms, vv * km_per_ms):
            (la0, la1), (lo0, lo1) = offset_latlon(la, lo, [x0, x1], [y0, y1])
            segments.append({"source": [float(lo0), float(la0)], "target": [float(lo1), float(la1)],
                             "speed_ms": float(np.hypot(uu, vv))})
    return pd.DataFrame(segments, columns=["source", "target", "speed_ms"])


# ------------------------------------------------------------------------------------------------ false alarms, noise

def threshold_note(t: MonthThreshold | None, settings: DetectionSettings) -> tuple[str, str]:
    """``(level, text)`` telling the month's significance threshold and the false events expected at it; ``level``
    is ``warning`` where the month fell back on the conservative threshold, else ``info``."""
    floor = f"`rules.significance.min_snr` = {settings['rules.significance.min_snr']:g}"
    if t is None or t.method == "fixed":
        value = settings["rules.significance.min_snr"] if t is None else t.threshold
        return "info", (f"Threshold {value:.2f} ({floor}): `detection.mirror` is off, so no mirror events sample "
                        "the noise and no false-event rate is estimated.")
    lo, hi = t.interval_per_1000km
    if t.method == "fallback":
        return "warning", (
            f"Fallback threshold: the month has too few mirror events to set its threshold ({t.n_mirror} < "
            f"`detection.min_mirror_events` = {settings['detection.min_mirror_events']} on {t.track_km:,.0f} km of "
            f"{t.n_orbits} orbits), so every orbit is judged at the conservative threshold {t.threshold:.2f} "
            f"(`detection.fallback_significance` = {settings['detection.fallback_significance']:g}) instead of the "
            f"{settings['detection.false_alarms_per_1000km']:g} false events per 1,000 km asked; "
            f"{t.n_mirror_above} mirror events reach it (at most {hi:.2f} per 1,000 km, 90 %).")
    base = t.method.split("+")[0]
    how = {"mirror": f"{t.n_mirror_above} of them above it",
           "mirror-tail": "extrapolated from the tail of the strongest of them",
           "floor": f"the floor {floor} binds; {t.n_mirror_above} of them above it"}.get(base, base)
    control = (f" {t.control_excess_per_1000km:.2f} per 1,000 km of it are positive artefacts the mirror cannot "
               f"see, counted in the {t.control_km:,.0f} km of track far from every source "
               f"(`detection.control_distance_km`){': they raised the threshold' if '+control' in t.method else ''}."
               if t.control_km > 0 else "")
    burst = (f" {t.burst_note()} Reject them with `rules.frame_aligned.reject_burst_like`."
             if t.n_burst_like and not settings["rules.frame_aligned.reject_burst_like"] else "")
    return "info", (f"Expected false events: {t.false_per_1000km:.2f} per 1,000 km ({lo:.2f}-{hi:.2f}, 90 %), "
                    f"threshold {t.threshold:.2f} from {t.n_mirror} mirror events ({how}) on {t.track_km:,.0f} km of "
                    f"{t.n_orbits} orbits; asked: {settings['detection.false_alarms_per_1000km']:g} per 1,000 km "
                    f"(`detection.false_alarms_per_1000km`).{control}{burst}")


def mirror_events_above(candidates: pd.DataFrame) -> int:
    """Mirror events passing every rule (the threshold included): what would be false events on this data."""
    if candidates.empty or "sign" not in candidates:
        return 0
    return int((candidates["is_event"].astype(bool) & (candidates["sign"].to_numpy() < 0)
                & candidates["rejected_by"].eq("mirror")).sum())


def orbit_noise_figures(noise, candidates: pd.DataFrame) -> dict:
    """The orbit's noise (:class:`core.detect.OrbitNoise`) and its mirror events above the month's threshold per
    1,000 km of the orbit."""
    v = noise.variogram
    above = mirror_events_above(candidates)
    km = float(noise.track_km)
    return {"noise_scale": float(v.noise_scale), "correlated_ppm": float(v.correlated_ppm),
            "correlation_km": float(v.correlation_km), "fallback": bool(noise.fallback), "track_km": km,
            "mirror_above": above, "mirror_per_1000km": above * 1000.0 / km if km > 0 else float("nan")}


# ------------------------------------------------------------------------------------------------ vetting queue

QUEUE_COLUMNS = ["orbit", "sounding_id", "time", "delta_ppm", "emission_MtCO2_yr"]


def vetting_queue(accepted: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """The month's accepted peaks in flight order (sounding ids grow with time), each with the current decision on
    its plume under any settings (:func:`core.vetting.plume_decisions`) and ``vetted`` (a decision exists)."""
    if accepted is None or accepted.empty:
        return pd.DataFrame(columns=[*QUEUE_COLUMNS, *PLUME_COLUMNS, "vetted"])
    queue = accepted.sort_values("sounding_id").reset_index(drop=True)
    decided = plume_decisions(history, queue)
    return queue[QUEUE_COLUMNS].join(decided).assign(vetted=decided["decision"].ne("").to_numpy())


def queue_step(queue: pd.DataFrame, sounding_id: int | None, step: int, unvetted_only: bool = False) -> int | None:
    """The sounding id of the peak ``step`` places after (``-1``: before) ``sounding_id`` in the queue, wrapping
    around; with ``unvetted_only`` the next unvetted one after it (None when all are vetted). A peak not in the
    queue (rejected now) counts from where it would sit."""
    if queue.empty:
        return None
    ids = queue["sounding_id"].to_numpy(np.int64)
    n = ids.size
    here = int(np.searchsorted(ids, sounding_id if sounding_id is not None else ids[0]))
    inside = here < n and ids[here] == sounding_id
    if unvetted_only:
        open_ = np.flatnonzero(~queue["vetted"].to_numpy(bool))
        if open_.size == 0:
            return None
        after = open_[open_ > here] if inside else open_[open_ >= here]
        return int(ids[after[0] if after.size else open_[0]])
    if not inside and step > 0:
        here -= 1  # the first peak after a peak outside the queue sits at `here`
    return int(ids[(here + step) % n])


#: The alternative model a rejection names (drawn first on Peak detail).
ALTERNATIVE_OF_RULE = {"step-like": "step", "box-like": "plateau", "surface-transition": "step"}


def alternative_curves(soundings: pd.DataFrame, row: pd.Series, window_km: float,
                       settings: DetectionSettings) -> dict[str, pd.DataFrame]:
    """The step, plateau and two-plume models the rules compared with the peak's Gaussian
    (:func:`core.rules.alternative_models`), as ``d_km`` / ``model_ppm`` in the data's frame (a mirror fit's turned
    back)."""
    x0, sign = float(row["center_km"]), float(row.get("sign", 1))
    sel = soundings[(soundings["x_km"] - x0).abs() <= window_km / 2]
    track = sel["x_track_km"] if "x_track_km" in sel else sel["x_km"]
    models = alternative_models(sel["x_km"].to_numpy(float), track.to_numpy(float),
                                sign * sel["xco2"].to_numpy(float), sel["xco2_uncertainty"].to_numpy(float), x0,
                                float(row["sigma_km"]), settings)
    return {name: pd.DataFrame({"d_km": m["x_km"] - x0, "model_ppm": sign * m["model_ppm"]})
            for name, m in models.items()}


def default_alternative(row: pd.Series) -> str:
    """The alternative to draw first: the one whose rule rejected the peak, else none."""
    for rule in str(row.get("rejected_by", "")).split("+"):
        if rule in ALTERNATIVE_OF_RULE:
            return ALTERNATIVE_OF_RULE[rule]
    return "none"


def inventory_comparison(joined: pd.DataFrame, summed: bool = True) -> pd.DataFrame:
    """The attributed peaks with what each is compared with: ``compared_MtCO2_yr`` (the inventory of the sources
    its crossing carries, summed, or of its best-ranked source) and ``ratio`` (estimate / that), and ``peak`` (the
    sounding id as text, for chart selections)."""
    out = joined.copy()
    out["compared_MtCO2_yr"] = out["carried_MtCO2_yr"] if summed else out["inventory_MtCO2_yr"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = np.where(out["compared_MtCO2_yr"] > 0,
                                out["emission_MtCO2_yr"] / out["compared_MtCO2_yr"], np.nan)
    out["peak"] = out["sounding_id"].astype("int64").astype(str)
    return out
