"""Altair charts of the pages (pure: data in, ``alt.Chart`` out; the pages only call ``st.altair_chart``)."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

KIND_DOMAIN = ["accepted", "rejected", "duplicate", "mirror"]
KIND_COLOURS = ["#d62728", "#ff7f0e", "#9e9e9e", "#9467bd"]
KIND_DASHES = [[1, 0], [6, 3], [2, 3], [4, 2, 1, 2]]
KIND_WIDTHS = [2.8, 1.6, 1.0, 1.4]
POINT_COLOUR = "#5b6b7c"
SECTOR_DOMAIN = ["power-coal", "power-gas", "power-oil", "power", "industry", "city"]
SECTOR_COLOURS = ["#4d4d4d", "#1f77b4", "#8c564b", "#9467bd", "#e377c2", "#2ca02c"]

# An orbit has up to ~40k soundings: lift Altair's 5,000-row guard once, for the process (as st.altair_chart does)
alt.data_transformers.disable_max_rows()


def orbit_chart(soundings: pd.DataFrame, curves: pd.DataFrame, selected_km: float | None = None,
                height: int = 380) -> alt.LayerChart:
    """XCO2 against along-track distance, with every candidate's fitted curve (accepted solid red, rejected dashed
    orange, duplicate windows dotted grey, mirror events dash-dotted purple, dipping where the depletion is); hover
    a curve for its verdict and reasons."""
    extent = [float(soundings["x_km"].min()), float(soundings["x_km"].max())] if len(soundings) else [0.0, 1.0]
    x = alt.X("x_km:Q", title="along-track distance [km]", scale=alt.Scale(domain=extent, nice=False))
    points = alt.Chart(soundings[["x_km", "xco2"]]).mark_circle(size=7, opacity=0.35, color=POINT_COLOUR).encode(
        x=x, y=alt.Y("xco2:Q", title="XCO2 [ppm]", scale=alt.Scale(zero=False)))
    kind = alt.Scale(domain=KIND_DOMAIN, range=KIND_COLOURS)
    lines = alt.Chart(curves).mark_line().encode(
        x=alt.X("x_km:Q"), y=alt.Y("xco2_fit:Q"), detail="cand:N",
        color=alt.Color("kind:N", scale=kind, title="fitted candidate", legend=alt.Legend(orient="top")),
        strokeDash=alt.StrokeDash("kind:N", scale=alt.Scale(domain=KIND_DOMAIN, range=KIND_DASHES), legend=None),
        strokeWidth=alt.StrokeWidth("kind:O", sort=KIND_DOMAIN, scale=alt.Scale(domain=KIND_DOMAIN, range=KIND_WIDTHS),
                                    legend=None),
        tooltip=[alt.Tooltip("cand:N", title="candidate"), alt.Tooltip("kind:N", title="verdict"),
                 alt.Tooltip("rejected_by:N", title="rejected by"),
                 alt.Tooltip("delta_ppm:Q", title="peak height [ppm]", format=".2f"),
                 alt.Tooltip("amplitude_ppm_km:Q", title="A [ppm km]", format=".1f"),
                 alt.Tooltip("sigma_km:Q", title="sigma [km]", format=".1f"),
                 alt.Tooltip("snr:Q", title="A/stderr(A)", format=".1f"),
                 alt.Tooltip("significance:Q", title="significance (orbit's noise)", format=".2f")])
    layers = [points, lines]
    if selected_km is not None:
        layers.append(alt.Chart(pd.DataFrame({"x_km": [selected_km], "what": ["chosen peak"]}))
                      .mark_rule(color="#111", strokeDash=[4, 3], strokeWidth=1.5).encode(x="x_km:Q", tooltip="what:N"))
    return alt.layer(*layers).properties(height=height).interactive(bind_y=False)


def funnel_chart(funnel: pd.DataFrame) -> alt.Chart:
    """Candidates removed at each stage (each counted once, at the first stage it fails)."""
    order = funnel["stage"].tolist()
    base = alt.Chart(funnel).encode(y=alt.Y("stage:N", sort=order, title=None,
                                            axis=alt.Axis(labelOverlap=False, labelLimit=220)))
    bars = base.mark_bar(color="#ff7f0e").encode(
        x=alt.X("removed:Q", title="candidates removed"),
        tooltip=[alt.Tooltip("stage:N"), alt.Tooltip("meaning:N"), alt.Tooltip("removed:Q"),
                 alt.Tooltip("remaining:Q", title="left after this stage"),
                 alt.Tooltip("fail_any:Q", title="fail it in any order")])
    text = base.mark_text(align="left", dx=3).encode(x="removed:Q", text="removed:Q")
    return (bars + text).properties(height=max(160, 26 * len(order)))


def daily_mean_chart(daily: pd.DataFrame) -> alt.Chart:
    return alt.Chart(daily).mark_line(point=True).encode(
        x=alt.X("monthdate(day):O", title="day"),
        y=alt.Y("xco2_mean_ppm:Q", title="mean XCO2 [ppm]", scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("day:T"), alt.Tooltip("xco2_mean_ppm:Q", format=".2f"), "soundings:Q"]
    ).properties(height=180)


def peak_charts(window: pd.DataFrame, fitted: bool = True, alternative: pd.DataFrame | None = None,
                alternative_name: str = "") -> tuple[alt.LayerChart, alt.LayerChart]:
    """The window's soundings with the fitted model and its background line; and the residuals.

    ``fitted`` False: the curve is the screen's estimate (dashed, no residuals: nothing was fitted).
    ``alternative`` (``d_km``, ``model_ppm``): a model a rule compared with the Gaussian, drawn in purple."""
    x = alt.X("d_km:Q", title="distance from the centre [km]")
    pts = alt.Chart(window).mark_circle(size=14, opacity=0.5, color=POINT_COLOUR).encode(
        x=x, y=alt.Y("xco2:Q", title="XCO2 [ppm]", scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("d_km:Q", title="distance [km]", format=".1f"),
                 alt.Tooltip("xco2:Q", title="XCO2 [ppm]", format=".2f"), alt.Tooltip("footprint:Q")])
    ordered = window.sort_values("d_km").assign(curve="Gaussian + line (fit)" if fitted else "screen's estimate")
    colours = {ordered["curve"].iat[0] if len(ordered) else "": "#d62728", "background line": "#333333"}
    curves = [ordered[["d_km", "model_ppm", "curve"]],
              ordered[["d_km", "background_ppm"]].rename(columns={"background_ppm": "model_ppm"}).assign(
                  curve="background line")]
    if alternative is not None and len(alternative):
        colours[alternative_name] = "#9467bd"
        curves.append(alternative[["d_km", "model_ppm"]].assign(curve=alternative_name))
    lines = pd.concat(curves, ignore_index=True)
    dashed = [name for name in colours if name in ("background line", "screen's estimate")]
    model = alt.Chart(lines).mark_line(strokeWidth=2.2).encode(
        x=x, y="model_ppm:Q",
        color=alt.Color("curve:N", scale=alt.Scale(domain=list(colours), range=list(colours.values())),
                        legend=alt.Legend(title=None, orient="top")),
        strokeDash=alt.condition(alt.FieldOneOfPredicate("curve", dashed), alt.value([6, 4]), alt.value([1, 0])),
        tooltip=[alt.Tooltip("curve:N"), alt.Tooltip("model_ppm:Q", title="model [ppm]", format=".2f")])
    top = (pts + model).properties(height=300)
    resid = alt.Chart(window).mark_circle(size=10, opacity=0.5, color=POINT_COLOUR).encode(
        x=x, y=alt.Y("residual_ppm:Q", title="residual [ppm]"),
        tooltip=[alt.Tooltip("residual_ppm:Q", title="residual [ppm]", format=".2f")])
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="#d62728").encode(y="y:Q")
    return top, (resid + zero).properties(height=170)


def _positive_error_bars(frame: pd.DataFrame, value: str, stderr: str, floor: float) -> pd.DataFrame:
    out = frame.copy()
    v, e = out[value].astype(float), out[stderr].astype(float).fillna(0.0)
    out["lo"] = np.maximum(v - e, floor)
    out["hi"] = np.maximum(v + e, floor)
    return out


def _log_domain(values, floor: float) -> list[float]:
    """A log axis holding every value with a little room (a factor 1.5 either side), at least 0.1-10."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    lo = min(float(v.min()) / 1.5, 0.1) if v.size else 0.1
    hi = max(float(v.max()) * 1.5, 10.0) if v.size else 10.0
    return [max(lo, floor), hi]


