"""Attribution: which inventory sources lie upwind of a plume event, ranked, and estimate vs inventory.

A plume is seen downwind of its source, so for each event we look upwind: a sector from the peak along the
reversed wind, of length ``L`` and half-angle ``theta``, widened by ``crosswind_km`` near the peak (the track
crosses the plume up to a plume width away from its axis, and the analysed wind has an error). Sources are
fetched from the inventory Parquet with a parameterised DuckDB box query, then the sector geometry is done in
local east/north kilometres with numpy.

Ranking (documented, simple, and shown to the analyst): ``score = log10(emission [tCO2/yr]) - upwind/L -
(angle/theta)^2``; large, near and well-aligned sources first. Sources without an inventory emission (cities
without a reported figure) count as 1 tCO2/yr.

References
----------
docs/METHOD.md section 4 (after the oco2peak 2020 upwind polygons); Nassar, R. et al. (2017), GRL 44, 10045.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .emission import tco2_per_year_to_kg_s
from .track import EARTH_RADIUS_KM, KM_PER_DEG, haversine_km, local_east_north, unit_vectors

_TEXT_COLUMNS = ("source_id", "source_name", "source_sector", "source_country")
SOURCE_COLUMNS = ("source_id", "source_name", "source_sector", "source_country", "source_distance_km",
                  "source_upwind_km", "source_angle_deg", "source_emission_tCO2_yr", "n_sources_upwind",
                  "emission_ratio", "emission_ratio_stderr", "carried_tCO2_yr", "n_sources_carried",
                  "emission_ratio_carried", "emission_ratio_carried_stderr")
#: A source counts among those a crossing carries (``n_sources_carried``) from this weight up.
CARRIED_MIN_WEIGHT = 0.5
#: Smallest plume half-width [km] a crossing is taken to see (about one footprint across, two frames along).
CARRIED_MIN_WIDTH_KM = 2.0


def sector_length_km(wind_speed_ms, settings) -> np.ndarray:
    """Upwind search length [km]: the setting, or 4 h of transport at the wind speed within 50-150 km."""
    fixed = float(settings["attribution.sector_length_km"])
    if fixed > 0:
        return np.full(np.shape(wind_speed_ms), fixed)
    return np.clip(np.asarray(wind_speed_ms, float) * 4 * 3600 / 1000, 50.0, 150.0)


def upwind_geometry(peak_lat, peak_lon, wind_u_ms, wind_v_ms, src_lat, src_lon):
    """Upwind distance and off-axis angle of sources seen from one peak.

    Returns
    -------
    upwind_km, crosswind_km, angle_deg : ndarray
        Distance along the reversed wind [km] (negative: downwind), distance off that axis [km], and the angle
        between the reversed wind and the direction to the source [deg].
    """
    east, north = local_east_north(peak_lat, peak_lon)
    offset = unit_vectors(src_lat, src_lon) - unit_vectors(peak_lat, peak_lon)
    e_km = EARTH_RADIUS_KM * offset @ east
    n_km = EARTH_RADIUS_KM * offset @ north
    speed = np.hypot(wind_u_ms, wind_v_ms)
    if speed <= 0:
        nan = np.full(np.shape(e_km), np.nan)
        return nan, nan, nan
    ue, un = -wind_u_ms / speed, -wind_v_ms / speed  # the upwind direction
    upwind = e_km * ue + n_km * un
    cross = np.abs(e_km * un - n_km * ue)
    angle = np.degrees(np.arctan2(cross, upwind))
    return upwind, cross, angle


def rank_upwind_sources(peak_lat, peak_lon, wind_u_ms, wind_v_ms, sources: pd.DataFrame, settings) -> pd.DataFrame:
    """The sources inside the upwind sector of one peak, best first (see the module docstring)."""
    found = _in_sector(peak_lat, peak_lon, wind_u_ms, wind_v_ms, sources["latitude"].to_numpy(float),
                       sources["longitude"].to_numpy(float), sources["emission_tCO2_yr"].to_numpy(float), settings) \
        if not sources.empty else None
    if found is None:
        return sources.iloc[0:0].assign(upwind_km=[], crosswind_km=[], angle_deg=[], distance_km=[], score=[])
    ranked = sources.iloc[found.index].assign(upwind_km=found.upwind_km, crosswind_km=found.crosswind_km,
                                              angle_deg=found.angle_deg, distance_km=found.distance_km,
                                              score=found.score)
    return ranked.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class _Sector:
    """Sources inside one peak's upwind sector: positions in the arrays given, geometry [km, deg] and score."""

    index: np.ndarray
    upwind_km: np.ndarray
    crosswind_km: np.ndarray
    angle_deg: np.ndarray
    distance_km: np.ndarray
    score: np.ndarray


