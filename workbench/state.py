"""Process-wide resources and cached loaders shared by the pages (thin wrappers over :mod:`core`).

Every loader is keyed on the cache root, the month and the month's data stamp (:func:`stamp`), so ingesting a
file invalidates what was read before it.
"""
from __future__ import annotations

import streamlit as st

from core.cache import SoundingsCache
from core.paths import cache_root

from . import queries


@st.cache_resource(show_spinner=False)
def _demo_checked() -> dict:
    """Cache roots whose demo month this server process has made sure of (root -> summary)."""
    return {}


def ensure_demo_once() -> dict | None:
    """Build the demo month when the cache holds no soundings, or refresh a demo the cache already holds; once per
    server process and cache root (:func:`core.demo.ensure_demo` is idempotent and locked on disk).

    A cache holding only the analyst's own data (or a test cache) is left alone.
    """
    from core.demo import DEMO_MONTH, demo_dir, ensure_demo

    root = cache_root()
    checked = _demo_checked()
    if str(root) in checked:
        return checked[str(root)]
    if cache().day_files() and not demo_dir(root).is_dir():
        return None
    if DEMO_MONTH in months():  # already there: check quietly (nothing to do, or a few files to ingest)
        checked[str(root)] = ensure_demo(cache=root)
        return checked[str(root)]
    with st.status("Preparing the embedded demo month (first start only)...", expanded=True) as status:
        progress = st.progress(0.0, text="writing and ingesting the demo Lite files")

        def on_file(i, n, report):
            progress.progress(i / n, text=f"ingested {i}/{n}: {report.path.name}")

        summary = ensure_demo(cache=root, on_file=on_file)
        status.update(label=summary.get("message", "Demo month ready"), state="complete", expanded=False)
    checked[str(root)] = summary
    return summary


def root() -> str:
    return str(cache_root())


def cache() -> SoundingsCache:
    return SoundingsCache(cache_root())


def months() -> list[str]:
    return cache().months()


def stamp(month: str) -> str:
    return queries.data_stamp(cache(), month)


@st.cache_data(show_spinner=False)
def manifest(root: str, stamp: str):
    """The cache manifest; ``stamp`` (see :func:`all_stamp`) invalidates it when the cache changes."""
    return SoundingsCache(root).manifest()


def all_stamp() -> str:
    files = cache().day_files()
    return f"{len(files)}:{max((p.stat().st_mtime_ns for p in files), default=0)}"


@st.cache_data(show_spinner=False, max_entries=64)
def _orbits(root: str, month: str, stamp: str):
    return queries.orbits_table(SoundingsCache(root), month)


def orbits(month: str):
    """The month's orbits table (orbit, day, start, end, soundings, latitude span, mean XCO2)."""
    return _orbits(root(), month, stamp(month))


def orbit_numbers(month: str) -> list[int]:
    return [int(o) for o in orbits(month)["orbit"]]


@st.cache_data(show_spinner=False, max_entries=32)
def _track_points(root: str, month: str, stamp: str, max_points: int):
    return queries.track_points(SoundingsCache(root), month, max_points)


def track_points(month: str, max_points: int = 5000):
    return _track_points(root(), month, stamp(month), max_points)


@st.cache_data(show_spinner=False, max_entries=32)
def _daily_mean(root: str, month: str, stamp: str):
    return queries.daily_mean(SoundingsCache(root), month)


def daily_mean(month: str):
    return _daily_mean(root(), month, stamp(month))


@st.cache_data(show_spinner=False, max_entries=64)
def sources_near_tracks(root: str, month: str, stamp: str, min_emission_tCO2_yr: float):
    points = queries.track_points(SoundingsCache(root), month, 4000)
    return queries.sources_near_tracks(points, min_emission_tCO2_yr, cache=root)
