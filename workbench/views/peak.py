"""Peak detail: the window's fit and residuals with the models the rules compared, every rule's statistic and
threshold, the emission, the upwind sources, and the analyst's decision on the plume (with the month's queue)."""
import numpy as np
import pandas as pd
import streamlit as st

from core.attribution import attribute, carried_sources
from core.rules import explain_rules
from core.vetting import plume_decisions, plume_history
from workbench import charts, pipeline, state, tables, ui, vetting, view

st.title("Peak detail")
month = ui.need_data()
settings = view.settings()
orbit = view.orbit()
ui.month_candidates(month, settings)  # the queue needs the month's table: judged once, the orbit's rows read from it
candidates = ui.orbit_candidates(month, orbit, settings)
rows = tables.event_rows(candidates)
if rows.empty:
    st.info(f"Orbit {orbit} has no candidate with these settings: pick another orbit in the Orbit explorer.")
    st.stop()
row = ui.find_peak(candidates, view.peak())
if row is None:
    if view.peak() is not None:
        st.warning(f"Peak {view.peak()} is not a candidate of orbit {orbit} with these settings: showing the first "
                   "peak of the orbit instead.", icon=":material/warning:")
    row = ui.find_peak(candidates, int(rows.iloc[0]["sounding_id"]))
    view.set_peak(int(row["sounding_id"]))
    ui.view_changed()
sounding = int(row["sounding_id"])

store = ui.vetting_store()
history = store.history(month=month)  # the month's decisions, read once for the queue and the form
ui.queue_bar(month, settings, sounding, history)
fitted = row["fixed_reason"] == ""
if not fitted:
    verdict = (f":material/block: not fitted ({row['fixed_reason']})"
               + (", a depletion" if row["mirror"] or row["screen_snr"] < 0 else ""))
elif row["mirror"]:
    verdict = f":material/swap_vert: mirror event, never a plume (rejected by {row['rejected_by']})"
elif row["status"] == "accepted":
    verdict = ":material/check_circle: accepted"
else:
    verdict = f":material/cancel: rejected by {row['rejected_by'].replace('+', ', ')}"
st.markdown(f"**{month} · orbit {orbit} · sounding {sounding}** · {row['time']:%Y-%m-%d %H:%M:%S} UTC "
            f"· {row['latitude']:.3f}°, {row['longitude']:.3f}° · {verdict}")
st.page_link(ui.PAGE_FILES["orbit"], label="Back to the orbit", icon=":material/arrow_back:")

peak_key = (*ui.month_key(month, settings), orbit, sounding)
left, right = st.columns([3, 2])
with left:
    alternative = "none"
    if fitted:
        options = ["none", "step", "plateau", "two plumes"]
        alternative = st.segmented_control(
            "Draw the alternative the rules compared", options, default=tables.default_alternative(row),
            key=f"peak:alternative:{sounding}",
            help="The best step, plateau (a burst of bad frames) and pair of plumes on the soundings within "
                 "max(10 sigma, 15 km) of the centre, each with its own line: the step-like and box-like rules "
                 "compare their chi-square with the Gaussian's.") or "none"

    def peak_charts():
        soundings = ui.orbit_data(month, orbit, settings).soundings
        window = tables.peak_window(soundings, row, settings["fit.window_km"], candidates)
        curves = (tables.alternative_curves(soundings, row, settings["fit.window_km"], settings)
                  if alternative != "none" else {})
        return [ui.vega_spec(chart) for chart in charts.peak_charts(window, fitted, curves.get(alternative),
                                                                    alternative)]

    fit_chart, residual_chart = ui.memo(("peak-charts", *peak_key, alternative), peak_charts)
    neighbours = int(np.nan_to_num(row.get("n_neighbours", 0)))
    if fitted:
        st.caption("The window's soundings, the fitted Gaussian + line and its background line"
                   + (f"; the model includes the {neighbours} stronger neighbouring fit(s) it was fitted with"
                      if neighbours else "")
                   + ("" if alternative == "none" else f"; purple: the best {alternative} model") + "."
                   + ui.surface_note(ui.orbit_data(month, orbit, settings).soundings, float(row["center_km"]),
                                     settings["fit.window_km"]))
    else:
        st.caption("The window's soundings and the screen's estimate (dashed): this candidate was not fitted.")
    st.vega_lite_chart(fit_chart, width="stretch")
    if fitted:
        st.caption("Residuals (data - fit)")
        st.vega_lite_chart(residual_chart, width="stretch")
