"""Inventory comparison: accepted peaks against the inventory sources they carry (DuckDB over the inventory
Parquet), the month's scatter with its factor-2 band, and a per-source view of every crossing of one source."""
import numpy as np
import streamlit as st

from core.inventory import SECTORS
from workbench import charts, controls, queries, state, tables, ui, view

ui.follow_to_peak()  # a peak clicked on this page's map or chart: open it before drawing the page again

month, settings = ui.month_header("Inventory comparison")

accepted = ui.month_events(month, settings, ui.month_candidates(month, settings))
if accepted.empty or accepted["source_id"].notna().sum() == 0:
    st.info("No accepted peak with an upwind inventory source this month (with these settings).")
    st.stop()

key = ui.month_key(month, settings)
everything = ui.memo(("inventory", *key), lambda: queries.inventory_join(accepted, None, None, cache=state.root()))
sector_options = [s for s in SECTORS if s in set(everything["sector"])]
country_options = sorted(everything["country"].dropna().unique())
# the filters live in the view, so the share link carries them (?sectors=power-coal,city&countries=...)
controls.seed("inv:sectors", [s for s in view.page_choice("sectors").split(",") if s in sector_options])
controls.seed("inv:countries", [c for c in view.page_choice("countries").split(",") if c in country_options])
controls.seed("inv:against", "best-ranked source" if view.page_choice("compare") == "best" else "sources carried")


def _keep_choices():
    view.set_page_choice("sectors", ",".join(st.session_state["inv:sectors"]))
    view.set_page_choice("countries", ",".join(st.session_state["inv:countries"]))
    view.set_page_choice("compare", "best" if st.session_state["inv:against"] == "best-ranked source" else "")


f = st.columns([2, 2, 2])
sectors = f[0].multiselect("Sectors", sector_options, key="inv:sectors", on_change=_keep_choices,
                           help="Sector of the best-ranked upwind source.")
countries = f[1].multiselect("Countries", country_options, key="inv:countries", on_change=_keep_choices)
against = f[2].segmented_control(
    "Compare with", ["sources carried", "best-ranked source"], key="inv:against", on_change=_keep_choices,
    help="Sources carried: the summed inventory of the upwind sources, each weighted by how much of its plume the "
         "crossing sees (a plume over a cluster carries several). Best-ranked: the single source the ranking puts "
         "first.") or "sources carried"
filters = (tuple(sectors), tuple(countries))
joined = ui.memo(("inventory", *key, *filters),
                 lambda: queries.inventory_join(accepted, sectors, countries, cache=state.root()))
summed = against == "sources carried"
compared = tables.inventory_comparison(joined, summed)

ratio = compared["ratio"].astype(float)
c = st.columns(4)
c[0].metric("Accepted peaks", len(accepted))
c[1].metric("Attributed (shown)", len(joined))
c[2].metric(f"Median estimate / {'carried' if summed else 'best source'}",
            f"{np.nanmedian(ratio):.2f}" if ratio.notna().any() else "-")
c[3].metric("Within a factor 2", f"{np.mean((ratio > 0.5) & (ratio < 2)):.0%}" if ratio.notna().any() else "-",
            help="Share of the shown peaks whose estimate lies between half and twice the inventory compared.")

if joined.empty:
    st.info("No attributed peak matches the filters.")
    st.stop()
ui.peak_chart(ui.vega(("inventory-chart", *key, *filters, summed), lambda: charts.inventory_chart(compared)),
              "inv:chart")
st.caption("Each point: one accepted peak (click it to open the peak) against the inventory "
           + ("of the sources its crossing carries, summed" if summed else "of its best-ranked upwind source")
           + "; bars: 1-sigma of the estimate (fit and wind); dashed: 1:1; shaded: within a factor 2. A single "
             "overpass sees an hour of emission, the inventory a yearly mean: tens of percent apart is expected "
             "(docs/METHOD.md, attribution).")

number = st.column_config.NumberColumn
st.dataframe(compared[["orbit", "sounding_id", "time", "source_name", "sector", "country", "emission_MtCO2_yr",
                       "emission_MtCO2_yr_stderr", "inventory_MtCO2_yr", "carried_MtCO2_yr", "n_sources_carried",
                       "ratio", "source_upwind_km", "dataset"]],
             hide_index=True, width="stretch", column_config={
                 "sounding_id": st.column_config.NumberColumn("peak", format="%d"),
                 "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm"),
                 "source_name": "best-ranked source",
                 "emission_MtCO2_yr": number("estimate [Mt/yr]", format="%.2f"),
                 "emission_MtCO2_yr_stderr": number("± 1 sigma", format="%.2f"),
                 "inventory_MtCO2_yr": number("best source [Mt/yr]", format="%.2f"),
                 "carried_MtCO2_yr": number("carried [Mt/yr]", format="%.2f"),
                 "n_sources_carried": number("sources carried", format="%d"),
                 "ratio": number("estimate / compared", format="%.2f"),
                 "source_upwind_km": number("upwind [km]", format="%.0f")})

st.subheader("One source over the month")
crossings = everything.groupby(["source_id", "source_name"]).size().sort_values(ascending=False)
labels = {sid: f"{name} · crossed {n} time{'s' if n > 1 else ''}" for (sid, name), n in crossings.items()}
source = st.selectbox("Source", list(labels), format_func=labels.get, key="inv:source",
                      help="Sources that are the best-ranked upwind source of at least one accepted peak, most "
                           "often crossed first.")
one = everything[everything["source_id"] == source]
st.vega_lite_chart(ui.vega(("inventory-source", *key, source), lambda: charts.source_crossings_chart(one)),
                   width="stretch")
st.caption("Each crossing's estimate with its 1-sigma against the source's inventory (line, shaded: a factor 2) and "
           "the sources that crossing carries in all (open circles).")
