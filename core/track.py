"""Along-track geometry of one orbit: distance along the track, track bearing, cross-track wind.

* Distance follows the track itself, frame by frame (a frame = the 8 footprints sharing a sounding time):
  the great-circle steps between consecutive frame centres are summed, so an orbit longer than half the Earth
  never folds back (a distance from the first sounding would), the 8 footprints' sideways steps do not inflate
  it (summing sounding-to-sounding steps would), and a cloud gap keeps its true length.
* Each footprint's position is its frame's distance plus the projection of its offset on the track direction.
* The track direction is taken in local east/north metres on the sphere (never by regressing longitude on
  latitude in degrees, the original project's error).

References
----------
OCO-2 L2 Lite FP Data User's Guide (footprint and frame geometry); docs/METHOD.md sections 1 and 3.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius [km] (IUGG)
KM_PER_DEG = float(np.pi * EARTH_RADIUS_KM / 180.0)  # great-circle length of one degree on that sphere [km]


@dataclass(frozen=True)
class Track:
    """Geometry of one orbit's soundings (arrays aligned with the soundings given)."""

    x_km: np.ndarray  # along-track distance of each sounding from the first frame [km]
    bearing_deg: np.ndarray  # track direction at each sounding, clockwise from north [deg]
    frame: np.ndarray  # frame index of each sounding (0..n_frames-1, in time order)
    frame_x_km: np.ndarray  # along-track distance of each frame centre [km]
    cross_km: np.ndarray  # the sounding's footprint position across the swath, right of the track [km]


def unit_vectors(lat_deg, lon_deg) -> np.ndarray:
    """Points on the unit sphere, shape (n, 3), from latitude and longitude [deg]."""
    lat, lon = np.radians(np.asarray(lat_deg, float)), np.radians(np.asarray(lon_deg, float))
    cos_lat = np.cos(lat)
    return np.stack([cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)], axis=-1)