def _sector_shape(wind_u_ms, wind_v_ms, settings) -> tuple[float, float, float, float]:
    """Length [km], half-angle [deg], near-peak widening [km] and reach [km] (farthest point) of a sector."""
    length = float(sector_length_km(np.hypot(wind_u_ms, wind_v_ms), settings))
    half_angle = float(settings["attribution.half_angle_deg"])
    widen = float(settings["attribution.crosswind_km"])
    reach = np.hypot(length, length * np.tan(np.radians(min(half_angle, 89.0))) + widen) * 1.01 + 1.0
    return length, half_angle, widen, float(min(reach, np.pi * EARTH_RADIUS_KM / 2))


def _in_sector(peak_lat, peak_lon, wind_u_ms, wind_v_ms, src_lat, src_lon, src_emission_tco2_yr,
               settings) -> _Sector | None:
    """The sources (given as arrays) inside the upwind sector of one peak; None when the peak has no sector
    (a non-finite position or wind)."""
    if not np.isfinite([peak_lat, peak_lon, wind_u_ms, wind_v_ms]).all():
        return None
    length, half_angle, widen, reach = _sector_shape(wind_u_ms, wind_v_ms, settings)
    # The sector geometry is planar (east/north at the peak): only sources near enough to lie in the sector are
    # measured. This also keeps out the far side of the Earth, which projects onto the peak's tangent plane
    # near its origin (a source at the antipode would look 0 km upwind).
    distance = haversine_km(peak_lat, peak_lon, src_lat, src_lon)
    near = np.flatnonzero(distance <= reach)
    upwind, cross, angle = upwind_geometry(peak_lat, peak_lon, wind_u_ms, wind_v_ms, src_lat[near], src_lon[near])
    inside = (upwind >= 0) & (upwind <= length) & (cross <= upwind * np.tan(np.radians(half_angle)) + widen)
    upwind, angle = upwind[inside], angle[inside]
    emission = src_emission_tco2_yr[near[inside]]
    emission = np.maximum(np.where(np.isnan(emission), 1.0, emission), 1.0)  # no figure: 1 tCO2/yr
    score = np.log10(emission) - upwind / length - (angle / half_angle) ** 2
    return _Sector(near[inside], upwind, cross[inside], angle, distance[near[inside]], score)


def carried_weight(upwind_km, crosswind_km, sigma_km: float, wind_speed_ms: float,
                   wind_uncertainty_ms: float) -> np.ndarray:
    """How much of each upwind source's plume the crossing sees, 0..1: the rule that sums the sources a plume
    carries.

    A source's plume runs downwind from it; the crossing at the peak sees it when its axis passes within the
    plume's width of the peak. The axis is uncertain by the wind direction's error ``dtheta = atan(wind
    uncertainty / wind speed)``, so at ``upwind_km`` it passes the peak ``crosswind_km`` off, give or take
    ``upwind_km tan(dtheta)``. The weight is a Gaussian in the cross-wind offset::

        w = exp(-crosswind^2 / (2 s^2)),  s^2 = max(sigma, CARRIED_MIN_WIDTH_KM)^2 + (upwind tan dtheta)^2

    with ``sigma`` the fitted Gaussian's width [km] (the plume's width at the crossing). A source on the axis
    weighs 1; one a width off, 0.61; two widths off, 0.14. (Rule of this project; the single-source ranking is in
    the module docstring.)
    """
    up, cross = np.asarray(upwind_km, float), np.asarray(crosswind_km, float)
    dtheta = np.arctan2(float(wind_uncertainty_ms), max(float(wind_speed_ms), 0.1))
    width = max(float(sigma_km) if np.isfinite(sigma_km) else 0.0, CARRIED_MIN_WIDTH_KM)
    spread2 = width ** 2 + (np.maximum(up, 0.0) * np.tan(dtheta)) ** 2
    return np.exp(-0.5 * cross ** 2 / spread2)


