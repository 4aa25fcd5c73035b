"""OSSE: OCO-2 Lite-layout NetCDF4 files with plumes of known emission, and the truth that made them.

:func:`simulate` writes one daily file per simulated day (real names, real layout of builds B9, B10 or B11) and
three truth tables (``truth_plumes.csv``, ``truth_passes.csv``, ``truth_nuisances.csv``). Every variable the
reader takes is written at the path and dtype :data:`core.lite_format.FIELDS` gives, so simulator and reader
cannot drift apart.

This module is the driver: it picks the sources, plans the passes (:mod:`core.osse_plan`), simulates each one
(:mod:`core.osse_pass`, with the physics of :mod:`core.osse_physics` and the sky, nuisances and world effects of
:mod:`core.osse_nuisances`), writes each day's file (:mod:`core.lite_writer`) and the truth tables.

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

import numpy as np
import pandas as pd

from . import orbit as orb
from .lite_format import FIELDS, FLAG_VAR, ID_VAR, SOUNDINGS_SCHEMA, TIME_VAR, build_family, lite_file_name
from .lite_writer import BUILD_IDS, derived_fields, sounding_ids_and_dates, write_lite_file
from .osse_pass import iso_utc, simulate_pass
from .osse_physics import PlumeSources, monthly_mean_xco2_ppm
from .osse_plan import plan_plume_free_pass, plan_plume_pass, schedule, utc_day_start_s
from .worlds import DEFAULT_WORLD, world_overrides

#: The truth tables written beside the files, and their columns.
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
    noise_dof: float = 0.0  # Student-t degrees of freedom of the white scatter (> 2; 0: Gaussian), same sd
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
    bad_frame_positive_only: bool = False  # every burst raises XCO2 (a one-sided artefact no mirror sees)
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
    if not (settings.noise_dof == 0 or settings.noise_dof > 2):
        raise ValueError(f"noise_dof must be 0 (Gaussian) or > 2 (a finite sd), got {settings.noise_dof}")
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
        day_start = utc_day_start_s(day_list[day_index])
        prng = np.random.default_rng([seed, 1, i])
        if kind == "plume":
            plan = None
            for _ in range(len(targets)):
                plan = plan_plume_pass(i, targets.iloc[target_i % len(targets)], day_index, day_start, pass_km,
                                        prng, settings)
                target_i += 1
                if plan is not None:
                    break
            if plan is None:
                n_unplaceable += 1
                continue
        else:
            plan = plan_plume_free_pass(i, day_index, day_start, pass_km, prng, settings, far_lat, far_lon)
        plans.append(plan)
    plans, n_dropped = schedule(plans, int(days))
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
            out, good, prow, prows, nrows = simulate_pass(plan, day, levels[day], plume_sources, footprint_bias,
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
        d[ID_VAR], d["date"] = sounding_ids_and_dates(d["whole_s"], d["frame_ticks"], d["footprint"])
        derived_fields(d, np.random.default_rng([seed, 6, day_index]))
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
    table["cross_time"] = [iso_utc(t) for t in table.pop("cross_time_s")]
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
