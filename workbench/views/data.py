"""Data page: what the cache holds (months, files, soundings, detections); upload Lite files; detect a month."""
import pandas as pd
import streamlit as st

from core.batch import store_detections, stored_detections
from workbench import state, ui, uploads, view

st.title("Data in the cache")
cache = state.cache()
manifest = state.manifest(str(cache.root), state.all_stamp())
st.caption(f"Cache root: `{cache.root}` (set `OCO2_CACHE` or `--cache` to use another); one Parquet file per day "
           "under `soundings/month=YYYY-MM/`.")

if manifest.empty:
    st.info("The cache holds no soundings yet: upload Lite files below, or run `python -m core ingest PATH` "
            "(or `python -m core demo`).")
else:
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
    unreadable = manifest[manifest["problem"].fillna("").ne("")]
    for problem in unreadable["problem"]:
        st.error(f"{problem}. Its month cannot be detected until the day is ingested again "
                 "(`python -m core ingest` of that day's Lite file replaces it; the old bytes are kept under "
                 "`unreadable/`).", icon=":material/error:")
    with st.expander(f"Ingested files ({len(manifest)})"):
        st.dataframe(manifest.drop(columns=["partition_file"]), hide_index=True, width="stretch")

st.subheader("Detection status")
settings = view.settings()
if state.months():
    cols = st.columns([1, 3])
    month = cols[0].selectbox("Month to detect", state.months(), index=len(state.months()) - 1, key="data:month")
    cols[1].caption(f"Detects every orbit of the month with the current settings (hash `{settings.hash}`), then "
                    "stores the candidates under `detections/` (what `python -m core detect` does).")
    if st.button("Run detection for the month", icon=":material/play_arrow:"):
        candidates = ui.month_candidates(month, settings)
        folder = store_detections(cache, month, settings, candidates)
        n = int((candidates["is_event"] & candidates["status"].eq("accepted")).sum()) if len(candidates) else 0
        st.success(f"{month}: {len(candidates):,} candidates, {n:,} accepted peaks; stored in `{folder}`.")
stored = []  # listed after the button, so that a run just stored shows here
for folder in sorted((cache.root / "detections").glob("month=*/*")):
    month_name = folder.parent.name.removeprefix("month=")
    found = stored_detections(cache, month_name, settings) if folder.name == settings.hash else None
    path = folder / "candidates.parquet"
    if path.exists():
        stored.append({"month": month_name, "rules_hash": folder.name,
                       "current settings": folder.name == settings.hash,
                       "up to date": ("yes" if found.fresh else "no: the month's data changed after it")
                       if found else "",
                       "stored at": pd.Timestamp(path.stat().st_mtime, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")})
if stored:
    st.dataframe(pd.DataFrame(stored), hide_index=True, width="stretch")
else:
    st.caption("No stored detections yet.")

st.subheader("Upload Lite files")
files = st.file_uploader("OCO-2 Lite files (.nc4)", type=["nc4"], accept_multiple_files=True, key="data:upload",
                         help="Each file is validated with the reader first; bad files are reported by name with "
                              "the reason and left out.")
if files and st.button("Validate and ingest", icon=":material/upload:"):
    checked = uploads.save_and_check(((f.name, f.getvalue()) for f in files), cache)
    for c in checked:
        (st.success if c.ok else st.error)(f"{c.name}: {c.detail}")
    good = [c for c in checked if c.ok]
    if good:
        bar = st.progress(0.0, text="ingesting")
        summary = uploads.ingest_checked(checked, cache, on_file=lambda i, n, r: bar.progress(
            i / n, text=f"ingested {i}/{n}: {r.path.name} ({r.status})"))
        st.success(summary.summary_line())
        view.resolve(state.months(), state.orbit_numbers)
