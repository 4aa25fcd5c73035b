"""Read-only queries over the soundings cache for the pages (no Streamlit here; cached in :mod:`workbench.state`).

Aggregations run in DuckDB straight over the month's Parquet files; one orbit's soundings are read with a pyarrow
filter (row groups are skipped by their ``orbit`` statistics). All SQL takes bound parameters.
"""
from __future__ import annotations

import os

import duckdb
import numpy as np
import pandas as pd
import pyarrow.dataset as pads

from core.batch import SOUNDING_COLUMNS
from core.cache import SoundingsCache
from core.inventory import sources_path
from core.track import EARTH_RADIUS_KM

#: Seconds per thinned map point: divisors of 60, so bins of ``sounding_id // (100 k)`` never straddle a minute.
_BIN_SECONDS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)


def data_stamp(cache: SoundingsCache, month: str) -> str:
    """Changes whenever a day file of the month is added, replaced or removed (a cache key for its data).

    The cache writes a day file under a hidden name and renames it into place (:mod:`core.cache`), so every change
    moves the folder's modification time. Two system calls, no per-file stat: the pages call this several times a
    run, and under load each call that leaves the GIL waits to get it back.
    """
    folder = cache.soundings_dir / f"month={month}"
    try:
        with os.scandir(folder) as entries:
            n_files = sum(1 for e in entries if e.name.endswith(".parquet") and not e.name.startswith("."))
        return f"{n_files}:{folder.stat().st_mtime_ns}"
    except FileNotFoundError:
        return "0:0"


def _month_files(cache: SoundingsCache, month: str) -> list[str]:
    return [str(f) for f in cache.day_files(month)]


def orbits_table(cache: SoundingsCache, month: str) -> pd.DataFrame:
    """One row per orbit: day, start and end time, soundings, latitude span, mean XCO2 [ppm]."""
    files = _month_files(cache, month)
    if not files:
        return pd.DataFrame(columns=["orbit", "day", "start", "end", "soundings", "lat_min", "lat_max",
                                     "lon_mid", "xco2_mean_ppm"])
    sql = """SELECT orbit, CAST(min(time) AS DATE) AS day, min(time) AS start, max(time) AS "end",
                    count(*) AS soundings, min(latitude) AS lat_min, max(latitude) AS lat_max,
                    median(longitude) AS lon_mid, avg(xco2) AS xco2_mean_ppm
             FROM read_parquet(?) GROUP BY orbit ORDER BY orbit"""
    with duckdb.connect() as con:
        frame = con.execute(sql, [files]).df()
    frame["orbit"] = frame["orbit"].astype("int64")
    frame["day"] = pd.to_datetime(frame["day"]).dt.strftime("%Y-%m-%d")
    return frame


def track_points(cache: SoundingsCache, month: str, max_points: int = 12000) -> pd.DataFrame:
    """The month's tracks thinned for a map: mean position, XCO2, its anomaly to the orbit median, and wind.

    Soundings are averaged over bins of whole seconds of their id (3 frames x 8 footprints per second), with the
    bin length chosen so that at most about ``max_points`` points remain.
    """
    files = _month_files(cache, month)
    if not files:
        return pd.DataFrame(columns=["orbit", "latitude", "longitude", "xco2", "anomaly_ppm", "wind_u_ms",
                                     "wind_v_ms", "n"])
    with duckdb.connect() as con:
        n = con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchall()[0][0]
        seconds = next((s for s in _BIN_SECONDS if n / (14.0 * s) <= max_points), _BIN_SECONDS[-1])
        sql = """SELECT orbit, sounding_id // ? AS bin, avg(latitude) AS latitude, avg(longitude) AS longitude,
                        avg(xco2) AS xco2, avg(windspeed_u) AS wind_u_ms, avg(windspeed_v) AS wind_v_ms,
                        count(*) AS n
                 FROM read_parquet(?) GROUP BY orbit, bin ORDER BY orbit, bin"""
        frame = con.execute(sql, [100 * seconds, files]).df()
    frame["anomaly_ppm"] = frame["xco2"] - frame.groupby("orbit")["xco2"].transform("median")
    return frame.drop(columns="bin")


