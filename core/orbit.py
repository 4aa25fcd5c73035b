"""OCO-2 ground-track geometry: a circular sun-synchronous orbit, its day-side passes, frames and footprints.

The model is a circular orbit of inclination 98.2 deg and period 98.8 min around a spherical Earth. The
sub-satellite point follows spherical trigonometry in the orbit plane; the Earth turns under the plane at the
rate of the mean solar day, which is what sun-synchronism means (the plane precesses with the Sun, so the
ascending node keeps its local solar time, 13:30). A pass is the ascending (south to north, day side) half of one
revolution, so a pass of any length up to ~20,000 km (latitudes to +-81.8 deg) is geometrically right.

The instrument takes 3 frames per second, each of 8 footprints side by side across the track; consecutive frames
are ~2.25 km apart along the track and footprints ~1.29 km apart across it. Offsets across the track are laid
out in local metres (east = R cos(lat) dlon, north = R dlat) along the perpendicular of the local track
direction.

Times are seconds since 1970-01-01 00:00 UTC [s]; angles in degrees unless a name says otherwise.

Not modelled: Earth oblateness (J2 beyond the nodal precession itself), the equation of time (local solar time
is mean solar time), orbit eccentricity, the rotation of the instrument slit (footprints are laid
perpendicular to the track).

References
----------
Crisp, D. et al. (2017), The on-orbit performance of the Orbiting Carbon Observatory-2 (OCO-2) instrument and
its radiometrically calibrated products, AMT 10, 59-81. Vallado, D. A. (2013), *Fundamentals of Astrodynamics
and Applications*, 4th ed., sections 2.2 (orbital elements) and 11.4 (sun-synchronous orbits).
OCO-2 Data Product User's Guide (L2 Lite FP), instrument geometry section.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from .track import EARTH_RADIUS_KM

ALTITUDE_KM = 705.0  # orbit altitude [km]
INCLINATION_DEG = 98.2  # orbit inclination [deg]
ORBIT_PERIOD_S = 98.8 * 60.0  # nodal period [s]
ASCENDING_NODE_LOCAL_TIME_H = 13.5  # mean local solar time of the ascending node [h]
SOLAR_DAY_S = 86400.0  # the Earth turns once per solar day under a sun-synchronous orbit plane [s]
FRAME_RATE_HZ = 3.0  # frames per second [1/s]
N_FOOTPRINTS = 8  # footprints across the track per frame
FOOTPRINT_SPACING_KM = 1.29  # centre-to-centre distance of neighbouring footprints across the track [km]
#: Orbit numbers count revolutions (ascending node to ascending node) since this instant; orbit 1 starts here.
ORBIT_EPOCH = dt.datetime(2014, 7, 2, 0, 0, tzinfo=dt.timezone.utc)
ORBIT_EPOCH_S = ORBIT_EPOCH.timestamp()

_MEAN_MOTION_RAD_S = 2.0 * np.pi / ORBIT_PERIOD_S
_EARTH_RATE_RAD_S = 2.0 * np.pi / SOLAR_DAY_S
_SIN_I = np.sin(np.radians(INCLINATION_DEG))
_COS_I = np.cos(np.radians(INCLINATION_DEG))
#: Highest latitude the ground track reaches [deg].
MAX_LATITUDE_DEG = float(np.degrees(np.arcsin(_SIN_I)))


@dataclass(frozen=True)
class OrbitPass:
    """One revolution's ascending (day-side, south to north) half, fixed by its ascending node.

    Attributes
    ----------
    t_node_s : float
        Time of the ascending-node (equator) crossing [s since 1970 UTC].
    lon_node_deg : float
        Longitude of the ascending node [deg east], where the local solar time is 13:30 at ``t_node_s``.
    """

    t_node_s: float
    lon_node_deg: float

    @property
    def orbit(self) -> int:
        """Orbit (revolution) number, see :func:`orbit_number`."""
        return int(orbit_number(self.t_node_s))


def wrap_longitude(lon_deg):
    """Wrap longitudes to [-180, 180) [deg]."""
    return (np.asarray(lon_deg, dtype=float) + 180.0) % 360.0 - 180.0


def orbit_number(t_node_s):
    """Orbit number of a revolution from the time of its ascending node.

    Parameters
    ----------
    t_node_s : array_like
        Time of the ascending-node crossing [s since 1970 UTC].

    Returns
    -------
    numpy.ndarray of int64
        ``1 + floor((t_node - ORBIT_EPOCH) / ORBIT_PERIOD_S)``: revolutions since 2014-07-02 00:00 UTC (the
        launch day of OCO-2), counting from 1. Close to, but not identical with, the mission's own numbering
        (~26,900 in August 2019 here).
    """
    return (1 + np.floor((np.asarray(t_node_s, float) - ORBIT_EPOCH_S) / ORBIT_PERIOD_S)).astype(np.int64)


def _argument_of_latitude_rad(t_s, orbit_pass: OrbitPass):
    return _MEAN_MOTION_RAD_S * (np.asarray(t_s, float) - orbit_pass.t_node_s)


def ground_track(t_s, orbit_pass: OrbitPass):
    """Sub-satellite point of a pass at times ``t_s``.

    Parameters
    ----------
    t_s : array_like
        Times [s since 1970 UTC]; within a quarter period of the node for the ascending half.
    orbit_pass : OrbitPass
        The revolution.

    Returns
    -------
    lat_deg, lon_deg : numpy.ndarray
        Latitude [deg] and longitude [deg, -180..180).

    Notes
    -----
    With ``u`` the argument of latitude, ``lat = asin(sin i sin u)`` and the longitude from the node is
    ``atan2(cos i sin u, cos u) - omega_sun (t - t_node)``, with ``omega_sun = 2 pi / 86400 s`` the rotation of
    the Earth under a sun-synchronous orbit plane.
    """
    u = _argument_of_latitude_rad(t_s, orbit_pass)
    lat = np.degrees(np.arcsin(_SIN_I * np.sin(u)))
    dt_node_s = np.asarray(t_s, float) - orbit_pass.t_node_s
    dlon = np.arctan2(_COS_I * np.sin(u), np.cos(u)) - _EARTH_RATE_RAD_S * dt_node_s
    return lat, wrap_longitude(orbit_pass.lon_node_deg + np.degrees(dlon))


def ground_velocity_km_s(t_s, orbit_pass: OrbitPass):
    """Velocity of the sub-satellite point over the ground [km/s], as (east, north) components.

    Parameters
    ----------
    t_s : array_like
        Times [s since 1970 UTC].
    orbit_pass : OrbitPass
        The revolution.

    Returns
    -------
    east_km_s, north_km_s : numpy.ndarray
        Eastward and northward components [km/s]; the speed is ~6.75 km/s.
    """
    u = _argument_of_latitude_rad(t_s, orbit_pass)
    cos_lat = np.sqrt(1.0 - (_SIN_I * np.sin(u)) ** 2)
    dlat_dt = _MEAN_MOTION_RAD_S * _SIN_I * np.cos(u) / cos_lat
    dlon_dt = _MEAN_MOTION_RAD_S * _COS_I / (np.cos(u) ** 2 + (_COS_I * np.sin(u)) ** 2) - _EARTH_RATE_RAD_S
    return EARTH_RADIUS_KM * cos_lat * dlon_dt, EARTH_RADIUS_KM * dlat_dt


def pass_through(lat_deg: float, lon_deg: float, near_time_s: float) -> tuple[OrbitPass, float]:
    """The ascending pass whose ground track goes through a point, at the overpass nearest a given time.

    A sun-synchronous orbit sees a point on its ascending track near 13:30 local time only, so the time is
    free only by whole days: the overpass returned is the one nearest ``near_time_s``.

    Parameters
    ----------
    lat_deg, lon_deg : float
        The point [deg]; ``|lat| <= MAX_LATITUDE_DEG`` (81.8).
    near_time_s : float
        Wanted overpass time [s since 1970 UTC].

    Returns
    -------
    orbit_pass : OrbitPass
        The revolution.
    t_point_s : float
        Time at which the sub-satellite point is at (lat, lon) [s since 1970 UTC].
    """
    if abs(lat_deg) > MAX_LATITUDE_DEG:
        raise ValueError(f"latitude {lat_deg} is beyond the reach of the track (+-{MAX_LATITUDE_DEG:.1f} deg)")
    u = np.arcsin(np.sin(np.radians(lat_deg)) / _SIN_I)  # ascending branch: -90 < u < 90 deg
    dt_node_s = u / _MEAN_MOTION_RAD_S
    dlon_deg = np.degrees(np.arctan2(_COS_I * np.sin(u), np.cos(u)) - _EARTH_RATE_RAD_S * dt_node_s)
    lon_node = float(wrap_longitude(lon_deg - dlon_deg))
    # the node is at 13:30 local solar time: its UTC time of day follows from its longitude
    node_utc_s = ((ASCENDING_NODE_LOCAL_TIME_H - lon_node / 15.0) * 3600.0) % SOLAR_DAY_S
    t_point_of_day = node_utc_s + dt_node_s
    k = np.round((near_time_s - t_point_of_day) / SOLAR_DAY_S)
    t_node = float(node_utc_s + k * SOLAR_DAY_S)
    return OrbitPass(t_node, lon_node), float(t_node + dt_node_s)


def frame_times_s(t_start_s: float, t_end_s: float) -> np.ndarray:
    """Frame times at 3 Hz, aligned on whole seconds, covering ``[t_start_s, t_end_s]`` [s since 1970 UTC].

    Aligning frames on whole seconds gives the tenths 0, 3 and 6 of the real sounding ids.
    """
    first = np.ceil(t_start_s * FRAME_RATE_HZ)
    last = np.floor(t_end_s * FRAME_RATE_HZ)
    ticks = np.arange(first, last + 1, dtype=np.int64)
    return (ticks // 3).astype(float) + (ticks % 3) / FRAME_RATE_HZ


def local_east_north_m(lat_deg, lon_deg, lat0_deg, lon0_deg):
    """Local metres of points about an origin: east = R cos(lat0) dlon, north = R dlat [m].

    Good to a fraction of a percent within a few hundred km of the origin; longitudes are unwrapped across
    the antimeridian.
    """
    dlon = wrap_longitude(np.asarray(lon_deg, float) - lon0_deg)
    r_m = EARTH_RADIUS_KM * 1e3
    east = r_m * np.cos(np.radians(lat0_deg)) * np.radians(dlon)
    north = r_m * np.radians(np.asarray(lat_deg, float) - lat0_deg)
    return east, north


def offset_deg(lat_deg, lon_deg, east_m, north_m):
    """Move points by local metres (east, north) [m]; returns new (lat, lon) [deg]."""
    r_m = EARTH_RADIUS_KM * 1e3
    lat = np.asarray(lat_deg, float) + np.degrees(np.asarray(north_m, float) / r_m)
    lon = np.asarray(lon_deg, float) + np.degrees(np.asarray(east_m, float) / (r_m * np.cos(np.radians(lat_deg))))
    return lat, wrap_longitude(lon)


@dataclass(frozen=True)
class PassGeometry:
    """Frames and footprints of one pass (arrays of N frames, or N frames x 8 footprints).

    Attributes
    ----------
    time_s : (N,) frame times [s since 1970 UTC]
    frame_lat_deg, frame_lon_deg : (N,) sub-satellite (track centre) points [deg]
    along_track_km : (N,) distance along the track from the first frame [km]
    track_east, track_north : (N,) unit vector of the local track direction (east, north components)
    lat_deg, lon_deg : (N, 8) footprint centres [deg]
    vertex_lat_deg, vertex_lon_deg : (N, 8, 4) footprint corners [deg]
    """

    orbit_pass: OrbitPass
    time_s: np.ndarray
    frame_lat_deg: np.ndarray
    frame_lon_deg: np.ndarray
    along_track_km: np.ndarray
    track_east: np.ndarray
    track_north: np.ndarray
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    vertex_lat_deg: np.ndarray
    vertex_lon_deg: np.ndarray


def footprint_offsets_km() -> np.ndarray:
    """Across-track offsets of footprints 1..8 from the track centre [km], positive to the right of the track."""
    return (np.arange(1, N_FOOTPRINTS + 1) - (N_FOOTPRINTS + 1) / 2.0) * FOOTPRINT_SPACING_KM


def pass_geometry(orbit_pass: OrbitPass, t_start_s: float, t_end_s: float) -> PassGeometry:
    """Frames (3 Hz) and footprints (8 across) of a pass between two times.

    Parameters
    ----------
    orbit_pass : OrbitPass
        The revolution.
    t_start_s, t_end_s : float
        First and last time [s since 1970 UTC]; frames fall on whole-second thirds in between.

    Returns
    -------
    PassGeometry
        Footprint centres are offset from the track centre by ``(footprint - 4.5) * 1.29 km`` along the right-hand
        perpendicular of the local track direction; each footprint is a parallelogram one frame step long
        (~2.25 km) and one footprint spacing wide (~1.29 km), corners counter-clockwise seen from above.
    """
    t = frame_times_s(t_start_s, t_end_s)
    lat_f, lon_f = ground_track(t, orbit_pass)
    ve, vn = ground_velocity_km_s(t, orbit_pass)
    speed = np.hypot(ve, vn)
    te, tn = ve / speed, vn / speed
    step_km = speed / FRAME_RATE_HZ  # frame-to-frame distance (~2.25 km)
    along = np.concatenate([[0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) * np.diff(t))])
    re, rn = tn, -te  # right-hand perpendicular of the track direction
    off_m = footprint_offsets_km()[None, :] * 1e3
    lat, lon = offset_deg(lat_f[:, None], lon_f[:, None], off_m * re[:, None], off_m * rn[:, None])
    # corners: (back, left), (back, right), (front, right), (front, left) -> counter-clockwise from above
    half_along_m = 0.5 * step_km[:, None, None] * 1e3
    half_across_m = 0.5 * FOOTPRINT_SPACING_KM * 1e3
    s_along = np.array([-1.0, -1.0, 1.0, 1.0])[None, None, :] * half_along_m
    s_across = off_m[:, :, None] + np.array([-1.0, 1.0, 1.0, -1.0])[None, None, :] * half_across_m
    de = s_along * te[:, None, None] + s_across * re[:, None, None]
    dn = s_along * tn[:, None, None] + s_across * rn[:, None, None]
    vlat, vlon = offset_deg(lat_f[:, None, None], lon_f[:, None, None], de, dn)
    return PassGeometry(orbit_pass, t, lat_f, lon_f, along, te, tn, lat, lon, vlat, vlon)


def solar_zenith_angle_deg(t_s, lat_deg, lon_deg):
    """Solar zenith angle [deg] from mean solar time and a declination formula (accurate to ~1 deg).

    Parameters
    ----------
    t_s : array_like
        Times [s since 1970 UTC].
    lat_deg, lon_deg : array_like
        Points [deg].

    References
    ----------
    Cooper, P. I. (1969), The absorption of radiation in solar stills, Solar Energy 12, 333-346 (declination).
    """
    t_s = np.asarray(t_s, float)
    day_of_year = t_s / SOLAR_DAY_S - _days_to_year_start(t_s) + 1.0
    decl = np.radians(23.44) * np.sin(2.0 * np.pi * (284.0 + day_of_year) / 365.0)
    solar_hours = (t_s % SOLAR_DAY_S) / 3600.0 + np.asarray(lon_deg, float) / 15.0
    hour_angle = np.radians(15.0 * (solar_hours - 12.0))
    lat = np.radians(lat_deg)
    cos_sza = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    return np.degrees(np.arccos(np.clip(cos_sza, -1.0, 1.0)))


def _days_to_year_start(t_s: np.ndarray) -> np.ndarray:
    """Days from 1970-01-01 to 1 January of the year of each time."""
    years = np.floor(t_s).astype(np.int64).astype("datetime64[s]").astype("datetime64[Y]")
    return years.astype("datetime64[D]").astype(np.int64).astype(float)
