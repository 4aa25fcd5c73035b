"""Detection for the pages, staged and cached so that a change re-runs only what it invalidates.

The stages of :mod:`core.detect`, each cached (``st.cache_data``) on exactly what it depends on:

======================  ==========================================  =======================================
stage                   core                                        cache key (besides cache, month, orbit)
======================  ==========================================  =======================================
geometry                ``prepare_orbit``                           the month's data stamp
screen + fits, noise    ``find_candidates`` + ``fit_candidates``,   + the fit-stage settings (see below)  
                        ``orbit_noise``
month threshold         ``core.false_alarms.calibrate_month``       + every setting (once per month)
rules, events, sources  ``judge`` + ``core.batch.with_sources``     + every setting + the month's threshold
======================  ==========================================  =======================================

So moving a rule threshold re-runs ``judge`` only (milliseconds): it never refits. ``tests/test_workbench.py``
checks that the fit stage reads no setting outside :func:`core.settings.fit_stage_keys` (each
:class:`core.settings.Setting` says whether the fits read it).

**One month, one threshold.** The significance an event needs is the month's (:mod:`core.false_alarms`: set from
the month's mirror events for ``detection.false_alarms_per_1000km``), so an orbit is judged at its month's
threshold and shows the verdicts the month shows. A month is its judged orbits put together by
``core.batch.assemble_month``, as the CLI and Dask do: concatenated, calibrated (``calibrate_month``: re-judged at
the month's threshold, with the false-alarm columns) and attributed at once (one inventory query). When ``python -m core detect`` or the Data page stored the month's detections for the
current settings (and the data did not change since), they are read instead.

The orbit pages (:func:`orbit_candidates`) take the month's calibration (:func:`month_calibration`) from the month
table when this process holds it or it is stored; otherwise they compute it from the month's fits: every orbit
fitted once per fit-stage settings (cached per orbit, shared with the month table), then ``calibrate_month`` over
their concatenation, kept per (month, settings). A rule change then costs the month's rules, not its judging and
attribution (the orbit explorer redraws in 0.2 s on the demo month's 93 orbits, where the month table takes 0.9 s);
a fit-stage change refits the whole month once (with a progress bar), which is what its threshold needs.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from threadpoolctl import threadpool_limits

from core import false_alarms
from core.batch import assemble_month, stored_detections, with_sources
from core.cache import SoundingsCache
from core.attribution import SOURCE_COLUMNS
from core.detect import (OrbitData, OrbitNoise, find_candidates, fit_candidates, judge, orbit_noise, prepare_orbit,
                         rejudge)
from core.false_alarms import MONTH_COLUMNS, MonthThreshold, calibrate_month
from core.settings import DetectionSettings, fit_stage_keys

from . import queries

# The fits of the workbench are the CLI's to the last bit: BLAS on one thread for the server process, as
# core.batch.one_blas_thread does for a batch run (a multi-threaded BLAS sums in another order, so a verdict right on
# its threshold could differ from the stored month's).
threadpool_limits(limits=1, user_api="blas")

def fit_items(settings: DetectionSettings) -> tuple:
    """The fit-stage values as a hashable cache key (:func:`core.settings.fit_stage_keys`)."""
    return settings.fit_stage_items()


@functools.lru_cache(maxsize=256)
def _digest(items: tuple) -> str:
    from core.settings import method_fingerprint

    return hashlib.sha256(repr((items, method_fingerprint())).encode()).hexdigest()[:16]


def fit_hash(settings: DetectionSettings) -> str:
    """A short key of the fit-stage values and the method (what the fits depend on). The per-orbit caches are keyed
    on it and on ``settings.hash`` and get the settings unhashed: Streamlit hashing the full settings for each of a
    month's ~100 orbits cost 0.6 s of every rule change."""
    return _digest(fit_items(settings))


def all_items(settings: DetectionSettings) -> tuple:
    return tuple(sorted(settings.as_dict().items()))


def _settings(items: tuple) -> DetectionSettings:
    return DetectionSettings(dict(items))


