"""One pass of the OSSE (:mod:`core.simulate`): every sounding of a planned pass, and its truth rows.

:func:`simulate_pass` lays out the pass (:mod:`core.orbit`), draws the smooth fields along it (surface height,
wind, pressure, water vapour), adds the plumes (:mod:`core.osse_physics`), water stretches and cloud bursts, the
sky and the world's effects (:mod:`core.osse_nuisances`), then XCO2 = background + plumes + nuisances + correlated
errors + noise with sigma = ``xco2_uncertainty`` (0.4-0.7 ppm; flagged soundings get an extra error), and the other
Lite fields. OCO-2 Data Product User's Guide (Lite FP, v9/v10/v11) for what the fields hold.
"""
from __future__ import annotations

import datetime as dt

import numpy as np

from . import orbit as orb
from .emission import co2_column_kg_m2_per_ppm
from .lite_format import FILL_VALUE, FLAG_VAR, TIME_VAR
from .osse_nuisances import (SKY_REGIMES, cloud_gaps, correlated_ppm, free_positions, sky_regimes, world_artefacts,
                             world_rng)
from .osse_physics import finish_plume_rows, latitudinal_gradient_ppm, plumes_on_pass, smooth_waves
from .osse_plan import PassPlan
from .worlds import dp_field_hpa, dp_offset_ppm, draw_pass_world, fine_waves_ppm


