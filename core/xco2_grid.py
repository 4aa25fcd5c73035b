"""A month's soundings on a regular latitude/longitude grid: mean XCO2 anomaly and sounding counts, as xarray.

:func:`monthly_anomaly_grid` bins good soundings into cells of ``resolution_deg`` degrees and returns an
:class:`xarray.Dataset` (dimensions ``latitude``, ``longitude``; cell-centre coordinates) with, per cell:

- ``xco2_anomaly``: mean of each sounding's XCO2 minus the median XCO2 of its orbit [ppm] (the anomaly the
  workbench colours tracks with: an orbit's own level removed, so months and latitudes compare; what remains
  is plumes, regional enhancements and retrieval artefacts along the track);
- ``xco2``: mean XCO2 [ppm];
- ``n_soundings``: good soundings in the cell (0: no data, the means NaN there).

The Dataset carries CF attributes, so ``ds.to_netcdf("2019-08.nc")`` gives a file GIS and NetCDF tools (QGIS,
Panoply, ncview) open as a map. :func:`month_grid` does it for a month of the cache.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .cache import SoundingsCache

#: The soundings columns the grid reads.
COLUMNS = ["orbit", "latitude", "longitude", "xco2"]


def _cells(resolution_deg: float, span_deg: float) -> int:
    n = span_deg / resolution_deg
    if resolution_deg <= 0 or not np.isclose(n, round(n)):
        raise ValueError(f"resolution_deg must divide 180 and 360 exactly (got {resolution_deg!r})")
    return int(round(n))


def monthly_anomaly_grid(soundings: pd.DataFrame, resolution_deg: float = 1.0, month: str | None = None
                         ) -> xr.Dataset:
    """Mean XCO2 anomaly to the orbit median, mean XCO2 and counts of ``soundings`` per grid cell.

    Parameters
    ----------
    soundings : pandas.DataFrame
        Good soundings with ``orbit``, ``latitude``, ``longitude``, ``xco2`` (e.g.
        ``SoundingsCache.read_month``); rows with a non-finite value are left out.
    resolution_deg : float
        Cell size [degrees]; must divide 180 and 360 (e.g. 0.5, 1, 2, 2.5, 5).
    month : str, optional
        ``YYYY-MM``, written in the attributes.

    Returns
    -------
    xarray.Dataset
        Global grid, latitude from south to north and longitude from -180 to 180 (cell centres). A sounding on
        the north pole or at longitude 180 falls in the last cell.
    """
    n_lat, n_lon = _cells(resolution_deg, 180.0), _cells(resolution_deg, 360.0)
    frame = soundings[COLUMNS]
    frame = frame[np.isfinite(frame[["latitude", "longitude", "xco2"]].to_numpy(np.float64)).all(axis=1)]
    xco2 = frame["xco2"].to_numpy(np.float64)
    anomaly = xco2 - frame.groupby("orbit")["xco2"].transform("median").to_numpy(np.float64)
    row = np.clip(np.floor((frame["latitude"].to_numpy(np.float64) + 90.0) / resolution_deg), 0, n_lat - 1)
    col = np.clip(np.floor((frame["longitude"].to_numpy(np.float64) + 180.0) / resolution_deg), 0, n_lon - 1)
    cell = row.astype(np.int64) * n_lon + col.astype(np.int64)
    count = np.bincount(cell, minlength=n_lat * n_lon)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_anomaly = np.bincount(cell, weights=anomaly, minlength=n_lat * n_lon) / count
        mean_xco2 = np.bincount(cell, weights=xco2, minlength=n_lat * n_lon) / count
    shape = (n_lat, n_lon)
    latitude = -90.0 + resolution_deg * (np.arange(n_lat) + 0.5)
    longitude = -180.0 + resolution_deg * (np.arange(n_lon) + 0.5)
    return xr.Dataset(
        {"xco2_anomaly": (("latitude", "longitude"), mean_anomaly.reshape(shape),
                          {"long_name": "mean XCO2 anomaly to the median XCO2 of each sounding's orbit",
                           "units": "ppm"}),
         "xco2": (("latitude", "longitude"), mean_xco2.reshape(shape),
                  {"long_name": "mean bias-corrected column-average CO2 dry-air mole fraction", "units": "ppm"}),
         "n_soundings": (("latitude", "longitude"), count.reshape(shape).astype(np.int32),
                         {"long_name": "good soundings in the cell", "units": "1"})},
        coords={"latitude": ("latitude", latitude, {"standard_name": "latitude", "units": "degrees_north"}),
                "longitude": ("longitude", longitude, {"standard_name": "longitude", "units": "degrees_east"})},
        attrs={"Conventions": "CF-1.8", "title": "OCO-2 XCO2 anomaly to the orbit median, monthly grid",
               "month": month or "", "resolution_deg": float(resolution_deg),
               "n_soundings": int(count.sum()), "n_orbits": int(frame["orbit"].nunique()),
               "source": "OCO-2 L2 Lite FP good soundings (xco2_quality_flag 0), oco2peak workbench cache"},
    )


def month_grid(month: str, cache=None, resolution_deg: float = 1.0) -> xr.Dataset:
    """:func:`monthly_anomaly_grid` of a month of the cache (``YYYY-MM``; cache root as in
    :func:`core.paths.cache_root`)."""
    return monthly_anomaly_grid(SoundingsCache(cache).read_month(month, columns=COLUMNS), resolution_deg, month)
