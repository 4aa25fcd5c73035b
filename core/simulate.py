"""OSSE: OCO-2 Lite-layout NetCDF4 files with plumes of known emission, and the truth that made them.

:func:`simulate` writes one daily file per simulated day (real names, real layout of builds B9, B10 or B11) and
three truth tables (``truth_plumes.csv``, ``truth_passes.csv``, ``truth_nuisances.csv``). Every variable the
reader takes is written at the path and dtype :data:`core.lite_format.FIELDS` gives, so simulator and reader
cannot drift apart.

What a pass holds
-----------------
* Geometry from :mod:`core.orbit`: a sun-synchronous 13:30 ascending pass, 3 frames/s, 8 footprints across.
* Background XCO2: the real monthly mean of the month (``core/data/xco2_monthly_mean.csv``, the 2014-2020 OCO-2
  record), a seasonal latitudinal gradient, slow waves along the track (wavelengths of hundreds of km, a few
  tenths of ppm) and per-footprint biases.
* Plumes: every point source (power plants, industry; never cities) of the source table whose plume axis the
  track crosses contributes its Gaussian plume (Nassar et al. 2017), averaged over each footprint's area and
  converted from kg/m2 to ppm with the local dry-air column. The wind that carries each plume is the wind the
  file holds at its crossing (a perfect-wind OSSE, unless ``wind_error_ms`` > 0: then the file's winds are off
  by a per-pass error while the plume moves with the true wind).
* Noise with sigma = ``xco2_uncertainty`` (0.4-0.7 ppm) in the ``as-stated`` world; flagged soundings
  (``xco2_quality_flag`` = 1, ~35-45 %), clustered in cloudy stretches; cloud gaps (frames removed) and single
  missing soundings; a rare fill value in xco2 or coordinates of an otherwise good sounding.
* Nuisances: water stretches (``land_water_indicator`` 1, an XCO2 offset on the water side) and bursts of
  cloud-contaminated soundings left with flag 0; on plume passes they keep ``nuisance_min_distance_km`` away from
  any plume.
* Noise worlds (``world=``, :mod:`core.worlds`): ``as-stated`` (the above, the default), ``understated``,
  ``correlated``, ``drifting``, ``artefacts`` and ``mixture`` add what real retrievals show and the files do not
  state: scatter above ``xco2_uncertainty``, along-track correlated errors, drifting footprint biases, bad-frame
  bursts of either sign, unflagged steps, offsets tied to ``psurf - psurf_apriori``, and wind errors. Their draws
  come from streams of their own (``[seed, 7, pass, effect]``): ``as-stated`` files are the same as before.

Plume passes cross a chosen source's plume 10-50 km downwind at 30-150 deg to the wind, wind 2-8 m/s;
plume-free passes are placed more than 300 km from any inventory source above 0.1 MtCO2/yr. Passes of one day
never overlap in time and no two passes share an orbit number (a clashing pass moves to another day).

Truth tables (CSV beside the files; times are UTC ISO 8601 with a Z)
--------------------------------------------------------------------
* ``truth_plumes.csv``: one row per plume crossed, ``role`` "target" (the source the pass was aimed at) or
  "secondary" (any other source whose plume the track crosses; most are small). Source (id, name, sector,
  position, ``emission_tCO2_yr``, ``emission_gCO2_s``), crossing (``cross_lat``, ``cross_lon``, ``cross_time``,
  ``cross_along_track_km`` from the planned pass start), wind carrying the plume (``wind_u_ms``, ``wind_v_ms``,
  ``wind_speed_ms``, ``wind_perp_ms`` positive to the right of the track), ``crossing_angle_deg`` (track vs wind),
  ``downwind_km``, ``stability_class``, widths ``sigma_y_km`` (across the wind), ``sigma_along_km`` (along the
  track) and ``sigma_footprint_km`` (along the track after footprint averaging), ``amplitude_ppm_km`` (the
  along-track area: ``emission_kg_s(amplitude_ppm_km, wind_perp_ms, surface_pressure_hpa, tcwv_kg_m2)`` gives
  the emission back), ``peak_height_ppm`` and ``peak_footprint_ppm`` (what footprint-averaged data reach),
  ``surface_pressure_hpa``, ``tcwv_kg_m2`` at the crossing, and ``n_good_near_plume`` (good soundings within
  3 sigma_along + 2 km of the crossing).
* ``truth_passes.csv``: one row per pass (= orbit): kind, file, planned start/end point and time, length, counts,
  ``wind_error_u_ms``/``wind_error_v_ms`` (file wind minus true wind), and the world: ``world``, ``effects`` (on
  for this pass, ``+``-joined, or ``none``), ``noise_scale`` (true white scatter / stated uncertainty),
  ``correlated_sd_ppm``, ``footprint_drift_sd_ppm``, ``dp_sd_hpa`` and ``dp_ppm_per_hpa`` (0 when off).
* ``truth_nuisances.csv``: ``land_water_step`` (one row per edge of a water stretch; ``extent_km`` = the
  stretch) and ``cloud_burst`` (centre; ``extent_km`` = its length), with ``magnitude_ppm``; in the worlds with
  artefacts also ``unflagged_step`` (one row per edge, as water stretches, but no flag changes) and ``bad_frames``
  (centre; ``magnitude_ppm`` signed). ``n_footprints`` and ``first_footprint`` (1-8) say which footprints a row
  touches (8 and 1 for all but partial bad-frame bursts).

References
----------
Nassar, R. et al. (2017), Quantifying CO2 emissions from individual power plants from space, GRL 44,
10045-10053 (Gaussian plume, sigma_y = a (x/1 km)^0.894). Zheng, T. et al. (2020), ACP 20, 8501-8510 (the
along-track Gaussian and the cross-sectional flux). OCO-2 Data Product User's Guide (Lite FP, v9/v10/v11).
"""
from __future__ import annotations

import datetime as dt
import time as _time
from dataclasses import dataclass, field, replace
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd

from . import orbit as orb
from .emission import amplitude_ppm_km, co2_column_kg_m2_per_ppm, tco2_per_year_to_kg_s
from .lite_format import FIELDS, FILL_VALUE, FLAG_VAR, ID_VAR, SOUNDINGS_SCHEMA, TIME_VAR, build_family, lite_file_name
from .track import haversine_km
from .worlds import WORLD_DESCRIPTIONS, WORLDS  # noqa: F401  (re-exported: core.simulate.WORLDS)
from .worlds import (DEFAULT_WORLD, PassWorld, correlated_errors_ppm, dp_field_hpa, dp_offset_ppm, draw_pass_world,
                     fine_waves_ppm, footprint_drift_ppm, world_overrides)

