"""Emission-source inventory: the source table's data contract, and the DuckDB queries over it.

One Parquet table of power plants, EU-ETS installations and cities, one row per source, with the data contract of
``docs/ARCHITECTURE.md`` (Sources)

    source_id, name, sector, country, latitude, longitude, emission_tCO2_yr, year, dataset

plus extras (``subsector``, ``capacity_mw``, ``population``, ``status``, ``merged_ids``, ``emission_basis``,
``coordinate_source``, ``emission_capped``). The table is built offline by :mod:`core.inventory_build` (datasets and
references there) and embedded as package data in ``core/data/inventory/`` (:data:`core.paths.EMBEDDED_INVENTORY`).

The query helpers (:func:`sources_in_box`, :func:`sources_within_radius`, :func:`sources_by_sector`,
:func:`largest_emitters`) read it with DuckDB; the file is sorted by a 1-degree lat/lon key in small row groups, so
their box filters skip most of it. All SQL is parameterised (``?`` placeholders).
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from core.paths import EMBEDDED_INVENTORY, cache_root
from core.track import EARTH_RADIUS_KM, KM_PER_DEG, haversine_km

#: Sectors: fuel-resolved power plants, EU-ETS power installations of unknown fuel, other EU-ETS sectors, cities.
SECTORS = ("power-coal", "power-gas", "power-oil", "power", "industry", "city")
FUEL_SECTORS = ("power-coal", "power-gas", "power-oil")
#: The data contract (docs/ARCHITECTURE.md, Sources), then the extras, in file order.
CONTRACT_COLUMNS = ("source_id", "name", "sector", "country", "latitude", "longitude", "emission_tCO2_yr", "year",
                    "dataset")
EXTRA_COLUMNS = ("subsector", "capacity_mw", "population", "status", "merged_ids", "emission_basis",
                 "coordinate_source", "emission_capped")
COLUMNS = CONTRACT_COLUMNS + EXTRA_COLUMNS
#: pandas dtype of each column ("str": pandas string; "Int32": nullable, missing for cities without a figure).
COLUMN_DTYPES = {
    "source_id": "str", "name": "str", "sector": "str", "country": "str", "latitude": "float64",
    "longitude": "float64", "emission_tCO2_yr": "float64", "year": "Int32", "dataset": "str", "subsector": "str",
    "capacity_mw": "float64", "population": "float64", "status": "str", "merged_ids": "str",
    "emission_basis": "str", "coordinate_source": "str", "emission_capped": "bool",
}


# ------------------------------------------------------------------------------------------------- contract


def _empty_extras(n: int) -> dict:
    """Default values of the extra columns for ``n`` rows."""
    return {"subsector": [None] * n, "capacity_mw": np.full(n, np.nan), "population": np.full(n, np.nan),
            "status": [None] * n, "merged_ids": [""] * n, "emission_basis": [None] * n,
            "coordinate_source": ["dataset"] * n, "emission_capped": np.zeros(n, dtype=bool)}


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns in contract order with the contract dtypes (:data:`COLUMN_DTYPES`); missing extras are filled."""
    out = frame.copy()
    defaults = _empty_extras(len(out))
    for column in COLUMNS:
        if column not in out.columns:
            if column not in defaults:
                raise KeyError(f"inventory frame lacks contract column {column!r}")
            out[column] = defaults[column]
    out = out.loc[:, list(COLUMNS)]
    for column, dtype in COLUMN_DTYPES.items():
        if dtype == "Int32":
            out[column] = pd.array(pd.to_numeric(out[column], errors="coerce").round(), dtype="Int32")
        elif dtype == "bool":
            out[column] = out[column].fillna(False).astype(bool)
        else:
            out[column] = out[column].astype(dtype)
    out["merged_ids"] = out["merged_ids"].fillna("")
    return out.reset_index(drop=True)


# ------------------------------------------------------------------------------------------------------ queries


def sources_path(cache=None) -> Path:
    """The source table to query: ``<cache>/inventory/sources.parquet`` if built, else the embedded one.

    Parameters
    ----------
    cache : str or os.PathLike, optional
        Cache root (default: ``$OCO2_CACHE`` or ``data_cache/``, see :func:`core.paths.cache_root`).
    """
    built = cache_root(cache) / "inventory" / "sources.parquet"
    return built if built.is_file() else EMBEDDED_INVENTORY / "sources.parquet"