def inventory_chart(compared: pd.DataFrame, floor: float = 1e-2) -> alt.LayerChart:
    """Estimated against inventory emission [MtCO2/yr] (``compared_MtCO2_yr``: what each peak is compared with),
    log-log, with 1-sigma error bars, the 1:1 line and the factor-2 band; a click selects a point (selection
    ``pick`` on ``orbit`` and ``peak``)."""
    data = _positive_error_bars(compared[compared["emission_MtCO2_yr"] > 0], "emission_MtCO2_yr",
                                "emission_MtCO2_yr_stderr", floor)
    data = data[data["compared_MtCO2_yr"] > 0]
    domain = _log_domain(np.concatenate([data[["lo", "hi", "compared_MtCO2_yr"]].to_numpy().ravel(), [0.1, 10]]),
                         floor)
    scale = alt.Scale(type="log", domain=domain, clamp=True)
    decades = alt.Axis(values=[10.0 ** k for k in range(-3, 5)], format="~g", grid=True)
    x = alt.X("compared_MtCO2_yr:Q", title="inventory compared [MtCO2/yr]", scale=scale, axis=decades)
    present = [s for s in SECTOR_DOMAIN if s in set(data["sector"])]
    colour = alt.Color("sector:N", scale=alt.Scale(domain=present, range=[SECTOR_COLOURS[SECTOR_DOMAIN.index(s)]
                                                                          for s in present]),
                       legend=alt.Legend(title="best source's sector", orient="top"))
    pick = alt.selection_point(name="pick", fields=["orbit", "peak"], on="click")
    bars = alt.Chart(data).mark_rule(opacity=0.6).encode(x=x, y=alt.Y("lo:Q", scale=scale), y2="hi:Q", color=colour)
    points = alt.Chart(data).mark_circle(size=70).encode(
        x=x, y=alt.Y("emission_MtCO2_yr:Q", title="estimated emission [MtCO2/yr]", scale=scale, axis=decades),
        color=colour,
        opacity=alt.condition(pick, alt.value(0.9), alt.value(0.35)),
        tooltip=[alt.Tooltip("source_name:N", title="best source"), "sector:N", "country:N", alt.Tooltip("orbit:Q"),
                 alt.Tooltip("emission_MtCO2_yr:Q", title="estimate [Mt/yr]", format=".2f"),
                 alt.Tooltip("emission_MtCO2_yr_stderr:Q", title="1-sigma [Mt/yr]", format=".2f"),
                 alt.Tooltip("compared_MtCO2_yr:Q", title="compared with [Mt/yr]", format=".2f"),
                 alt.Tooltip("n_sources_carried:Q", title="sources carried"),
                 alt.Tooltip("ratio:Q", title="estimate / compared", format=".2f")]).add_params(pick)
    line = pd.DataFrame({"v": domain, "lo": [d / 2 for d in domain], "hi": [d * 2 for d in domain]})
    band = alt.Chart(line).mark_area(color="#888", opacity=0.12).encode(
        x=alt.X("v:Q", scale=scale), y=alt.Y("lo:Q", scale=scale), y2="hi:Q")
    one = alt.Chart(line).mark_line(color="#333", strokeDash=[4, 4]).encode(
        x=alt.X("v:Q", scale=scale), y=alt.Y("v:Q", scale=scale))
    return (band + one + bars + points).properties(height=440)


