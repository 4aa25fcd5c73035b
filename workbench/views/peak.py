"""Peak detail: the window's fit and residuals, the emission, the upwind sources, and the analyst's decision."""
import numpy as np
import streamlit as st

import core
from core.vetting import DECISIONS, PeakKey
from workbench import charts, exports, maps, pipeline, state, tables, ui, view

st.title("Peak detail")
month = ui.need_data()
settings = view.settings()
orbit = view.orbit()
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

verdict = (":material/check_circle: accepted" if row["status"] == "accepted"
           else f":material/cancel: rejected by {row['rejected_by']}")
if row["mirror"]:
    verdict = f":material/flip: mirror event, never a plume (rejected by {row['rejected_by']})"
st.markdown(f"**{month} · orbit {orbit} · sounding {int(row['sounding_id'])}** · "
            f"{row['time']:%Y-%m-%d %H:%M:%S} UTC "
            f"· {row['latitude']:.3f}°, {row['longitude']:.3f}° · {verdict}")
st.page_link(ui.PAGE_FILES["orbit"], label="Back to the orbit", icon=":material/arrow_back:")

fitted = row["fixed_reason"] == ""
left, right = st.columns([3, 2])
with left:
    peak_key = (*ui.month_key(month, settings), orbit, int(row["sounding_id"]))

    def peak_charts():
        window = tables.peak_window(ui.orbit_data(month, orbit, settings).soundings, row, settings["fit.window_km"],
                                    candidates)
        return [ui.vega_spec(chart) for chart in charts.peak_charts(window)]

    fit_chart, residual_chart = ui.memo(("peak-charts", *peak_key), peak_charts)
    neighbours = int(np.nan_to_num(row.get("n_neighbours", 0)))
    st.caption("The window's soundings, the fitted Gaussian + line (red) and its background line (dashed)"
               + (f"; the model includes the {neighbours} stronger neighbouring fit(s) it was fitted with"
                  if neighbours else ""))
    st.vega_lite_chart(fit_chart, width="stretch")
    st.caption("Residuals (data - fit)")
    st.vega_lite_chart(residual_chart, width="stretch")
with right:
    st.subheader("Fit")
    if not fitted:
        st.warning(f"Not fitted ({row['fixed_reason']}: {row['fit_message']}); the values are the screen's.")
    if row["mirror"]:
        st.info("A depletion fitted with the data turned upside down (`detection.mirror`): A, slope and intercept "
                "are in that frame; the chart shows the fit the right way up.")
    ui.significance_caption(row)
    params = tables.parameters_table(row)
    params["value"] = params["value"].map(lambda v: f"{v:.4g}")
    params["stderr"] = params["stderr"].map(lambda v: f"{v:.2g}" if np.isfinite(v) else "")
    st.dataframe(params, hide_index=True, width="stretch", height=35 * len(params) + 38)
    st.subheader("Emission")
    c = st.columns([3, 2])
    if np.isfinite(row["emission_MtCO2_yr"]):
        c[0].metric("Estimate [MtCO2/yr]", f"{row['emission_MtCO2_yr']:.1f} ± {row['emission_MtCO2_yr_stderr']:.1f}",
                    help="Cross-sectional flux; 1-sigma from the fit's standard error and the wind uncertainty.")
        c[1].metric("[ktCO2/h]", f"{row['emission_ktCO2_h']:.2f}")
    else:
        st.info(f"No estimate: the wind across the track is below `emission.min_wind_perp_ms` "
                f"({settings['emission.min_wind_perp_ms']} m/s).")
    st.markdown(f"Wind **{np.hypot(row['wind_u_ms'], row['wind_v_ms']):.1f} m/s** (u {row['wind_u_ms']:.1f}, "
                f"v {row['wind_v_ms']:.1f}); track bearing **{row['track_bearing_deg']:.0f}°**; across the track "
                f"**{row['wind_perp_ms']:.1f} m/s**. Surface pressure {row['surface_pressure_hpa']:.0f} hPa, "
                f"water vapour {row['tcwv_kg_m2']:.1f} kg/m².")