@st.cache_resource(show_spinner=False)
def _held(kind: str) -> tuple[OrderedDict, threading.Lock]:
    """Tables of one kind computed in this server process, most recent last (see :func:`_keep`)."""
    return OrderedDict(), threading.Lock()


def _recall(kind: str, key: tuple):
    results, lock = _held(kind)
    with lock:
        if key in results:
            results.move_to_end(key)
            return results[key]
    return None


def _keep(kind: str, key: tuple, table, max_entries: int = 8):
    results, lock = _held(kind)
    with lock:
        results[key] = table
        while len(results) > max_entries:
            results.popitem(last=False)
    return table


# ------------------------------------------------------------------------------------------------ one orbit

@st.cache_resource(show_spinner=False, max_entries=512)
def orbit_data(root: str, month: str, orbit: int, stamp: str) -> OrbitData:
    """Geometry of one orbit (depends on its soundings only). One shared object (not a copy per call, as
    ``st.cache_data`` gives): its detection views (:func:`core.detect.detection_view`) are computed once."""
    return prepare_orbit(queries.orbit_soundings(SoundingsCache(root), month, orbit))


@st.cache_data(show_spinner=False, max_entries=1024)
def _fit_stage(root: str, month: str, orbit: int, stamp: str, fit_key: str,
               _settings: DetectionSettings) -> tuple[pd.DataFrame, OrbitNoise]:
    """Screened and fitted candidates of one orbit, and its noise (depend on the fit-stage settings only:
    ``fit_key`` is :func:`fit_hash` of ``_settings``)."""
    od = orbit_data(root, month, orbit, stamp)
    fits = fit_candidates(od, find_candidates(od, _settings), _settings)
    return fits, orbit_noise(od, _settings)  # the noise: computed by the screen, kept on the orbit's view


def fitted(root: str, month: str, orbit: int, stamp: str, settings: DetectionSettings) -> pd.DataFrame:
    """Screened and fitted candidates of one orbit (depends on the fit-stage settings only)."""
    return _fit_stage(root, month, int(orbit), stamp, fit_hash(settings), settings)[0]


def noise(root: str, month: str, orbit: int, stamp: str, settings: DetectionSettings) -> OrbitNoise:
    """The orbit's own noise (:func:`core.detect.orbit_noise`: scatter scale, correlated term, calibration)."""
    return _fit_stage(root, month, int(orbit), stamp, fit_hash(settings), settings)[1]


@st.cache_data(show_spinner=False, max_entries=4096)
def _judged(root: str, month: str, orbit: int, stamp: str, key: str, threshold: float | None,
            _settings: DetectionSettings) -> pd.DataFrame:
    """Rules, events and emission of one orbit (no attribution: a month is attributed at once), at the month's
    significance ``threshold`` (None: ``rules.significance.min_snr``); ``key`` is ``_settings.hash``."""
    return judge(orbit_data(root, month, orbit, stamp), fitted(root, month, orbit, stamp, _settings), _settings,
                 significance_threshold=threshold)


@st.cache_data(show_spinner=False, max_entries=4096)
def _orbit_candidates(root: str, month: str, orbit: int, stamp: str, key: str, threshold: float | None,
                      _settings: DetectionSettings) -> pd.DataFrame:
    return with_sources(_judged(root, month, orbit, stamp, key, threshold, _settings), _settings, cache=root)


def orbit_candidates(root: str, month: str, orbit: int, stamp: str, settings: DetectionSettings,
                     orbits: list[int] | None = None, on_orbit=None) -> pd.DataFrame:
    """Every candidate of one orbit with its verdict at the month's threshold, reasons, emission, best upwind
    source and the month's false-alarm columns (``core.false_alarms.MONTH_COLUMNS``): the orbit's rows of the month
    table.

    ``orbits``: the month's orbits (default: read from the cache); ``on_orbit(i, n, orbit)`` reports progress
    when the month's calibration has to be computed (see :func:`month_calibration`).
    """
    orbit = int(orbit)
    calibration = month_calibration(root, month, stamp, settings, orbits, on_orbit)
    threshold = float(calibration["significance_threshold"].iloc[0]) if len(calibration) else None
    table = _orbit_candidates(root, month, orbit, stamp, settings.hash, threshold, settings)
    mine = calibration[calibration["orbit"].to_numpy() == orbit]
    if len(mine) and len(mine) == len(table):  # the month table's rows of an orbit are its judged rows, in order
        table = table.assign(**{c: mine[c].to_numpy() for c in MONTH_COLUMNS})
    return table