def source_crossings_chart(crossings: pd.DataFrame) -> alt.LayerChart:
    """Every crossing of one source: the estimate +- 1 sigma by time, the source's inventory (line) with its
    factor-2 band, and the inventory of all the sources each crossing carries (open circles)."""
    data = crossings.assign(lo=(crossings["emission_MtCO2_yr"] - crossings["emission_MtCO2_yr_stderr"]).clip(lower=0),
                            hi=crossings["emission_MtCO2_yr"] + crossings["emission_MtCO2_yr_stderr"])
    inventory = float(data["inventory_MtCO2_yr"].iloc[0]) if len(data) else np.nan
    x = alt.X("time:T", title="crossing (UTC)")
    y_title = "emission [MtCO2/yr]"
    band = alt.Chart(pd.DataFrame({"lo": [inventory / 2], "hi": [inventory * 2]})).mark_rect(
        color="#888", opacity=0.12).encode(y=alt.Y("lo:Q", title=y_title), y2="hi:Q")
    level = alt.Chart(pd.DataFrame({"v": [inventory], "what": ["inventory of this source"]})).mark_rule(
        color="#333", strokeDash=[4, 4]).encode(y="v:Q", tooltip=["what:N", alt.Tooltip("v:Q", format=".2f")])
    bars = alt.Chart(data).mark_rule(color="#d62728").encode(x=x, y=alt.Y("lo:Q", title=y_title), y2="hi:Q")
    tooltip = [alt.Tooltip("time:T", format="%Y-%m-%d %H:%M"), alt.Tooltip("orbit:Q"),
               alt.Tooltip("emission_MtCO2_yr:Q", title="estimate", format=".2f"),
               alt.Tooltip("emission_MtCO2_yr_stderr:Q", title="1-sigma", format=".2f"),
               alt.Tooltip("carried_MtCO2_yr:Q", title="all sources carried", format=".2f")]
    points = alt.Chart(data).mark_circle(color="#d62728", size=80).encode(x=x, y="emission_MtCO2_yr:Q",
                                                                          tooltip=tooltip)
    carried = alt.Chart(data).mark_point(color="#555", size=60, shape="circle").encode(
        x=x, y="carried_MtCO2_yr:Q", tooltip=tooltip)
    return (band + level + bars + carried + points).properties(height=260)


