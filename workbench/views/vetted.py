"""Vetted peaks and export: every decision (history kept), the vetted peaks as CSV, settings as TOML."""
import streamlit as st

from core.vetting import DECISIONS
from workbench import exports, state, ui, view

st.title("Vetted peaks & export")
store = ui.vetting_store()
months = state.months()
pick = st.selectbox("Month", ["all months", *months], key="vetted:month")
month = None if pick == "all months" else pick
current = store.current_decisions(month)
history = store.history(month=month)

counts = current["decision"].value_counts() if len(current) else {}
c = st.columns(4)
c[0].metric("Peaks vetted", len(current))
for i, d in enumerate(DECISIONS, 1):
    c[i].metric(d.capitalize(), int(counts.get(d, 0)))

st.subheader("Current decisions")
st.caption("The latest decision on each peak (month, orbit, sounding, settings hash); `n_decisions` counts its "
           "history.")
if current.empty:
    st.info("No decision yet: vet peaks on the Peak detail page.")
else:
    st.dataframe(current[["month", "orbit", "sounding_id", "rules_hash", "decision", "note", "analyst",
                          "decided_at", "n_decisions"]], hide_index=True, width="stretch")
    with st.expander(f"Full history ({len(history)} decisions, oldest first)"):
        st.dataframe(history[["decision_id", "month", "orbit", "sounding_id", "rules_hash", "decision", "note",
                              "analyst", "decided_at"]], hide_index=True, width="stretch")

st.subheader("Export")
left, right = st.columns(2)
with left:
    keep = st.multiselect("Decisions to export", DECISIONS, default=list(DECISIONS), key="vetted:keep")
    manifest = state.manifest(state.root(), state.all_stamp())
    data = exports.vetted_csv(current, manifest, keep)
    st.download_button("Download vetted peaks (CSV)", data=data, file_name=f"vetted_peaks_{pick.replace(' ', '_')}.csv",
                       mime="text/csv", icon=":material/download:", disabled=current.empty)
    st.caption("One row per vetted peak: the peak as judged when vetted, the decision, and provenance columns "
               "(`rules_hash`, `settings_json`, `software_version`, `data_files`, `exported_at`).")
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