st.subheader("Upwind sources")
ranked, length_km = pipeline.ranked_sources(state.root(), float(row["latitude"]), float(row["longitude"]),
                                            float(row["wind_u_ms"]), float(row["wind_v_ms"]), settings)
mc = st.columns([3, 2])
with mc[0]:

    def peak_map():
        ring = tables.upwind_sector(row["latitude"], row["longitude"], row["wind_u_ms"], row["wind_v_ms"], length_km,
                                    settings["attribution.half_angle_deg"], settings["attribution.crosswind_km"])
        od = ui.orbit_data(month, orbit, settings).soundings
        near = od[(od["x_km"] - row["center_km"]).abs() <= settings["fit.window_km"]].iloc[::4]
        layers = [maps.track_layer(near.assign(orbit=orbit, anomaly_ppm=near["xco2"] - row["intercept_ppm"]), 600)]
        if ring:
            layers.append(maps.sector_layer(ring, f"upwind sector: {length_km:.0f} km, "
                                                  f"±{settings['attribution.half_angle_deg']:.0f}°"))
        if len(ranked):
            layers.append(maps.sources_layer(ranked, km_per_sqrt_mt=0.8, ranked=True))
        layers.append(maps.wind_layer(tables.wind_arrows(row.to_frame().T, km_per_ms=4.0)))
        layers.append(maps.marker_layer(row["latitude"], row["longitude"], f"peak {int(row['sounding_id'])}"))
        lats = [row["latitude"]] + [p[1] for p in ring]
        lons = [row["longitude"]] + [p[0] for p in ring]
        return maps.deck(layers, lats, lons, height=420, max_zoom=10)

    st.pydeck_chart(ui.memo(("peak-map", *peak_key), peak_map), height=420)
with mc[1]:
    if ranked.empty:
        st.info("No inventory source in the upwind sector.")
    else:
        show = ranked.head(10)[["name", "sector", "country", "emission_tCO2_yr", "upwind_km", "angle_deg", "score"]]
        st.dataframe(show.assign(emission_MtCO2_yr=show.pop("emission_tCO2_yr") / 1e6), hide_index=True,
                     width="stretch", column_config={c: st.column_config.NumberColumn(format="%.2f") for c in
                                                     ("emission_MtCO2_yr", "upwind_km", "angle_deg", "score")})
        if np.isfinite(row["emission_MtCO2_yr"]):
            st.vega_lite_chart(ui.vega(("peak-sources", *peak_key), lambda: charts.peak_vs_sources_chart(
                row["emission_MtCO2_yr"], row["emission_MtCO2_yr_stderr"], ranked)), width="stretch")
            if np.isfinite(row.get("emission_ratio", np.nan)):  # the ratio the event carries (core.attribution)
                st.caption(f"Estimate / best-ranked source's inventory = {row['emission_ratio']:.2f} "
                           f"± {row['emission_ratio_stderr']:.2f}")

st.subheader("Vet this peak")
store = ui.vetting_store()
key = PeakKey(month, int(orbit), int(row["sounding_id"]), settings.hash)
st.session_state.setdefault("vet:analyst", st.session_state.get("wb_analyst", ""))
with st.form("vet", clear_on_submit=False):
    decision = st.radio("Decision", DECISIONS, horizontal=True, key="vet:decision")
    note = st.text_area("Note (why)", key="vet:note", height=80)
    analyst = st.text_input("Analyst", key="vet:analyst")
    if st.form_submit_button("Record decision", type="primary"):
        if not analyst.strip():
            st.error("Give the analyst's name.")
        else:
            store.record(key, decision, note, analyst, peak=exports.peak_snapshot(row),
                         settings=settings.as_dict(), software_version=core.__version__)
            st.session_state["wb_analyst"] = analyst
            st.success(f"Recorded: {decision} by {analyst}.")
history = store.history(key)
if history.empty:
    st.caption("No decision on this peak yet (with these settings).")
else:
    st.dataframe(history[["decided_at", "analyst", "decision", "note"]], hide_index=True, width="stretch")