#: The monthly mean XCO2 of the real OCO-2 record (``xco2;yearmonth`` with yearmonth = YYMM), shipped with the code.
MONTHLY_MEAN_CSV = Path(__file__).resolve().parent / "data" / "xco2_monthly_mean.csv"
#: Build id written in file names for a build family, and the matching global attributes.
BUILD_IDS = {"B9": "B9003r", "B10": "B10206Ar", "B11": "B11100Ar"}
BUILD_ATTRS = {"B9": ("B9.0.03", "OCO2_L2_Lite_FP.9r"), "B10": ("B10.2.06", "OCO2_L2_Lite_FP.10r"),
               "B11": ("B11.1.00", "OCO2_L2_Lite_FP.11.1r")}
TITLE = "OCO-2 Lite FP: bias-corrected XCO2 and selected fields of the full-physics retrieval, daily"
#: Stability classes of the plume spread, sigma_y = a (x / 1 km)^0.894 [a in m] (Nassar et al. 2017).
STABILITY_A_M = {"C": 104.0, "D": 68.0}
PLUME_SPREAD_EXPONENT = 0.894
#: Regimes of the sky along a pass: share of flagged soundings, mean clear run and mean gap length [km].
SKY_REGIMES = {"clear": (0.2, 300.0, 4.0), "broken": (0.55, 45.0, 8.0), "cloudy": (0.9, 20.0, 20.0)}
TRUTH_FILES = {"plumes": "truth_plumes.csv", "passes": "truth_passes.csv", "nuisances": "truth_nuisances.csv"}
PLUME_COLUMNS = ["plume_id", "file", "orbit", "role", "source_id", "source_name", "sector", "source_lat",
                 "source_lon", "cross_lat", "cross_lon", "cross_time", "cross_along_track_km", "emission_tCO2_yr",
                 "emission_gCO2_s", "wind_u_ms", "wind_v_ms", "wind_speed_ms", "wind_perp_ms", "crossing_angle_deg",
                 "downwind_km", "stability_class", "sigma_y_km", "sigma_along_km", "sigma_footprint_km",
                 "amplitude_ppm_km", "peak_height_ppm", "peak_footprint_ppm", "surface_pressure_hpa", "tcwv_kg_m2",
                 "n_good_near_plume"]
PASS_COLUMNS = ["orbit", "file", "kind", "day", "start_time", "end_time", "start_lat", "start_lon", "end_lat",
                "end_lon", "length_km", "n_soundings", "n_good", "n_flagged", "n_plumes", "target_source_id",
                "operation_mode", "wind_error_u_ms", "wind_error_v_ms", "world", "effects", "noise_scale",
                "correlated_sd_ppm", "footprint_drift_sd_ppm", "dp_sd_hpa", "dp_ppm_per_hpa"]
NUISANCE_COLUMNS = ["orbit", "file", "kind", "lat", "lon", "along_track_km", "extent_km", "magnitude_ppm",
                    "n_footprints", "first_footprint"]


@dataclass(frozen=True)
class OsseSettings:
    """The knobs of the simulated world, with units. Defaults give real-looking Lite files.

    Ranges ``(low, high)`` are drawn uniformly per pass or per plume.
    """

    wind_speed_ms: tuple = (2.0, 8.0)  # wind carrying a target plume [m/s]
    downwind_km: tuple = (10.0, 50.0)  # distance from the target source to the track crossing [km]
    crossing_angle_deg: tuple = (30.0, 150.0)  # angle between track direction and wind [deg]
    plume_min_emission_tCO2_yr: float = 1e5  # point sources at least this large make plumes [tCO2/yr]
    plume_max_length_km: float = 250.0  # plumes are followed this far downwind [km] ...
    plume_max_age_h: float = 12.0  # ... and no further than the wind carries them in this time [h]
    min_target_emission_tCO2_yr: float = 5e6  # default targets of plume passes: sources at least this large
    plume_free_min_distance_km: float = 300.0  # plume-free tracks stay this far from sources >= 0.1 Mt/yr [km]
    nuisance_min_distance_km: float = 150.0  # nuisances on plume passes stay this far from plumes [km]
    clear_sky_at_plume: float = 0.7  # probability that a target crossing is clear sky (no gap there) [0-1]
    xco2_uncertainty_ppm: tuple = (0.4, 0.7)  # posterior 1-sigma of good soundings = their noise [ppm]
    footprint_bias_sd_ppm: float = 0.15  # per-footprint bias of the instrument [ppm]
    wave_amplitude_ppm: tuple = (0.05, 0.2)  # each of 3 background waves along the track [ppm]
    wave_length_km: tuple = (200.0, 1200.0)  # their wavelengths [km]
    regime_length_km: float = 150.0  # mean length of a stretch of one sky regime [km]
    regime_probabilities: tuple = (0.45, 0.35, 0.2)  # clear, broken, cloudy
    missing_sounding_rate: float = 0.06  # single soundings missing from a frame [0-1]
    fill_rate: float = 1e-4  # good soundings given a fill value in xco2 or a coordinate (at least 1 a pass)
    water_stretches_per_1000km: float = 0.4  # land/water nuisance rate [1/1000 km]
    water_length_km: tuple = (30.0, 400.0)
    water_offset_ppm: tuple = (0.5, 1.2)  # XCO2 offset on the water side, random sign [ppm]
    bursts_per_1000km: float = 0.7  # cloud-contaminated bursts left with flag 0 [1/1000 km]
    burst_frames: tuple = (3, 12)
    burst_ppm: tuple = (1.0, 3.0)
    wind_error_ms: float = 0.0  # sd of a per-pass error added to the file's winds [m/s] (0: perfect wind)
    max_solar_zenith_deg: float = 85.0  # no soundings where the Sun is lower [deg]
    # -- noise worlds (core.worlds): the defaults switch every effect off (the as-stated world) --
    noise_scale: tuple = (1.0, 1.0)  # true white scatter / stated xco2_uncertainty, per pass
    correlated_sd_ppm: tuple = (0.0, 0.0)  # total sd of along-track correlated errors, per pass [ppm]
    correlated_length_km: tuple = (5.0, 15.0, 50.0)  # e-folding lengths of its components (equal variance) [km]
    correlated_footprint_share: float = 0.25  # share of its variance drawn per footprint (rest: per frame)
    fine_waves: int = 0  # extra background waves, with the correlated errors (0: none)
    fine_wave_length_km: tuple = (20.0, 200.0)  # their wavelengths, log-uniform [km]
    fine_wave_amplitude_ppm: tuple = (0.03, 0.1)  # their amplitudes [ppm]
    footprint_drift_sd_ppm: tuple = (0.0, 0.0)  # sd of each footprint's drifting bias, per pass [ppm]
    footprint_drift_length_km: float = 300.0  # its e-folding length along the track [km]
    bad_frame_bursts_per_1000km: float = 0.0  # bursts of bad frames left with flag 0 [1/1000 km]
    bad_frame_frames: tuple = (1, 4)  # frames per burst
    bad_frame_ppm: tuple = (1.0, 6.0)  # |offset| of a burst, random sign [ppm]
    bad_frame_partial_share: float = 0.5  # share of bursts on part of the footprints (else all 8)
    bad_frame_partial_footprints: tuple = (3, 7)  # contiguous footprints of a partial burst
    bad_frame_anywhere_share: float = 0.3  # share of bursts of plume-free passes placed ignoring other nuisances
    unflagged_steps_per_1000km: float = 0.0  # XCO2 steps on land that no flag marks [1/1000 km]
    unflagged_step_ppm: tuple = (0.5, 1.5)  # their offset, random sign [ppm]
    unflagged_step_length_km: tuple = (30.0, 400.0)  # length of the offset stretch [km]
    dp_sd_hpa: tuple = (0.0, 0.0)  # sd of a smooth along-track field of psurf - psurf_apriori, per pass [hPa]
    dp_length_km: float = 100.0  # its e-folding length [km]
    dp_ppm_per_hpa: tuple = (0.0, 0.0)  # XCO2 offset per hPa of psurf - psurf_apriori, per pass [ppm/hPa]
    effect_probability: float = 1.0  # each effect switched on is on for a pass with this probability [0-1]


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


