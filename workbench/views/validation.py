"""Validation: score the current settings on simulated passes with known truth, and sweep one rule threshold."""
import numpy as np
import streamlit as st

from core.settings import all_settings
from core.validation import FALSE_DISTANCE_KM, with_interval
from workbench import charts, pipeline, state, view

st.title("Validation on simulated truth")
st.caption("An OSSE (simulated Lite files in the real layout, plumes of known emission over real power plants, "
           "plume-free passes with land/water steps and cloud bursts) is written, read back and detected with the "
           "current settings. Its fits are cached: changing a rule re-runs the rules only.")
settings = view.settings()

default = pipeline.DEFAULT_OSSE
with st.expander("Simulated passes", expanded=False):
    c = st.columns(4)
    seed = c[0].number_input("Seed", 0, 10_000, default["seed"], key="val:seed")
    days = c[1].number_input("Days", 1, 31, default["days"], key="val:days")
    per_day = c[2].number_input("Passes per day", 1, 12, default["passes_per_day"], key="val:per_day")
    pass_km = c[3].number_input("Pass length [km]", 500, 6000, int(default["pass_km"]), step=500, key="val:pass_km")
osse_key = (state.root(), int(seed), int(days), int(per_day), float(pass_km))
fresh = not (pipeline.osse_folder(*osse_key) / "soundings.parquet").is_file()
with st.spinner("Simulating the passes (once per cache: about 15 s for the default month)..." if fresh else
                "Reading the simulated passes..."):
    _, plumes, _, summary = pipeline.osse(*osse_key)
bar = st.empty()
now = pipeline.osse_score(osse_key, settings, on_orbit=lambda i, n, orbit: bar.progress(
    i / n, text=f"fitting the simulated orbits (once per fit settings): {i}/{n}"))
bar.empty()

st.caption(f"Simulated: {summary}. Judged as a month, at its own threshold, as `detect` does. Definitions of the "
           "scores: `core/validation.py`.")
ci = now["intervals"]
m = st.columns(3)
m[0].metric("Recall", with_interval(now["recall"], ci["recall"], ".2f"),
            help="Detectable plumes (footprint-averaged peak >= 0.8 ppm, seen by the satellite) matched one to one "
                 f"by an accepted event: {now['n_matched']} of {now['n_detectable']}. In brackets: 90 % interval.")
m[1].metric("False events / 1000 km", with_interval(now["false_per_1000_km"], ci["false_per_1000_km"], ".2f"),
            help=f"Accepted events > {FALSE_DISTANCE_KM:.0f} km from every truth plume: {now['n_false']} on "
                 f"{now['track_km']:,.0f} km of all track. On plume-free passes: "
                 f"{with_interval(now['false_per_1000_km_plume_free'], ci['false_per_1000_km_plume_free'], '.2f')} "
                 f"({now['n_false_plume_free']} on {now['plume_free_km']:,.0f} km).")
m[2].metric("Precision", with_interval(now["precision"], ci["precision"], ".2f"),
            help=f"Matched events / accepted events: {now['n_matched']} of {now['n_accepted']} "
                 f"({now['n_unmatched_near']} near a plume but unmatched, neither matched nor false).")
m = st.columns(3)
m[0].metric("Median |emission error|", with_interval(now["median_emission_error"], ci["median_emission_error"],
                                                      ".0f", 100, " %"),
            help=f"|estimate - truth| / truth over {now['n_emission']} matched isolated plumes. With the true wind "
                 "across the track it would be "
                 f"{with_interval(now['median_emission_error_true_wind'], fmt='.0f', scale=100, unit=' %')}"
                 f" (the simulated files' winds are off by a median "
                 f"{with_interval(now['median_wind_error'], fmt='.0f', scale=100, unit=' %')} across the track: the "
                 "flux is proportional to that wind, so no fit takes that share away).")
m[1].metric("1-sigma coverage", with_interval(now["emission_coverage_1sigma"], ci["emission_coverage_1sigma"],
                                              ".0f", 100, " %"),
            help="Share of those plumes whose true emission lies within estimate +- its standard error (68 % if "
                 "the standard errors are right); median |estimate - truth| / stderr "
                 f"{with_interval(now['median_emission_z'], fmt='.2f')} (0.67 if right).")
m[2].metric("Detectable plumes", now["n_detectable"], help=f"Of {len(plumes)} plumes in the truth.")
st.caption("In brackets: 90 % intervals of a bootstrap over the passes "
           f"({now['n_boot']} resamples of {now['n_passes']} passes).")

st.subheader("Sweep one rule threshold")
declared = all_settings()
keys = [k for k in declared if k.startswith("rules.") and not k.endswith(".enabled")
        and not declared[k].fit_stage]
c = st.columns([2, 2, 1])
key = c[0].selectbox("Threshold", keys, index=keys.index("rules.significance.min_snr"), key="val:key",
                     help="Rule thresholds only: the fits are reused, the rules re-run for each value.")
s = declared[key]
default_hi = min(float(s.maximum), max(3 * float(settings[key]), float(s.minimum) + 1))
lo, hi = c[1].slider("Range", float(s.minimum), float(s.maximum), (float(s.minimum), default_hi),
                     key=f"val:range:{key}")
n = c[2].number_input("Values", 3, 25, 9, key="val:n")
values = np.linspace(lo, hi, int(n))
values = {int(round(v)) for v in values} if s.kind is int else {float(round(v, 4)) for v in values}
values = sorted(values | {settings[key]})  # the current value is always one of the points
rule = key.split(".")[1]
swept = settings if settings[f"rules.{rule}.enabled"] else settings.replace({f"rules.{rule}.enabled": True})
if swept is not settings:
    st.info(f"The rule `{rule.replace('_', '-')}` is off in the current settings: the sweep turns it on.")
bar = st.progress(0.0, text="sweeping")
table = pipeline.sweep(osse_key, swept, key, values,
                       on_value=lambda i, total, v: bar.progress(i / total, text=f"{key} = {v} ({i}/{total})"))
bar.empty()
st.altair_chart(charts.tradeoff_chart(table, key, settings[key]), width="stretch")
st.caption("Each point: the current settings with only this threshold changed. Red diamond / dashed line: the "
           "current value. Higher recall at fewer false events per 1000 km (all track) is better.")
st.dataframe(table[["value", "recall", "n_matched", "n_detectable", "false_per_1000_km", "n_false", "precision",
                    "n_accepted", "median_emission_error", "n_emission"]], hide_index=True, width="stretch",
             column_config={"value": st.column_config.NumberColumn(key, format="%g"),
                            "recall": st.column_config.NumberColumn("recall", format="%.3f"),
                            "n_matched": "matched", "n_detectable": "detectable",
                            "false_per_1000_km": st.column_config.NumberColumn("false / 1000 km (all track)",
                                                                               format="%.3f"),
                            "n_false": "false events",
                            "precision": st.column_config.NumberColumn("precision", format="%.3f"),
                            "n_accepted": "accepted",
                            "median_emission_error": st.column_config.NumberColumn("median |emission error|",
                                                                                   format="percent"),
                            "n_emission": "emissions compared"})
