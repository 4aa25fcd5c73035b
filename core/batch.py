"""Detection over a month: orbits -> candidates and events, attributed, stored under the cache.

Results live next to the soundings, keyed by month and by the settings' hash, so several rule sets can be
compared and a CSV always says which settings produced it::

    detections/month=2019-08/<rules_hash>/candidates.parquet   every candidate of every orbit
    detections/month=2019-08/<rules_hash>/settings.toml        the settings that produced them

Events (one per plume) are the candidates with ``is_event``; accepted events are the peaks.
"""
from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from .attribution import SOURCE_COLUMNS, attribute
from .cache import SoundingsCache, write_parquet_atomic
from .detect import detect_orbit
from .settings import DetectionSettings

#: The peaks contract: the first columns of every exported CSV, in this order.
PEAK_COLUMNS = ["sounding_id", "orbit", "time", "latitude", "longitude", "status", "rejected_by",
                "amplitude_ppm_km", "amplitude_stderr", "sigma_km", "sigma_stderr", "delta_ppm", "slope_ppm_km",
                "slope_stderr", "intercept_ppm", "intercept_stderr", "r2", "snr", "n_soundings", "n_windows",
                "wind_u_ms", "wind_v_ms", "wind_perp_ms", "track_bearing_deg", "surface_pressure_hpa",
                "tcwv_kg_m2", "emission_gCO2_s", "emission_gCO2_s_stderr", "emission_ktCO2_h",
                "emission_MtCO2_yr", "emission_MtCO2_yr_stderr", "source_id", "source_name", "source_sector",
                "source_country", "source_distance_km", "source_upwind_km", "source_angle_deg",
                "source_emission_tCO2_yr", "n_sources_upwind", "emission_ratio", "emission_ratio_stderr",
                "rules_hash"]

SOUNDING_COLUMNS = ["sounding_id", "time", "orbit", "footprint", "latitude", "longitude", "xco2",
                    "xco2_uncertainty", "windspeed_u", "windspeed_v", "surface_pressure", "tcwv",
                    "land_water_indicator"]


def detections_dir(cache: SoundingsCache, month: str, settings: DetectionSettings) -> Path:
    return cache.root / "detections" / f"month={month}" / settings.hash


def detect_month(month: str, settings: DetectionSettings | None = None, cache=None,
                 on_orbit: Callable[[int, int, int], None] | None = None, attribute_events: bool = True,
                 sources: pd.DataFrame | None = None, workers: int = 1) -> pd.DataFrame:
    """Detect every orbit of a month; returns the candidates table (events flagged ``is_event``)."""
    settings = settings or DetectionSettings()
    cache = cache if isinstance(cache, SoundingsCache) else SoundingsCache(cache)
    soundings = cache.read_month(month, columns=SOUNDING_COLUMNS)
    return detect_soundings(soundings, settings, on_orbit=on_orbit, attribute_events=attribute_events,
                            sources=sources, cache=cache.root, workers=workers)


def detect_soundings(soundings: pd.DataFrame, settings: DetectionSettings, on_orbit=None,
                     attribute_events: bool = True, sources: pd.DataFrame | None = None,
                     cache=None, workers: int = 1) -> pd.DataFrame:
    """Detect every orbit in a soundings table (see :func:`detect_month`).

    ``workers > 1`` runs the orbits in that many local processes (orbits are independent; the result is the
    same table, in orbit order).
    """
    orbits = [g for _, g in soundings.groupby("orbit", sort=True)]
    parts = []
    for i, part in enumerate(_map_orbits(orbits, settings, workers), 1):
        if not part.empty:
            parts.append(part)
        if on_orbit:
            on_orbit(i, len(orbits), int(orbits[i - 1]["orbit"].iloc[0]))
    candidates = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if attribute_events and not candidates.empty:
        accepted = candidates.index[candidates["is_event"] & candidates["status"].eq("accepted")]
        attributed = attribute(candidates.loc[accepted], settings, sources=sources, cache=cache)
        for column in SOURCE_COLUMNS:
            candidates[column] = attributed[column].reindex(candidates.index)
    return candidates


def _map_orbits(orbits: list[pd.DataFrame], settings: DetectionSettings, workers: int):
    """``detect_orbit`` over the orbits, in order, in this process or in a pool of local processes."""
    if workers <= 1 or len(orbits) < 2:
        yield from (detect_orbit(orbit, settings) for orbit in orbits)
        return
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        # largest orbits first keeps both workers busy to the end; results come back in orbit order
        order = sorted(range(len(orbits)), key=lambda i: -len(orbits[i]))
        futures = {i: pool.submit(detect_orbit, orbits[i], settings) for i in order}
        for i in range(len(orbits)):
            yield futures[i].result()


def peaks_table(candidates: pd.DataFrame, include_rejected: bool = False) -> pd.DataFrame:
    """One row per plume event (accepted only, unless ``include_rejected``), contract columns first."""
    if candidates.empty:
        return pd.DataFrame(columns=PEAK_COLUMNS)
    if include_rejected:
        rows = candidates[candidates["is_event"] | candidates["fixed_reason"].ne("")]
    else:
        rows = candidates[candidates["is_event"] & candidates["status"].eq("accepted")]
    rows = rows.rename(columns={"n_window": "n_soundings"})
    for column in PEAK_COLUMNS:
        if column not in rows:
            rows[column] = np.nan
    extras = [c for c in rows.columns if c not in PEAK_COLUMNS]
    return rows[PEAK_COLUMNS + extras].sort_values(["orbit", "center_km"]).reset_index(drop=True)


def store_detections(cache, month: str, settings: DetectionSettings, candidates: pd.DataFrame) -> Path:
    """Write the candidates table and the settings TOML under ``detections/`` (atomically)."""
    cache = cache if isinstance(cache, SoundingsCache) else SoundingsCache(cache)
    folder = detections_dir(cache, month, settings)
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(candidates, preserve_index=False)
    write_parquet_atomic(folder / "candidates.parquet", table.to_batches(), table.schema,
                         {b"rules_hash": settings.hash.encode()})
    tmp = folder / ".settings.toml.tmp"
    tmp.write_text(settings.to_toml(), encoding="utf-8")
    tmp.replace(folder / "settings.toml")
    return folder


def load_detections(cache, month: str, settings: DetectionSettings) -> pd.DataFrame | None:
    """The stored candidates of a month for these settings, or None if never detected."""
    cache = cache if isinstance(cache, SoundingsCache) else SoundingsCache(cache)
    path = detections_dir(cache, month, settings) / "candidates.parquet"
    return pd.read_parquet(path) if path.exists() else None


def run_month(month: str, settings: DetectionSettings, cache=None, on_orbit=None,
              workers: int = 1) -> tuple[pd.DataFrame, float]:
    """Detect, attribute and store a month; returns the candidates and the seconds it took."""
    start = time.perf_counter()
    candidates = detect_month(month, settings, cache=cache, on_orbit=on_orbit, workers=workers)
    store_detections(cache, month, settings, candidates)
    return candidates, time.perf_counter() - start
