"""Crafted orbits for detection tests: frames every ~2.25 km northward, 8 footprints, chosen XCO2 shapes."""
from __future__ import annotations

import numpy as np
import pandas as pd

KM_PER_DEG_LAT = 111.195  # km per degree of latitude on the mean sphere
SQRT_2PI = np.sqrt(2 * np.pi)


def crafted_orbit(length_km: float = 1000.0, noise_ppm: float = 0.5, seed: int = 0, lon0: float = 10.0,
                  lat0: float = -4.0, wind_u_ms: float = 5.0, wind_v_ms: float = 0.0,
                  gaps_km: tuple[tuple[float, float], ...] = (), orbit: int = 26500) -> pd.DataFrame:
    """A northward pass along a meridian: x_km = (lat - lat0) * 111.195 for every footprint."""
    rng = np.random.default_rng(seed)
    n_frames = int(length_km / 2.25)
    x_frame = np.arange(n_frames) * 2.25
    keep = np.ones(n_frames, bool)
    for a, b in gaps_km:
        keep &= ~((x_frame >= a) & (x_frame <= b))
    frames = np.flatnonzero(keep)
    footprint = np.tile(np.arange(1, 9, dtype=np.int8), frames.size)
    frame = np.repeat(frames, 8)
    x = x_frame[frame]
    lat = lat0 + x / KM_PER_DEG_LAT
    lon = lon0 + (footprint - 4.5) * 1.29 / (KM_PER_DEG_LAT * np.cos(np.radians(lat)))
    t0 = pd.Timestamp("2019-08-01T12:00:00Z")
    t_us = t0.value // 1000 + frame * 333_333
    stamp = pd.to_datetime(t_us, unit="us", utc=True)
    ids = (stamp.strftime("%Y%m%d%H%M%S").astype(np.int64).to_numpy() * 10
           + (stamp.microsecond // 100_000).to_numpy()) * 10 + footprint
    unc = np.full(x.size, noise_ppm, np.float32)
    xco2 = 410.0 + rng.normal(0, noise_ppm, x.size) if noise_ppm > 0 else np.full(x.size, 410.0)
    return pd.DataFrame({
        "sounding_id": ids.astype(np.int64), "time": stamp, "orbit": np.int32(orbit), "footprint": footprint,
        "latitude": lat.astype(np.float32), "longitude": lon.astype(np.float32),
        "xco2": xco2.astype(np.float32), "xco2_uncertainty": np.maximum(unc, 0.4),
        "windspeed_u": np.float32(wind_u_ms), "windspeed_v": np.float32(wind_v_ms),
        "surface_pressure": np.float32(1000.0), "tcwv": np.float32(20.0),
        "land_water_indicator": np.zeros(x.size, np.int8), "x_true_km": x,
    })


def add_gaussian(df: pd.DataFrame, centre_km: float, amplitude_ppm_km: float, sigma_km: float) -> pd.DataFrame:
    out = df.copy()
    d = out["x_true_km"] - centre_km
    out["xco2"] = (out["xco2"] + amplitude_ppm_km / (sigma_km * SQRT_2PI) * np.exp(-0.5 * (d / sigma_km) ** 2)
                   ).astype(np.float32)
    return out


def add_step(df: pd.DataFrame, at_km: float, step_ppm: float, water_after: bool = True) -> pd.DataFrame:
    out = df.copy()
    after = out["x_true_km"] >= at_km
    out.loc[after, "xco2"] = (out.loc[after, "xco2"] + step_ppm).astype(np.float32)
    if water_after:
        out.loc[after, "land_water_indicator"] = np.int8(1)
    return out
