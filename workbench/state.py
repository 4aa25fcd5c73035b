"""Process-wide resources and cached loaders shared by the pages (thin wrappers over :mod:`core`)."""
from __future__ import annotations

import streamlit as st

from core.cache import SoundingsCache
from core.paths import cache_root


@st.cache_resource(show_spinner=False)
def _demo_ready(root: str) -> dict:
    from core.demo import ensure_demo

    with st.status("Preparing the embedded demo month (first start only)...", expanded=True) as status:
        progress = st.progress(0.0, text="writing and ingesting the demo Lite files")

        def on_file(i, n, report):
            progress.progress(i / n, text=f"ingested {i}/{n}: {report.path.name}")

        summary = ensure_demo(cache=root, on_file=on_file)
        status.update(label="Demo month ready", state="complete", expanded=False)
    return summary


def ensure_demo_once() -> dict:
    """Build the demo month if the cache lacks it (once per server process; idempotent on disk too)."""
    return _demo_ready(str(cache_root()))


def cache() -> SoundingsCache:
    return SoundingsCache(cache_root())


@st.cache_data(show_spinner=False)
def manifest(root: str, stamp: float):
    """The cache manifest; ``stamp`` (the soundings folder's mtime) invalidates it when the cache changes."""
    return SoundingsCache(root).manifest()
