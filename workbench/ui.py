"""UI pieces shared by the pages: pickers bound to the view, month detection with a progress bar, the vetting
store, the share box. Pages stay short: read the view, call these and :mod:`core`, draw."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.detect import detection_view
from core.settings import DetectionSettings
from core.vetting import VettingStore

from . import controls, maps, pipeline, state, tables, view

VIEWS = Path(__file__).resolve().parent / "views"
#: Page files by name (``st.switch_page`` / ``st.page_link`` targets).
PAGE_FILES = {name: VIEWS / f"{name}.py" for name in
              ("overview", "orbit", "peak", "inventory", "vetted", "data", "validation")}


#: How the candidate tables show their columns (units in the headers, sensible decimals).
_NUMBER = st.column_config.NumberColumn
CANDIDATE_CONFIG = {
    "cand": _NUMBER("#", format="%d", help="Row of the orbit's candidate table."),
    "rejected_by": st.column_config.TextColumn("rejected by", width="medium"),
    "center_km": _NUMBER("centre [km]", format="%.1f", help="Along the track (the detection coordinate)."),
    "delta_ppm": _NUMBER("peak [ppm]", format="%.2f", help="Height of the fitted Gaussian."),
    "significance": _NUMBER(
        "significance", format="%.2f", help="A/stderr(A) in units of the orbit's own noise; accepted from the "
                                            "month's threshold up."),
    "emission_MtCO2_yr": _NUMBER("emission [Mt/yr]", format="%.1f"),
    "emission_MtCO2_yr_stderr": _NUMBER("± 1 sigma", format="%.1f"),
    "emission_note": st.column_config.TextColumn("no emission because", width="medium"),
    "source_name": st.column_config.TextColumn("best upwind source", width="medium"),
    "sigma_km": _NUMBER("sigma [km]", format="%.2f"),
    "amplitude_ppm_km": _NUMBER("A [ppm km]", format="%.1f"),
    "amplitude_stderr": _NUMBER("± A", format="%.1f"),
    "q_value": _NUMBER(
        "q-value", format="%.3f", help="Estimated share of false events among the month's events at least this "
                                       "significant (from its mirror events)."),
    "burst_like": st.column_config.CheckboxColumn(
        "burst-like", help="Narrow, and its footprints show no crossing: one pass cannot tell it from a burst of bad "
                           "frames (rules.frame_aligned.reject_burst_like rejects these)."),
    "snr": _NUMBER("A/stderr(A)", format="%.1f", help="Against the stated noise."),
    "r2": _NUMBER("r²", format="%.2f"),
    "n_window": _NUMBER("soundings", format="%d", help="Soundings in the fit's window."),
    "n_windows": _NUMBER("windows", format="%d", help="Windows merged into this event."),
    "n_neighbours": _NUMBER("neighbours", format="%d", help="Stronger neighbouring fits modelled in its window."),
    "sounding_id": _NUMBER("peak (sounding id)", format="%d"),
    "latitude": _NUMBER("lat [°]", format="%.3f"),
    "longitude": _NUMBER("lon [°]", format="%.3f")}


def need_data() -> str:
    """The month to show; stops the page with a pointer to the Data page when the cache holds none."""
    month = view.month()
    if month is None:
        st.info("The cache holds no soundings yet: ingest Lite files on the Data page (or run "
                "`python -m core demo` for the demo month).")
        st.page_link(str(PAGE_FILES["data"]), label="Go to the Data page", icon=":material/folder_open:")
        st.stop()
    return month


def month_picker(container=st) -> str:
    months = state.months()
    controls.seed("pick:month", view.month())
    container.selectbox("Month", months, key="pick:month", on_change=lambda: view.set_month(
        st.session_state["pick:month"]), help="Months the cache holds (YYYY-MM).")
    return view.month()


def orbit_picker(orbits: pd.DataFrame, container=st) -> int:
    labels = {int(r.orbit): f"{int(r.orbit)} · {r.day} · {int(r.soundings):,} soundings"
              for r in orbits.itertuples(index=False)}
    controls.seed("pick:orbit", view.orbit())
    container.selectbox("Orbit", list(labels), key="pick:orbit", format_func=labels.get,
                        on_change=lambda: view.set_orbit(st.session_state["pick:orbit"]),
                        help="Orbit number, day and good soundings.")
    return view.orbit()


def orbits_with_peaks(month: str, orbits: pd.DataFrame, settings: DetectionSettings) -> pd.DataFrame:
    """The month's orbits table, with candidates and accepted peaks per orbit once the month was detected."""
    table = orbits[["orbit", "day", "start", "soundings", "lat_min", "lat_max", "xco2_mean_ppm"]].copy()
    month_table = month_candidates(month, settings, compute=False)
    if month_table is not None and len(month_table):
        accepted = month_table["is_event"].astype(bool) & month_table["status"].eq("accepted")
        counts = month_table.assign(accepted=accepted).groupby("orbit").agg(candidates=("status", "size"),
                                                                            accepted=("accepted", "sum"))
        table = table.join(counts, on="orbit").fillna({"candidates": 0, "accepted": 0})
    return table


