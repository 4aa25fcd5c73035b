"""Data page: what the cache holds (months, files, soundings)."""
import streamlit as st

from workbench import state

st.title("Data in the cache")
cache = state.cache()
stamp = max((p.stat().st_mtime for p in cache.day_files()), default=0.0)
manifest = state.manifest(str(cache.root), stamp)

if manifest.empty:
    st.info(f"The cache `{cache.root}` holds no soundings yet. Ingest files with `python -m core ingest PATH`.")
    st.stop()

per_month = (manifest.groupby("month")
             .agg(files=("file_name", "size"), soundings_read=("n_read", "sum"), good_soundings=("n_kept", "sum"),
                  flagged=("n_flagged", "sum"), fill=("n_fill", "sum"), builds=("build_family", "unique"))
             .reset_index())
per_month["builds"] = per_month["builds"].map(lambda b: ", ".join(sorted(b)))
c1, c2, c3 = st.columns(3)
c1.metric("Months", len(per_month))
c2.metric("Files", len(manifest))
c3.metric("Good soundings", f"{int(manifest['n_kept'].sum()):,}")
st.subheader("Months")
st.dataframe(per_month, hide_index=True, width="stretch")
st.subheader("Ingested files")
st.caption(f"Cache root: `{cache.root}`; one Parquet file per day under `soundings/month=YYYY-MM/`.")
st.dataframe(manifest.drop(columns=["partition_file"]), hide_index=True, width="stretch")
