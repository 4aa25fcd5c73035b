"""The offline basemap: a MapLibre v8 style with the Natural Earth country outlines inlined (no tile server).

``workbench/static/`` is served by Streamlit at ``/app/static/`` (``enableStaticServing`` in
``.streamlit/config.toml``); pydeck maps use ``map_style=STYLE_URL`` with ``map_provider="carto"``. The style has
no glyphs, sprites or remote sources, so the browser fetches nothing from the internet.

Regenerate ``static/basemap.json`` after changing the colours or the outlines::

    python -m workbench.basemap
"""
from __future__ import annotations

import json
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
COUNTRIES = STATIC / "ne_110m_countries.geojson"  # Natural Earth 1:110m, public domain
STYLE_FILE = STATIC / "basemap.json"
STYLE_URL = "/app/static/basemap.json"
WATER, LAND, BORDER = "#dce8f1", "#f5f3ee", "#a3a3a3"


def style(countries: dict) -> dict:
    """MapLibre v8 style: sea background, land fill and borders from an inline GeoJSON."""
    return {
        "version": 8,
        "name": "oco2peak offline (Natural Earth 1:110m)",
        "sources": {"countries": {"type": "geojson", "data": countries}},
        "layers": [
            {"id": "sea", "type": "background", "paint": {"background-color": WATER}},
            {"id": "land", "type": "fill", "source": "countries", "paint": {"fill-color": LAND}},
            {"id": "borders", "type": "line", "source": "countries",
             "paint": {"line-color": BORDER, "line-width": 0.6}},
        ],
    }


def write_style() -> Path:
    countries = json.loads(COUNTRIES.read_text(encoding="utf-8"))
    STYLE_FILE.write_text(json.dumps(style(countries), separators=(",", ":")), encoding="utf-8")
    return STYLE_FILE


if __name__ == "__main__":
    print(f"wrote {write_style()}")
