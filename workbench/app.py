"""Entry point of the workbench: ``streamlit run workbench/app.py``.

Every run: read the view from the URL when it is new (:mod:`workbench.view`), make month and orbit valid, draw the
share link and the settings sidebar (:mod:`workbench.controls`), write the view back into the URL, run the page.
On first start with an empty cache it builds the embedded demo month (simulated Lite files over real power plants).
"""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `core` importable however we are started

from workbench import controls, state, ui, view  # noqa: E402

# the page icon stays an emoji: a Material page icon is fetched from fonts.gstatic.com (the app works offline)
st.set_page_config(page_title="OCO-2 peak workbench", page_icon="🛰️", layout="wide")

state.ensure_demo_once()
view.init()
view.resolve(state.months(), state.orbit_numbers)

F = ui.PAGE_FILES
pages = [
    st.Page(F["overview"], title="Month overview", icon=":material/map:", url_path="overview", default=True),
    st.Page(F["orbit"], title="Orbit explorer", icon=":material/timeline:", url_path="orbit"),
    st.Page(F["peak"], title="Peak detail", icon=":material/search:", url_path="peak"),
    st.Page(F["inventory"], title="Inventory comparison", icon=":material/factory:", url_path="inventory"),
    st.Page(F["vetted"], title="Vetted peaks & export", icon=":material/fact_check:", url_path="vetted"),
    st.Page(F["data"], title="Data", icon=":material/folder_open:", url_path="data"),
    st.Page(F["validation"], title="Validation", icon=":material/target:", url_path="validation"),
]
page = st.navigation(pages)

share = st.sidebar.empty()
settings = controls.render_sidebar()
view.sync_url(page.url_path)
ui.share_box(share)
for message in view.pop_warnings():
    st.warning(message, icon=":material/warning:")
if contradictions := settings.contradictions():  # core names both keys; nothing is detected until they agree
    for message in contradictions:
        st.error(f"Settings contradict each other: {message}. Change one of the two in the sidebar.",
                 icon=":material/error:")
    st.stop()
page.run()
