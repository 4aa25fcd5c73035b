"""Planning of the OSSE passes (:mod:`core.simulate`): where and when each pass flies, and what it is for.

Plume passes cross a chosen source's plume 10-50 km downwind at 30-150 deg to the wind, wind 2-8 m/s
(:func:`plan_plume_pass`); plume-free passes are placed more than ``plume_free_min_distance_km`` from every listed
source (:func:`plan_plume_free_pass`). Passes of one day never overlap in time and no two passes share an orbit
number: a clashing pass moves to another day (:func:`schedule`). Geometry: :mod:`core.orbit`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np

from . import orbit as orb
from .osse_physics import STABILITY_A_M, distance_to_track_km


@dataclass(frozen=True)
class PassPlan:
    """Where and when one pass flies, and what it is for."""

    index: int
    kind: str  # "plume" | "plume-free"
    day_index: int
    orbit_pass: orb.OrbitPass
    t_start_s: float
    t_end_s: float
    t_ref_s: float  # target crossing (plume pass) or centre (plume-free) [s]
    wind_ms: tuple  # wind at t_ref [m/s] (u, v)
    stability: str
    target: dict | None = None

    def shifted(self, days: int) -> "PassPlan":
        """The same ground track ``days`` solar days later (a sun-synchronous orbit repeats its local time)."""
        d = days * orb.SOLAR_DAY_S
        return replace(self, day_index=self.day_index + days, t_start_s=self.t_start_s + d,
                       t_end_s=self.t_end_s + d, t_ref_s=self.t_ref_s + d,
                       orbit_pass=orb.OrbitPass(self.orbit_pass.t_node_s + d, self.orbit_pass.lon_node_deg))


# ---------------------------------------------------------------------------------------------- planning

def utc_day_start_s(day: dt.date) -> float:
    """The UTC midnight starting ``day`` [s since 1970-01-01]."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()


def _pass_window(orbit_pass, t_ref_s, pass_km, fraction, day_start_s):
    """Start and end times [s] of a pass of ``pass_km`` with ``t_ref`` at ``fraction`` of it, inside the day and
    on the ascending half of the revolution; None when impossible."""
    ve, vn = orb.ground_velocity_km_s(t_ref_s, orbit_pass)
    duration = pass_km / float(np.hypot(ve, vn))
    lo = max(day_start_s + 1.0, orbit_pass.t_node_s - orb.ORBIT_PERIOD_S / 4.0 + 1.0)
    hi = min(day_start_s + orb.SOLAR_DAY_S - 1.0, orbit_pass.t_node_s + orb.ORBIT_PERIOD_S / 4.0 - 1.0)
    duration = min(duration, hi - lo)
    t0 = min(max(t_ref_s - fraction * duration, lo), hi - duration)
    margin = 0.1 * duration
    if not (t0 + margin <= t_ref_s <= t0 + duration - margin):
        return None
    return t0, t0 + duration


def _rotate_bearing(east, north, angle_deg):
    """Unit vector turned clockwise (seen from above) by ``angle_deg``."""
    a = np.radians(angle_deg)
    return east * np.cos(a) + north * np.sin(a), north * np.cos(a) - east * np.sin(a)


def plan_plume_pass(index, source, day_index, day_start_s, pass_km, rng, settings):
    """A pass crossing ``source``'s plume downwind at a drawn angle, or None if no window fits the day."""
    speed = rng.uniform(*settings.wind_speed_ms)
    downwind_m = rng.uniform(*settings.downwind_km) * 1e3
    angle = rng.uniform(*settings.crossing_angle_deg) * rng.choice([-1.0, 1.0])
    stability = str(rng.choice(list(STABILITY_A_M)))
    fraction = rng.uniform(0.25, 0.75)
    lat_s, lon_s = float(source["latitude"]), float(source["longitude"])
    if abs(lat_s) > orb.MAX_LATITUDE_DEG - 1.0:
        return None
    lat_c, lon_c = lat_s, lon_s
    for _ in range(4):  # the track direction at the crossing depends (weakly) on where the crossing is
        op, t_c = orb.pass_through(lat_c, lon_c, day_start_s + orb.SOLAR_DAY_S / 2)
        ve, vn = orb.ground_velocity_km_s(t_c, op)
        we, wn = _rotate_bearing(ve / np.hypot(ve, vn), vn / np.hypot(ve, vn), angle)
        lat_c, lon_c = orb.offset_deg(lat_s, lon_s, downwind_m * we, downwind_m * wn)
        lat_c, lon_c = float(lat_c), float(lon_c)
    op, t_c = orb.pass_through(lat_c, lon_c, day_start_s + orb.SOLAR_DAY_S / 2)
    window = _pass_window(op, t_c, pass_km, fraction, day_start_s)
    if window is None:
        return None
    return PassPlan(index, "plume", day_index, op, window[0], window[1], t_c, (speed * we, speed * wn),
                    stability, dict(source))


def plan_plume_free_pass(index, day_index, day_start_s, pass_km, rng, settings, far_lat, far_lon):
    """A pass whose whole track keeps ``plume_free_min_distance_km`` from every listed source."""
    for _ in range(500):
        lat, lon = rng.uniform(-45.0, 60.0), rng.uniform(-180.0, 180.0)
        op, t_c = orb.pass_through(lat, lon, day_start_s + orb.SOLAR_DAY_S / 2)
        window = _pass_window(op, t_c, pass_km, 0.5, day_start_s)
        if window is None:
            continue
        t = np.arange(window[0], window[1] + 3.0, 3.0)  # ~20 km apart
        tlat, tlon = orb.ground_track(t, op)
        margin_km = settings.plume_free_min_distance_km + 15.0  # track points are ~20 km apart
        if np.any(distance_to_track_km(tlat, tlon, far_lat, far_lon, margin_km) < margin_km):
            continue
        speed = rng.uniform(*settings.wind_speed_ms)
        direction = rng.uniform(0.0, 2.0 * np.pi)
        return PassPlan(index, "plume-free", day_index, op, window[0], window[1], t_c,
                        (speed * np.sin(direction), speed * np.cos(direction)),
                        str(rng.choice(list(STABILITY_A_M))))
    raise RuntimeError("found no plume-free track in 500 draws: is the source table covering the whole globe?")


def schedule(plans, days):
    """Keep passes apart: no overlap in time (30 s margin) and no shared orbit number; a clashing pass moves to
    the nearest day with room. Returns (kept plans, number dropped)."""
    kept, intervals, orbits, dropped = [], [], set(), 0
    for plan in plans:
        order = sorted(range(days), key=lambda d: (abs(d - plan.day_index), d))
        for day in order:
            cand = plan.shifted(day - plan.day_index)
            clash = cand.orbit_pass.orbit in orbits or any(
                cand.t_start_s < b + 30.0 and a - 30.0 < cand.t_end_s for a, b in intervals)
            if not clash:
                kept.append(cand)
                intervals.append((cand.t_start_s, cand.t_end_s))
                orbits.add(cand.orbit_pass.orbit)
                break
        else:
            dropped += 1
    return kept, dropped