def local_east_north(lat_deg, lon_deg) -> tuple[np.ndarray, np.ndarray]:
    """Unit east and north vectors (n, 3) at the given points."""
    lat, lon = np.radians(np.asarray(lat_deg, float)), np.radians(np.asarray(lon_deg, float))
    east = np.stack([-np.sin(lon), np.cos(lon), np.zeros_like(lon)], axis=-1)
    north = np.stack([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)], axis=-1)
    return east, north


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance [km] between points given in degrees."""
    lat1, lon1, lat2, lon2 = map(np.radians, (np.asarray(lat1, float), np.asarray(lon1, float),
                                              np.asarray(lat2, float), np.asarray(lon2, float)))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def along_track(sounding_id, latitude, longitude, tangent_frames: int = 20) -> Track:
    """Along-track distance and bearing for one orbit's soundings (any order; results aligned with input).

    Parameters
    ----------
    sounding_id : array_like of int64
        Lite sounding ids; ``sounding_id // 10`` identifies the frame (the last digit is the footprint).
    latitude, longitude : array_like
        Footprint centres [deg].
    tangent_frames : int
        The track direction at a frame is taken between the frames this many steps before and after (20 frames,
        ~45 km each way, make the direction insensitive to a missing footprint's sideways shift).
    """
    sid = np.asarray(sounding_id, np.int64)
    frame_ids, frame = np.unique(sid // 10, return_inverse=True)
    xyz = unit_vectors(latitude, longitude)
    n_frames = frame_ids.shape[0]
    # float even for no soundings (np.bincount of an empty array is int64, which cannot be divided in place)
    centre = np.stack([np.bincount(frame, weights=xyz[:, k], minlength=n_frames) for k in range(3)],
                      axis=-1).astype(float, copy=False).reshape(n_frames, 3)
    centre /= np.linalg.norm(centre, axis=1, keepdims=True)

    if n_frames > 1:
        k = max(1, int(tangent_frames))
        ahead = centre[np.minimum(np.arange(n_frames) + k, n_frames - 1)]
        behind = centre[np.maximum(np.arange(n_frames) - k, 0)]
        tangent = _unit(_on_tangent_plane(ahead - behind, centre))
    else:
        tangent = np.zeros_like(centre)

    # A frame's centre moves sideways when some of its footprints are missing (the cache holds good soundings
    # only), so summing the raw steps between centres would zigzag and inflate the distance (~15 %). Sum
    # instead each step's component along the smoothed track direction; such sums telescope, so centre jitter
    # does not accumulate. Steps across long gaps (> 50 km) are great-circle arcs.
    delta = np.diff(centre, axis=0)
    chord = np.linalg.norm(delta, axis=1)
    arc_km = 2 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2, 0, 1))
    direction = _unit(tangent[:-1] + tangent[1:])
    along_km = EARTH_RADIUS_KM * np.abs(np.sum(delta * direction, axis=1))
    step_km = np.where(arc_km > 50.0, arc_km, np.minimum(along_km, arc_km))
    frame_x = np.concatenate([[0.0], np.cumsum(step_km)])
    offset = xyz - centre[frame]
    x_km = frame_x[frame] + EARTH_RADIUS_KM * np.sum(offset * tangent[frame], axis=1)
    # each footprint's place across the swath (to the right of the track): the orbit's median offset of that
    # footprint from its frame centre, robust to frames that miss footprints
    right = np.cross(tangent, centre)[frame]
    offset_right_km = EARTH_RADIUS_KM * np.sum(offset * right, axis=1)
    footprints, slot = np.unique(np.asarray(sounding_id, np.int64) % 10, return_inverse=True)
    per_footprint = np.array([np.median(offset_right_km[slot == k]) for k in range(footprints.size)])

    clat = np.degrees(np.arcsin(np.clip(centre[:, 2], -1, 1)))
    clon = np.degrees(np.arctan2(centre[:, 1], centre[:, 0]))
    east, north = local_east_north(clat, clon)
    bearing = np.degrees(np.arctan2(np.sum(tangent * east, axis=1), np.sum(tangent * north, axis=1))) % 360.0
    return Track(x_km=x_km, bearing_deg=bearing[frame], frame=frame, frame_x_km=frame_x,
                 cross_km=per_footprint[slot])


#: Winds within this angle of the track give no usable cross-section: no shift [deg].
MIN_WIND_ANGLE_DEG = 15.0


def shift_ratio(bearing_deg, wind_u_ms, wind_v_ms, wind_uncertainty_ms: float = 0.0,
                min_angle_deg: float = MIN_WIND_ANGLE_DEG) -> tuple[np.ndarray, np.ndarray]:
    """How far along the track a footprint meets a plume per km of its offset across the swath, and its 1-sigma.

    A plume is a function of the distance across the wind. A footprint ``cross`` km right of the track meets the
    plume axis ``cross * ratio`` km further along the track than the centreline, with
    ``ratio = (u . n_w) / (t . n_w)`` (t the track direction, u its right normal, n_w the wind's normal): the
    cotangent of the angle between track and wind, up to its sign. Where the wind is within ``min_angle_deg`` of
    the track the ratio is 0 (no usable cross-section).

    The analysed wind is uncertain by ``wind_uncertainty_ms`` per component, so its direction by about
    ``wind_uncertainty / speed`` radians, and the ratio by that over ``sin^2`` of the angle (d cot/d angle): a
    shift to trust where the wind is strong and crosses the track squarely, not where it is weak or oblique.

    Parameters
    ----------
    bearing_deg : array_like
        Track direction, clockwise from north [deg].
    wind_u_ms, wind_v_ms : array_like
        Wind (eastward, northward) [m/s]; NaN gives ratio 0.
    wind_uncertainty_ms : float
        1-sigma error of each wind component [m/s].
    """
    b = np.radians(np.asarray(bearing_deg, float))
    t_e, t_n = np.sin(b), np.cos(b)
    u_e, u_n = np.cos(b), -np.sin(b)
    speed = np.hypot(wind_u_ms, wind_v_ms)
    with np.errstate(invalid="ignore", divide="ignore"):
        w_e, w_n = np.asarray(wind_u_ms, float) / speed, np.asarray(wind_v_ms, float) / speed
        n_e, n_n = -w_n, w_e
        along = t_e * n_e + t_n * n_n  # sine of the angle between the track and the wind
        ratio = (u_e * n_e + u_n * n_n) / along
        sd = np.minimum(wind_uncertainty_ms / speed, np.pi / 2) / along ** 2
    usable = np.isfinite(ratio) & (np.abs(along) >= np.sin(np.radians(min_angle_deg)))
    return np.where(usable, ratio, 0.0), np.where(usable, np.abs(sd), 0.0)


def wind_aligned_km(x_km, cross_km, bearing_deg, wind_u_ms, wind_v_ms, min_angle_deg: float = MIN_WIND_ANGLE_DEG):
    """Along-track position at which each sounding's crosswind distance would be met on the track centreline.

    A plume is a function of the distance across the wind. The footprints of one frame lie across the swath
    (up to +-5 km), so when the track crosses a plume obliquely each footprint meets the plume axis at a
    different along-track position, which smears the along-track profile. Shifting each sounding by
    ``cross_km * ratio`` (:func:`shift_ratio`) puts every footprint on the same crosswind scale; areas along the
    track are unchanged (a shift).

    Parameters
    ----------
    x_km, cross_km : array_like
        Along-track distance and across-swath position of each sounding [km].
    bearing_deg : array_like
        Track direction, clockwise from north [deg].
    wind_u_ms, wind_v_ms : array_like
        Wind (eastward, northward) [m/s]; NaN gives no shift.
    """
    ratio, _ = shift_ratio(bearing_deg, wind_u_ms, wind_v_ms, min_angle_deg=min_angle_deg)
    return np.asarray(x_km, float) + np.asarray(cross_km, float) * ratio


def _on_tangent_plane(vectors: np.ndarray, points: np.ndarray) -> np.ndarray:
    return vectors - np.sum(vectors * points, axis=1, keepdims=True) * points


def _unit(vectors: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norm, out=np.zeros_like(vectors), where=norm > 0)


def cross_track_wind_ms(u_ms, v_ms, bearing_deg):
    """Wind component perpendicular to the track [m/s], signed (positive: blowing to the track's right).

    With the track direction ``t = (sin b, cos b)`` in (east, north), the right-hand normal is
    ``n = (cos b, -sin b)`` and ``u_perp = u cos b - v sin b``.
    """
    b = np.radians(np.asarray(bearing_deg, float))
    return np.asarray(u_ms, float) * np.cos(b) - np.asarray(v_ms, float) * np.sin(b)
