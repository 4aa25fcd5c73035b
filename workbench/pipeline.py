"""Detection for the pages, staged and cached so that a change re-runs only what it invalidates.

The stages of :mod:`core.detect`, each cached (``st.cache_data``) on exactly what it depends on:

======================  ==========================================  =======================================
stage                   core                                        cache key (besides cache, month, orbit)
======================  ==========================================  =======================================
geometry                ``prepare_orbit``                           the month's data stamp
screen + fits           ``find_candidates`` + ``fit_candidates``    + the fit-stage settings (``FIT_STAGE``)
rules, events, sources  ``judge`` + ``core.batch.with_sources``     + every setting
======================  ==========================================  =======================================

So moving a rule threshold re-runs ``judge`` only (milliseconds): it never refits. ``tests/test_workbench.py``
checks that the fit stage reads no setting outside ``FIT_STAGE``.

A month is the concatenation of its judged orbits, attributed at once (one inventory query). When
``python -m core detect`` or the Data page stored the month's detections for the current settings (and the data did
not change since), they are read instead.
"""
from __future__ import annotations

import dataclasses
import tempfile
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
import streamlit as st

from core.batch import detections_dir, with_sources
from core.cache import SoundingsCache
from core.detect import OrbitData, find_candidates, fit_candidates, judge, prepare_orbit

try:  # the detection coordinate (track or wind-aligned) arrived in core with fit.wind_aligned
    from core.detect import detection_view
except ImportError:  # pragma: no cover - older core: always along the track
    def detection_view(od, settings):
        return od
from core.settings import DetectionSettings

from . import queries

#: Settings the screen and the fits read (the rest only judge): every ``fit.*`` and ``screen.*`` key, the rule
#: settings that shape fit-time statistics (land/water margin, narrowest plateau compared), and the rules that
#: spare hopeless fits (depletions, too-wide screen bumps are not fitted when their rule is on).
#: ``tests/test_workbench.py`` records what core's fit stage reads and fails when it reads another setting.
FIT_STAGE_PREFIXES = ("fit.", "screen.")
FIT_STAGE_EXTRA = ("rules.surface_transition.margin_km", "rules.box_like.min_width_km", "rules.depletion.enabled",
                   "rules.too_wide.enabled", "rules.too_wide.n_sigma")


def is_fit_stage(key: str) -> bool:
    return key.startswith(FIT_STAGE_PREFIXES) or key in FIT_STAGE_EXTRA


def fit_items(settings: DetectionSettings) -> tuple:
    """The fit-stage values as a hashable cache key."""
    return tuple(sorted((k, v) for k, v in settings.as_dict().items() if is_fit_stage(k)))


def all_items(settings: DetectionSettings) -> tuple:
    return tuple(sorted(settings.as_dict().items()))


def _settings(items: tuple) -> DetectionSettings:
    return DetectionSettings(dict(items))


# ------------------------------------------------------------------------------------------------ one orbit

@st.cache_data(show_spinner=False, max_entries=512)
def orbit_data(root: str, month: str, orbit: int, stamp: str) -> OrbitData:
    """Geometry of one orbit (depends on its soundings only)."""
    return prepare_orbit(queries.orbit_soundings(SoundingsCache(root), month, orbit))


@st.cache_data(show_spinner=False, max_entries=1024)
def fitted(root: str, month: str, orbit: int, stamp: str, fit_key: tuple) -> pd.DataFrame:
    """Screened and fitted candidates of one orbit (depends on the fit-stage settings only)."""
    od = orbit_data(root, month, orbit, stamp)
    settings = _settings(fit_key)
    return fit_candidates(od, find_candidates(od, settings), settings)


@st.cache_data(show_spinner=False, max_entries=4096)
def _judged(root: str, month: str, orbit: int, stamp: str, fit_key: tuple, key: tuple) -> pd.DataFrame:
    """Rules, events and emission of one orbit (no attribution: a month is attributed at once)."""
    return judge(orbit_data(root, month, orbit, stamp), fitted(root, month, orbit, stamp, fit_key), _settings(key))


@st.cache_data(show_spinner=False, max_entries=4096)
def _orbit_candidates(root: str, month: str, orbit: int, stamp: str, fit_key: tuple, key: tuple) -> pd.DataFrame:
    return with_sources(_judged(root, month, orbit, stamp, fit_key, key), _settings(key), cache=root)


def orbit_candidates(root: str, month: str, orbit: int, stamp: str, settings: DetectionSettings) -> pd.DataFrame:
    """Every candidate of one orbit with its verdict, reasons, emission and best upwind source."""
    return _orbit_candidates(root, month, int(orbit), stamp, fit_items(settings), all_items(settings))


# ------------------------------------------------------------------------------------------------ one month

@st.cache_resource(show_spinner=False)
def _month_results() -> tuple[OrderedDict, threading.Lock]:
    """Month tables computed in this server process, most recent last (at most 8 kept)."""
    return OrderedDict(), threading.Lock()


@st.cache_data(show_spinner=False, max_entries=16)
def _read_stored(path: str, mtime_ns: int) -> pd.DataFrame:
    return pd.read_parquet(path)