with right:
    if fitted:
        st.subheader("Fit")
        if row["mirror"]:
            st.info("A depletion fitted with the data turned upside down (`detection.mirror`): A, slope and "
                    "intercept are in that frame; the chart shows the fit the right way up.")
        ui.significance_caption(row)
        params = tables.parameters_table(row)
        params["value"] = params["value"].map(lambda v: f"{v:.4g}")
        params["stderr"] = params["stderr"].map(lambda v: f"{v:.2g}" if np.isfinite(v) else "")
        st.table(params.set_index("parameter"))  # static: cheaper for the browser than a data grid
    else:
        st.subheader("Not fitted")
        st.warning(f"**{row['fixed_reason']}**: {row['fit_message']}.", icon=":material/block:")
        st.markdown(f"Screen statistic **{row['screen_snr']:.2f}** (in units of the orbit's own noise; candidates "
                    f"are fitted from `screen.min_significance` = {settings['screen.min_significance']:g}); the "
                    f"screen's width {row['sigma_km']:.1f} km, area {row['amplitude_ppm_km']:.3g} ppm km. No fit, "
                    "so no standard error, no rule and no emission.")

if fitted:
    st.subheader("Rules")
    threshold = row.get("significance_threshold", np.nan)
    explained = explain_rules(row, settings, None if not np.isfinite(threshold) else float(threshold))
    st.table(explained[["rule", "verdict", "value", "needs", "statistic"]].rename(
        columns={"needs": "passes when"}).set_index("rule"))
    if not row["mirror"] and row["status"] != "accepted" and "geometry_tells" in row and \
            "frame-aligned" in str(row["rejected_by"]) and not bool(row["geometry_tells"]):
        st.caption("The wind is near perpendicular to the track (or too uncertain): geometry cannot tell a burst of "
                   "bad frames from a plume here; only the footprints' disagreement was judged.")
    if not row["mirror"] and bool(row.get("burst_like", False)):
        st.warning("Burst-like: narrow, and its footprints fit no better shifted against each other than aligned on "
                   "the frames. A plume crossed at right angles looks like this, and so does a burst of bad frames "
                   "raising XCO2, which the month's mirror does not count. Check the soundings before trusting it.",
                   icon=":material/help:")

st.subheader("Emission")
if fitted and np.isfinite(row["emission_MtCO2_yr"]):
    c = st.columns([3, 2, 2])
    c[0].metric("Estimate [MtCO2/yr]", f"{row['emission_MtCO2_yr']:.1f} ± {row['emission_MtCO2_yr_stderr']:.1f}",
                help="Cross-sectional flux; 1-sigma from the fit's standard error and the wind uncertainty.")
    c[1].metric("[ktCO2/h]", f"{row['emission_ktCO2_h']:.2f}")
    c[2].metric("Wind across the track [m/s]", f"{row['wind_perp_ms']:.1f}")
elif fitted:
    st.info(f"No estimate: the wind across the track ({abs(row['wind_perp_ms']):.2f} m/s) is below "
            f"`emission.min_wind_perp_ms` ({settings['emission.min_wind_perp_ms']:g} m/s): the flux through the "
            "track cannot be told from the wind.", icon=":material/air:")
else:
    st.info("No estimate: the candidate was not fitted.", icon=":material/block:")
