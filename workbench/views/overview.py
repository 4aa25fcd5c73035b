"""Month overview: the month's tracks, peaks and sources on a map, headline figures, the rules' funnel."""
import numpy as np
import streamlit as st

from workbench import charts, maps, state, tables, ui

ui.follow_to_peak()  # a peak clicked on this page's map or chart: open it before drawing the page again

month, settings = ui.month_header("Month overview")

orbits = state.orbits(month)
candidates = ui.month_candidates(month, settings)
accepted = ui.month_events(month, settings, candidates)
events = ui.month_events(month, settings, candidates, accepted_only=False)
n_soundings = int(orbits["soundings"].sum())
mean_xco2 = float((orbits["xco2_mean_ppm"] * orbits["soundings"]).sum() / max(n_soundings, 1))

cols = st.columns(7)
cols[0].metric("Soundings", f"{n_soundings:,}")
cols[1].metric("Orbits", len(orbits))
cols[2].metric("Candidates", f"{len(candidates):,}", help="Screen extrema and fitted windows, before the rules.")
cols[3].metric("Plume events", f"{len(events):,}", help="Candidates merged into one event per plume (mirror events, "
               "depletions fitted upside down to sample the noise, are not counted).")
cols[4].metric("Accepted", f"{len(accepted):,}", help="Events every enabled rule accepts.")
cols[5].metric("Attributed", f"{int(accepted['source_id'].notna().sum()) if len(accepted) else 0:,}",
               help="Accepted events with an inventory source in their upwind sector.")
cols[6].metric("Mean XCO2 [ppm]", f"{mean_xco2:.1f}", help="Mean of the month's good soundings.")
ui.threshold_note(month, settings, candidates)

opts = st.columns(4)
show_rejected = opts[0].toggle("Rejected events", value=False, help="Light grey dots: events a rule rejected.")
show_sources = opts[1].toggle("Inventory sources", value=True, help="Coloured by sector, sized by emission.")
show_wind = opts[2].toggle("Wind arrows", value=True, help="Wind at each accepted peak (10 km per m/s).")
min_source = opts[3].select_slider("Sources from [MtCO2/yr]", [0.1, 0.5, 1, 2, 5, 10], value=1,
                                   disabled=not show_sources)

ui.peak_map(ui.month_map(month, settings, show_rejected, show_sources, show_wind, min_source), "overview:map", 520)
sectors = []
if show_sources:
    sources = state.sources_near_tracks(state.root(), month, state.stamp(month), min_source * 1e6)
    sectors = [s for s in charts.SECTOR_DOMAIN if s in set(sources["sector"])]
st.html(maps.legend_html(sectors, rejected=show_rejected, wind=show_wind and len(accepted) > 0))
st.caption("Click a peak to open it. Tracks: XCO2 anomaly to the orbit median, averaged over a few seconds of flight. "
           "Drag to pan; zoom with the buttons or a double click (the wheel scrolls the page). Basemap: Natural "
           "Earth 1:110m (offline).")

left, right = st.columns([3, 2])
with left:
    st.subheader("What each rule removed")
    if len(candidates):
        st.vega_lite_chart(ui.vega(("funnel", *ui.month_key(month, settings)),
                                   lambda: charts.funnel_chart(tables.funnel(candidates, settings))), width="stretch")
        st.caption(f"{len(candidates):,} candidates in, {len(accepted):,} accepted peaks out; each candidate is "
                   "counted at the first stage it fails (hover a bar for those failing it in any order).")
    else:
        st.info("No candidates this month.")
with right:
    st.subheader("Daily mean XCO2")
    st.vega_lite_chart(ui.vega(("daily-mean", state.root(), month, state.stamp(month)),
                               lambda: charts.daily_mean_chart(state.daily_mean(month))), width="stretch")
    if len(accepted):
        st.caption(f"Median accepted peak: {np.nanmedian(accepted['delta_ppm']):.2f} ppm, "
                   f"{np.nanmedian(accepted['emission_MtCO2_yr']):.1f} MtCO2/yr.")