@dataclass
class SimulationResult:
    """Files written by :func:`simulate`, the truth tables, and (``keep_soundings=True``) what each file holds."""

    outdir: Path
    files: list
    plumes: pd.DataFrame
    passes: pd.DataFrame
    nuisances: pd.DataFrame
    n_soundings: int
    n_good: int
    seconds: float
    write_seconds: float
    n_dropped_passes: int = 0
    _good: dict = field(default_factory=dict, repr=False)
    _truth: dict = field(default_factory=dict, repr=False)
    world: str = DEFAULT_WORLD

    def good_soundings(self, file=None) -> pd.DataFrame:
        """The good soundings written (flag 0, no fill in xco2, coordinates or time), as the reader returns them.

        Columns of :data:`core.lite_format.SOUNDINGS_SCHEMA` (``time`` a UTC timestamp rounded to the microsecond,
        ``source_file`` categorical), sorted by ``sounding_id``; one file (path or name) or all files.
        """
        self._need_soundings()
        names = [Path(file).name] if file is not None else [p.name for p in self.files]
        return pd.concat([_good_frame(self._good[n], n) for n in names], ignore_index=True)

    def soundings_truth(self, file=None) -> pd.DataFrame:
        """Every written sounding with what the simulator put in it: ``sounding_id``, ``orbit``, ``footprint``,
        ``along_track_km`` (frame position from the pass start [km]), ``plume_ppm`` (all plumes), ``nuisance_ppm``
        (water offsets, cloud bursts and the world's artefacts: bad frames, unflagged steps, dp offsets),
        ``xco2_quality_flag``, ``good`` (what a reader keeps), ``background_ppm`` (level, gradient, waves,
        footprint biases), ``correlated_ppm`` (the world's along-track correlated errors and drifting footprint
        biases; 0 in as-stated) and ``noise_ppm`` (the white noise: ``xco2_uncertainty`` times the world's
        ``noise_scale`` times N(0, 1), plus the extra error of flagged soundings).

        ``xco2 = background_ppm + plume_ppm + nuisance_ppm + correlated_ppm + noise_ppm`` for every sounding (to
        float32 rounding in the file; fill values aside).
        """
        self._need_soundings()
        names = [Path(file).name] if file is not None else [p.name for p in self.files]
        return pd.concat([pd.DataFrame(self._truth[n]) for n in names], ignore_index=True)

    def summary_line(self) -> str:
        rate = self.n_soundings / self.write_seconds if self.write_seconds > 0 else float("nan")
        kinds = self.passes["kind"].value_counts() if len(self.passes) else {}
        world = f" (world {self.world})" if self.world != DEFAULT_WORLD else ""
        return (f"{len(self.files)} file(s) in {self.outdir}{world}: {len(self.passes)} passes "
                f"({kinds.get('plume', 0)} plume, {kinds.get('plume-free', 0)} plume-free"
                f"{f', {self.n_dropped_passes} dropped' if self.n_dropped_passes else ''}), "
                f"{self.n_soundings:,} soundings ({self.n_good:,} good), {len(self.plumes)} plumes in the truth; "
                f"{self.seconds:.1f} s ({rate:,.0f} soundings/s written)")

    def _need_soundings(self):
        if not self._good:
            raise RuntimeError("run simulate(..., keep_soundings=True) to keep what each file holds")


# ------------------------------------------------------------------------------------------------ physics

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


# ---------------------------------------------------------------------------------------------- planning

def _day_start_s(day: dt.date) -> float:
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


def _plan_plume_pass(index, source, day_index, day_start_s, pass_km, rng, settings):
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


def _plan_plume_free_pass(index, day_index, day_start_s, pass_km, rng, settings, far_lat, far_lon):
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
        if np.any(_distance_to_track_km(tlat, tlon, far_lat, far_lon, margin_km) < margin_km):
            continue
        speed = rng.uniform(*settings.wind_speed_ms)
        direction = rng.uniform(0.0, 2.0 * np.pi)
        return PassPlan(index, "plume-free", day_index, op, window[0], window[1], t_c,
                        (speed * np.sin(direction), speed * np.cos(direction)),
                        str(rng.choice(list(STABILITY_A_M))))
    raise RuntimeError("found no plume-free track in 500 draws: is the source table covering the whole globe?")


def _distance_to_track_km(track_lat, track_lon, lat_deg, lon_deg, radius_km):
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


def _schedule(plans, days):
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


# --------------------------------------------------------------------------------------------- one pass

def _smooth_waves(s_km, rng, amplitude, wave_length_km, n=3):
    """Sum of ``n`` sinusoids along the track with random amplitude, wavelength [km] and phase."""
    out = np.zeros_like(s_km)
    for _ in range(n):
        out += rng.uniform(*amplitude) * np.sin(2 * np.pi * s_km / rng.uniform(*wave_length_km)
                                                + rng.uniform(0, 2 * np.pi))
    return out


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