def sector_plan_chart(track: pd.DataFrame, ring: pd.DataFrame, sources: pd.DataFrame, wind: pd.DataFrame,
                      width_px: int = 470, height_px: int = 400) -> alt.LayerChart:
    """The peak's surroundings in km east and north of it (equal scales): the track's soundings coloured by their
    anomaly, the upwind search sector, the sources sized by emission and coloured by sector, the wind's arrow and
    the peak. A chart, not a WebGL map: cheap for the browser on every peak of the queue. The frames are
    :func:`workbench.tables.sector_plan_frames`'s: ``track`` (``east_km``, ``north_km``, ``anomaly_ppm``), ``ring``
    (``east_km``, ``north_km`` in order), ``sources`` (``east_km``, ``north_km``, ``name``, ``sector``, ``country``,
    ``emission_MtCO2_yr``, ``upwind_km``, ``rank``) and ``wind`` (segments ``x``, ``y``, ``x2``, ``y2``, ``label``)."""
    xs = np.concatenate([track["east_km"], ring["east_km"], sources["east_km"], wind[["x", "x2"]].to_numpy().ravel(),
                         [0.0]])
    ys = np.concatenate([track["north_km"], ring["north_km"], sources["north_km"],
                         wind[["y", "y2"]].to_numpy().ravel(), [0.0]])
    # equal km per pixel on both axes: widen the narrower extent around its centre
    x0, x1, y0, y1 = np.nanmin(xs) - 5, np.nanmax(xs) + 5, np.nanmin(ys) - 5, np.nanmax(ys) + 5
    km_per_px = max((x1 - x0) / width_px, (y1 - y0) / height_px)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x_scale = alt.Scale(domain=[cx - km_per_px * width_px / 2, cx + km_per_px * width_px / 2], nice=False)
    y_scale = alt.Scale(domain=[cy - km_per_px * height_px / 2, cy + km_per_px * height_px / 2], nice=False)
    x = alt.X("east_km:Q", title="km east of the peak", scale=x_scale)
    y = alt.Y("north_km:Q", title="km north of the peak", scale=y_scale)
    points = alt.Chart(track).mark_circle(size=12, opacity=0.8).encode(
        x=x, y=y, color=alt.Color("anomaly_ppm:Q", title="XCO2 anomaly [ppm]",
                                  scale=alt.Scale(scheme="redblue", reverse=True, domain=[-2, 2], clamp=True),
                                  legend=alt.Legend(orient="bottom", gradientLength=160)),
        tooltip=[alt.Tooltip("anomaly_ppm:Q", title="anomaly [ppm]", format="+.2f")])
    sector = alt.Chart(ring.assign(order=np.arange(len(ring)))).mark_line(color="#1f77b4", strokeWidth=1.6).encode(
        x=x, y=y, order="order:Q")
    src = alt.Chart(sources).mark_circle(opacity=0.75, stroke="#333333", strokeWidth=0.5).encode(
        x=x, y=y, size=alt.Size("emission_MtCO2_yr:Q", title="MtCO2/yr", scale=alt.Scale(range=[30, 900]),
                                legend=None),
        color=alt.Color("sector:N", title="sector", scale=alt.Scale(domain=SECTOR_DOMAIN, range=SECTOR_COLOURS),
                        legend=None),
        tooltip=[alt.Tooltip("rank:Q", title="#"), "name:N", "sector:N", "country:N",
                 alt.Tooltip("emission_MtCO2_yr:Q", title="inventory [MtCO2/yr]", format=".2f"),
                 alt.Tooltip("upwind_km:Q", title="upwind [km]", format=".0f")])
    arrows = alt.Chart(wind).mark_rule(color="#1f3b73", strokeWidth=2).encode(
        x=alt.X("x:Q", scale=x_scale), y=alt.Y("y:Q", scale=y_scale), x2="x2:Q", y2="y2:Q", tooltip=["label:N"])
    peak = alt.Chart(pd.DataFrame({"east_km": [0.0], "north_km": [0.0], "what": ["the peak"]})).mark_point(
        shape="circle", size=160, filled=True, fill="#ffd700", stroke="#d62728", strokeWidth=2).encode(
        x=x, y=y, tooltip=["what:N"])
    return (points + sector + src + arrows + peak).properties(width=width_px, height=height_px)