st.caption(f"Wind {np.hypot(row['wind_u_ms'], row['wind_v_ms']):.1f} m/s (u {row['wind_u_ms']:.1f}, "
           f"v {row['wind_v_ms']:.1f}); track bearing {row['track_bearing_deg']:.0f}°; surface pressure "
           f"{row['surface_pressure_hpa']:.0f} hPa, water vapour {row['tcwv_kg_m2']:.1f} kg/m².")

st.subheader("Upwind sources")
ranked, length_km = pipeline.ranked_sources(state.root(), float(row["latitude"]), float(row["longitude"]),
                                            float(row["wind_u_ms"]), float(row["wind_v_ms"]), settings)
mc = st.columns([3, 2])
with mc[0]:

    def plan_chart():
        frames = tables.sector_plan_frames(row, ui.orbit_data(month, orbit, settings).soundings, ranked, length_km,
                                           settings)
        return charts.sector_plan_chart(*frames)

    st.vega_lite_chart(ui.vega(("peak-plan", *peak_key), plan_chart), width="content")
    st.caption(f"Around the peak (yellow), in km: the track's soundings by anomaly, the upwind sector searched "
               f"({length_km:.0f} km, ±{settings['attribution.half_angle_deg']:.0f}°, blue), the wind (arrow: "
               "4 km per m/s) and the sources, sized by emission and coloured by sector (hover for names).")
with mc[1]:
    if ranked.empty:
        st.info("No inventory source in the upwind sector.")
    else:
        carried = carried_sources(ranked, float(row["sigma_km"]), float(row["wind_u_ms"]), float(row["wind_v_ms"]),
                                  settings)
        estimate, stderr = float(row["emission_MtCO2_yr"]), float(row["emission_MtCO2_yr_stderr"])
        # the ratios as the month table gives them (core.attribution.attribute), for a rejected peak too
        judged = attribute(row.to_frame().T, settings, sources=ranked).iloc[0]
        if fitted and np.isfinite(float(judged["emission_ratio_carried"])):
            best_mt = float(judged["source_emission_tCO2_yr"]) / 1e6
            c = st.columns(2)
            c[0].metric("Estimate / sources carried", f"{float(judged['emission_ratio_carried']):.2f} ± "
                                                       f"{float(judged['emission_ratio_carried_stderr']):.2f}",
                        help="The estimate over the summed inventory of the upwind sources, each weighted by how "
                             "much of its plume the crossing sees (core.attribution.carried_weight: a Gaussian "
                             "in the source's offset from the peak's upwind axis, wider with distance by the "
                             "wind direction's error).")
            c[1].metric("… / best-ranked source", f"{float(judged['emission_ratio']):.2f}",
                        help=f"{judged['source_name']} alone ({best_mt:.2f} MtCO2/yr).")
            st.vega_lite_chart(ui.vega(("peak-sources", *peak_key), lambda: charts.peak_vs_sources_chart(
                estimate, stderr, carried)), width="stretch", height=34 * (2 + min(5, len(carried))) + 70)
if not ranked.empty:  # full width below the plan; a static table (a data grid costs the browser more to draw)
    st.table(tables.carried_table(carried))
    st.caption(f"{len(ranked)} sources in the upwind sector; those the crossing sees most first, 10 at most (seen: "
               "the share of its plume the crossing sees). Carried in all: "
               f"{carried['carried_tCO2_yr'].sum() / 1e6:.2f} MtCO2/yr.")

st.subheader("Vet this plume")
one = row.to_frame().T.reset_index(drop=True)
plume = plume_decisions(history, one).iloc[0]
vetting.decision_note(plume, row)
vetting.decision_form(store, month, orbit, row, settings, plume)
past = plume_history(history, one, 0)
if len(past):
    past = past.assign(decided_at=pd.to_datetime(past["decided_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S UTC"))
    st.table(past[["decided_at", "analyst", "decision", "note", "decided_status", "decided_preset", "rules_hash"]]
             .rename(columns={"decided_at": "decided at", "decided_status": "verdict then",
                              "decided_preset": "preset", "rules_hash": "settings hash"}).set_index("decided at"))