def simulate_pass(plan: PassPlan, day: dt.date, xco2_level_ppm, point_sources, footprint_bias, settings,
                   seed, forced_clear):
    """All soundings of one pass (flattened, time order) and its truth rows."""
    rng = np.random.default_rng([seed, 2, plan.index])
    world = draw_pass_world(settings, world_rng(seed, plan.index, 0))
    g = orb.pass_geometry(plan.orbit_pass, plan.t_start_s, plan.t_end_s)
    s = g.along_track_km
    n_frames, nfp = s.shape[0], orb.N_FOOTPRINTS
    length_km = float(s[-1])
    s_ref = float(np.interp(plan.t_ref_s, g.time_s, s))

    # smooth fields along the track (per frame)
    height_m = np.clip(rng.uniform(0.0, 900.0) + smooth_waves(s, rng, (20.0, 250.0), (30.0, 500.0)), 0.0, None)
    lat_f = g.frame_lat_deg
    wind_u = plan.wind_ms[0] + smooth_waves(s - s_ref, rng, (0.1, 0.4), (800.0, 3000.0))
    wind_v = plan.wind_ms[1] + smooth_waves(s - s_ref, rng, (0.1, 0.4), (800.0, 3000.0))
    wind_u += plan.wind_ms[0] - np.interp(s_ref, s, wind_u)  # exactly the planned wind at the reference point
    wind_v += plan.wind_ms[1] - np.interp(s_ref, s, wind_v)
    synoptic_hpa = rng.normal(0.0, 4.0) + smooth_waves(s, rng, (1.0, 3.0), (1500.0, 4000.0))
    moisture = 1.0 + smooth_waves(s, rng, (0.02, 0.06), (300.0, 1500.0))

    def surface(altitude_m):  # surface pressure [hPa] and total column water vapour [kg/m2] per frame
        return (1013.25 * np.exp(-altitude_m / 8400.0) + synoptic_hpa,
                (8.0 + 42.0 * np.exp(-((lat_f - 8.0) / 30.0) ** 2)) * np.exp(-altitude_m / 2200.0) * moisture)

    # plumes (as columns of CO2 mass: the conversion to ppm waits for the surface, which water changes);
    # on land everywhere, peaks are at least as high as with the water placed below (water raises the pressure)
    columns, plume_rows = plumes_on_pass(g, s, wind_u, wind_v, point_sources, plan.stability, settings)
    finish_plume_rows(plume_rows, s, *surface(height_m))
    avoid = [r["cross_along_track_km"] for r in plume_rows if r["peak_height_ppm"] >= 0.1]
    if plan.kind == "plume":
        avoid.append(s_ref)

    # nuisances: water stretches (land_water_indicator 1, sea level, an XCO2 offset) ...
    nuisance_rows = []
    water = np.zeros(n_frames, bool)
    offset_frame = np.zeros(n_frames)
    n_water = rng.poisson(settings.water_stretches_per_1000km * length_km / 1000.0)
    extents = rng.uniform(*settings.water_length_km, size=max(n_water, 1))
    taken = []
    for s0, ext in free_positions(rng, n_water, length_km, extents, avoid, settings.nuisance_min_distance_km,
                                   taken):
        sel = (s >= s0) & (s < s0 + ext)
        magnitude = rng.uniform(*settings.water_offset_ppm) * rng.choice([-1.0, 1.0])
        water |= sel
        offset_frame[sel] += magnitude
        for edge in [s0] + ([s0 + ext] if s0 + ext < length_km else []):
            k = min(np.searchsorted(s, edge), n_frames - 1)
            nuisance_rows.append({"kind": "land_water_step", "lat": float(lat_f[k]),
                                  "lon": float(g.frame_lon_deg[k]), "along_track_km": float(edge),
                                  "extent_km": float(min(ext, length_km - s0)), "magnitude_ppm": float(magnitude)})
    altitude_frame = np.where(water, 0.0, height_m)
    psurf_true, tcwv_true = surface(altitude_frame)
    enh = columns / co2_column_kg_m2_per_ppm(psurf_true, tcwv_true)[:, None]
    finish_plume_rows(plume_rows, s, psurf_true, tcwv_true)

    # ... and bursts of cloud-contaminated soundings left with flag 0
    burst = np.zeros((n_frames, nfp))
    burst_frames = np.zeros(n_frames, bool)
    n_burst = rng.poisson(settings.bursts_per_1000km * length_km / 1000.0)
    if plan.kind == "plume-free":
        n_burst = max(n_burst, 1)
    frames = rng.integers(settings.burst_frames[0], settings.burst_frames[1] + 1, size=max(n_burst, 1))
    step = length_km / max(n_frames - 1, 1)
    for s0, ext in free_positions(rng, n_burst, length_km, frames * step, avoid,
                                   settings.nuisance_min_distance_km, taken):
        nf = int(round(ext / step))
        k0 = min(np.searchsorted(s, s0), n_frames - nf)
        magnitude = rng.uniform(*settings.burst_ppm)
        burst[k0:k0 + nf] += magnitude * rng.uniform(0.7, 1.3, size=(nf, nfp))
        burst_frames[k0:k0 + nf] = True
        kc = k0 + nf // 2
        nuisance_rows.append({"kind": "cloud_burst", "lat": float(lat_f[kc]), "lon": float(g.frame_lon_deg[kc]),
                              "along_track_km": float(s[kc]), "extent_km": float(nf * step),
                              "magnitude_ppm": float(magnitude)})
    # ... and the world's artefacts: unflagged steps and bursts of bad frames (none in the as-stated world)
    artefacts = None
    if world.artefacts:
        artefacts = world_artefacts(plan.kind, g, avoid, taken, settings, world_rng(seed, plan.index, 4))
        nuisance_rows.extend(artefacts.rows)

    # sky: regimes, gaps, flags, missing soundings
    regime = sky_regimes(s, rng, settings)
    protect = np.zeros(n_frames, bool)
    if plan.kind == "plume" and forced_clear:
        regime[np.abs(s - s_ref) <= 75.0] = 0
        width = max([r["sigma_along_km"] for r in plume_rows if abs(r["cross_along_track_km"] - s_ref) < 1.0],
                    default=1.0)
        protect = np.abs(s - s_ref) <= 5.0 * width + 15.0
    gap = cloud_gaps(s, regime, rng) & ~protect & ~burst_frames
    if artefacts is not None:
        gap &= ~artefacts.frames
    gap |= orb.solar_zenith_angle_deg(g.time_s, lat_f, g.frame_lon_deg) >= settings.max_solar_zenith_deg  # night
    p_flag = np.array([v[0] for v in SKY_REGIMES.values()])[regime]
    flag = (rng.random((n_frames, nfp)) < p_flag[:, None]).astype(np.int8)
    flag[burst_frames] = 0
    if artefacts is not None:
        flag[artefacts.mask] = 0
    missing = ((rng.random((n_frames, nfp)) < settings.missing_sounding_rate)
               & ~(protect | burst_frames)[:, None])
    present = ~gap[:, None] & ~missing

    # XCO2: truth, then noise
    lat, lon = g.lat_deg, g.lon_deg
    background = (xco2_level_ppm + latitudinal_gradient_ppm(lat, day.month)
                  + smooth_waves(s, rng, settings.wave_amplitude_ppm, settings.wave_length_km)[:, None]
                  + (footprint_bias + rng.normal(0.0, 0.05, nfp))[None, :])
    if world.fine_waves:
        background = background + fine_waves_ppm(s, world.fine_waves, settings.fine_wave_amplitude_ppm,
                                                 settings.fine_wave_length_km, world_rng(seed, plan.index, 1))[:, None]
    nuisance = offset_frame[:, None] + burst
    if artefacts is not None:
        nuisance = nuisance + artefacts.ppm
    sigma = rng.uniform(*settings.xco2_uncertainty_ppm, size=(n_frames, nfp))
    bad = flag == 1
    sigma[bad] = rng.uniform(0.5, 1.5, size=int(bad.sum()))
    noise = rng.normal(0.0, 1.0, (n_frames, nfp)) * sigma  # the file states sigma ...
    if settings.noise_dof > 0:  # ... heavier tails at the same sd (a stream of its own: the draws above stay)
        dof = settings.noise_dof
        noise = world_rng(seed, plan.index, 6).standard_t(dof, (n_frames, nfp)) * np.sqrt((dof - 2) / dof) * sigma
    if world.noise_scale != 1.0:
        noise = noise * world.noise_scale  # ... the world scatters more
    xco2 = background + enh + nuisance + noise
    flagged_error = rng.normal(0.5, 1.5, size=int(bad.sum()))
    xco2[bad] += flagged_error
    noise[bad] += flagged_error
    correlated = None
    if world.correlated_sd_ppm > 0 or world.footprint_drift_sd_ppm > 0:
        correlated = correlated_ppm(world, s, settings, seed, plan.index)
        xco2 = xco2 + correlated

    # other fields
    altitude = np.where(water[:, None], 0.0, altitude_frame[:, None] + rng.normal(0.0, 8.0, (n_frames, nfp)))
    altitude = np.clip(altitude, 0.0, None)
    psurf_apriori = np.repeat(psurf_true[:, None], nfp, axis=1)
    psurf = psurf_apriori + rng.normal(0.0, 1.0, (n_frames, nfp))
    if world.dp_sd_hpa > 0:
        dp_hpa = dp_field_hpa(s, world.dp_sd_hpa, settings.dp_length_km, world_rng(seed, plan.index, 5))
        psurf = psurf + dp_hpa[:, None]
    if world.dp_ppm_per_hpa > 0:  # what the bias correction's dp term leaves behind
        dp_ppm = dp_offset_ppm(psurf - psurf_apriori, world.dp_ppm_per_hpa)
        xco2, nuisance = xco2 + dp_ppm, nuisance + dp_ppm
    tcwv = np.repeat(tcwv_true[:, None], nfp, axis=1) * (1.0 + rng.normal(0.0, 0.01, (n_frames, nfp)))
    wind_err = rng.normal(0.0, settings.wind_error_ms, 2) if settings.wind_error_ms > 0 else np.zeros(2)
    sza = orb.solar_zenith_angle_deg(g.time_s[:, None], lat, lon)
    mode = 0 if rng.random() < 0.6 else 1  # nadir or glint, one per pass
    sensor_za = (rng.uniform(0.0, 3.0, (n_frames, nfp)) if mode == 0
                 else np.clip(sza + rng.normal(0.0, 1.0, (n_frames, nfp)), 0.0, 85.0))
    land_water = np.where(water[:, None], 1, 0).repeat(nfp, axis=1)

    # keep present soundings, flatten in time order (frame-major, footprints 1..8)
    keep = present.ravel()
    fp = np.tile(np.arange(1, nfp + 1, dtype=np.int8), n_frames)
    frame_idx = np.repeat(np.arange(n_frames), nfp)

    def flat(a):
        return np.asarray(a).reshape(n_frames * nfp, *np.shape(a)[2:])[keep]

    ticks = np.round(g.time_s * orb.FRAME_RATE_HZ).astype(np.int64)
    whole_s = ticks // 3
    out = {
        "frame_ticks": flat(np.repeat(ticks[:, None], nfp, axis=1)),
        TIME_VAR: flat(np.repeat(g.time_s[:, None], nfp, axis=1)),
        "whole_s": flat(np.repeat(whole_s[:, None], nfp, axis=1)),
        "footprint": fp[keep],
        "orbit": np.full(int(keep.sum()), plan.orbit_pass.orbit, np.int32),
        "latitude": flat(lat), "longitude": flat(lon),
        "vertex_latitude": flat(g.vertex_lat_deg), "vertex_longitude": flat(g.vertex_lon_deg),
        "xco2": flat(xco2), "xco2_uncertainty": flat(sigma), FLAG_VAR: flat(flag),
        "windspeed_u": flat(np.repeat((wind_u + wind_err[0])[:, None], nfp, axis=1)),
        "windspeed_v": flat(np.repeat((wind_v + wind_err[1])[:, None], nfp, axis=1)),
        "surface_pressure": flat(psurf), "surface_pressure_apriori": flat(psurf_apriori),
        "tcwv": flat(tcwv), "land_water_indicator": flat(land_water),
        "land_fraction": flat(np.where(land_water == 0, 100.0, 0.0)),
        "operation_mode": np.full(int(keep.sum()), mode, np.int8), "altitude": flat(altitude),
        "solar_zenith_angle": flat(sza), "sensor_zenith_angle": flat(sensor_za),
        "plume_ppm": flat(enh), "nuisance_ppm": flat(nuisance), "background_ppm": flat(background),
        "correlated_ppm": flat(correlated if correlated is not None else np.zeros((n_frames, nfp))),
        "noise_ppm": flat(noise),
        "along_track_km": s[frame_idx[keep]],
    }
    # a rare fill value in xco2 or a coordinate of an otherwise good sounding
    good_idx = np.flatnonzero(out[FLAG_VAR] == 0)
    n_fill = min(good_idx.size, 1 + rng.poisson(settings.fill_rate * good_idx.size))
    for i in rng.choice(good_idx, size=n_fill, replace=False):
        out[str(rng.choice(["xco2", "xco2", "latitude", "longitude"]))][i] = FILL_VALUE

    n = out["xco2"].shape[0]
    good = (out[FLAG_VAR] == 0) & (out["xco2"] != FILL_VALUE) & (out["latitude"] != FILL_VALUE) & \
        (out["longitude"] != FILL_VALUE)
    for r in plume_rows:
        near = np.abs(out["along_track_km"] - r["cross_along_track_km"]) <= 3.0 * r["sigma_along_km"] + 2.0
        r["n_good_near_plume"] = int((near & good).sum())
    pass_row = {
        "kind": plan.kind, "orbit": plan.orbit_pass.orbit, "day": day.isoformat(),
        "start_time": iso_utc(g.time_s[0]), "end_time": iso_utc(g.time_s[-1]),
        "start_lat": float(lat_f[0]), "start_lon": float(g.frame_lon_deg[0]),
        "end_lat": float(lat_f[-1]), "end_lon": float(g.frame_lon_deg[-1]), "length_km": length_km,
        "n_soundings": n, "n_good": int(good.sum()),
        "n_flagged": int((out[FLAG_VAR] != 0).sum()), "n_plumes": len(plume_rows),
        "target_source_id": plan.target.get("source_id") if plan.target else None,
        "operation_mode": mode, "wind_error_u_ms": float(wind_err[0]), "wind_error_v_ms": float(wind_err[1]),
        **world.truth(),
    }
    return out, good, pass_row, plume_rows, nuisance_rows


def iso_utc(t_s) -> str:
    """UTC ISO 8601 time with milliseconds and a Z, e.g. ``2019-08-01T11:49:17.733Z``."""
    return dt.datetime.fromtimestamp(float(t_s), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
