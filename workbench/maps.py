"""pydeck maps on the offline basemap (:mod:`workbench.basemap`): layers built from plain tables.

Every layer carries a ``label`` column, shown as the tooltip, so layers of different kinds share one tooltip.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pydeck as pdk

from .basemap import STYLE_URL
from .charts import SECTOR_COLOURS, SECTOR_DOMAIN

ACCEPTED_RGB = [214, 39, 40]
REJECTED_RGB = [120, 120, 120]
PEAK_RGB = [20, 20, 20]
WIND_RGB = [30, 90, 160]
SECTOR_RGB = {name: [int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)] for name, c in
              zip(SECTOR_DOMAIN, SECTOR_COLOURS)}


TOOLTIP = {"text": "{label}"}


class DeckSpec:
    """A map already serialised to compact JSON, for ``st.pydeck_chart`` (which reads ``to_json()`` and the tooltip).

    pydeck pretty-prints its JSON (indent 2, sorted keys): for a month's tracks that is twice the bytes and most of
    the page's server time. A ``DeckSpec`` is serialised once, without whitespace, and can be cached as it is.
    """

    layers = ()  # nothing left for Streamlit to convert
    mapbox_key = None

    def __init__(self, spec_json: str, tooltip: dict | None = None):
        self._json = spec_json
        self._tooltip = dict(tooltip or TOOLTIP)

    def to_json(self) -> str:
        return self._json


def compact(deck_obj: pdk.Deck) -> DeckSpec:
    """Serialise a pydeck ``Deck`` once, compactly (same content as ``Deck.to_json``)."""
    from pydeck.bindings.json_tools import default_serialize

    return DeckSpec(json.dumps(deck_obj, default=default_serialize, separators=(",", ":")), TOOLTIP)


#: Zoom below which a wide page shows the world more than once (deck.gl: 512 px per 360 deg at zoom 0; the map is
#: ~1,100 px wide at 1440 px): a month's map starts at this zoom at least, so the world is drawn once.
MIN_ZOOM = 1.15
#: The map's controls: drag to pan, buttons / pinch to zoom; the scroll wheel scrolls the page. No double-click zoom:
#: while deck.gl listens for double clicks, every click waits for a possible second one (~0.3 s) before a point
#: clicked opens its peak.
CONTROLLER = {"scrollZoom": False, "dragPan": True, "dragRotate": False, "doubleClickZoom": False,
              "touchZoom": True, "keyboard": True}


def deck(layers: list, points_lat, points_lon, height: int = 520, max_zoom: float = 9.0) -> DeckSpec:
    """A map of ``layers`` on the offline basemap, framed on the given points (compact JSON, see :class:`DeckSpec`).

    Layers are drawn on one world (no copies), the scroll wheel is left to the page (:data:`CONTROLLER`)."""
    return compact(pdk.Deck(layers=layers, initial_view_state=view_for(points_lat, points_lon, max_zoom),
                            views=[pdk.View(type="MapView", controller=CONTROLLER, repeat=False)],
                            map_provider="carto", map_style=STYLE_URL, tooltip=TOOLTIP, height=height))


def view_for(lat, lon, max_zoom: float = 9.0, min_zoom: float = MIN_ZOOM) -> pdk.ViewState:
    """A view framing the points (Web Mercator zoom from their extent)."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    ok = np.isfinite(lat) & np.isfinite(lon)
    if not ok.any():
        return pdk.ViewState(latitude=20.0, longitude=0.0, zoom=min_zoom)
    lat, lon = lat[ok], lon[ok]
    shifted = np.where(lon < 0, lon + 360, lon)
    if np.ptp(lon) > 180 and np.ptp(shifted) < 180:  # a cluster across the antimeridian
        lon = shifted
    span = max(np.ptp(lat) * 1.3, np.ptp(lon) * 0.6, 0.05)
    zoom = float(np.clip(np.log2(180.0 / span), min_zoom, max(max_zoom, min_zoom)))
    centre_lon = (float(np.mean([lon.min(), lon.max()])) + 180) % 360 - 180
    return pdk.ViewState(latitude=float(np.mean([lat.min(), lat.max()])), longitude=centre_lon, zoom=zoom)


def pixel_of(view: dict, lon: float, lat: float, width: float, height: float) -> tuple[float, float]:
    """Where a map of ``width`` x ``height`` px showing ``view`` (an ``initialViewState``: longitude, latitude,
    zoom) draws the point (lon, lat): Web Mercator at 512 px per world at zoom 0, as deck.gl. For clicking a point in
    a browser (the tests and ``bench/bench_workbench.py``)."""
    size = 512 * 2 ** float(view["zoom"])

    def xy(lo, la):
        return ((lo + 180) / 360 * size,
                (0.5 - np.log(np.tan(np.pi / 4 + np.radians(la) / 2)) / (2 * np.pi)) * size)

    (x, y), (x0, y0) = xy(lon, lat), xy(view["longitude"], view["latitude"])
    return float(width / 2 + x - x0), float(height / 2 + y - y0)