def peak_vs_sources_chart(estimate: float, stderr: float, carried: pd.DataFrame, n: int = 5) -> alt.LayerChart:
    """The peak's estimate (1-sigma bar, factor-2 band) beside the summed inventory of the sources the crossing
    carries and the heaviest of them (:func:`core.attribution.carried_sources`)."""
    rows = [{"what": "this peak (estimate)", "MtCO2_yr": estimate, "lo": estimate - stderr, "hi": estimate + stderr,
             "kind": "estimate"},
            {"what": "sources carried (sum)", "MtCO2_yr": carried["carried_tCO2_yr"].sum() / 1e6, "lo": np.nan,
             "hi": np.nan, "kind": "sum"}]
    for r in carried.head(n).itertuples(index=False):
        value = (r.emission_tCO2_yr or np.nan) / 1e6
        rows.append({"what": f"{r.name} (seen {r.weight:.0%})", "MtCO2_yr": value, "lo": np.nan, "hi": np.nan,
                     "kind": r.sector})
    data = pd.DataFrame(rows)
    data = data[data["MtCO2_yr"] > 0]
    data["lo"] = data["lo"].clip(lower=1e-3)
    order = data["what"].tolist()
    y = alt.Y("what:N", sort=order, title=None, axis=alt.Axis(labelLimit=260))
    log = alt.Scale(type="log")
    x = alt.X("MtCO2_yr:Q", title="emission [MtCO2/yr]", scale=log,
              axis=alt.Axis(values=[10.0 ** k for k in range(-3, 5)], format="~g"))
    band = alt.Chart(pd.DataFrame({"lo": [estimate / 2], "hi": [estimate * 2]})).mark_rect(
        color="#d62728", opacity=0.08).encode(x=alt.X("lo:Q", scale=log), x2="hi:Q")
    colour = alt.Color("kind:N", title=None, legend=None,
                       scale=alt.Scale(domain=["estimate", "sum", *SECTOR_DOMAIN],
                                       range=["#d62728", "#111111", *SECTOR_COLOURS]))
    points = alt.Chart(data).mark_point(filled=True, size=90).encode(
        x=x, y=y, color=colour, tooltip=["what:N", alt.Tooltip("MtCO2_yr:Q", title="MtCO2/yr", format=".2f")])
    bars = alt.Chart(data.dropna(subset=["hi"])).mark_rule(strokeWidth=2).encode(
        x=alt.X("lo:Q", scale=log), x2="hi:Q", y=y, color=colour)
    return (band + bars + points).properties(height=34 * len(data),
                                             title=alt.Title("shaded: within a factor 2 of the estimate",
                                                             fontSize=11, fontWeight="normal", anchor="start"))