def carried_sources(ranked: pd.DataFrame, sigma_km: float, wind_u_ms: float, wind_v_ms: float,
                    settings) -> pd.DataFrame:
    """The ranked upwind sources (:func:`upwind_sources`) with ``weight`` (:func:`carried_weight`) and
    ``carried_tCO2_yr`` (weight x inventory emission), heaviest first."""
    if ranked.empty:
        return ranked.assign(weight=[], carried_tCO2_yr=[])
    weight = carried_weight(ranked["upwind_km"], ranked["crosswind_km"], sigma_km, np.hypot(wind_u_ms, wind_v_ms),
                            settings["emission.wind_uncertainty_ms"])
    out = ranked.assign(weight=weight, carried_tCO2_yr=weight * ranked["emission_tCO2_yr"].fillna(0.0).to_numpy())
    return out.sort_values("carried_tCO2_yr", ascending=False, kind="stable").reset_index(drop=True)


def sources_reachable(lat, lon, wind_u_ms, wind_v_ms, settings, cache=None) -> pd.DataFrame | None:
    """The inventory sources any of these peaks' upwind sectors can reach (one DuckDB query: the
    :func:`core.inventory.radius_box_deg` box of the farthest reach of the sectors around the peaks); None when no
    peak has a sector (a non-finite position or wind). Positions [deg] and winds [m/s], scalars or arrays."""
    from .inventory import radius_box_deg, sources_in_box

    lat, lon, u, v = (np.atleast_1d(np.asarray(a, float)) for a in (lat, lon, wind_u_ms, wind_v_ms))
    has_sector = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(u) & np.isfinite(v)
    if not has_sector.any():
        return None
    # every source of every sector lies within its reach (the farthest point of the sector) of its peak
    reach_km = max(_sector_shape(ui, vi, settings)[3] for ui, vi in zip(u[has_sector], v[has_sector]))
    return sources_in_box(*radius_box_deg(lat[has_sector], lon[has_sector], reach_km), cache=cache)


def upwind_sources(peak_lat, peak_lon, wind_u_ms, wind_v_ms, settings, cache=None) -> pd.DataFrame:
    """The inventory sources in one peak's upwind sector, best first (:func:`rank_upwind_sources` over
    :func:`sources_reachable`): the list the best source of :func:`attribute` heads."""
    sources = sources_reachable(peak_lat, peak_lon, wind_u_ms, wind_v_ms, settings, cache=cache)
    if sources is None:
        from .inventory import COLUMNS

        sources = pd.DataFrame(columns=COLUMNS)
    return rank_upwind_sources(peak_lat, peak_lon, wind_u_ms, wind_v_ms, sources, settings)