def _plumes_on_pass(g, s_km, wind_u, wind_v, sources: PlumeSources, stability, settings):
    """Column enhancement [kg/m2] (N, 8) of every plume the track crosses, and one truth row per plume.

    Each footprint value is the plume averaged over the footprint's area (9 x 3 points; the centre alone for
    plumes wider than 5 km along the track), so narrow plumes are smeared as a real footprint smears them and the
    along-track sum of footprint values keeps the plume's area. A plume is followed downwind ``settings.plume_max_length_km`` at most, and no further than the wind carries
    it in ``settings.plume_max_age_h``. The rows lack what depends on the surface (pressure, water vapour,
    amplitude): see :func:`_finish_plume_rows`.
    """
    n_frames = s_km.shape[0]
    columns = np.zeros((n_frames, orb.N_FOOTPRINTS))
    rows = []
    if not len(sources) or n_frames < 3:
        return columns, rows
    sub = np.unique(np.r_[np.arange(0, n_frames, 16), n_frames - 1])  # ~36 km apart
    radius_km = settings.plume_max_length_km + 40.0
    near = np.flatnonzero(_distance_to_track_km(g.frame_lat_deg[sub], g.frame_lon_deg[sub], sources.lat_deg,
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


def _finish_plume_rows(rows, s_km, psurf_hpa, tcwv_kg_m2):
    """Surface pressure and water vapour at each crossing, the plume's along-track area and peak height."""
    for r in rows:
        r["surface_pressure_hpa"] = float(np.interp(r["cross_along_track_km"], s_km, psurf_hpa))
        r["tcwv_kg_m2"] = float(np.interp(r["cross_along_track_km"], s_km, tcwv_kg_m2))
        r["amplitude_ppm_km"] = float(amplitude_ppm_km(r["emission_gCO2_s"] / 1e3, r["wind_perp_ms"],
                                                       r["surface_pressure_hpa"], r["tcwv_kg_m2"]))
        r["peak_height_ppm"] = r["amplitude_ppm_km"] / (r["sigma_along_km"] * np.sqrt(2.0 * np.pi))
        r["peak_footprint_ppm"] = r["amplitude_ppm_km"] / (r["sigma_footprint_km"] * np.sqrt(2.0 * np.pi))


def _free_positions(rng, n, length_km, extent_km, avoid_km, min_distance_km, taken=None):
    """``(start, extent)`` [km] of up to ``n`` stretches along a pass, ``min_distance_km`` from every point of
    ``avoid_km`` and not overlapping each other nor the stretches in ``taken`` (extended in place)."""
    taken = [] if taken is None else taken
    placed = []
    for ext in extent_km[:n]:
        for _ in range(50):
            s0 = rng.uniform(0.0, max(length_km - ext, 0.0))
            if all(s0 - min_distance_km > a or s0 + ext + min_distance_km < a for a in avoid_km) and \
                    all(s0 > b0 + bext + 5.0 or s0 + ext + 5.0 < b0 for b0, bext in taken):
                placed.append((s0, ext))
                taken.append((s0, ext))
                break
    return placed


def _sky_regimes(s_km, rng, settings):
    """Regime index per frame (0 clear, 1 broken, 2 cloudy) in stretches of random length."""
    regime = np.empty(s_km.shape[0], np.int8)
    pos, end = s_km[0], s_km[-1]
    while pos <= end:
        length = rng.exponential(settings.regime_length_km)
        sel = (s_km >= pos) & (s_km < pos + length)
        regime[sel] = rng.choice(3, p=settings.regime_probabilities)
        pos += length
    return regime


def _cloud_gaps(s_km, regime, rng):
    """Frames lost to clouds: alternating clear runs and gaps whose mean lengths follow the sky regime."""
    gap = np.zeros(s_km.shape[0], bool)
    params = list(SKY_REGIMES.values())
    pos, end = s_km[0], s_km[-1]
    while pos <= end:
        k = min(np.searchsorted(s_km, pos), s_km.shape[0] - 1)
        _, run_km, gap_km = params[regime[k]]
        pos += rng.exponential(run_km)
        length = float(np.clip(rng.exponential(gap_km), 2.0, 150.0))
        gap |= (s_km >= pos) & (s_km < pos + length)
        pos += length
    return gap


def _simulate_pass(plan: PassPlan, day: dt.date, xco2_level_ppm, point_sources, footprint_bias, settings,
                   seed, forced_clear):
    """All soundings of one pass (flattened, time order) and its truth rows."""
    rng = np.random.default_rng([seed, 2, plan.index])
    world = draw_pass_world(settings, _world_rng(seed, plan.index, 0))
    g = orb.pass_geometry(plan.orbit_pass, plan.t_start_s, plan.t_end_s)
    s = g.along_track_km
    n_frames, nfp = s.shape[0], orb.N_FOOTPRINTS
    length_km = float(s[-1])
    s_ref = float(np.interp(plan.t_ref_s, g.time_s, s))

    # smooth fields along the track (per frame)
    height_m = np.clip(rng.uniform(0.0, 900.0) + _smooth_waves(s, rng, (20.0, 250.0), (30.0, 500.0)), 0.0, None)
    lat_f = g.frame_lat_deg
    wind_u = plan.wind_ms[0] + _smooth_waves(s - s_ref, rng, (0.1, 0.4), (800.0, 3000.0))
    wind_v = plan.wind_ms[1] + _smooth_waves(s - s_ref, rng, (0.1, 0.4), (800.0, 3000.0))
    wind_u += plan.wind_ms[0] - np.interp(s_ref, s, wind_u)  # exactly the planned wind at the reference point
    wind_v += plan.wind_ms[1] - np.interp(s_ref, s, wind_v)
    synoptic_hpa = rng.normal(0.0, 4.0) + _smooth_waves(s, rng, (1.0, 3.0), (1500.0, 4000.0))
    moisture = 1.0 + _smooth_waves(s, rng, (0.02, 0.06), (300.0, 1500.0))

    def surface(altitude_m):  # surface pressure [hPa] and total column water vapour [kg/m2] per frame
        return (1013.25 * np.exp(-altitude_m / 8400.0) + synoptic_hpa,
                (8.0 + 42.0 * np.exp(-((lat_f - 8.0) / 30.0) ** 2)) * np.exp(-altitude_m / 2200.0) * moisture)

    # plumes (as columns of CO2 mass: the conversion to ppm waits for the surface, which water changes);
    # on land everywhere, peaks are at least as high as with the water placed below (water raises the pressure)
    columns, plume_rows = _plumes_on_pass(g, s, wind_u, wind_v, point_sources, plan.stability, settings)
    _finish_plume_rows(plume_rows, s, *surface(height_m))
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
    for s0, ext in _free_positions(rng, n_water, length_km, extents, avoid, settings.nuisance_min_distance_km,
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
    _finish_plume_rows(plume_rows, s, psurf_true, tcwv_true)

    # ... and bursts of cloud-contaminated soundings left with flag 0
    burst = np.zeros((n_frames, nfp))
    burst_frames = np.zeros(n_frames, bool)
    n_burst = rng.poisson(settings.bursts_per_1000km * length_km / 1000.0)
    if plan.kind == "plume-free":
        n_burst = max(n_burst, 1)
    frames = rng.integers(settings.burst_frames[0], settings.burst_frames[1] + 1, size=max(n_burst, 1))
    step = length_km / max(n_frames - 1, 1)
    for s0, ext in _free_positions(rng, n_burst, length_km, frames * step, avoid,
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
        artefacts = _world_artefacts(plan.kind, g, avoid, taken, settings, _world_rng(seed, plan.index, 4))
        nuisance_rows.extend(artefacts.rows)

    # sky: regimes, gaps, flags, missing soundings
    regime = _sky_regimes(s, rng, settings)
    protect = np.zeros(n_frames, bool)
    if plan.kind == "plume" and forced_clear:
        regime[np.abs(s - s_ref) <= 75.0] = 0
        width = max([r["sigma_along_km"] for r in plume_rows if abs(r["cross_along_track_km"] - s_ref) < 1.0],
                    default=1.0)
        protect = np.abs(s - s_ref) <= 5.0 * width + 15.0
    gap = _cloud_gaps(s, regime, rng) & ~protect & ~burst_frames
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
                  + _smooth_waves(s, rng, settings.wave_amplitude_ppm, settings.wave_length_km)[:, None]
                  + (footprint_bias + rng.normal(0.0, 0.05, nfp))[None, :])
    if world.fine_waves:
        background = background + fine_waves_ppm(s, world.fine_waves, settings.fine_wave_amplitude_ppm,
                                                 settings.fine_wave_length_km, _world_rng(seed, plan.index, 1))[:, None]
    nuisance = offset_frame[:, None] + burst
    if artefacts is not None:
        nuisance = nuisance + artefacts.ppm
    sigma = rng.uniform(*settings.xco2_uncertainty_ppm, size=(n_frames, nfp))
    bad = flag == 1
    sigma[bad] = rng.uniform(0.5, 1.5, size=int(bad.sum()))
    noise = rng.normal(0.0, 1.0, (n_frames, nfp)) * sigma  # the file states sigma ...
    if world.noise_scale != 1.0:
        noise = noise * world.noise_scale  # ... the world scatters more
    xco2 = background + enh + nuisance + noise
    flagged_error = rng.normal(0.5, 1.5, size=int(bad.sum()))
    xco2[bad] += flagged_error
    noise[bad] += flagged_error
    correlated = None
    if world.correlated_sd_ppm > 0 or world.footprint_drift_sd_ppm > 0:
        correlated = _correlated_ppm(world, s, settings, seed, plan.index)
        xco2 = xco2 + correlated

    # other fields
    altitude = np.where(water[:, None], 0.0, altitude_frame[:, None] + rng.normal(0.0, 8.0, (n_frames, nfp)))
    altitude = np.clip(altitude, 0.0, None)
    psurf_apriori = np.repeat(psurf_true[:, None], nfp, axis=1)
    psurf = psurf_apriori + rng.normal(0.0, 1.0, (n_frames, nfp))
    if world.dp_sd_hpa > 0:
        dp_hpa = dp_field_hpa(s, world.dp_sd_hpa, settings.dp_length_km, _world_rng(seed, plan.index, 5))
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
        "start_time": _iso(g.time_s[0]), "end_time": _iso(g.time_s[-1]),
        "start_lat": float(lat_f[0]), "start_lon": float(g.frame_lon_deg[0]),
        "end_lat": float(lat_f[-1]), "end_lon": float(g.frame_lon_deg[-1]), "length_km": length_km,
        "n_soundings": n, "n_good": int(good.sum()),
        "n_flagged": int((out[FLAG_VAR] != 0).sum()), "n_plumes": len(plume_rows),
        "target_source_id": plan.target.get("source_id") if plan.target else None,
        "operation_mode": mode, "wind_error_u_ms": float(wind_err[0]), "wind_error_v_ms": float(wind_err[1]),
        **world.truth(),
    }
    return out, good, pass_row, plume_rows, nuisance_rows


# ------------------------------------------------------------------------------- the world's effects (pass)

def _world_rng(seed, pass_index, effect) -> np.random.Generator:
    """The generator of one world effect on one pass: streams apart from every as-stated draw (``[seed, 7, ...]``),
    and from each other (0 the pass's draw of effects, 1 fine waves, 2 correlated errors, 3 footprint drift,
    4 artefacts, 5 the dp field)."""
    return np.random.default_rng([seed, 7, pass_index, effect])


def _correlated_ppm(world: PassWorld, s_km, settings, seed, pass_index):
    """Along-track correlated errors plus drifting footprint biases [ppm] ``(frames, footprints)``."""
    out = np.zeros((np.shape(s_km)[0], orb.N_FOOTPRINTS))
    if world.correlated_sd_ppm > 0:
        out = out + correlated_errors_ppm(s_km, world.correlated_sd_ppm, settings.correlated_length_km,
                                          settings.correlated_footprint_share, orb.N_FOOTPRINTS,
                                          _world_rng(seed, pass_index, 2))
    if world.footprint_drift_sd_ppm > 0:
        out = out + footprint_drift_ppm(s_km, world.footprint_drift_sd_ppm, settings.footprint_drift_length_km,
                                        orb.N_FOOTPRINTS, _world_rng(seed, pass_index, 3))
    return out


@dataclass
class _Artefacts:
    """The artefacts of one pass: XCO2 offsets, the soundings of bad-frame bursts, and their truth rows."""

    ppm: np.ndarray  # (frames, footprints) offsets [ppm]
    mask: np.ndarray  # (frames, footprints) soundings of a bad-frame burst (kept with flag 0)
    frames: np.ndarray  # (frames,) frames of a bad-frame burst (never lost to a cloud gap)
    rows: list


def _nuisance_row(kind, g, k, along_km, extent_km, magnitude_ppm, n_footprints=orb.N_FOOTPRINTS,
                  first_footprint=1) -> dict:
    return {"kind": kind, "lat": float(g.frame_lat_deg[k]), "lon": float(g.frame_lon_deg[k]),
            "along_track_km": float(along_km), "extent_km": float(extent_km), "magnitude_ppm": float(magnitude_ppm),
            "n_footprints": int(n_footprints), "first_footprint": int(first_footprint)}


def _world_artefacts(kind, g, avoid, taken, settings, rng) -> _Artefacts:
    """Unflagged steps and bursts of bad frames along a pass, placed as the other nuisances are.

    * ``unflagged_step``: a stretch of land (``unflagged_step_length_km``) whose XCO2 is offset by
      ``unflagged_step_ppm`` (random sign) where nothing in the file changes: no flag, no land/water change. One
      truth row per edge, as for water stretches.
    * ``bad_frames``: 1-4 consecutive frames offset by 1-6 ppm of either sign (x 0.7-1.3 per sounding), on all 8
      footprints or (``bad_frame_partial_share``) on 3-7 contiguous ones; they keep flag 0 and no cloud gap hides
      them (night still does): 3-D cloud effects near clouds that the screening misses (Massie et al. 2021,
      AMT 14, 1475-1499).

    Both keep ``nuisance_min_distance_km`` from the plumes in ``avoid`` and from the other nuisances (``taken``,
    extended), except a share ``bad_frame_anywhere_share`` of the bursts of a plume-free pass, placed anywhere.
    """
    s = g.along_track_km
    n_frames, nfp = s.shape[0], orb.N_FOOTPRINTS
    length_km = float(s[-1])
    step = length_km / max(n_frames - 1, 1)
    ppm, mask, rows = np.zeros((n_frames, nfp)), np.zeros((n_frames, nfp), bool), []

    n_steps = rng.poisson(settings.unflagged_steps_per_1000km * length_km / 1000.0)
    extents = rng.uniform(*settings.unflagged_step_length_km, size=max(n_steps, 1))
    for s0, ext in _free_positions(rng, n_steps, length_km, extents, avoid, settings.nuisance_min_distance_km,
                                   taken):
        magnitude = rng.uniform(*settings.unflagged_step_ppm) * rng.choice([-1.0, 1.0])
        ppm[(s >= s0) & (s < s0 + ext)] += magnitude
        for edge in [s0] + ([s0 + ext] if s0 + ext < length_km else []):
            rows.append(_nuisance_row("unflagged_step", g, min(np.searchsorted(s, edge), n_frames - 1), edge,
                                      min(ext, length_km - s0), magnitude))

    n_burst = rng.poisson(settings.bad_frame_bursts_per_1000km * length_km / 1000.0)
    frames = rng.integers(settings.bad_frame_frames[0], settings.bad_frame_frames[1] + 1, size=max(n_burst, 1))
    anywhere = (rng.random(max(n_burst, 1)) < settings.bad_frame_anywhere_share) & (kind == "plume-free")
    placed = []
    for nf, free in zip(frames[:n_burst], anywhere):
        if free:
            placed.append((rng.uniform(0.0, max(length_km - nf * step, 0.0)), nf * step))
        else:
            placed += _free_positions(rng, 1, length_km, [nf * step], avoid, settings.nuisance_min_distance_km, taken)
    for s0, ext in placed:
        nf = max(1, int(round(ext / step)))
        k0 = min(np.searchsorted(s, s0), n_frames - nf)
        magnitude = rng.uniform(*settings.bad_frame_ppm) * rng.choice([-1.0, 1.0])
        n_fp, f0 = nfp, 0
        if rng.random() < settings.bad_frame_partial_share:
            n_fp = int(rng.integers(settings.bad_frame_partial_footprints[0],
                                    settings.bad_frame_partial_footprints[1] + 1))
            f0 = int(rng.integers(0, nfp - n_fp + 1))
        ppm[k0:k0 + nf, f0:f0 + n_fp] += magnitude * rng.uniform(0.7, 1.3, size=(nf, n_fp))
        mask[k0:k0 + nf, f0:f0 + n_fp] = True
        rows.append(_nuisance_row("bad_frames", g, k0 + nf // 2, s[k0 + nf // 2], nf * step, magnitude, n_fp, f0 + 1))
    return _Artefacts(ppm, mask, mask.any(axis=1), rows)


def _iso(t_s) -> str:
    """UTC ISO 8601 time with milliseconds and a Z, e.g. ``2019-08-01T11:49:17.733Z``."""
    return dt.datetime.fromtimestamp(float(t_s), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# ------------------------------------------------------------------------------------------------ writing

def _sounding_ids_and_dates(whole_s, frame_ticks, footprint):
    """Real sounding ids (YYYYMMDDhhmmss, tenths, footprint) and the (N, 7) ``date`` array."""
    stamp = pd.DatetimeIndex(whole_s.astype("datetime64[s]"))
    tenths = (frame_ticks % 3) * 3  # 3 Hz frames on whole seconds: .0, .3(33), .6(67)
    ymdhms = (((((stamp.year.to_numpy(np.int64) * 100 + stamp.month) * 100 + stamp.day) * 100 + stamp.hour) * 100
               + stamp.minute) * 100 + stamp.second)
    ids = (ymdhms * 10 + tenths) * 10 + footprint.astype(np.int64)
    millis = (frame_ticks % 3) * 1000 // 3
    date = np.stack([stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second,
                     millis], axis=1).astype(np.int16)
    return ids.astype(np.int64), date


def _extra_variables(family: str):
    """Variables written besides :data:`FIELDS` and the root id/time/flag: (path, dtype, key, units)."""
    extra = [
        ("date", "int16", "date", "year, month, day, hour, minute, second, millisecond"),
        ("vertex_latitude", "float32", "vertex_latitude", "degrees_north"),
        ("vertex_longitude", "float32", "vertex_longitude", "degrees_east"),
        ("sensor_zenith_angle", "float32", "sensor_zenith_angle", "degrees"),
        ("Retrieval/tcwv_apriori", "float32", "tcwv_apriori", "kg m-2"),
        ("Retrieval/tcwv_uncertainty", "float32", "tcwv_uncertainty", "kg m-2"),
        ("Retrieval/xco2_raw", "float32", "xco2_raw", "ppm"),
        ("Retrieval/dp", "float32", "dp", "hPa"),
        ("Preprocessors/co2_ratio", "float32", "co2_ratio", "1"),
        ("Preprocessors/h2o_ratio", "float32", "h2o_ratio", "1"),
        ("Preprocessors/dp_abp", "float32", "dp_abp", "hPa"),
    ]
    if family in ("B10", "B11"):
        extra += [("Meteorology/psurf_apriori_wco2", "float32", "psurf_apriori_wco2", "hPa"),
                  ("Meteorology/psurf_apriori_sco2", "float32", "psurf_apriori_sco2", "hPa")]
    if family == "B11":
        extra += [("xco2_x2019", "float32", "xco2_x2019", "ppm"),
                  ("Auxiliary/xco2_qf_bitflag", "int16", "xco2_qf_bitflag", "1")]
    return extra


def _derived_fields(d: dict, rng) -> None:
    """Fields a reader does not need, derived from the simulated ones (in place)."""
    n = d["xco2"].shape[0]
    fill = d["xco2"] == FILL_VALUE
    d["tcwv_apriori"] = d["tcwv"] * (1.0 + rng.normal(0.0, 0.05, n))
    d["tcwv_uncertainty"] = rng.uniform(0.3, 1.2, n)
    d["xco2_raw"] = np.where(fill, FILL_VALUE, d["xco2"] - rng.normal(0.3, 0.4, n))
    d["dp"] = d["surface_pressure"] - d["surface_pressure_apriori"]
    d["co2_ratio"] = 1.0 + rng.normal(0.0, 0.004, n)
    d["h2o_ratio"] = 1.0 + rng.normal(0.0, 0.02, n)
    d["dp_abp"] = rng.normal(0.0, 5.0, n)
    d["psurf_apriori_wco2"] = d["surface_pressure_apriori"] + rng.normal(0.0, 0.3, n)
    d["psurf_apriori_sco2"] = d["surface_pressure_apriori"] + rng.normal(0.0, 0.3, n)
    d["xco2_x2019"] = d["xco2"].copy()  # Lite v11 xco2 is already on the X2019 scale
    d["xco2_qf_bitflag"] = np.where(d[FLAG_VAR] != 0, 1 + rng.integers(0, 8, n), 0)


def write_lite_file(path, d: dict, family: str, build_id: str, complevel: int = 1, attrs: dict | None = None):
    """Write one day of soundings (dict of arrays keyed by FIELDS columns and extra names) in the Lite layout."""
    n = d[ID_VAR].shape[0]
    variables = [(ID_VAR, "int64", ID_VAR, "1"), (TIME_VAR, "float64", TIME_VAR, "seconds since 1970-01-01 00:00:00"),
                 (FLAG_VAR, "int8", FLAG_VAR, "1")]
    variables += [(f.path(family), f.file_dtype, f.column, f.unit) for f in FIELDS]
    variables += _extra_variables(family)
    build_attr, collection = BUILD_ATTRS[family]
    chunk = max(1, min(n, 1 << 16))
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("sounding_id", n)
        ds.createDimension("vertices", 4)
        ds.createDimension("epoch_dimension", 7)
        ds.setncatts({"BuildId": build_attr, "title": TITLE, "CollectionLabel": collection,
                      "FileBuild": build_id, **(attrs or {})})
        groups = {}
        for var_path, dtype, key, units in variables:
            *group_names, name = var_path.split("/")
            group = ds
            if group_names:
                g = group_names[0]
                if g not in groups:
                    groups[g] = ds.createGroup(g)
                group = groups[g]
            values = np.asarray(d[key])
            dims = ("sounding_id",) if values.ndim == 1 else \
                ("sounding_id", "vertices" if values.shape[1] == 4 else "epoch_dimension")
            is_float = np.dtype(dtype).kind == "f"
            var = group.createVariable(name, dtype, dims, zlib=complevel > 0, complevel=max(complevel, 1),
                                       shuffle=True, chunksizes=(chunk,) + values.shape[1:],
                                       fill_value=FILL_VALUE if is_float else None)
            var.set_auto_maskandscale(False)
            if is_float:
                var.missing_value = np.array(FILL_VALUE, dtype)
            var.units = units
            var[...] = values.astype(dtype)


# --------------------------------------------------------------------------------------------- the driver

def load_point_sources(cache=None, min_emission_tCO2_yr: float = 1e5) -> pd.DataFrame:
    """Inventory sources of at least ``min_emission_tCO2_yr`` [tCO2/yr], all sectors (cities included: they keep
    plume-free tracks away; plumes come from the other sectors only)."""
    from .inventory import SECTORS, sources_by_sector

    return sources_by_sector(list(SECTORS), min_emission_tCO2_yr=min_emission_tCO2_yr, cache=cache)


def _point_sources(sources: pd.DataFrame) -> pd.DataFrame:
    """Sources that make plumes: not cities, with a finite emission."""
    is_city = sources["sector"].astype(str).eq("city") if "sector" in sources else False
    ok = ~is_city & np.isfinite(pd.to_numeric(sources["emission_tCO2_yr"], errors="coerce"))
    return sources[ok].reset_index(drop=True)


def simulate(outdir, days: int, seed: int, month: str = "2019-08", passes_per_day: int = 4,
             pass_km: float = 3000.0, plume_fraction: float = 0.6, build: str = "B10", *,
             sources: pd.DataFrame | None = None, targets: pd.DataFrame | None = None,
             wind_error_ms: float | None = None, settings: OsseSettings | None = None, complevel: int = 1,
             keep_soundings: bool = False, cache=None, log=None, world: str = DEFAULT_WORLD) -> SimulationResult:
    """Write ``days`` daily Lite files of simulated passes with plumes of known emission, and their truth.

    Parameters
    ----------
    outdir : path
        Folder for the ``.nc4`` files and ``truth_*.csv`` (created).
    days : int
        Number of days from the first of ``month`` (one file per day that holds a pass).
    seed : int
        Seed: the same seed gives the same files, byte for byte in their data.
    month : str
        ``YYYY-MM`` of the first day.
    passes_per_day : int
        Passes per day (a clashing pass moves to another day).
    pass_km : float
        Length of each pass [km] (up to a day side, ~20,000 km).
    plume_fraction : float
        Share of plume passes [0-1]; the rest are plume-free.
    build : str
        ``"B9"``, ``"B10"``, ``"B11"`` or a full build id (``"B10206Ar"``): layout and file names.
    sources : DataFrame, optional
        Source table (columns source_id, name, sector, latitude, longitude, emission_tCO2_yr); default: the
        inventory (:func:`load_point_sources`). Every non-city source makes a plume where the track crosses it;
        all sources keep plume-free passes away.
    targets : DataFrame, optional
        Sources to aim plume passes at, in order (cycled); default: a random draw of the non-city sources of
        at least ``settings.min_target_emission_tCO2_yr``.
    wind_error_ms : float, optional
        Sd of a per-pass Gaussian error added to the file's winds (each component) while the plumes are carried
        by the true wind [m/s]; default: the world's (0 in ``as-stated``: perfect wind; 1.5 in the others).
    settings : OsseSettings, optional
        The simulated world's knobs (``world`` overrides some of them).
    complevel : int
        zlib level of the NetCDF variables (0: none).
    keep_soundings : bool
        Keep what each file holds for :meth:`SimulationResult.good_soundings` (memory: ~100 bytes a sounding).
    cache : path, optional
        Cache root for the default inventory.
    log : callable, optional
        ``log(message)`` for progress.
    world : str
        Noise world, a key of :data:`core.worlds.WORLDS` (``as-stated``, ``understated``, ``correlated``,
        ``drifting``, ``artefacts``, ``mixture``): its :class:`OsseSettings` overrides replace those fields of
        ``settings``. ``as-stated`` (default) changes nothing: the same files as before worlds existed.

    Returns
    -------
    SimulationResult

    Raises
    ------
    ValueError
        Unknown world (the message names the choices), ``plume_fraction`` outside [0, 1], no target source.
    """
    started = _time.perf_counter()
    settings = replace(settings or OsseSettings(), **world_overrides(world))
    if wind_error_ms is not None:
        settings = replace(settings, wind_error_ms=float(wind_error_ms))
    family = build_family(BUILD_IDS.get(build, build))
    build_id = BUILD_IDS.get(build, build)
    if not 0.0 <= plume_fraction <= 1.0:
        raise ValueError(f"plume_fraction must be in [0, 1], got {plume_fraction}")
    first_day = dt.date.fromisoformat(f"{month}-01")
    day_list = [first_day + dt.timedelta(days=i) for i in range(int(days))]
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    if sources is None:
        sources = load_point_sources(cache, settings.plume_min_emission_tCO2_yr)
    if targets is not None:  # a target missing from the source table still makes its plume
        sources = pd.concat([sources, targets[~targets["source_id"].isin(sources["source_id"])]], ignore_index=True)
    emission = pd.to_numeric(sources["emission_tCO2_yr"], errors="coerce")
    far = sources[emission >= settings.plume_min_emission_tCO2_yr]
    far_lat, far_lon = far["latitude"].to_numpy(float), far["longitude"].to_numpy(float)
    point_sources = _point_sources(sources[emission >= settings.plume_min_emission_tCO2_yr])
    plume_sources = PlumeSources.from_frame(point_sources)
    if targets is None:
        eligible = point_sources[point_sources["emission_tCO2_yr"] >= settings.min_target_emission_tCO2_yr]
        pick = np.random.default_rng([seed, 1]).permutation(len(eligible))
        targets = eligible.iloc[pick].reset_index(drop=True)
    else:
        targets = _point_sources(targets)

    # plan: kinds in a seeded order, one nominal day each
    rng = np.random.default_rng([seed, 0])
    n_total = int(days) * int(passes_per_day)
    n_plume = int(round(n_total * plume_fraction))
    if n_plume and not len(targets):
        raise ValueError("plume passes asked for, but no target source")
    kinds = np.array(["plume"] * n_plume + ["plume-free"] * (n_total - n_plume))
    rng.shuffle(kinds)
    plans, n_unplaceable, target_i = [], 0, 0
    for i, kind in enumerate(kinds):
        day_index = i // passes_per_day
        day_start = _day_start_s(day_list[day_index])
        prng = np.random.default_rng([seed, 1, i])
        if kind == "plume":
            plan = None
            for _ in range(len(targets)):
                plan = _plan_plume_pass(i, targets.iloc[target_i % len(targets)], day_index, day_start, pass_km,
                                        prng, settings)
                target_i += 1
                if plan is not None:
                    break
            if plan is None:
                n_unplaceable += 1
                continue
        else:
            plan = _plan_plume_free_pass(i, day_index, day_start, pass_km, prng, settings, far_lat, far_lon)
        plans.append(plan)
    plans, n_dropped = _schedule(plans, int(days))
    n_dropped += n_unplaceable

    footprint_bias = np.random.default_rng([seed, 3]).normal(0.0, settings.footprint_bias_sd_ppm, orb.N_FOOTPRINTS)
    levels = {d: monthly_mean_xco2_ppm(d) for d in day_list}
    clear = np.random.default_rng([seed, 4]).random(n_total) < settings.clear_sky_at_plume

    files, plume_rows, pass_rows, nuisance_rows = [], [], [], []
    good_by_file, truth_by_file = {}, {}
    n_soundings = n_good = 0
    write_seconds = 0.0
    for day_index, day in enumerate(day_list):
        day_plans = sorted((p for p in plans if p.day_index == day_index), key=lambda p: p.t_start_s)
        if not day_plans:
            continue
        produced = dt.datetime.combine(day + dt.timedelta(days=364), dt.time()) + dt.timedelta(
            seconds=int(np.random.default_rng([seed, 5, day_index]).integers(0, 86400)))
        name = lite_file_name(day, build_id, produced)
        chunks = []
        for plan in day_plans:
            out, good, prow, prows, nrows = _simulate_pass(plan, day, levels[day], plume_sources, footprint_bias,
                                                          settings, seed, bool(clear[plan.index]))
            chunks.append((out, good))
            pass_rows.append({**prow, "file": name, "world": world})
            for r in prows:
                r.update(file=name, orbit=plan.orbit_pass.orbit,
                         role="target" if plan.target is not None and r["source_id"] == plan.target.get("source_id")
                         else "secondary")
            plume_rows.extend(prows)
            nuisance_rows.extend({"n_footprints": orb.N_FOOTPRINTS, "first_footprint": 1, **r,
                                  "orbit": plan.orbit_pass.orbit, "file": name} for r in nrows)
        d = {k: np.concatenate([c[0][k] for c in chunks]) for k in chunks[0][0]}
        good = np.concatenate([c[1] for c in chunks])
        d[ID_VAR], d["date"] = _sounding_ids_and_dates(d["whole_s"], d["frame_ticks"], d["footprint"])
        _derived_fields(d, np.random.default_rng([seed, 6, day_index]))
        t0 = _time.perf_counter()
        path = outdir / name
        attrs = {"simulated": "OSSE written by core.simulate: not real OCO-2 data", "simulation_seed": int(seed)}
        if world != DEFAULT_WORLD:  # as-stated files keep the attributes they always had
            attrs["simulation_world"] = world
        write_lite_file(path, d, family, build_id, complevel, attrs=attrs)
        write_seconds += _time.perf_counter() - t0
        files.append(path)
        n_soundings += d[ID_VAR].shape[0]
        n_good += int(good.sum())
        if keep_soundings:
            good_by_file[name] = {k: d[k][good] for k in [ID_VAR, TIME_VAR] + [f.column for f in FIELDS]}
            truth_by_file[name] = {ID_VAR: d[ID_VAR], "orbit": d["orbit"], "footprint": d["footprint"],
                                   "along_track_km": d["along_track_km"], "plume_ppm": d["plume_ppm"],
                                   "nuisance_ppm": d["nuisance_ppm"], FLAG_VAR: d[FLAG_VAR], "good": good,
                                   **{k: d[k] for k in ("background_ppm", "correlated_ppm", "noise_ppm")}}
        if log:
            log(f"{name}: {len(day_plans)} passes, {d[ID_VAR].shape[0]:,} soundings")

    plumes = _plumes_table(plume_rows)
    passes = pd.DataFrame(pass_rows, columns=PASS_COLUMNS)
    nuisances = pd.DataFrame(nuisance_rows, columns=NUISANCE_COLUMNS)
    # truth last: a folder with truth files is a complete simulation
    for key, table in (("plumes", plumes), ("passes", passes), ("nuisances", nuisances)):
        table.to_csv(outdir / TRUTH_FILES[key], index=False)
    return SimulationResult(outdir, files, plumes, passes, nuisances, n_soundings, n_good,
                            _time.perf_counter() - started, write_seconds, n_dropped, good_by_file, truth_by_file,
                            world=world)


def _plumes_table(rows) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=PLUME_COLUMNS)
    table = table.sort_values(["cross_time_s", "source_id"], kind="stable").reset_index(drop=True)
    table["cross_time"] = [_iso(t) for t in table.pop("cross_time_s")]
    table["plume_id"] = [f"P{i + 1:04d}" for i in range(len(table))]
    return table[PLUME_COLUMNS]


def _good_frame(cols: dict, file_name: str) -> pd.DataFrame:
    """The good soundings of one file as a reader returns them (SOUNDINGS_SCHEMA columns and dtypes)."""
    n = cols[ID_VAR].shape[0]
    data = {ID_VAR: cols[ID_VAR].astype(np.int64),
            TIME_VAR: pd.Series(np.round(cols[TIME_VAR] * 1e6).astype(np.int64).astype("datetime64[us]"))
            .dt.tz_localize("UTC")}
    for f in FIELDS:
        data[f.column] = cols[f.column].astype(f.file_dtype)
    data["source_file"] = pd.Categorical([file_name] * n)
    frame = pd.DataFrame(data)
    assert list(frame.columns) == SOUNDINGS_SCHEMA.names
    return frame