def tradeoff_chart(sweep: pd.DataFrame, key: str, current: float) -> alt.HConcatChart:
    """Recall against false events per 1000 km for each swept value (90 % intervals as bars); and, each on its own
    axis, recall, false events and median emission error against the value (intervals as bands)."""
    data = sweep.assign(current=np.isclose(sweep["value"].astype(float), float(current)))
    tooltip = [alt.Tooltip("value:Q", title=key), alt.Tooltip("recall:Q", format=".2f"),
               alt.Tooltip("false_per_1000_km:Q", title="false / 1000 km (all track)", format=".2f"),
               alt.Tooltip("precision:Q", format=".2f"),
               alt.Tooltip("median_emission_error:Q", title="median |emission error|", format=".0%")]
    x_false = alt.X("false_per_1000_km:Q", title="false events per 1000 km (all track)")
    y_recall = alt.Y("recall:Q", title="recall (detectable plumes)", scale=alt.Scale(domain=[0, 1]))
    base = alt.Chart(data).encode(x=x_false, y=y_recall)
    curve = base.mark_line(color="#1f77b4", point=True).encode(order="value:Q", tooltip=tooltip)
    parts = [curve]
    if {"recall_lo", "recall_hi", "false_per_1000_km_lo", "false_per_1000_km_hi"} <= set(data.columns):
        parts += [base.mark_rule(color="#1f77b4", opacity=0.35).encode(y="recall_lo:Q", y2="recall_hi:Q"),
                  base.mark_rule(color="#1f77b4", opacity=0.35).encode(x="false_per_1000_km_lo:Q",
                                                                       x2="false_per_1000_km_hi:Q")]
    labels = base.mark_text(dx=6, dy=-6, align="left", fontSize=10).encode(text=alt.Text("value:Q", format=".3g"))
    now = base.transform_filter("datum.current").mark_point(color="#d62728", size=220, shape="diamond", filled=True)
    left = alt.layer(*parts, labels, now).properties(height=380, width=340, title="trade-off (bars: 90 %)")
    rule = alt.Chart(pd.DataFrame({"value": [float(current)]})).mark_rule(color="#d62728", strokeDash=[4, 3]) \
        .encode(x="value:Q")
    panels = []
    for metric, title, fmt in (("recall", "recall", ".2f"), ("false_per_1000_km", "false / 1000 km", ".2f"),
                               ("median_emission_error", "median |emission error|", ".0%")):
        x = alt.X("value:Q", title=key)
        y = alt.Y(f"{metric}:Q", title=title, axis=alt.Axis(format=fmt))
        line = alt.Chart(data).mark_line(point=True, color="#1f77b4").encode(
            x=x, y=y, tooltip=[alt.Tooltip("value:Q", title=key), alt.Tooltip(f"{metric}:Q", format=fmt)])
        layers = [line, rule]
        if f"{metric}_lo" in data:
            layers.insert(0, alt.Chart(data).mark_area(color="#1f77b4", opacity=0.15).encode(
                x=x, y=alt.Y(f"{metric}_lo:Q", title=title), y2=f"{metric}_hi:Q"))
        panels.append(alt.layer(*layers).properties(height=105, width=340))
    return alt.hconcat(left, alt.vconcat(*panels, title="against the threshold (bands: 90 %)"))