def attribute(events: pd.DataFrame, settings, sources: pd.DataFrame | None = None, cache=None) -> pd.DataFrame:
    """Add the best upwind source and estimate/inventory ratio to each event row (``SOURCE_COLUMNS``).

    ``sources`` defaults to the inventory sources in a box around all events (one DuckDB query,
    :func:`core.inventory.radius_box_deg` of the farthest reach of their upwind sectors).
    """
    out = events.copy()
    for column in SOURCE_COLUMNS:  # text columns in pandas' string dtype (missing: NaN), whatever is found
        out[column] = pd.Series(np.nan, index=out.index, dtype="str" if column in _TEXT_COLUMNS else float)
    out["n_sources_upwind"] = 0
    out["n_sources_carried"] = 0
    if out.empty:
        return out
    if sources is None:
        sources = sources_reachable(*(out[c].to_numpy(float) for c in ("latitude", "longitude", "wind_u_ms",
                                                                        "wind_v_ms")), settings, cache=cache)
        if sources is None:
            return out
    best = _best_sources(out, sources, settings)
    found = best["row"] >= 0
    if not found.any():
        return out
    out.loc[out.index[found], "carried_tCO2_yr"] = best["carried_tCO2_yr"][found]
    out.loc[out.index[found], "n_sources_carried"] = best["n_carried"][found]
    rows = sources.iloc[best["row"][found]]
    at = out.index[found]
    out.loc[at, "n_sources_upwind"] = best["n"][found]
    for column, source_column in (("source_id", "source_id"), ("source_name", "name"), ("source_sector", "sector"),
                                  ("source_country", "country"), ("source_emission_tCO2_yr", "emission_tCO2_yr")):
        out.loc[at, column] = rows[source_column].to_numpy()
    for column in ("source_distance_km", "source_upwind_km", "source_angle_deg"):
        out.loc[at, column] = best[column][found]
    inventory_g_s = np.asarray(tco2_per_year_to_kg_s(rows["emission_tCO2_yr"].to_numpy(float)), float) * 1e3
    with np.errstate(invalid="ignore", divide="ignore"):
        usable = np.isfinite(inventory_g_s) & (inventory_g_s > 0)
        for column, estimate in (("emission_ratio", "emission_gCO2_s"),
                                 ("emission_ratio_stderr", "emission_gCO2_s_stderr")):
            out.loc[at, column] = np.where(usable, out.loc[at, estimate].to_numpy(float) / inventory_g_s, np.nan)
        carried_g_s = np.asarray(tco2_per_year_to_kg_s(best["carried_tCO2_yr"][found]), float) * 1e3
        usable = np.isfinite(carried_g_s) & (carried_g_s > 0)
        for column, estimate in (("emission_ratio_carried", "emission_gCO2_s"),
                                 ("emission_ratio_carried_stderr", "emission_gCO2_s_stderr")):
            out.loc[at, column] = np.where(usable, out.loc[at, estimate].to_numpy(float) / carried_g_s, np.nan)
    return out


def _best_sources(events: pd.DataFrame, sources: pd.DataFrame, settings) -> dict:
    """For each event: the row (position in ``sources``; -1: none) of its best upwind source, that source's
    geometry and the number of sources in the sector.

    The sources are sorted by latitude once, and each event measures only the band its sector can reach (the
    great-circle distance is at least the latitude difference); ties in the score go to the earlier row, as a
    stable sort of the ranked table would have it.
    """
    n = len(events)
    best = {"row": np.full(n, -1), "n": np.zeros(n, int), "source_distance_km": np.full(n, np.nan),
            "source_upwind_km": np.full(n, np.nan), "source_angle_deg": np.full(n, np.nan),
            "carried_tCO2_yr": np.full(n, np.nan), "n_carried": np.zeros(n, int)}
    if sources.empty:
        return best
    lat, lon = sources["latitude"].to_numpy(float), sources["longitude"].to_numpy(float)
    emission = sources["emission_tCO2_yr"].to_numpy(float)
    order = np.argsort(lat, kind="stable")
    lat_sorted = lat[order]
    columns = [events[c].to_numpy(float) for c in ("latitude", "longitude", "wind_u_ms", "wind_v_ms")]
    sigma = events["sigma_km"].to_numpy(float) if "sigma_km" in events else np.full(n, np.nan)
    wind_error = settings["emission.wind_uncertainty_ms"]
    for i, (peak_lat, peak_lon, u, v) in enumerate(zip(*columns)):
        if not np.isfinite([peak_lat, peak_lon, u, v]).all():
            continue
        reach_deg = _sector_shape(u, v, settings)[3] / KM_PER_DEG
        lo = np.searchsorted(lat_sorted, peak_lat - reach_deg, side="left")
        hi = np.searchsorted(lat_sorted, peak_lat + reach_deg, side="right")
        band = np.sort(order[lo:hi])
        found = _in_sector(peak_lat, peak_lon, u, v, lat[band], lon[band], emission[band], settings)
        if found is None or found.index.size == 0:
            continue
        k = int(np.argmax(found.score))
        best["row"][i], best["n"][i] = band[found.index[k]], found.index.size
        best["source_distance_km"][i] = found.distance_km[k]
        best["source_upwind_km"][i], best["source_angle_deg"][i] = found.upwind_km[k], found.angle_deg[k]
        weight = carried_weight(found.upwind_km, found.crosswind_km, sigma[i], np.hypot(u, v), wind_error)
        best["carried_tCO2_yr"][i] = float(np.sum(weight * np.nan_to_num(emission[band[found.index]])))
        best["n_carried"][i] = int(np.count_nonzero(weight >= CARRIED_MIN_WEIGHT))
    return best
