"""The monthly XCO2 anomaly grid (core.xco2_grid): hand-computed cells, a real ingested month (Parquet of the small
simulated cache), and the CF NetCDF file it writes, read back."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from conftest import SMALL_MONTH
from core.cache import SoundingsCache
from core.xco2_grid import month_grid, monthly_anomaly_grid


def test_hand_computed_cells():
    # orbit 1: median 402 -> anomalies -2, 0, +2; orbit 2: median 410 -> -1, +1 (and a NaN row left out)
    soundings = pd.DataFrame({
        "orbit": [1, 1, 1, 2, 2, 2],
        "latitude": [10.2, 10.7, -0.5, 10.9, 90.0, 5.0],
        "longitude": [20.1, 20.9, 179.5, 20.5, 180.0, 5.0],
        "xco2": [400.0, 402.0, 404.0, 409.0, 411.0, np.nan],
    })
    ds = monthly_anomaly_grid(soundings, resolution_deg=1.0, month="2019-08")
    assert ds.sizes == {"latitude": 180, "longitude": 360}
    cell = ds.sel(latitude=10.5, longitude=20.5)  # 400 (-2), 402 (0), 409 (-1)
    assert int(cell["n_soundings"]) == 3
    assert float(cell["xco2_anomaly"]) == pytest.approx(-1.0)
    assert float(cell["xco2"]) == pytest.approx((400 + 402 + 409) / 3)
    assert float(ds["xco2_anomaly"].sel(latitude=-0.5, longitude=179.5)) == pytest.approx(2.0)
    # the north pole and longitude 180 fall in the last cell
    assert int(ds["n_soundings"].sel(latitude=89.5, longitude=179.5)) == 1
    assert int(ds["n_soundings"].sum()) == 5 and ds.attrs["n_soundings"] == 5 and ds.attrs["month"] == "2019-08"
    assert np.isnan(float(ds["xco2_anomaly"].sel(latitude=0.5, longitude=0.5)))  # no data
    with pytest.raises(ValueError, match="divide 180 and 360"):
        monthly_anomaly_grid(soundings, resolution_deg=0.7)


def test_a_month_of_the_cache_on_the_grid_and_as_netcdf(small_cache, tmp_path):
    soundings = SoundingsCache(small_cache).read_month(SMALL_MONTH)
    ds = month_grid(SMALL_MONTH, cache=small_cache, resolution_deg=2.0)
    assert ds.sizes == {"latitude": 90, "longitude": 180}
    assert int(ds["n_soundings"].sum()) == len(soundings) == ds.attrs["n_soundings"]
    assert ds.attrs["n_orbits"] == soundings["orbit"].nunique() > 1

    # every non-empty cell against pandas: anomaly to the orbit median, grouped by 2-degree cell
    frame = soundings.assign(xco2=soundings["xco2"].astype(float),
                             anomaly=soundings["xco2"].astype(float)
                             - soundings.groupby("orbit")["xco2"].transform("median").astype(float),
                             lat=-89.0 + 2 * np.floor((soundings["latitude"] + 90) / 2),
                             lon=-179.0 + 2 * np.floor((soundings["longitude"] + 180) / 2))
    expected = frame.groupby(["lat", "lon"]).agg(n=("anomaly", "size"), anomaly=("anomaly", "mean"),
                                                 xco2=("xco2", "mean"))
    got = ds.to_dataframe().query("n_soundings > 0")
    assert len(got) == len(expected) > 1
    got = got.loc[list(zip(expected.index.get_level_values("lat"), expected.index.get_level_values("lon")))]
    np.testing.assert_array_equal(got["n_soundings"].to_numpy(), expected["n"].to_numpy())
    np.testing.assert_allclose(got["xco2_anomaly"].to_numpy(), expected["anomaly"].to_numpy(), atol=1e-9)
    np.testing.assert_allclose(got["xco2"].to_numpy(), expected["xco2"].to_numpy(), rtol=1e-12)

    # the CF NetCDF file reads back the same, with its units
    path = tmp_path / f"{SMALL_MONTH}.nc"
    ds.to_netcdf(path)
    with xr.open_dataset(path) as back:
        xr.testing.assert_identical(back.load(), ds)
        assert back["latitude"].attrs["units"] == "degrees_north" and back["xco2_anomaly"].attrs["units"] == "ppm"