# ------------------------------------------------------------------------------------------------ one month

@st.cache_data(show_spinner=False, max_entries=16)
def _read_stored(path: str, mtime_ns: int) -> pd.DataFrame:
    return pd.read_parquet(path)


def stored_candidates(root: str, month: str, settings: DetectionSettings) -> pd.DataFrame | None:
    """The month's stored detections for these settings, if stored after the data last changed (the freshness
    check of :func:`core.batch.stored_detections`, which ``python -m core export`` applies too)."""
    stored = stored_detections(root, month, settings)
    return _read_stored(str(stored.path), stored.mtime_ns) if stored and stored.fresh else None


def _month_orbits(root: str, month: str, orbits) -> list[int]:
    if orbits is None:
        orbits = queries.orbits_table(SoundingsCache(root), month)["orbit"]
    return [int(o) for o in orbits]


def month_candidates(root: str, month: str, stamp: str, settings: DetectionSettings, orbits: list[int],
                     on_orbit=None, compute: bool = True) -> pd.DataFrame | None:
    """Every candidate of the month (stored, or its orbits judged, calibrated at the month's threshold
    (:func:`core.false_alarms.calibrate_month`) and attributed, computed as needed).

    ``on_orbit(i, n, orbit)`` reports progress while orbits are computed; ``compute=False`` returns None
    instead of computing.
    """
    key = (root, month, stamp, settings.hash)
    table = _recall("month", key)
    if table is not None:
        return table
    table = stored_candidates(root, month, settings)
    if table is None:
        if not compute:
            return None
        table = _rejudged_month(root, month, stamp, settings)
    if table is None:
        parts = []
        for i, orbit in enumerate(orbits, 1):
            parts.append(_judged(root, month, int(orbit), stamp, settings.hash, None, settings))
            if on_orbit:
                on_orbit(i, len(orbits), orbit)
        table = assemble_month(parts, settings, cache=root)
    return _hold_judged("month", key, settings, table, max_entries=8)


def judging_only(a: DetectionSettings, b: DetectionSettings) -> bool:
    """True when ``a`` and ``b`` differ only in settings that judge fitted candidates (rule thresholds and switches
    that are not fit-stage, the month's false-alarm target, attribution): a month table of one is re-judged into the
    other's (:func:`_rejudged_month`). Fit-stage and emission settings change the candidates' own values."""
    fit = fit_stage_keys()
    va, vb = a.as_dict(), b.as_dict()
    return all(k not in fit and not k.startswith("emission.") for k in va if va[k] != vb[k])


def _hold_judged(kind: str, key: tuple, settings: DetectionSettings, table: pd.DataFrame,
                 max_entries: int) -> pd.DataFrame:
    """Keep a month table and the settings it was judged with, for :func:`_rejudged` to start from."""
    _keep(kind + "-settings", key, settings, max_entries=max_entries)
    return _keep(kind, key, table, max_entries=max_entries)


def _rejudged(kind: str, prefix: tuple, settings: DetectionSettings) -> pd.DataFrame | None:
    """The month table of ``kind`` for ``settings`` from one this process holds under a key starting with
    ``prefix``, for settings that differ only in judging (:func:`judging_only`): its rules re-run and its threshold
    re-calibrated at once (``calibrate_month`` re-judges every candidate at the month's threshold, as
    ``assemble_month`` does after the orbits' own judging); without sources. None when no such table is held."""
    results, lock = _held(kind + "-settings")
    with lock:
        held = [(k, s) for k, s in results.items() if k[:len(prefix)] == prefix and judging_only(s, settings)]
    for key, _ in reversed(held):  # the most recent first
        base = _recall(kind, key)
        if base is None or base.empty or "rules_hash" not in base:
            continue
        derived = [c for c in (*MONTH_COLUMNS, *SOURCE_COLUMNS) if c in base]  # added again, in the same order
        judged = rejudge(base.drop(columns=derived), settings).assign(rules_hash=settings.hash)  # as judge() would
        return calibrate_month(judged, settings)
    return None


