"""Vetting a plume on Peak detail: what was decided on it (under any settings) and the form that records a decision.

A decision is recorded under the peak these settings made (``core.vetting.PeakKey``) and found again on the same
plume under any other settings (:func:`core.vetting.plume_decisions`). The form is keyed on the peak, so moving to
the next peak never carries a note over; it records in a callback, before the page runs, so the queue's count is
current when the page is drawn.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

import core
from core.vetting import DECISIONS, PeakKey

from . import exports, tables, ui, view

_ICON = {"accept": ":material/check_circle:", "reject": ":material/cancel:", "unsure": ":material/help:"}


def decision_note(plume: pd.Series, row: pd.Series) -> None:
    """The plume's current decision, the settings it was made under, and a flag when the verdict changed since."""
    if not plume["decision"]:
        st.caption("No decision on this plume yet (under any settings).")
        return
    made_under = (f"preset `{plume['decided_preset'] or '?'}`, settings hash `{plume['decided_rules_hash']}`"
                  + (" (these settings)" if plume["decided_rules_hash"] == view.settings().hash else ""))
    text = (f"{_ICON[plume['decision']]} **{plume['decision']}** by {plume['analyst']} at "
            f"{str(plume['decided_at'])[:19].replace('T', ' ')} UTC, under {made_under}"
            + (f": *{plume['note']}*" if plume["note"] else "")
            + (f" ({int(plume['n_decisions'])} decisions on this plume)" if plume["n_decisions"] > 1 else ""))
    st.markdown(text)
    if plume["verdict_changed"]:
        st.warning(f"The verdict changed since: the detector said **{plume['decided_status']}** when this was "
                   f"decided, it says **{row['status']}** with the current settings.", icon=":material/sync_problem:")


def _record(store, month: str, orbit: int, row: pd.Series, settings, form_key: str, then_next: bool) -> None:
    ss = st.session_state
    decision, note = ss.get(f"{form_key}:decision"), ss.get(f"{form_key}:note", "")
    analyst = (ss.get(f"{form_key}:analyst") or "").strip()
    if decision is None:
        ss["vet:message"] = ("error", "Choose accept, reject or unsure.")
        return
    if not analyst:
        ss["vet:message"] = ("error", "Give the analyst's name.")
        return
    store.record(PeakKey(month, int(orbit), int(row["sounding_id"]), settings.hash), decision, note, analyst,
                 peak=exports.peak_snapshot(row), settings={**settings.as_dict(), "preset": settings.preset},
                 software_version=core.__version__)
    ss["wb_analyst"] = analyst
    ss["vet:message"] = ("success", f"Recorded on peak {int(row['sounding_id'])}: {decision} by {analyst}.")
    if then_next:
        queue = ui.vetting_queue(month, settings)
        ui.open_queued(queue, tables.queue_step(queue, int(row["sounding_id"]), 1, unvetted_only=True))


def decision_form(store, month: str, orbit: int, row: pd.Series, settings, plume: pd.Series) -> None:
    """Accept / reject / unsure with a note and the analyst's name; "Record" or "Record, then next unvetted"."""
    form_key = f"vet:{orbit}:{int(row['sounding_id'])}"
    ss = st.session_state
    ss.setdefault(f"{form_key}:analyst", ss.get("wb_analyst", ""))
    with st.form(form_key, clear_on_submit=False, border=True):
        st.radio("Decision", DECISIONS, horizontal=True, key=f"{form_key}:decision",
                 index=DECISIONS.index(plume["decision"]) if plume["decision"] in DECISIONS else None)
        st.text_area("Note (why)", key=f"{form_key}:note", height=80, value=plume["note"] or "")
        st.text_input("Analyst", key=f"{form_key}:analyst")
        cols = st.columns(2)
        args = (store, month, orbit, row, settings, form_key)
        cols[0].form_submit_button("Record decision", type="primary", icon=":material/save:", on_click=_record,
                                   args=(*args, False), width="stretch")
        cols[1].form_submit_button("Record, then next unvetted", icon=":material/skip_next:", on_click=_record,
                                   args=(*args, True), width="stretch")
    kind, message = ss.pop("vet:message", (None, None))
    if kind == "error":
        st.error(message, icon=":material/error:")
    elif kind == "success":
        st.success(message, icon=":material/check:")