def pick_orbit_row() -> None:
    """``on_select`` of the orbits table: open the orbit of the clicked row."""
    rows = st.session_state["orbit:table"].selection.rows
    if rows:
        view.set_orbit(int(state.orbits(view.month()).iloc[rows[0]]["orbit"]))


class _Progress:
    """An ``on_orbit(i, n, orbit)`` callback that shows a progress bar once called (so nothing when all is cached)."""

    def __init__(self, text: str, done: str):
        self.text, self.done, self.bar = text, done, None

    def __call__(self, i: int, n: int, orbit: int) -> None:
        if self.bar is None:
            self.bar = st.progress(0.0, text=self.text)
        self.bar.progress(i / n, text=f"{self.done} orbit {orbit} ({i}/{n})")

    def clear(self) -> None:
        if self.bar is not None:
            self.bar.empty()


def month_candidates(month: str, settings: DetectionSettings, compute: bool = True) -> pd.DataFrame | None:
    """Every candidate of the month for these settings, computing missing orbits with a progress bar."""
    progress = _Progress("detecting the month's orbits", "detected")
    out = pipeline.month_candidates(state.root(), month, state.stamp(month), settings,
                                    state.orbit_numbers(month), on_orbit=progress, compute=compute)
    progress.clear()
    return out


def orbit_candidates(month: str, orbit: int, settings: DetectionSettings) -> pd.DataFrame:
    """The orbit's candidates judged at the month's threshold (fitting the month's orbits first, with a progress
    bar, when neither the month table nor its calibration is at hand: see :func:`pipeline.month_calibration`)."""
    progress = _Progress("fitting the month's orbits for its threshold", "fitted")
    out = pipeline.orbit_candidates(state.root(), month, orbit, state.stamp(month), settings,
                                    state.orbit_numbers(month), on_orbit=progress)
    progress.clear()
    return out


def orbit_noise(month: str, orbit: int, settings: DetectionSettings):
    """The orbit's own noise (:class:`core.detect.OrbitNoise`)."""
    return pipeline.noise(state.root(), month, orbit, state.stamp(month), settings)


def orbit_data(month: str, orbit: int, settings: DetectionSettings):
    """The orbit's soundings in the coordinate the settings detect in (``x_km``: along the track, or wind-aligned
    when ``fit.wind_aligned``), so fitted centres and curves sit on the right soundings."""
    return detection_view(pipeline.orbit_data(state.root(), month, orbit, state.stamp(month)), settings)


def peak_label(row) -> str:
    return (f"{row.sounding_id} · {row.center_km:.0f} km · {row.kind}"
            + (f" · {row.delta_ppm:.2f} ppm" if pd.notna(row.delta_ppm) else ""))


def find_peak(candidates: pd.DataFrame, sounding_id: int | None) -> pd.Series | None:
    """The candidate row of a peak id (its nearest sounding), an event preferred over a duplicate window."""
    if sounding_id is None or candidates.empty:
        return None
    rows = tables.label_candidates(candidates)
    rows = rows[rows["sounding_id"] == sounding_id]
    if rows.empty:
        return None
    return rows.sort_values("kind", key=lambda k: k.eq("duplicate")).iloc[0]


@st.cache_resource(show_spinner=False)
def _store(root: str) -> VettingStore:
    return VettingStore(root)


def vetting_store() -> VettingStore:
    return _store(state.root())


def share_box(slot=None) -> None:
    """The share link, drawn into ``slot`` (an ``st.empty`` in the sidebar; remembered for :func:`view_changed`)."""
    if slot is not None:
        st.session_state["wb_share_slot"] = slot
    slot = st.session_state.get("wb_share_slot")
    if slot is None:
        return
    with slot.container():
        st.caption(":material/link: **Share this view** (page, month, orbit, peak and settings)")
        st.code(view.share_link(), language=None, wrap_lines=True)