def daily_mean(cache: SoundingsCache, month: str) -> pd.DataFrame:
    """Mean XCO2 [ppm] and soundings of each day."""
    files = _month_files(cache, month)
    if not files:
        return pd.DataFrame(columns=["day", "xco2_mean_ppm", "soundings"])
    sql = """SELECT CAST(time AS DATE) AS day, avg(xco2) AS xco2_mean_ppm, count(*) AS soundings
             FROM read_parquet(?) GROUP BY day ORDER BY day"""
    with duckdb.connect() as con:
        return con.execute(sql, [files]).df()


def orbit_soundings(cache: SoundingsCache, month: str, orbit: int) -> pd.DataFrame:
    """One orbit's good soundings (the columns detection needs), sorted by sounding id."""
    files = _month_files(cache, month)
    if not files:
        return pd.DataFrame(columns=SOUNDING_COLUMNS)
    dataset = pads.dataset(files, format="parquet")
    table = dataset.to_table(columns=SOUNDING_COLUMNS, filter=pads.field("orbit") == np.int32(orbit))
    return table.to_pandas().sort_values("sounding_id", kind="stable").reset_index(drop=True)


def sources_near_tracks(points: pd.DataFrame, min_emission_tCO2_yr: float, max_km: float = 200.0,
                        cache=None) -> pd.DataFrame:
    """Inventory sources of at least ``min_emission_tCO2_yr`` within ``max_km`` of a thinned track point."""
    from scipy.spatial import cKDTree

    sql = """SELECT source_id, name, sector, country, latitude, longitude, emission_tCO2_yr
             FROM read_parquet(?) WHERE emission_tCO2_yr >= ? ORDER BY emission_tCO2_yr DESC"""
    with duckdb.connect() as con:
        sources = con.execute(sql, [str(sources_path(cache)), float(min_emission_tCO2_yr)]).df()
    if sources.empty or points.empty:
        return sources.iloc[0:0]
    tree = cKDTree(_unit(points["latitude"], points["longitude"]))
    chord = 2 * np.sin(max_km / EARTH_RADIUS_KM / 2)
    distance, _ = tree.query(_unit(sources["latitude"], sources["longitude"]), distance_upper_bound=chord)
    return sources[np.isfinite(distance)].reset_index(drop=True)


def inventory_join(peaks: pd.DataFrame, sectors: list[str] | None, countries: list[str] | None,
                   cache=None) -> pd.DataFrame:
    """Attributed peaks joined with their inventory source (DuckDB over the inventory Parquet).

    Returns one row per attributed peak: the peak's estimate, its best-ranked source's sector, country, dataset,
    capacity and inventory emission [MtCO2/yr], and the summed inventory of the sources the crossing carries
    (``carried_MtCO2_yr``, :func:`core.attribution.carried_weight`), filtered by sector and country when given.
    """
    columns = ["orbit", "sounding_id", "time", "latitude", "longitude", "emission_MtCO2_yr",
               "emission_MtCO2_yr_stderr", "emission_ratio", "emission_ratio_stderr", "source_id",
               "source_distance_km", "source_upwind_km", "delta_ppm", "snr", "carried_tCO2_yr", "n_sources_carried",
               "emission_ratio_carried", "emission_ratio_carried_stderr"]
    frame = peaks.reindex(columns=columns)  # a column the table lacks is empty (NaN)
    frame = frame[frame["source_id"].notna()]
    frame["source_id"] = frame["source_id"].astype(str)
    where, params = ["TRUE"], [str(sources_path(cache))]
    if sectors:
        where.append("list_contains(?::VARCHAR[], s.sector)")
        params.append(list(sectors))
    if countries:
        where.append("list_contains(?::VARCHAR[], s.country)")
        params.append(list(countries))
    sql = f"""SELECT p.*, s.name AS source_name, s.sector, s.country, s.dataset, s.capacity_mw,
                     s.emission_tCO2_yr / 1e6 AS inventory_MtCO2_yr, p.carried_tCO2_yr / 1e6 AS carried_MtCO2_yr
              FROM peaks p JOIN read_parquet(?) s ON p.source_id = s.source_id
              WHERE {' AND '.join(where)} ORDER BY p.emission_MtCO2_yr DESC"""
    with duckdb.connect() as con:
        con.register("peaks", frame)
        return con.execute(sql, params).df()


def _unit(lat, lon) -> np.ndarray:
    la, lo = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])
