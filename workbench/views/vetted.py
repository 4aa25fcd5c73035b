"""Vetted peaks and export: the current decision on each plume (history kept), the vetted plumes as CSV, settings as
TOML."""
import pandas as pd
import streamlit as st

from core.vetting import DECISIONS
from workbench import exports, state, ui, view

st.title("Vetted peaks & export")
store = ui.vetting_store()
months = state.months()
pick = st.selectbox("Month", ["all months", *months], key="vetted:month")
month = None if pick == "all months" else pick
history = store.history(month=month)
manifest = state.manifest(state.root(), state.all_stamp())
table = exports.vetted_table(history, manifest)  # one row per plume: its latest decision under any settings

counts = table["decision"].value_counts() if len(table) else {}
c = st.columns(4)
c[0].metric("Plumes vetted", len(table), help="Decisions on one plume under several settings count once.")
for i, d in enumerate(DECISIONS, 1):
    c[i].metric(d.capitalize(), int(counts.get(d, 0)))

st.subheader("Current decisions")
st.caption("The latest decision on each plume, whatever the settings it was made under; the peak as it was judged "
           "then (its emission and upwind source); `decisions` counts the plume's history. Open a peak with its "
           "link (under the settings it was judged with).")
if table.empty:
    st.info("No decision yet: vet peaks on the Peak detail page.")
else:
    shown = table[["peak_link", "decision", "analyst", "decided_at", "note", "orbit", "time", "delta_ppm",
                   "emission_MtCO2_yr", "emission_MtCO2_yr_stderr", "source_name", "emission_ratio", "status",
                   "preset", "rules_hash", "n_decisions"]].copy()
    shown["time"] = pd.to_datetime(shown["time"], utc=True, errors="coerce").dt.strftime("%Y-%m-%d %H:%M:%S")
    shown["decided_at"] = pd.to_datetime(shown["decided_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M")
    number = st.column_config.NumberColumn
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        "peak_link": st.column_config.LinkColumn("peak", display_text=r"peak=(\d+)", width="small"),
        "decided_at": "decided (UTC)", "time": "peak time (UTC)",
        "delta_ppm": number("peak [ppm]", format="%.2f"),
        "emission_MtCO2_yr": number("emission [MtCO2/yr]", format="%.1f"),
        "emission_MtCO2_yr_stderr": number("± 1 sigma", format="%.1f"),
        "source_name": "upwind source", "emission_ratio": number("estimate / inventory", format="%.2f"),
        "status": "verdict then", "rules_hash": "settings hash", "n_decisions": number("decisions", format="%d")})
    with st.expander(f"Full history ({len(history)} decisions, oldest first)"):
        st.dataframe(history[["decision_id", "month", "orbit", "sounding_id", "rules_hash", "decision", "note",
                              "analyst", "decided_at"]], hide_index=True, width="stretch")

st.subheader("Export")
left, right = st.columns(2)
with left:
    keep = st.multiselect("Decisions to export", DECISIONS, default=list(DECISIONS), key="vetted:keep")
    data = exports.vetted_csv(history, manifest, keep)
    st.download_button("Download vetted peaks (CSV)", data=data, file_name=f"vetted_peaks_{pick.replace(' ', '_')}.csv",
                       mime="text/csv", icon=":material/download:", disabled=table.empty)
    st.caption("One row per vetted plume: the peak as judged when vetted, the decision, and provenance columns "
               "(`rules_hash`, `preset`, `settings_json`, `software_version`, `data_files`: the peak's own Lite "
               "files, `peak_link`, `exported_at`).")
with right:
    settings = view.settings()
    st.download_button("Download current settings (TOML)", data=exports.settings_toml(settings),
                       file_name=f"oco2peak_settings_{settings.hash}.toml", mime="application/toml", icon=":material/download:")

    def _load_settings():
        upload = st.session_state.get("vetted:toml")
        if upload is None:
            return
        try:
            loaded = exports.parse_settings_upload(upload.getvalue(), upload.name)
        except ValueError as exc:
            st.session_state["vetted:toml_msg"] = ("error", f"Not loaded, the settings are unchanged: {exc}")
            return
        view.set_settings(loaded)
        st.session_state["vetted:toml_msg"] = ("success", f"Loaded {upload.name}: preset `{loaded.preset}`, "
                                                          f"hash `{loaded.hash}`.")

    st.file_uploader("Load settings (TOML)", type=["toml"], key="vetted:toml", on_change=_load_settings,
                     help="A file saved by this page or by hand: unknown keys or values out of range are refused.")
    kind, message = st.session_state.pop("vetted:toml_msg", (None, None))
    if kind == "error":
        st.error(message)
    elif kind == "success":
        st.success(message)