def view_changed() -> None:
    """Call after a page changed the view mid-run: the URL and the share link follow."""
    view.sync_url()
    share_box()


def month_header(title: str) -> tuple[str, DetectionSettings]:
    """A month page's title, month picker and settings caption; returns the month and the settings."""
    st.title(title)
    month = need_data()
    settings = view.settings()
    top = st.columns([1, 3])
    month_picker(top[0])
    with top[1]:
        settings_caption(settings)
    return month, settings


def settings_caption(settings: DetectionSettings) -> None:
    changed = settings.changed()
    text = ", ".join(f"`{k}` = {v}" for k, v in sorted(changed.items())) or "none"
    st.caption(f"Settings: preset `{settings.preset}`, hash `{settings.hash}`; changed: {text}")


# ------------------------------------------------------------------------------------------------ figures, built once

@st.cache_data(show_spinner=False, max_entries=256)  # demo month: its map 0.8 MB, an orbit's chart 0.1-0.2 MB
def memo(key: tuple, _build):
    """``_build()``, computed once per ``key`` in this server process (then shared by every session).

    ``key`` must name everything the result depends on (cache root, month, data stamp, settings hash, orbit, peak,
    options): the pages build their figures through this, so a page drawn before is only sent again.
    """
    return _build()


def vega(key: tuple, build) -> dict:
    """An Altair chart as a Vega-Lite spec (for ``st.vega_lite_chart``), built and validated once per ``key``."""
    return memo(("vega",) + key, lambda: vega_spec(build()))


def vega_spec(chart) -> dict:
    """A chart's Vega-Lite spec with its datasets as Arrow IPC bytes, the form Streamlit sends them in (so a cached
    spec is not converted again on every run)."""
    import pyarrow as pa

    spec = chart.to_dict()
    for name, rows in spec.get("datasets", {}).items():
        table = pa.Table.from_pylist(rows)
        sink = pa.BufferOutputStream()
        with pa.RecordBatchStreamWriter(sink, table.schema) as writer:
            writer.write_table(table)
        spec["datasets"][name] = sink.getvalue().to_pybytes()
    return spec


def threshold_note(month: str, settings: DetectionSettings, candidates: pd.DataFrame) -> None:
    """The month's significance threshold and the false events expected at it (a warning when it fell back)."""
    threshold = memo(("threshold", *month_key(month, settings)),
                     lambda: pipeline.month_threshold(candidates, settings))
    level, text = tables.threshold_note(threshold, settings)
    (st.warning if level == "warning" else st.info)(text, icon=":material/warning:" if level == "warning" else ":material/target:")


def _number(value: float, spec: str) -> str:
    return format(value, spec) if pd.notna(value) else "n/a"


def orbit_noise_row(month: str, orbit: int, settings: DetectionSettings, candidates: pd.DataFrame) -> None:
    """The orbit's own noise and its mirror events above the month's threshold, as metrics, and the threshold the
    orbit was judged at."""
    f = tables.orbit_noise_figures(orbit_noise(month, orbit, settings), candidates)
    cols = st.columns(5)
    cols[0].metric("Noise scale", _number(f["noise_scale"], ".2f"),
                   help="White scatter of the orbit's soundings over their stated `xco2_uncertainty` (same-footprint "
                        "differences): 1 is the noise as stated.")
    cols[1].metric("Correlated noise", f"{_number(f['correlated_ppm'], '.2f')} ppm",
                   help="Standard deviation of the noise correlated along the track.")
    cols[2].metric("Correlation length", f"{_number(f['correlation_km'], '.0f')} km",
                   help="E-folding length of the correlated noise along the track.")
    calibration = ("off" if not settings["noise.calibrate"] else
                   "prior (fallback)" if f["fallback"] else "own data")
    cols[3].metric("Noise calibration", calibration,
                   help="Significances are divided by the orbit's own spread (`noise.calibrate`); an orbit with too "
                        "few independent values leans on the conservative prior `noise.prior_spread` (fallback).")
    cols[4].metric("Mirror events / 1,000 km", _number(f["mirror_per_1000km"], ".2f"),
                   help=f"Mirror events (depletions fitted upside down) passing every rule at the month's threshold: "
                        f"{f['mirror_above']} on this orbit's {f['track_km']:,.0f} km, the false events to expect on "
                        "it.")
    if len(candidates) and "significance_threshold" in candidates:
        first = candidates.iloc[0]
        st.caption(f"Judged at the month's threshold: significance >= {first['significance_threshold']:.2f} "
                   f"({first['threshold_method']}; the month expects {_number(first['month_false_per_1000km'], '.2f')}"
                   " false events per 1,000 km). Significance: A/stderr(A) in units of the orbit's own noise.")