def connect() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection (pass your own ``con`` to the query helpers to reuse one)."""
    return duckdb.connect()


def _query(sql_where: str, params: list, cache=None, con=None, order_by: str = "source_id",
           limit: int | None = None) -> pd.DataFrame:
    """Run ``SELECT * FROM read_parquet(?) WHERE <sql_where>`` with bound parameters; a conformed frame."""
    sql = f"SELECT * FROM read_parquet(?) WHERE {sql_where or 'TRUE'} ORDER BY {order_by}"  # clauses: code, not data
    params = [str(sources_path(cache)), *params]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    own = con is None
    con = connect() if own else con
    try:
        frame = con.execute(sql, params).df()
    finally:
        if own:
            con.close()
    return conform(frame)


def _check_sectors(sectors) -> list[str] | None:
    """Normalise a sector argument (None, a name, or names) to a list, rejecting unknown names."""
    if sectors is None:
        return None
    names = [sectors] if isinstance(sectors, str) else list(sectors)
    unknown = sorted(set(names) - set(SECTORS))
    if unknown:
        raise ValueError(f"unknown sector(s) {unknown}; known: {SECTORS}")
    return names


def _filters(sectors=None, exclude_sectors=None, min_emission_tCO2_yr=None) -> tuple[list[str], list]:
    """SQL conditions and their parameters for the common filters."""
    where, params = [], []
    sectors = _check_sectors(sectors)
    if sectors is not None:
        where.append("list_contains(?::VARCHAR[], sector)")
        params.append(sectors)
    exclude = _check_sectors(exclude_sectors)
    if exclude:
        where.append("NOT list_contains(?::VARCHAR[], sector)")
        params.append(exclude)
    if min_emission_tCO2_yr is not None:
        where.append("emission_tCO2_yr >= ?")
        params.append(float(min_emission_tCO2_yr))
    return where, params


def _box_condition(lat_min, lat_max, lon_min, lon_max) -> tuple[str, list]:
    """SQL box condition [deg]; ``lon_min > lon_max`` means the box crosses the antimeridian."""
    lat_min, lat_max, lon_min, lon_max = (float(x) for x in (lat_min, lat_max, lon_min, lon_max))
    if lat_min > lat_max:
        raise ValueError(f"lat_min {lat_min} > lat_max {lat_max}")
    if lon_min <= lon_max:
        return ("latitude BETWEEN ? AND ? AND longitude BETWEEN ? AND ?", [lat_min, lat_max, lon_min, lon_max])
    return ("latitude BETWEEN ? AND ? AND (longitude >= ? OR longitude <= ?)", [lat_min, lat_max, lon_min, lon_max])


def sources_in_box(lat_min, lat_max, lon_min, lon_max, sectors=None, min_emission_tCO2_yr=None, cache=None,
                   con=None) -> pd.DataFrame:
    """Sources inside a latitude/longitude box.

    Parameters
    ----------
    lat_min, lat_max : float
        Latitude bounds [deg], inclusive.
    lon_min, lon_max : float
        Longitude bounds [deg, -180..180], inclusive; ``lon_min > lon_max`` is a box crossing the antimeridian
        (e.g. 170 .. -170 spans 20 degrees).
    sectors : str or sequence of str, optional
        Keep only these sectors (:data:`SECTORS`).
    min_emission_tCO2_yr : float, optional
        Keep only sources emitting at least this [tCO2/yr] (drops cities without a figure).
    cache : str or os.PathLike, optional
        Cache root (see :func:`sources_path`).
    con : duckdb.DuckDBPyConnection, optional
        Connection (or cursor) to run on; a fresh one by default.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, ordered by source_id.

    References
    ----------
    Inventory datasets: WRI GPPD, Global Coal Plant Tracker, EU-ETS (Sandbag), cities (see
    :mod:`core.inventory_build`).
    """
    box, params = _box_condition(lat_min, lat_max, lon_min, lon_max)
    where, more = _filters(sectors, None, min_emission_tCO2_yr)
    return _query(" AND ".join([box, *where]), params + more, cache, con)


def radius_box_deg(lat_deg, lon_deg, radius_km: float) -> tuple[float, float, float, float]:
    """A lat/lon box [deg] holding every point within ``radius_km`` of one point or several (an SQL prefilter).

    Parameters
    ----------
    lat_deg, lon_deg : float or array_like
        The point(s) [deg]; points with a non-finite coordinate are left out.
    radius_km : float
        Radius [km].

    Returns
    -------
    tuple of float
        ``(lat_min, lat_max, lon_min, lon_max)``; ``lon_min > lon_max`` when it crosses the antimeridian, and the
        full longitude range when a circle reaches a pole or the circles go all the way round. Each circle spans
        the longitudes of a small circle, +- asin(sin(r/R) / cos(lat)); the box spans the shortest arc of
        longitude holding all of them (the whole circle but its largest gap).

    Raises
    ------
    ValueError
        No point with finite coordinates.
    """
    lat, lon = np.atleast_1d(np.asarray(lat_deg, float)), np.atleast_1d(np.asarray(lon_deg, float))
    finite = np.isfinite(lat) & np.isfinite(lon)
    if not finite.any():
        raise ValueError("radius_box_deg needs a point with finite coordinates")
    lat, lon = lat[finite], lon[finite]
    dlat = radius_km / KM_PER_DEG
    lat_min, lat_max = max(float(lat.min()) - dlat, -90.0), min(float(lat.max()) + dlat, 90.0)
    if lat_min <= -90.0 or lat_max >= 90.0:
        return lat_min, lat_max, -180.0, 180.0
    # widest longitude extent of a small circle: asin(sin(r/R) / cos(lat))
    ratio = np.sin(radius_km / EARTH_RADIUS_KM) / np.cos(np.radians(lat))
    if np.any(ratio >= 1.0):
        return lat_min, lat_max, -180.0, 180.0
    dlon = np.degrees(np.arcsin(ratio))
    west, east = lon - dlon, lon + dlon
    # the circles' extents measured eastward from the antimeridian [0, 360), by start; the gap before each one
    start = (west + 180.0) % 360.0
    order = np.argsort(start, kind="stable")
    start, end, west, east = start[order], start[order] + (east - west)[order], west[order], east[order]
    reach = np.maximum.accumulate(end)
    tail = reach[-1] - 360.0  # an extent past the antimeridian also covers [0, tail)
    gaps = np.r_[start[1:] - np.maximum(reach[:-1], tail), start[0] + 360.0 - reach[-1]]
    k = int(np.argmax(gaps))
    if gaps[k] <= 0.0:
        return lat_min, lat_max, -180.0, 180.0
    first = (k + 1) % start.size  # the box starts after the largest gap and ends where the extents before it end
    last = int(np.argmax(end)) if k == start.size - 1 or tail >= reach[k] else int(np.argmax(end[:k + 1]))
    wrap = lambda x: float((x + 180.0) % 360.0 - 180.0)  # noqa: E731
    return lat_min, lat_max, wrap(west[first]), 180.0 if east[last] == 180.0 else wrap(east[last])


def sources_within_radius(lat, lon, radius_km, sectors=None, min_emission_tCO2_yr=None, cache=None,
                          con=None) -> pd.DataFrame:
    """Sources within ``radius_km`` of a point, nearest first.

    A box prefilter runs in SQL (:func:`radius_box_deg`), then the exact haversine distance in numpy.

    Parameters
    ----------
    lat, lon : float
        Centre [deg].
    radius_km : float
        Radius [km].
    sectors, min_emission_tCO2_yr, cache, con
        As in :func:`sources_in_box`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS` and ``distance_km`` [km], sorted by distance.
    """
    if not radius_km >= 0:
        raise ValueError(f"radius_km must be >= 0, got {radius_km}")
    box = radius_box_deg(float(lat), float(lon), float(radius_km))
    found = sources_in_box(*box, sectors=sectors, min_emission_tCO2_yr=min_emission_tCO2_yr, cache=cache, con=con)
    distance_km = haversine_km(lat, lon, found["latitude"].to_numpy(), found["longitude"].to_numpy())
    found["distance_km"] = distance_km
    found = found[distance_km <= radius_km]
    return found.sort_values(["distance_km", "source_id"], kind="stable").reset_index(drop=True)


def sources_by_sector(sector, min_emission_tCO2_yr=None, cache=None, con=None) -> pd.DataFrame:
    """All sources of one sector (or several), largest emitter first.

    Parameters
    ----------
    sector : str or sequence of str
        Sector name(s) from :data:`SECTORS`.
    min_emission_tCO2_yr : float, optional
        Keep only sources emitting at least this [tCO2/yr].
    cache, con
        As in :func:`sources_in_box`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, by decreasing ``emission_tCO2_yr`` [tCO2/yr] (sources without a figure last).
    """
    where, params = _filters(sector, None, min_emission_tCO2_yr)
    return _query(" AND ".join(where), params, cache, con,
                  order_by="emission_tCO2_yr DESC NULLS LAST, source_id")


def largest_emitters(n, sectors=None, exclude_sectors=("city",), cache=None, con=None) -> pd.DataFrame:
    """The ``n`` largest emitters, largest first.

    Parameters
    ----------
    n : int
        How many rows.
    sectors : str or sequence of str, optional
        Only these sectors.
    exclude_sectors : sequence of str, optional
        Leave these out (default: cities, whose reported totals are not point sources).
    cache, con
        As in :func:`sources_in_box`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, by decreasing ``emission_tCO2_yr`` [tCO2/yr].
    """
    where, params = _filters(sectors, exclude_sectors, None)
    where.append("emission_tCO2_yr IS NOT NULL")
    return _query(" AND ".join(where), params, cache, con, order_by="emission_tCO2_yr DESC, source_id",
                  limit=int(n))