def _rejudged_month(root: str, month: str, stamp: str, settings: DetectionSettings) -> pd.DataFrame | None:
    """The month table for ``settings`` re-judged from one held for judging-only different settings
    (:func:`_rejudged`) and re-attributed. The same table as judging the orbits again (``tests/test_workbench.py``),
    without the ~100 per-orbit judgements: a rule change on the demo month 1.0 s -> ~0.4 s."""
    judged = _rejudged("month", (root, month, stamp), settings)
    return None if judged is None else with_sources(judged, settings, cache=root)


def _calibration_columns(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty or "significance_threshold" not in table:
        return pd.DataFrame(columns=["orbit", *MONTH_COLUMNS])
    return table[["orbit", *MONTH_COLUMNS]].reset_index(drop=True)


def month_calibration(root: str, month: str, stamp: str, settings: DetectionSettings, orbits=None,
                      on_orbit=None) -> pd.DataFrame:
    """The month's calibration of every candidate: ``orbit`` and ``core.false_alarms.MONTH_COLUMNS`` (threshold,
    its method and false-event rate, each event's expected false rate and q-value), in the month table's row order
    (empty when the month has no candidate, or a stored table predates the columns).

    Read from the month table when this process holds it or it is stored; else computed from the month's fits
    (each orbit fitted once per fit-stage settings, ``on_orbit(i, n, orbit)`` reporting) with
    ``calibrate_month`` over their concatenation, and kept for the process per (month, settings): what it gives is
    what the month table gives (``tests/test_workbench.py`` checks it).
    """
    key = (root, month, stamp, settings.hash)
    known = _recall("calibration", key)
    if known is not None:
        return known
    table = _recall("month", key)
    if table is None:
        table = stored_candidates(root, month, settings)
    if table is not None:
        return _keep("calibration", key, _calibration_columns(table), max_entries=32)
    orbits = _month_orbits(root, month, orbits)
    parts = []
    for i, orbit in enumerate(orbits, 1):
        part = fitted(root, month, orbit, stamp, settings)
        if not part.empty:
            parts.append(part.assign(orbit=np.int64(orbit)))
        if on_orbit:
            on_orbit(i, len(orbits), orbit)
    calibrated = calibrate_month(pd.concat(parts, ignore_index=True), settings) if parts else pd.DataFrame()
    return _keep("calibration", key, _calibration_columns(calibrated), max_entries=32)


def month_threshold(candidates: pd.DataFrame, settings: DetectionSettings) -> MonthThreshold | None:
    """The month's threshold as its calibrated table states it (:func:`core.false_alarms.month_summary`), with the
    mirror events counted as the threshold counts them (those passing every rule but significance) and core's
    message; None when the table carries no threshold."""
    stated = false_alarms.month_summary(candidates) if candidates is not None else None
    if stated is None:
        return None
    counted = false_alarms.month_threshold(candidates, settings)
    return dataclasses.replace(counted, threshold=stated.threshold, method=stated.method,
                               false_per_1000km=stated.false_per_1000km,
                               interval_per_1000km=stated.interval_per_1000km, n_accepted=stated.n_accepted,
                               n_burst_like=stated.n_burst_like)


def events(candidates: pd.DataFrame, accepted_only: bool = True, mirrors: bool = False) -> pd.DataFrame:
    """Plume events (one row per plume), accepted only unless asked; mirror events (depletions fitted upside down
    to sample the noise, never plumes) only when asked."""
    if candidates is None or candidates.empty:
        return pd.DataFrame()
    rows = candidates["is_event"].astype(bool)
    if accepted_only:
        rows &= candidates["status"].eq("accepted")
    if not mirrors and "sign" in candidates:
        rows &= candidates["sign"].to_numpy() > 0
    return candidates[rows]


# ------------------------------------------------------------------------------------------------ one peak

@st.cache_data(show_spinner=False, max_entries=256)
def _ranked(root: str, lat: float, lon: float, u: float, v: float, key: tuple) -> tuple[pd.DataFrame, float]:
    from core.attribution import sector_length_km, upwind_sources

    settings = _settings(key)
    return (upwind_sources(lat, lon, u, v, settings, cache=root),
            float(sector_length_km(np.hypot(u, v), settings)))


def ranked_sources(root: str, lat: float, lon: float, u: float, v: float,
                   settings: DetectionSettings) -> tuple[pd.DataFrame, float]:
    """Inventory sources in a peak's upwind sector, best first, and the sector length [km]."""
    key = tuple(sorted((k, x) for k, x in settings.as_dict().items() if k.startswith("attribution.")))
    return _ranked(root, lat, lon, u, v, key)


# ------------------------------------------------------------------------------------------------ validation OSSE
#
# The Validation page scores the current settings on an OSSE of ~130 detectable plumes. Simulating it (~15 s) and
# fitting it (~8 s) happen once per cache: the OSSE's soundings and truth go to <cache>/validation/<name>/ and the
# fits of each fit-stage settings to fits-<hash>.parquet beside them, so a later visit, in any server process, reads
# them (a few seconds) and a rule change re-judges only.

#: The Validation page's default OSSE: a month of 4 passes a day of 3,000 km (124 passes, 137 detectable plumes).
DEFAULT_OSSE = {"seed": 7, "days": 31, "passes_per_day": 4, "pass_km": 3000.0}


def osse_folder(root: str, seed: int, days: int, passes_per_day: int, pass_km: float) -> Path:
    return Path(root) / "validation" / f"osse-seed{seed}-{days}d-{passes_per_day}x{pass_km:.0f}km"


def _stored_osse(folder: Path):
    from core.validation import TRUTH_FILES, Osse

    if not (folder / "soundings.parquet").is_file():
        return None, ""
    tables = {k: pd.read_csv(folder / name) for k, name in TRUTH_FILES.items()}
    summary = (folder / "summary.txt").read_text() if (folder / "summary.txt").is_file() else ""
    return Osse(pd.read_parquet(folder / "soundings.parquet"), tables["plumes"], tables["passes"],
                tables["nuisances"]), summary


def _store_osse(folder: Path, data, summary: str) -> None:
    """Write the OSSE into ``folder`` all at once (a temporary sibling renamed: a crash leaves no half folder)."""
    from core.validation import TRUTH_FILES

    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    data.soundings.to_parquet(tmp / "soundings.parquet", index=False)
    for key, name in TRUTH_FILES.items():
        getattr(data, key).to_csv(tmp / name, index=False)
    (tmp / "summary.txt").write_text(summary)
    tmp.rename(folder)


@st.cache_resource(show_spinner=False, max_entries=4)
def osse(root: str, seed: int, days: int, passes_per_day: int, pass_km: float):
    """A simulated OSSE read back (:func:`core.validation.load_osse`), its detectable plumes and prepared orbits.

    Simulated once per cache (the Lite files in a temporary folder, read back, their soundings and truth kept in
    :func:`osse_folder`); later read from there. Kept for the process.
    """
    from core.locks import exclusive_lock
    from core.simulate import simulate
    from core.validation import detectable_plumes, load_osse

    folder = osse_folder(root, seed, days, passes_per_day, pass_km)
    with exclusive_lock(folder.with_name(folder.name + ".lock")):  # one simulation, however many sessions ask
        data, summary = _stored_osse(folder)
        if data is None:
            with tempfile.TemporaryDirectory(prefix="oco2peak-osse-") as tmp:
                result = simulate(tmp, days=days, seed=seed, passes_per_day=passes_per_day, pass_km=pass_km,
                                  cache=root)
                data = load_osse(tmp)
            summary = result.summary_line().split(": ", 1)[-1]
            _store_osse(folder, data, summary)
    orbits = {int(o): prepare_orbit(g) for o, g in data.soundings.groupby("orbit", sort=True)}
    return data, detectable_plumes(data), orbits, summary


def _osse_fits(osse_key: tuple, fit_key: tuple, on_orbit=None) -> dict[int, pd.DataFrame]:
    """Every orbit's fitted candidates for these fit-stage settings: held for the process, else read from the OSSE
    folder, else fitted (with ``on_orbit(i, n, orbit)``: a progress bar, so not under a Streamlit cache) and
    stored there."""
    from core.locks import exclusive_lock

    held = _recall("osse-fits", (osse_key, fit_key))
    if held is not None:
        return held
    path = osse_folder(*osse_key) / f"fits-{_digest(fit_key)}.parquet"  # the fit-stage values and the method
    orbits = osse(*osse_key)[2]
    with exclusive_lock(path.with_suffix(".lock")):
        if path.is_file():
            table = pd.read_parquet(path)
            return _keep("osse-fits", (osse_key, fit_key), {
                int(o): g.drop(columns="_orbit").reset_index(drop=True) for o, g in table.groupby("_orbit", sort=True)})
        settings = _settings(fit_key)
        fits = {}
        for i, (orbit, od) in enumerate(orbits.items(), 1):
            fitted = fit_candidates(od, find_candidates(od, settings), settings)
            if not fitted.empty:
                fits[orbit] = fitted
            if on_orbit:
                on_orbit(i, len(orbits), orbit)
        if fits:
            tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
            pd.concat([f.assign(_orbit=o) for o, f in fits.items()], ignore_index=True).to_parquet(tmp, index=False)
            tmp.replace(path)
        return _keep("osse-fits", (osse_key, fit_key), fits)


@st.cache_data(show_spinner=False, max_entries=256)
def _osse_score(osse_key: tuple, fit_key: tuple, key: tuple) -> dict:
    from core.validation import score

    data, plumes, orbits, _ = osse(*osse_key)
    settings = _settings(key)
    month = _rejudged("osse-month", (osse_key, fit_key), settings)  # a sweep: the rules re-run on one table
    if month is None:
        fits = _osse_fits(osse_key, fit_key)
        parts = [judge(od, fits[orbit], settings) for orbit, od in orbits.items() if orbit in fits]
        month = assemble_month(parts, settings, attribute_events=False)  # the month's own threshold, as detect does
    _hold_judged("osse-month", (osse_key, fit_key, key), settings, month, max_entries=4)
    return dataclasses.asdict(score(month, data, plumes))


def osse_score(osse_key: tuple, settings: DetectionSettings, on_orbit=None) -> dict:
    """Recall, precision, false events per 1000 km and emission error of these settings on the OSSE, judged as a
    month (its own threshold, as ``detect``), with their bootstrap 90 % intervals (:func:`core.validation.score` as
    a dict); the fits are stored, so a rules-only change re-runs the rules only."""
    _osse_fits(osse_key, fit_items(settings), on_orbit)  # fitted (with progress) or read before the score
    return _osse_score(osse_key, fit_items(settings), all_items(settings))


def sweep(osse_key: tuple, settings: DetectionSettings, key: str, values, on_value=None) -> pd.DataFrame:
    """Score the OSSE for each value of one setting, the others as given: one row per value, the intervals as
    ``<figure>_lo`` and ``<figure>_hi`` columns."""
    rows = []
    for i, value in enumerate(values, 1):
        scores = osse_score(osse_key, settings.replace({key: value}))
        bounds = {f"{name}_{end}": bound for name, pair in scores["intervals"].items()
                  for end, bound in zip(("lo", "hi"), pair)}
        rows.append({"value": value, **{k: v for k, v in scores.items() if k != "intervals"}, **bounds})
        if on_value:
            on_value(i, len(values), value)
    return pd.DataFrame(rows)