def surface_note(soundings: pd.DataFrame, centre_km: float | None = None, window_km: float | None = None) -> str:
    """What the detection view took off the water soundings (``noise.surface_offsets``), for a chart's caption: the
    whole orbit, or the window of ``window_km`` around ``centre_km`` (``x_km``)."""
    offset = soundings["surface_offset_ppm"].to_numpy(float) if "surface_offset_ppm" in soundings else np.zeros(0)
    if offset.size and centre_km is not None:
        offset = offset[np.abs(soundings["x_km"].to_numpy(float) - centre_km) <= window_km / 2]
    moved = np.unique(np.round(offset[offset != 0], 3))
    if moved.size == 0:
        return ""
    return (f" XCO2 over water is shown less its stretch's offset against the land beside it ({moved.size} "
            f"offset(s), {moved.min():+.2f} to {moved.max():+.2f} ppm; noise.surface_offsets): what was fitted.")


def significance_caption(row: pd.Series) -> None:
    """A peak's significance against the month's threshold, its q-value and expected false rate."""
    if pd.isna(row.get("significance", float("nan"))):
        return
    text = f"Significance {row['significance']:.2f} (A/stderr(A) over the orbit's own noise"
    share = float(row.get("covariate_share", float("nan")))
    text += (f", x {share:.2f} left with the land/water and pressure terms modelled)" if share < 1 else ")")
    if pd.notna(row.get("significance_threshold", float("nan"))):
        text += f"; the month's threshold {row['significance_threshold']:.2f} ({row['threshold_method']})"
    if pd.notna(row.get("q_value", float("nan"))):
        text += (f"; q-value {row['q_value']:.3f}, {row['false_alarm_per_1000km']:.2f} false events per 1,000 km "
                 "expected at least this significant")
    st.caption(text + ".")


def month_key(month: str, settings: DetectionSettings) -> tuple:
    """What a month figure depends on: the cache, the month's data and the settings."""
    return state.root(), month, state.stamp(month), settings.hash


def month_events(month: str, settings: DetectionSettings, candidates: pd.DataFrame,
                 accepted_only: bool = True) -> pd.DataFrame:
    """:func:`pipeline.events` of the month's candidates, filtered once per month and settings."""
    return memo(("events", *month_key(month, settings), accepted_only),
                lambda: pipeline.events(candidates, accepted_only))


def month_map(month: str, settings: DetectionSettings, show_rejected: bool, show_sources: bool, show_wind: bool,
              min_source_MtCO2_yr: float) -> maps.DeckSpec:
    """The month overview's map (tracks, sources, peaks, wind), serialised once per month, settings and options."""
    def build() -> maps.DeckSpec:
        candidates = pipeline.month_candidates(state.root(), month, state.stamp(month), settings,
                                               state.orbit_numbers(month))
        accepted = pipeline.events(candidates)
        points = state.track_points(month)
        layers = [maps.track_layer(points)]
        if show_sources:
            sources = state.sources_near_tracks(state.root(), month, state.stamp(month), min_source_MtCO2_yr * 1e6)
            layers.append(maps.sources_layer(sources, px_per_sqrt_mt=1.3))
        if show_rejected:
            events = pipeline.events(candidates, accepted_only=False)
            if len(events):
                layers.append(maps.peaks_layer(events[events["status"] != "accepted"], accepted=False))
        if len(accepted):
            layers.append(maps.peaks_layer(accepted))
            if show_wind:
                layers.append(maps.wind_layer(tables.wind_arrows(accepted, km_per_ms=10.0)))
        return maps.deck(layers, points["latitude"], points["longitude"], max_zoom=6)

    return memo(("month-map", *month_key(month, settings), show_rejected, show_sources, show_wind,
                 float(min_source_MtCO2_yr)), build)


