"""Orbit explorer: XCO2 along one orbit with every candidate's fit and verdict; rules in the sidebar re-judge live."""
import streamlit as st

from workbench import charts, controls, maps, pipeline, state, tables, ui, view

ui.follow_to_peak()  # a peak clicked on this page's map or chart: open it before drawing the page again

st.title("Orbit explorer")
month = ui.need_data()
settings = view.settings()
orbits = state.orbits(month)
top = st.columns([1, 2, 3])
ui.month_picker(top[0])
orbit = ui.orbit_picker(orbits, top[1])
with top[2]:
    ui.settings_caption(settings)

with st.expander(f"All {len(orbits)} orbits of {month} (click a row to open one)"):
    table = ui.orbits_with_peaks(month, orbits, settings)
    st.dataframe(table, hide_index=True, width="stretch", height=260, key="orbit:table", on_select=ui.pick_orbit_row,
                 selection_mode="single-row")

candidates = ui.orbit_candidates(month, orbit, settings)
od = ui.orbit_data(month, orbit, settings)
kinds = tables.event_rows(candidates)["kind"].value_counts() if len(candidates) else {}
cols = st.columns(5)
cols[0].metric("Soundings", f"{len(od.soundings):,}")
cols[1].metric("Candidates", len(candidates), help="Every screened or fitted window.")
cols[2].metric("Accepted", int(kinds.get("accepted", 0)), help="Plume events every enabled rule accepts.")
cols[3].metric("Rejected events", int(kinds.get("rejected", 0)))
cols[4].metric("Not fitted", int(kinds.get("not fitted", 0)), help="Screen too weak or fit failed.")
ui.orbit_noise_row(month, orbit, settings, candidates)
toggles = st.columns(2)
show_mirrors = toggles[0].toggle("Mirror events", value=False, key="orbit:mirrors",
                                help="Depletions fitted with the data turned upside down (`detection.mirror`): they "
                                     "sample the noise and set the month's threshold, and are never plumes. Shown "
                                     "dash-dotted purple, listed last.")
show_unfitted = toggles[1].toggle("Not-fitted candidates", value=False, key="orbit:unfitted",
                                  help="Screen maxima too weak to fit (or duplicates of a stronger fit): listed with "
                                       "their screen statistic when on.")
rows = tables.event_rows(candidates, mirrors=show_mirrors)
if not show_unfitted:
    rows = rows[rows["kind"] != "not fitted"].reset_index(drop=True)

peak = ui.find_peak(candidates, view.peak())
orbit_key = (*ui.month_key(month, settings), orbit)


def orbit_chart():
    x = od.soundings["x_km"]
    curves = tables.fit_curves(candidates, mirrors=show_mirrors).query("@x.min() <= x_km <= @x.max()")
    return charts.orbit_chart(od.soundings, curves, None if peak is None else float(peak["center_km"]))


st.vega_lite_chart(ui.vega(("orbit-chart", *orbit_key, None if peak is None else int(peak["sounding_id"]),
                            show_mirrors), orbit_chart), width="stretch")
st.caption("Grey dots: good soundings. Curves: each fitted candidate over +-4 sigma; red solid accepted, orange "
           "dashed rejected (hover for the rules it failed), grey dotted other windows of the same plume"
           + (", purple dash-dotted mirror events (depletions)" if show_mirrors else "") +
           ". Drag to pan, scroll to zoom." + ui.surface_note(od.soundings))

left, right = st.columns([3, 2])
with left:
    st.subheader("Candidates")
    if rows.empty:
        st.info("No plume event on this orbit" + ("." if show_unfitted else
                                                  " (turn on *Not-fitted candidates* to see the screen's maxima)."))
    else:
        rows = rows.assign(emission_note=tables.emission_notes(rows, settings["emission.min_wind_perp_ms"]))
        shown = ["kind"] + [c for c in tables.CANDIDATE_COLUMNS if c in rows and c != "status"]
        picked = st.dataframe(rows[shown], hide_index=True, height=300, width="stretch", key="orbit:candidates",
                              on_select="rerun", selection_mode="single-row", column_config=ui.CANDIDATE_CONFIG)
        if picked.selection.rows:  # choosing a peak in the table opens its detail
            view.set_peak(int(rows.iloc[picked.selection.rows[0]]["sounding_id"]))
            st.switch_page(ui.PAGE_FILES["peak"])
        labels = {int(r.sounding_id): ui.peak_label(r) for r in rows.itertuples(index=False)}
        if view.peak() not in labels:
            view.set_peak(next(iter(labels)))
            ui.view_changed()
        # keyed on the settings: the labels carry the verdict, and a widget whose options keep their values but
        # change their labels would go on showing the old label of the selected value
        pick_key = f"pick:peak:{settings.hash}"
        controls.seed(pick_key, view.peak())
        st.selectbox("Peak", list(labels), key=pick_key, format_func=labels.get,
                     on_change=lambda: view.set_peak(st.session_state[pick_key]),
                     help="Nearest sounding id · position · verdict · peak height.")
        if st.button("Open peak detail", icon=":material/search:", type="primary"):
            st.switch_page(ui.PAGE_FILES["peak"])
with right:
    st.subheader("Orbit on the map")

    def orbit_map():
        track = od.soundings.iloc[::8]
        track = track.assign(anomaly_ppm=track["xco2"] - track["xco2"].median())
        layers = [maps.track_layer(track.assign(orbit=orbit), radius_m=1500)]
        ev = pipeline.events(candidates, accepted_only=False)
        if len(ev):
            layers.append(maps.peaks_layer(ev[ev["status"] != "accepted"], accepted=False))
            layers.append(maps.peaks_layer(ev[ev["status"] == "accepted"]))
        return maps.deck(layers, track["latitude"], track["longitude"], height=360)

    ui.peak_map(ui.memo(("orbit-map", *orbit_key), orbit_map), "orbit:map", 360)
    st.caption("Click a peak to open it.")
    st.html(maps.legend_html(rejected=True))
