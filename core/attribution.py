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
METHOD.md section 4 (after the oco2peak 2020 upwind polygons); Nassar, R. et al. (2017), GRL 44, 10045.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .emission import tco2_per_year_to_kg_s
from .track import EARTH_RADIUS_KM, haversine_km, local_east_north, unit_vectors

KM_PER_DEG = np.pi * EARTH_RADIUS_KM / 180.0
SOURCE_COLUMNS = ("source_id", "source_name", "source_sector", "source_country", "source_distance_km",
                  "source_upwind_km", "source_angle_deg", "source_emission_tCO2_yr", "n_sources_upwind",
                  "emission_ratio", "emission_ratio_stderr")


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
    if sources.empty or not np.isfinite([peak_lat, peak_lon, wind_u_ms, wind_v_ms]).all():
        return sources.iloc[0:0].assign(upwind_km=[], crosswind_km=[], angle_deg=[], distance_km=[], score=[])
    length = float(sector_length_km(np.hypot(wind_u_ms, wind_v_ms), settings))
    half_angle = float(settings["attribution.half_angle_deg"])
    widen = float(settings["attribution.crosswind_km"])
    # The sector geometry is planar (east/north at the peak): only sources near enough to lie in the sector are
    # measured. This also keeps out the far side of the Earth, which projects onto the peak's tangent plane
    # near its origin (a source at the antipode would look 0 km upwind).
    distance = haversine_km(peak_lat, peak_lon, sources["latitude"].to_numpy(), sources["longitude"].to_numpy())
    reach = np.hypot(length, length * np.tan(np.radians(min(half_angle, 89.0))) + widen) * 1.01 + 1.0
    near = distance <= min(reach, np.pi * EARTH_RADIUS_KM / 2)
    sources, distance = sources.loc[near], distance[near]
    upwind, cross, angle = upwind_geometry(peak_lat, peak_lon, wind_u_ms, wind_v_ms,
                                           sources["latitude"].to_numpy(), sources["longitude"].to_numpy())
    inside = (upwind >= 0) & (upwind <= length) & (cross <= upwind * np.tan(np.radians(half_angle)) + widen)
    found = sources.loc[inside].assign(upwind_km=upwind[inside], crosswind_km=cross[inside],
                                       angle_deg=angle[inside], distance_km=distance[inside])
    emission = found["emission_tCO2_yr"].fillna(1.0).clip(lower=1.0)
    found["score"] = np.log10(emission) - found["upwind_km"] / length - (found["angle_deg"] / half_angle) ** 2
    return found.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def search_box(lat, lon, radius_km) -> tuple[float, float, float, float]:
    """A lat/lon box [deg] holding every point within ``radius_km`` of the given points (antimeridian-aware)."""
    lat, lon = np.atleast_1d(lat).astype(float), np.atleast_1d(lon).astype(float)
    dlat = radius_km / KM_PER_DEG
    lat_min, lat_max = max(lat.min() - dlat, -90.0), min(lat.max() + dlat, 90.0)
    dlon = radius_km / (KM_PER_DEG * max(np.cos(np.radians(max(abs(lat_min), abs(lat_max)))), 0.01))
    if np.ptp(lon) > 180:  # points on both sides of the antimeridian
        east = lon[lon < 0].max() + dlon
        west = lon[lon >= 0].min() - dlon
        return lat_min, lat_max, float(west), float(((east + 180) % 360) - 180)
    lon_min, lon_max = lon.min() - dlon, lon.max() + dlon
    if lon_max - lon_min >= 360:
        return lat_min, lat_max, -180.0, 180.0
    return lat_min, lat_max, float(((lon_min + 180) % 360) - 180), float(((lon_max + 180) % 360) - 180)


def attribute(events: pd.DataFrame, settings, sources: pd.DataFrame | None = None, cache=None) -> pd.DataFrame:
    """Add the best upwind source and estimate/inventory ratio to each event row (``SOURCE_COLUMNS``).

    ``sources`` defaults to the inventory sources in a box around all events (one DuckDB query).
    """
    out = events.copy()
    for column in SOURCE_COLUMNS:
        out[column] = np.nan if column not in ("source_id", "source_name", "source_sector", "source_country") \
            else None
    out["n_sources_upwind"] = 0
    if out.empty:
        return out
    if sources is None:
        from .inventory import sources_in_box

        reach = float(np.max(sector_length_km(np.hypot(out["wind_u_ms"], out["wind_v_ms"]), settings)))
        reach += float(settings["attribution.crosswind_km"])
        sources = sources_in_box(*search_box(out["latitude"], out["longitude"], reach), cache=cache)
    for i, row in out.iterrows():
        ranked = rank_upwind_sources(row["latitude"], row["longitude"], row["wind_u_ms"], row["wind_v_ms"],
                                     sources, settings)
        out.at[i, "n_sources_upwind"] = len(ranked)
        if ranked.empty:
            continue
        best = ranked.iloc[0]
        out.at[i, "source_id"], out.at[i, "source_name"] = best["source_id"], best["name"]
        out.at[i, "source_sector"], out.at[i, "source_country"] = best["sector"], best["country"]
        out.at[i, "source_distance_km"] = best["distance_km"]
        out.at[i, "source_upwind_km"], out.at[i, "source_angle_deg"] = best["upwind_km"], best["angle_deg"]
        out.at[i, "source_emission_tCO2_yr"] = best["emission_tCO2_yr"]
        inventory_g_s = float(tco2_per_year_to_kg_s(best["emission_tCO2_yr"])) * 1e3
        if np.isfinite(inventory_g_s) and inventory_g_s > 0:
            out.at[i, "emission_ratio"] = row["emission_gCO2_s"] / inventory_g_s
            out.at[i, "emission_ratio_stderr"] = row["emission_gCO2_s_stderr"] / inventory_g_s
    return out