# ------------------------------------------------------------------------------------------------ vetting queue

def vetting_queue(month: str, settings: DetectionSettings, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """The month's accepted peaks in flight order with the decision on each one's plume (any settings);
    ``history``: the month's decisions when already read."""
    candidates = month_candidates(month, settings)
    accepted = month_events(month, settings, candidates)
    return tables.vetting_queue(accepted, vetting_store().history(month=month) if history is None else history)


def open_peak(orbit: int, sounding_id: int) -> None:
    """Show this peak (a callback: the view changes before the page runs)."""
    view.set_orbit(int(orbit))
    view.set_peak(int(sounding_id))


def open_queued(queue: pd.DataFrame, sounding_id: int | None) -> None:
    """Show a peak of the queue (:func:`vetting_queue`) by its sounding id; None does nothing."""
    if sounding_id is not None:
        open_peak(int(queue.loc[queue["sounding_id"] == sounding_id, "orbit"].iloc[0]), sounding_id)


def queue_bar(month: str, settings: DetectionSettings, sounding_id: int,
              history: pd.DataFrame | None = None) -> pd.DataFrame:
    """Where this peak sits among the month's accepted peaks, how many are vetted, and previous / next / next
    unvetted (keyboard: Alt+P, Alt+N, Alt+U). Returns the queue."""
    queue = vetting_queue(month, settings, history)
    n, vetted = len(queue), int(queue["vetted"].sum()) if len(queue) else 0
    where = np.flatnonzero(queue["sounding_id"].to_numpy() == sounding_id) if n else np.zeros(0, int)
    cols = st.columns([2.6, 1.2, 1.1, 1.5], vertical_alignment="center")
    place = f"peak {where[0] + 1} of {n} accepted" if where.size else f"not among the month's {n} accepted peaks"
    cols[0].progress(vetted / n if n else 0.0,
                     text=f"**{vetted} of {n} accepted peaks vetted** in {month} (any settings) · {place}")
    for col, label, icon, step, unvetted, shortcut in (
            (cols[1], "Previous", ":material/arrow_back:", -1, False, "Alt+P"),
            (cols[2], "Next", ":material/arrow_forward:", 1, False, "Alt+N"),
            (cols[3], "Next unvetted", ":material/skip_next:", 1, True, "Alt+U")):
        target = tables.queue_step(queue, sounding_id, step, unvetted)
        col.button(label, icon=icon, key=f"queue:{label}", disabled=target is None or target == sounding_id,
                   on_click=open_queued, args=(queue, target), shortcut=shortcut, width="stretch",
                   help=f"{label} accepted peak of the month in flight order ({shortcut})")
    return queue


# ------------------------------------------------------------------------------------------------ point -> peak

_GOTO = "wb_goto_peak"


def _open_picked(key: str) -> None:
    """``on_select`` of a map: a click on a peak opens it on Peak detail (see :func:`follow_to_peak`)."""
    picked = maps.picked_peak(st.session_state[key].get("selection"))
    if picked is not None:
        open_peak(*picked)
        st.session_state[_GOTO] = True


def _open_selected_point(key: str, selection: str) -> None:
    """``on_select`` of an Altair chart with a point selection named ``selection`` on ``orbit`` and ``peak``."""
    points = (st.session_state[key].get("selection") or {}).get(selection) or []
    for point in points:
        try:
            open_peak(int(point["orbit"]), int(point["peak"]))
        except (KeyError, TypeError, ValueError):
            continue
        st.session_state[_GOTO] = True
        return


def peak_map(spec, key: str, height: int) -> None:
    """A map whose peaks open on click (their layers: :data:`maps.PEAK_LAYERS`)."""
    st.pydeck_chart(spec, height=height, key=key, on_select=lambda: _open_picked(key),
                    selection_mode="single-object")


def peak_chart(spec: dict, key: str, selection: str = "pick") -> None:
    """A Vega-Lite chart whose points open their peak on click (a point selection ``selection``)."""
    st.vega_lite_chart(spec, width="stretch", key=key, on_select=lambda: _open_selected_point(key, selection),
                       selection_mode=selection)


def follow_to_peak() -> None:
    """Go to Peak detail when a map or chart point was clicked (its callback ran before this run): call at the top
    of a page with clickable points, so the clicked page is not drawn again first."""
    if st.session_state.pop(_GOTO, False):
        st.switch_page(PAGE_FILES["peak"])