def stored_candidates(root: str, month: str, settings: DetectionSettings) -> pd.DataFrame | None:
    """The month's stored detections for these settings, if stored after the data last changed."""
    cache = SoundingsCache(root)
    path = detections_dir(cache, month, settings) / "candidates.parquet"
    if not path.exists():
        return None
    newest_data = max((f.stat().st_mtime_ns for f in cache.day_files(month)), default=0)
    mtime = path.stat().st_mtime_ns
    return _read_stored(str(path), mtime) if mtime >= newest_data else None


def month_candidates(root: str, month: str, stamp: str, settings: DetectionSettings, orbits: list[int],
                     on_orbit=None, compute: bool = True) -> pd.DataFrame | None:
    """Every candidate of the month (stored, or the concatenation of its orbits, computed as needed).

    ``on_orbit(i, n, orbit)`` reports progress while orbits are computed; ``compute=False`` returns None
    instead of computing.
    """
    key = (root, month, stamp, settings.hash)
    results, lock = _month_results()
    with lock:
        if key in results:
            results.move_to_end(key)
            return results[key]
    table = stored_candidates(root, month, settings)
    if table is None:
        if not compute:
            return None
        parts = []
        fit_key, all_key = fit_items(settings), all_items(settings)
        for i, orbit in enumerate(orbits, 1):
            part = _judged(root, month, int(orbit), stamp, fit_key, all_key)
            if not part.empty:
                parts.append(part)
            if on_orbit:
                on_orbit(i, len(orbits), orbit)
        table = with_sources(pd.concat(parts, ignore_index=True), settings, cache=root) if parts else pd.DataFrame()
    with lock:
        results[key] = table
        while len(results) > 8:
            results.popitem(last=False)
    return table


def events(candidates: pd.DataFrame, accepted_only: bool = True) -> pd.DataFrame:
    """Plume events (one row per plume), accepted only unless asked."""
    if candidates is None or candidates.empty:
        return pd.DataFrame()
    rows = candidates["is_event"].astype(bool)
    if accepted_only:
        rows &= candidates["status"].eq("accepted")
    return candidates[rows]


# ------------------------------------------------------------------------------------------------ one peak

@st.cache_data(show_spinner=False, max_entries=256)
def _ranked(root: str, lat: float, lon: float, u: float, v: float, key: tuple) -> tuple[pd.DataFrame, float]:
    from core.attribution import rank_upwind_sources, search_box, sector_length_km
    from core.inventory import sources_in_box

    settings = _settings(key)
    length = float(sector_length_km(np.hypot(u, v), settings))
    if not np.isfinite([lat, lon, u, v]).all():
        return pd.DataFrame(), length
    sources = sources_in_box(*search_box([lat], [lon], length + settings["attribution.crosswind_km"]), cache=root)
    return rank_upwind_sources(lat, lon, u, v, sources, settings), length


def ranked_sources(root: str, lat: float, lon: float, u: float, v: float,
                   settings: DetectionSettings) -> tuple[pd.DataFrame, float]:
    """Inventory sources in a peak's upwind sector, best first, and the sector length [km]."""
    key = tuple(sorted((k, x) for k, x in settings.as_dict().items() if k.startswith("attribution.")))
    return _ranked(root, lat, lon, u, v, key)


# ------------------------------------------------------------------------------------------------ validation OSSE

@st.cache_resource(show_spinner=False, max_entries=4)
def osse(root: str, seed: int, days: int, passes_per_day: int, pass_km: float):
    """A simulated OSSE read back (:func:`core.validation.load_osse`), its detectable plumes and prepared orbits.

    The Lite files go to a temporary folder and are removed once read; the rest is kept for the process.
    """
    from core.simulate import simulate
    from core.validation import detectable_plumes, load_osse

    with tempfile.TemporaryDirectory(prefix="oco2peak-osse-") as tmp:
        result = simulate(tmp, days=days, seed=seed, passes_per_day=passes_per_day, pass_km=pass_km, cache=root)
        data = load_osse(tmp)
    orbits = {int(o): prepare_orbit(g) for o, g in data.soundings.groupby("orbit", sort=True)}
    return data, detectable_plumes(data), orbits, result.summary_line()


@st.cache_data(show_spinner=False, max_entries=1024)
def _osse_fitted(osse_key: tuple, orbit: int, fit_key: tuple) -> pd.DataFrame:
    od = osse(*osse_key)[2][orbit]
    settings = _settings(fit_key)
    return fit_candidates(od, find_candidates(od, settings), settings)


@st.cache_data(show_spinner=False, max_entries=256)
def _osse_score(osse_key: tuple, fit_key: tuple, key: tuple) -> dict:
    from core.validation import score

    data, plumes, orbits, _ = osse(*osse_key)
    settings = _settings(key)
    parts = [judge(od, _osse_fitted(osse_key, orbit, fit_key), settings) for orbit, od in orbits.items()]
    parts = [p for p in parts if not p.empty]
    return dataclasses.asdict(score(pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(), data, plumes))


def osse_score(osse_key: tuple, settings: DetectionSettings) -> dict:
    """Recall, precision, false events per 1000 km and emission error of these settings on the OSSE, with their
    bootstrap 90 % intervals (:func:`core.validation.score` as a dict); the fits are cached, so a rules-only change
    re-runs the rules only."""
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
