"""Inventory comparison: accepted peaks against their upwind inventory source (DuckDB over the inventory Parquet)."""
import numpy as np
import streamlit as st

from core.inventory import SECTORS
from workbench import charts, queries, state, ui

month, settings = ui.month_header("Inventory comparison")

accepted = ui.month_events(month, settings, ui.month_candidates(month, settings))
if accepted.empty or accepted["source_id"].notna().sum() == 0:
    st.info("No accepted peak with an upwind inventory source this month (with these settings).")
    st.stop()

key = ui.month_key(month, settings)
everything = ui.memo(("inventory", *key), lambda: queries.inventory_join(accepted, None, None, cache=state.root()))
f = st.columns(2)
sectors = f[0].multiselect("Sectors", [s for s in SECTORS if s in set(everything["sector"])], key="inv:sectors",
                           help="Sector of the attributed source.")
countries = f[1].multiselect("Countries", sorted(everything["country"].dropna().unique()), key="inv:countries")
filters = (tuple(sectors), tuple(countries))
joined = ui.memo(("inventory", *key, *filters),
                 lambda: queries.inventory_join(accepted, sectors, countries, cache=state.root()))

ratio = joined["emission_ratio"].astype(float)
c = st.columns(4)
c[0].metric("Accepted peaks", len(accepted))
c[1].metric("Attributed (shown)", len(joined))
c[2].metric("Median estimate / inventory", f"{np.nanmedian(ratio):.2f}" if len(joined) else "-")
c[3].metric("Within a factor 2", f"{np.mean((ratio > 0.5) & (ratio < 2)):.0%}" if len(joined) else "-")

if joined.empty:
    st.info("No attributed peak matches the filters.")
    st.stop()
st.vega_lite_chart(ui.vega(("inventory-chart", *key, *filters), lambda: charts.inventory_chart(joined)),
                  width="stretch")
st.caption("Each point: one accepted peak against the inventory emission of its best-ranked upwind source; bars: "
           "1-sigma of the estimate (fit and wind); dashed: 1:1. A single overpass sees an hour of emission, the "
           "inventory gives a yearly mean: tens of percent apart is expected (docs/METHOD.md section 3).")
st.dataframe(joined[["orbit", "sounding_id", "source_name", "sector", "country", "emission_MtCO2_yr",
                     "emission_MtCO2_yr_stderr", "inventory_MtCO2_yr", "emission_ratio", "source_upwind_km",
                     "dataset"]],
             hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.2f") for c in
                            ("emission_MtCO2_yr", "emission_MtCO2_yr_stderr", "inventory_MtCO2_yr", "emission_ratio",
                             "source_upwind_km")})