def _floats(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Columns as float64: pydeck writes numpy float32 values as JSON strings, which deck.gl misplaces."""
    return frame.astype({c: "float64" for c in columns})


def anomaly_rgb(anomaly_ppm, limit_ppm: float = 2.0) -> list[list[int]]:
    """Diverging colours: blue below the orbit median, white at it, red above (saturating at +-limit)."""
    a = np.clip(np.nan_to_num(np.asarray(anomaly_ppm, float)) / limit_ppm, -1, 1)
    r = np.where(a > 0, 255, 255 * (1 + a))
    g = 255 * (1 - np.abs(a)) * 0.85 + 30
    b = np.where(a < 0, 255, 255 * (1 - a))
    return np.stack([r, g, b], axis=1).astype(int).tolist()


def track_layer(points: pd.DataFrame, radius_m: float = 2500) -> pdk.Layer:
    """Soundings (or thinned track points) coloured by XCO2 anomaly; positions rounded to ~100 m to keep the
    JSON small (pydeck pretty-prints it)."""
    data = _floats(points, ["longitude", "latitude"]).round({"longitude": 3, "latitude": 3}).assign(
        color=anomaly_rgb(points["anomaly_ppm"]),
        label=[f"orbit {o} · {x:.2f} ppm ({a:+.2f})" for o, x, a in
               zip(points["orbit"], points["xco2"], points["anomaly_ppm"])])
    return pdk.Layer("ScatterplotLayer", data[["longitude", "latitude", "color", "label"]], id="tracks",
                     get_position=["longitude", "latitude"], get_fill_color="color", get_radius=radius_m,
                     radius_min_pixels=1.5, radius_max_pixels=6, pickable=True, opacity=0.8)


#: Layers whose points are peaks (a click on one opens it: ``orbit`` and ``peak`` in each point).
PEAK_LAYERS = ("accepted", "rejected")


def peaks_layer(events: pd.DataFrame, accepted: bool = True, layer_id: str | None = None) -> pdk.Layer:
    """Events as circles sized by emission (area ~ MtCO2/yr); accepted red and outlined, rejected light grey and
    small. Each point carries ``orbit`` and ``peak`` (its sounding id, as text: JSON numbers lose digits)."""
    emission = events["emission_MtCO2_yr"].astype(float).abs().fillna(0.0).to_numpy() if len(events) else []
    radius = (4000 + 6000 * np.sqrt(np.asarray(emission, float))) if accepted else np.full(len(events), 3000.0)
    labels = [_peak_label(r) for r in events.itertuples(index=False)]
    data = pd.DataFrame({"longitude": events["longitude"].to_numpy(float),
                         "latitude": events["latitude"].to_numpy(float),
                         "radius": radius, "label": labels,
                         "orbit": events["orbit"].astype("int64").to_numpy() if len(events) else [],
                         "peak": events["sounding_id"].astype("int64").astype(str).to_numpy() if len(events) else []})
    return pdk.Layer("ScatterplotLayer", data, id=layer_id or ("accepted" if accepted else "rejected"),
                     get_position=["longitude", "latitude"], get_radius="radius",
                     radius_min_pixels=4 if accepted else 2.5,
                     get_fill_color=ACCEPTED_RGB + [210] if accepted else REJECTED_RGB + [70],
                     get_line_color=[0, 0, 0], stroked=accepted, line_width_min_pixels=1, pickable=True)


def picked_peak(selection) -> tuple[int, int] | None:
    """``(orbit, sounding id)`` of the peak clicked on a map (a ``st.pydeck_chart`` selection), or None."""
    objects = (selection or {}).get("objects", {}) if isinstance(selection, dict) else {}
    for layer in PEAK_LAYERS:
        for point in objects.get(layer, []) or []:
            try:
                return int(point["orbit"]), int(point["peak"])
            except (KeyError, TypeError, ValueError):
                continue
    return None


def _peak_label(r) -> str:
    emission = getattr(r, "emission_MtCO2_yr", np.nan)
    source = getattr(r, "source_name", None)
    text = (f"orbit {r.orbit} · {r.status} · peak {r.delta_ppm:.2f} ppm · "
            f"{emission:.2f} MtCO2/yr" if np.isfinite(emission) else f"orbit {r.orbit} · {r.status}")
    if r.status != "accepted" and r.rejected_by:
        text += f" · rejected by {r.rejected_by}"
    if isinstance(source, str) and source:
        text += f" · upwind: {source}"
    return text


def sources_layer(sources: pd.DataFrame, layer_id: str = "sources", km_per_sqrt_mt: float = 4.0,
                  ranked: bool = False, px_per_sqrt_mt: float | None = None) -> pdk.Layer:
    """Inventory sources coloured by sector, sized by emission: radius ``km_per_sqrt_mt`` km x (0.5 +
    sqrt(MtCO2/yr)), or, with ``px_per_sqrt_mt``, that many pixels (the same size at every zoom: a month's map)."""
    emission = sources["emission_tCO2_yr"].astype(float).fillna(0).to_numpy() / 1e6
    prefixes = [f"#{i} " for i in range(1, len(sources) + 1)] if ranked else [""] * len(sources)
    scale = 1000 * km_per_sqrt_mt if px_per_sqrt_mt is None else px_per_sqrt_mt
    data = pd.DataFrame({
        "longitude": sources["longitude"].to_numpy(float), "latitude": sources["latitude"].to_numpy(float),
        "radius": scale * (0.5 + np.sqrt(emission)),
        "color": [SECTOR_RGB.get(s, [100, 100, 100]) + [170] for s in sources["sector"]],
        "label": [f"{prefix}{n} ({s}, {c}) · {e:.2f} MtCO2/yr" for prefix, n, s, c, e in
                  zip(prefixes, sources["name"], sources["sector"], sources["country"], emission)]})
    return pdk.Layer("ScatterplotLayer", data, id=layer_id, get_position=["longitude", "latitude"],
                     get_radius="radius", **({} if px_per_sqrt_mt is None else _PIXEL_UNITS),
                     radius_min_pixels=2, get_fill_color="color", stroked=True,
                     get_line_color=[255, 255, 255], line_width_min_pixels=0.5, pickable=True)


#: Radii in pixels. pydeck reads a string property as a JavaScript expression ("pixels" would be an undefined
#: variable, and deck.gl then drew each source as a disc over the whole map): the string literal is quoted.
_PIXEL_UNITS = {"radius_units": '"pixels"'}


def wind_layer(segments: pd.DataFrame, layer_id: str = "wind") -> pdk.Layer:
    data = segments.assign(label=[f"wind {s:.1f} m/s" for s in segments["speed_ms"]])
    return pdk.Layer("LineLayer", data, id=layer_id, get_source_position="source", get_target_position="target",
                     get_color=WIND_RGB, get_width=2, width_min_pixels=1.5, pickable=True)


def legend_html(sectors=(), rejected: bool = False, wind: bool = False, limit_ppm: float = 2.0) -> str:
    """A legend for the maps (deck.gl draws none): the tracks' colour bar, the peaks' symbols, the sources' sectors
    present on the map, the wind arrows."""
    stops = ", ".join(f"rgb({r},{g},{b}) {100 * i / 8:.0f}%" for i, (r, g, b) in
                      enumerate(anomaly_rgb(np.linspace(-limit_ppm, limit_ppm, 9), limit_ppm)))
    dot = ('<span style="display:inline-block;width:{s}px;height:{s}px;border-radius:50%;background:{c};'
           'border:{b};vertical-align:middle;margin:0 4px 0 10px"></span>')
    rgb = lambda c, a=1.0: f"rgba({c[0]},{c[1]},{c[2]},{a})"  # noqa: E731
    parts = [f'<span style="vertical-align:middle">XCO2 anomaly: -{limit_ppm:g}</span>'
             f'<span style="display:inline-block;width:140px;height:10px;margin:0 4px;vertical-align:middle;'
             f'background:linear-gradient(to right, {stops});border:1px solid #ccc"></span>'
             f'<span style="vertical-align:middle">+{limit_ppm:g} ppm</span>',
             dot.format(s=12, c=rgb(ACCEPTED_RGB, 0.85), b="1px solid #000") + "accepted peak (area ~ emission)"]
    if rejected:
        parts.append(dot.format(s=8, c=rgb(REJECTED_RGB, 0.35), b="none") + "rejected event")
    for sector in sectors:
        parts.append(dot.format(s=10, c=rgb(SECTOR_RGB.get(sector, [100, 100, 100]), 0.7), b="1px solid #fff")
                     + f"{sector} source")
    if wind:
        parts.append(f'<span style="display:inline-block;width:18px;height:2px;background:{rgb(WIND_RGB)};'
                     'vertical-align:middle;margin:0 4px 0 10px"></span>wind')
    return ('<div style="font-size:0.8rem;color:#444;line-height:1.9">' + "".join(parts) + "</div>")
