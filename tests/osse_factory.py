"""Stand-ins for the OSSE tests (``test_simulate.py``, ``test_worlds.py``): a tiny source table and clear sky."""
from __future__ import annotations

import pandas as pd

from core.simulate import OsseSettings

#: A tiny stand-in for the inventory: two big plants far apart, a small one next to the first, a city
#: (emissions [tCO2/yr], coordinates [deg]).
SOURCES = pd.DataFrame({
    "source_id": ["t:1", "t:2", "t:3", "t:4"],
    "name": ["Big plant A", "Big plant B", "Small works", "A city"],
    "sector": ["power-coal", "power-coal", "industry", "city"],
    "country": ["Poland", "South Africa", "Poland", "Poland"],
    "latitude": [51.2679, -26.088, 51.10, 52.23],
    "longitude": [19.3265, 28.9689, 19.80, 21.01],
    "emission_tCO2_yr": [2.4e7, 2.5e7, 2e5, 3e7],
    "year": [2019] * 4,
    "dataset": ["stand-in"] * 4,
})
#: Every target crossing in clear sky.
CLEAR = OsseSettings(clear_sky_at_plume=1.0)
