"""Physics of the OSSE (:mod:`core.simulate`): Gaussian plumes crossed by a track, and the background XCO2.

* Plumes: every point source whose plume axis the track crosses contributes its Gaussian plume (Nassar et al.
  2017), averaged over each footprint's area (:func:`plumes_on_pass`); the columns are in kg/m2, converted to ppm by
  the pass once the surface is known (:func:`finish_plume_rows` adds the truth that depends on it).
* Background: the real monthly mean XCO2 of the month (``core/data/xco2_monthly_mean.csv``, the 2014-2020 OCO-2
  record), a seasonal latitudinal gradient, and slow sinusoidal waves along the track (:func:`smooth_waves`).

References
----------
Nassar, R. et al. (2017), Quantifying CO2 emissions from individual power plants from space, GRL 44,
10045-10053 (Gaussian plume, sigma_y = a (x/1 km)^0.894). Zheng, T. et al. (2020), ACP 20, 8501-8510 (the
along-track Gaussian and the cross-sectional flux).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import orbit as orb
from .emission import amplitude_ppm_km, tco2_per_year_to_kg_s
from .track import haversine_km

#: The monthly mean XCO2 of the real OCO-2 record (``xco2;yearmonth`` with yearmonth = YYMM), shipped with the code.
MONTHLY_MEAN_CSV = Path(__file__).resolve().parent / "data" / "xco2_monthly_mean.csv"
#: Stability classes of the plume spread, sigma_y = a (x / 1 km)^0.894 [a in m] (Nassar et al. 2017).
STABILITY_A_M = {"C": 104.0, "D": 68.0}
PLUME_SPREAD_EXPONENT = 0.894


# ------------------------------------------------------------------------------------------ Gaussian plume

def plume_sigma_y_m(downwind_m, a_m=STABILITY_A_M["C"]):
    """Crosswind spread of a Gaussian plume, sigma_y = a (x / 1000 m)^0.894 [m].

    Parameters
    ----------
    downwind_m : array_like
        Distance downwind of the source [m] (> 0).
    a_m : float
        Stability parameter [m]: 104 (class C) or 68 (class D).

    References
    ----------
    Nassar, R. et al. (2017), GRL 44, 10045-10053, eq. (2); Martin, D. O. (1976), JAPCA 26, 145-147.
    """
    return a_m * (np.maximum(np.asarray(downwind_m, float), 1e-3) / 1000.0) ** PLUME_SPREAD_EXPONENT


def plume_column_kg_m2(downwind_m, crosswind_m, emission_kg_s, wind_speed_ms, a_m=STABILITY_A_M["C"]):
    """Vertical column of a Gaussian plume, V = F / (sqrt(2 pi) sigma_y u) exp(-y^2 / (2 sigma_y^2)) [kg/m2].

    Parameters
    ----------
    downwind_m, crosswind_m : array_like
        Position relative to the source along and across the wind [m]; V = 0 upwind (x <= 0).
    emission_kg_s : float
        Source strength F [kg/s].
    wind_speed_ms : float
        Wind speed u [m/s].
    a_m : float
        Stability parameter [m] of :func:`plume_sigma_y_m`.

    Returns
    -------
    numpy.ndarray
        Column enhancement [kg/m2]; integrated across the wind it gives F / u [kg/m].

    References
    ----------
    Nassar, R. et al. (2017), Quantifying CO2 emissions from individual power plants from space, GRL 44,
    10045-10053, eq. (1).
    """
    x = np.asarray(downwind_m, float)
    sigma = plume_sigma_y_m(x, a_m)
    v = emission_kg_s / (np.sqrt(2.0 * np.pi) * sigma * wind_speed_ms) * np.exp(-0.5 * (crosswind_m / sigma) ** 2)
    return np.where(x > 0.0, v, 0.0)


# ------------------------------------------------------------------------------------------------ background

def monthly_mean_xco2_ppm(day: dt.date, csv_path=MONTHLY_MEAN_CSV, trend_ppm_yr: float = 2.4) -> float:
    """Mean XCO2 of the real OCO-2 record for a day [ppm], interpolated between mid-month values.

    Outside the record (2014-09 .. 2020-04) the day is moved by whole years into it (same season) and the
    value extended by ``trend_ppm_yr`` [ppm/yr] per year moved.
    """
    table = pd.read_csv(csv_path, sep=";")
    ym = table["yearmonth"].astype(int)
    mid = pd.to_datetime({"year": 2000 + ym // 100, "month": ym % 100, "day": 15}).to_numpy()
    order = np.argsort(mid)
    t_days = mid[order].astype("datetime64[D]").astype(float)
    xco2 = table["xco2"].to_numpy(float)[order]
    d = float(np.datetime64(day, "D").astype(float))
    years = 0.0
    if d < t_days[0]:
        years = np.ceil((t_days[0] - d) / 365.25)
    elif d > t_days[-1]:
        years = -np.ceil((d - t_days[-1]) / 365.25)
    return float(np.interp(d + years * 365.25, t_days, xco2) - years * trend_ppm_yr)


def latitudinal_gradient_ppm(lat_deg, month: int):
    """Seasonal north-south XCO2 contrast [ppm]: northern drawdown in late summer, excess in spring.

    ``-2 cos(2 pi (month - 8) / 12) sin(lat)``: about -1.5 ppm at 50 N in August, +1.5 ppm in February.
    """
    return -2.0 * np.cos(2.0 * np.pi * (month - 8) / 12.0) * np.sin(np.radians(lat_deg))


def smooth_waves(s_km, rng, amplitude, wave_length_km, n=3):
    """Sum of ``n`` sinusoids along the track with random amplitude, wavelength [km] and phase."""
    out = np.zeros_like(s_km)
    for _ in range(n):
        out += rng.uniform(*amplitude) * np.sin(2 * np.pi * s_km / rng.uniform(*wave_length_km)
                                                + rng.uniform(0, 2 * np.pi))
    return out


# ------------------------------------------------------------------------------------ plumes a track crosses

@dataclass(frozen=True)
class PlumeSources:
    """The point sources that make plumes, as arrays (one row per source)."""

    source_id: np.ndarray
    name: np.ndarray
    sector: np.ndarray
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    emission_tCO2_yr: np.ndarray

    @classmethod
    def from_frame(cls, sources: pd.DataFrame) -> "PlumeSources":
        col = lambda c: sources[c].to_numpy(object) if c in sources else np.full(len(sources), None)  # noqa: E731
        return cls(col("source_id"), col("name"), col("sector"), sources["latitude"].to_numpy(float),
                   sources["longitude"].to_numpy(float), sources["emission_tCO2_yr"].to_numpy(float))

    def __len__(self) -> int:
        return self.lat_deg.shape[0]


def _plume_crossings(g, s_km, wind_u, wind_v, lat_deg, lon_deg, iterations=4):
    """Where the track crosses the plume axis of each source (vectorised over sources).

    The axis leaves the source along the wind found at the crossing: starting from the wind nearest the source,
    crossing and wind are iterated (the wind varies slowly along the track, so this converges in a few steps).

    Returns
    -------
    found : (M,) bool, a downwind crossing exists within the pass
    k, frac : (M,) frame index and fraction to the next frame of the crossing
    s_c_km, x_c_m : (M,) along-track position [km] and downwind distance [m] of the crossing
    wind : (M, 2) wind carrying each plume (u, v) [m/s]
    """
    east, north = orb.local_east_north_m(g.frame_lat_deg[None, :], g.frame_lon_deg[None, :], lat_deg[:, None],
                                         lon_deg[:, None])
    rows = np.arange(lat_deg.shape[0])
    k0 = np.argmin(east ** 2 + north ** 2, axis=1)
    wind = np.stack([wind_u[k0], wind_v[k0]], axis=1)
    for _ in range(iterations):
        wh = wind / np.hypot(wind[:, :1], wind[:, 1:])
        x = east * wh[:, :1] + north * wh[:, 1:]
        y = -east * wh[:, 1:] + north * wh[:, :1]
        change = (np.signbit(y[:, :-1]) != np.signbit(y[:, 1:])) & (x[:, :-1] > 0)
        found = change.any(axis=1)
        k = np.argmin(np.where(change, x[:, :-1], np.inf), axis=1)
        y0, y1 = y[rows, k], y[rows, k + 1]
        frac = np.where(found, y0 / np.where(y0 != y1, y0 - y1, 1.0), 0.0)
        s_c = s_km[k] + frac * (s_km[k + 1] - s_km[k])
        x_c = x[rows, k] + frac * (x[rows, k + 1] - x[rows, k])
        wind = np.where(found[:, None], np.stack([np.interp(s_c, s_km, wind_u), np.interp(s_c, s_km, wind_v)],
                                                 axis=1), wind)
    return found, k, frac, s_c, x_c, wind


def plumes_on_pass(g, s_km, wind_u, wind_v, sources: PlumeSources, stability, settings):
    """Column enhancement [kg/m2] (N, 8) of every plume the track crosses, and one truth row per plume.

    Each footprint value is the plume averaged over the footprint's area (9 x 3 points; the centre alone for
    plumes wider than 5 km along the track), so narrow plumes are smeared as a real footprint smears them and the
    along-track sum of footprint values keeps the plume's area. A plume is followed downwind
    ``settings.plume_max_length_km`` at most, and no further than the wind carries it in ``settings.plume_max_age_h``. The rows lack what depends on the surface (pressure, water vapour,
    amplitude): see :func:`finish_plume_rows`.
    """
    n_frames = s_km.shape[0]
    columns = np.zeros((n_frames, orb.N_FOOTPRINTS))
    rows = []
    if not len(sources) or n_frames < 3:
        return columns, rows
    sub = np.unique(np.r_[np.arange(0, n_frames, 16), n_frames - 1])  # ~36 km apart
    radius_km = settings.plume_max_length_km + 40.0
    near = np.flatnonzero(distance_to_track_km(g.frame_lat_deg[sub], g.frame_lon_deg[sub], sources.lat_deg,
                                                sources.lon_deg, radius_km) <= radius_km)
    a_m = STABILITY_A_M[stability]
    step_km = np.gradient(s_km)
    off_m = orb.footprint_offsets_km() * 1e3

    def sub_points(n):  # midpoints of n equal parts of [-1/2, 1/2]
        return (np.arange(n) + 0.5) / n - 0.5

    fine = (sub_points(9), off_m[None, :, None, None]
            + sub_points(3)[None, None, None, :] * orb.FOOTPRINT_SPACING_KM * 1e3)
    coarse = (sub_points(1), off_m[None, :, None, None])  # a plume much wider than a footprint: its centre
    for block in np.array_split(near, max(1, near.size // 64)):
        if not block.size:
            continue
        found, ks, fracs, s_cs, x_cs, winds = _plume_crossings(g, s_km, wind_u, wind_v, sources.lat_deg[block],
                                                                sources.lon_deg[block])
        speeds = np.hypot(winds[:, 0], winds[:, 1])
        reach_m = np.minimum(settings.plume_max_length_km * 1e3, speeds * settings.plume_max_age_h * 3600.0)
        for i in np.flatnonzero(found & (x_cs > 0.0) & (x_cs <= reach_m)):
            j, k, frac, s_c, x_c, w, speed = block[i], ks[i], fracs[i], s_cs[i], x_cs[i], winds[i], speeds[i]
            wh = w / speed
            te, tn = np.interp(s_c, s_km, g.track_east), np.interp(s_c, s_km, g.track_north)
            norm = np.hypot(te, tn)
            te, tn = te / norm, tn / norm
            cos_angle = float(np.clip(te * wh[0] + tn * wh[1], -1.0, 1.0))
            sin_angle = max(np.sqrt(1.0 - cos_angle ** 2), 1e-3)
            sigma_y_m = float(plume_sigma_y_m(x_c, a_m))
            sigma_along_km = sigma_y_m / sin_angle / 1e3
            half_km = 8.0 * sigma_along_km + 8.0 / sin_angle + 10.0
            window = np.flatnonzero(np.abs(s_km - s_c) <= half_km)
            emission_kg_s = float(tco2_per_year_to_kg_s(sources.emission_tCO2_yr[j]))
            # footprint sub-points in local metres about the source: frame centre + offsets along and across
            fe, fn = orb.local_east_north_m(g.frame_lat_deg[window], g.frame_lon_deg[window], sources.lat_deg[j],
                                            sources.lon_deg[j])
            fte, ftn = g.track_east[window], g.track_north[window]
            u_along, across_m = fine if sigma_along_km < 5.0 else coarse
            along_m = (u_along[None, :] * step_km[window, None] * 1e3)[:, None, :, None]  # (w, 1, 9, 1)
            pe = fe[:, None, None, None] + along_m * fte[:, None, None, None] + across_m * ftn[:, None, None, None]
            pn = fn[:, None, None, None] + along_m * ftn[:, None, None, None] - across_m * fte[:, None, None, None]
            column = plume_column_kg_m2(pe * wh[0] + pn * wh[1], -pe * wh[1] + pn * wh[0], emission_kg_s, speed,
                                        a_m).mean(axis=(2, 3))
            if not np.any(column > 0):
                continue
            columns[window] += column
            step_c_km = float(np.interp(s_c, s_km, step_km))
            rows.append({
                "source_id": sources.source_id[j], "source_name": sources.name[j], "sector": sources.sector[j],
                "source_lat": float(sources.lat_deg[j]), "source_lon": float(sources.lon_deg[j]),
                "cross_lat": float(g.frame_lat_deg[k] + frac * (g.frame_lat_deg[k + 1] - g.frame_lat_deg[k])),
                "cross_lon": float(orb.wrap_longitude(g.frame_lon_deg[k] + frac * orb.wrap_longitude(
                    g.frame_lon_deg[k + 1] - g.frame_lon_deg[k]))),
                "cross_time_s": float(np.interp(s_c, s_km, g.time_s)), "cross_along_track_km": float(s_c),
                "emission_tCO2_yr": float(sources.emission_tCO2_yr[j]), "emission_gCO2_s": emission_kg_s * 1e3,
                "wind_u_ms": float(w[0]), "wind_v_ms": float(w[1]), "wind_speed_ms": float(speed),
                "wind_perp_ms": float(w[0] * tn - w[1] * te),  # positive: blowing to the right of the track
                "crossing_angle_deg": float(np.degrees(np.arccos(cos_angle))),
                "downwind_km": float(x_c / 1e3), "stability_class": stability,
                "sigma_y_km": sigma_y_m / 1e3, "sigma_along_km": sigma_along_km,
                "sigma_footprint_km": float(np.sqrt(sigma_along_km ** 2 + step_c_km ** 2 / 12.0)),
            })
    return columns, rows


def finish_plume_rows(rows, s_km, psurf_hpa, tcwv_kg_m2):
    """Surface pressure and water vapour at each crossing, the plume's along-track area and peak height."""
    for r in rows:
        r["surface_pressure_hpa"] = float(np.interp(r["cross_along_track_km"], s_km, psurf_hpa))
        r["tcwv_kg_m2"] = float(np.interp(r["cross_along_track_km"], s_km, tcwv_kg_m2))
        r["amplitude_ppm_km"] = float(amplitude_ppm_km(r["emission_gCO2_s"] / 1e3, r["wind_perp_ms"],
                                                       r["surface_pressure_hpa"], r["tcwv_kg_m2"]))
        r["peak_height_ppm"] = r["amplitude_ppm_km"] / (r["sigma_along_km"] * np.sqrt(2.0 * np.pi))
        r["peak_footprint_ppm"] = r["amplitude_ppm_km"] / (r["sigma_footprint_km"] * np.sqrt(2.0 * np.pi))


def distance_to_track_km(track_lat, track_lon, lat_deg, lon_deg, radius_km):
    """Distance [km] from each point to the nearest track point; ``inf`` for points outside a box of
    ``radius_km`` around the track (a cheap prefilter before the haversine)."""
    out = np.full(np.shape(lat_deg), np.inf)
    band_lat = radius_km / 111.0 + 0.5
    coslat = max(np.cos(np.radians(min(np.abs(track_lat).max() + band_lat, 89.0))), 0.02)
    dlon = orb.wrap_longitude(lon_deg - track_lon[0])
    track_dlon = orb.wrap_longitude(track_lon - track_lon[0])
    band_lon = radius_km / (111.0 * coslat) + 0.5
    box = ((lat_deg > track_lat.min() - band_lat) & (lat_deg < track_lat.max() + band_lat)
           & (dlon > track_dlon.min() - band_lon) & (dlon < track_dlon.max() + band_lon))
    idx = np.flatnonzero(box)
    if idx.size:
        out[idx] = haversine_km(track_lat[:, None], track_lon[:, None], lat_deg[idx][None, :],
                                lon_deg[idx][None, :]).min(axis=0)
    return out
