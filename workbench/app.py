"""Entry point of the workbench: ``streamlit run workbench/app.py``.

On first start with an empty cache it builds the embedded demo month (simulated Lite files over real power
plants, ingested into ``data_cache/``), then shows the pages.
"""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `core` importable however we are started

from workbench.state import ensure_demo_once  # noqa: E402

st.set_page_config(page_title="OCO-2 peak workbench", page_icon="🛰️", layout="wide")

ensure_demo_once()

VIEWS = Path(__file__).parent / "views"
pages = [
    st.Page(VIEWS / "data.py", title="Data", icon="🗂️", url_path="data", default=True),
]
st.navigation(pages).run()
