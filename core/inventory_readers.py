"""Readers of the raw plant tables (WRI GPPD, Global Coal Plant Tracker, EU-ETS) -> rows of the data contract.

Each reader returns the rows normalised to :data:`core.inventory.COLUMNS` (:func:`core.inventory.conform`) and the
counts of what it read, dropped, capped or repaired; :mod:`core.inventory_build` runs them. The datasets and their
sources ([1]_ - [3]_) are listed in :mod:`core.inventory_build`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from core.inventory import conform
from core.inventory_names import harmonise_country, repair_column

#: Hours in a (non-leap) year [h]: the physical ceiling of annual generation is capacity_mw * HOURS_PER_YEAR [MWh].
HOURS_PER_YEAR = 8760.0

#: EU-ETS installations outside this box [deg] are geocoding errors (e.g. a Spanish town geocoded in the
#: Philippines), except French overseas departments and territories (postcodes 97xxx / 98xxx).
ETS_REGION_DEG = {"lat_min": 27.0, "lat_max": 72.0, "lon_min": -32.0, "lon_max": 45.0}
#: Columns of the raw tables read here: per-year emissions [tCO2/yr for WRI, MtCO2/yr for GEM], WRI fuel -> sector.
WRI_EMISSION_COLUMNS = {
    2013: "tCO2_emitted_in_2013", 2014: "tCO2_emitted_in_2014", 2015: "tCO2_emitted_in_2015",
    2016: "tCO2_emitted_in_2016", 2017: "tCO2_emitted_in_2017_with estimated_data",
    2018: "tCO2_emitted_in_2018_with estimated_data_extrapolated",
    2019: "tCO2_emitted_in_2019_with estimated_data_extrapolated",
}
WRI_FUEL_SECTORS = {"Coal power plant": "power-coal", "Gas power plant": "power-gas", "Oil power plant": "power-oil"}
GEM_EMISSION_COLUMNS = {y: f"Annual CO2 emissions (millions of tonnes) in {y}" for y in (2016, 2017, 2018, 2019)}


# ------------------------------------------------------------------------------------------------ usable rows


def valid_coordinates(lat_deg, lon_deg) -> np.ndarray:
    """True where a coordinate pair is usable: finite, |lat| <= 90, |lon| <= 180 [deg], and not exactly (0, 0)."""
    lat, lon = np.asarray(lat_deg, float), np.asarray(lon_deg, float)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0)
    return ok & ~((lat == 0.0) & (lon == 0.0))


def latest_positive(values_t: np.ndarray, years: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the latest year whose value is positive, and that value.

    Parameters
    ----------
    values_t : numpy.ndarray, shape (n, k)
        Emissions [tCO2/yr], one column per year (NaN = no figure).
    years : sequence of int, length k
        The year of each column, increasing.

    Returns
    -------
    emission_t : numpy.ndarray
        The latest positive figure [tCO2/yr], NaN where no year has one.
    year : numpy.ndarray of int
        Its year, 0 where none.
    """
    values = np.asarray(values_t, dtype=float)
    with np.errstate(invalid="ignore"):
        positive = np.nan_to_num(values, nan=0.0) > 0.0
    has_any = positive.any(axis=1)
    last = values.shape[1] - 1 - np.argmax(positive[:, ::-1], axis=1)
    rows = np.arange(values.shape[0])
    emission = np.where(has_any, values[rows, last], np.nan)
    year = np.where(has_any, np.asarray(years, dtype=int)[last], 0)
    return emission, year


def drop_unusable(frame: pd.DataFrame, counts: dict, prefix: str, need_emission: bool = True) -> pd.DataFrame:
    """Drop rows without valid coordinates (and, for plants, without a positive emission), counting them."""
    ok_xy = valid_coordinates(frame["latitude"], frame["longitude"])
    counts[f"{prefix}_dropped_bad_coordinates"] = int((~ok_xy).sum())
    keep = ok_xy
    if need_emission:
        ok_emission = np.nan_to_num(frame["emission_tCO2_yr"].to_numpy(float), nan=0.0) > 0.0
        counts[f"{prefix}_dropped_no_emission"] = int((ok_xy & ~ok_emission).sum())
        keep = keep & ok_emission
    counts[f"{prefix}_kept"] = int(keep.sum())
    return frame.loc[keep].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------- readers


def read_wri(path: Path) -> tuple[pd.DataFrame, dict]:
    """WRI Global Power Plant Database fossil plants [1]_ -> normalised rows (sectors power-coal/gas/oil).

    The emission is the latest year with a positive figure (2019 for nearly all: 2018 and 2019 are the 2017 figure
    extrapolated). An estimate above the physical ceiling ``capacity_mw * 8760 h * emission factor`` (capacity
    factor > 1, a known failure of the GPPD generation model on small plants) is capped there, and flagged in
    ``emission_capped``.

    Returns
    -------
    frame : pandas.DataFrame
        Normalised rows (see :data:`COLUMNS`).
    counts : dict
        Rows read, dropped and capped.
    """
    raw = pd.read_csv(path, index_col=0, encoding="utf-8")
    counts = {"wri_read": len(raw)}
    name, n_fixed = repair_column(raw["name"])
    counts["wri_names_repaired"] = n_fixed
    emission, year = latest_positive(raw[list(WRI_EMISSION_COLUMNS.values())].to_numpy(float),
                                     list(WRI_EMISSION_COLUMNS))
    ceiling_t = raw["capacity_mw"].to_numpy(float) * HOURS_PER_YEAR * raw["gCO2/KWh"].to_numpy(float) / 1000.0
    capped = np.isfinite(emission) & np.isfinite(ceiling_t) & (emission > ceiling_t)
    counts["wri_emission_capped"] = int(capped.sum())
    reported = raw["generation_gwh_2017"].notna().to_numpy()
    frame = pd.DataFrame({
        "source_id": "wri:" + raw.index.astype(str),
        "name": name.to_numpy(),
        "sector": raw["primary_fuel"].map(WRI_FUEL_SECTORS).to_numpy(),
        "country": harmonise_country(raw["country_long"]).to_numpy(),
        "latitude": raw["latitude"].to_numpy(float), "longitude": raw["longitude"].to_numpy(float),
        "emission_tCO2_yr": np.where(capped, ceiling_t, emission), "year": year,
        "dataset": "wri-gppd",
        "capacity_mw": raw["capacity_mw"].to_numpy(float),
        "emission_basis": np.where(reported, "reported-generation", "estimated-generation"),
        "emission_capped": capped,
    })
    unknown_fuel = frame["sector"].isna()
    if unknown_fuel.any():
        raise ValueError(f"WRI rows with an unknown primary_fuel: {sorted(raw['primary_fuel'][unknown_fuel.values])}")
    return conform(drop_unusable(frame, counts, "wri")), counts


def read_gem(path: Path) -> tuple[pd.DataFrame, dict]:
    """Global Coal Plant Tracker [2]_ -> normalised rows (sector power-coal).

    The emission is the latest of the per-year figures 2016-2019 (million tonnes -> tCO2) that is positive (a year
    the plant did not operate has none); plants never operating in 2016-2019 are dropped.
    """
    raw = pd.read_csv(path, index_col=0, encoding="utf-8")
    counts = {"gem_read": len(raw)}
    name, n_fixed = repair_column(raw["Plant"])
    country, n_fixed_country = repair_column(raw["Country"])
    counts["gem_names_repaired"] = n_fixed + n_fixed_country
    emission, year = latest_positive(raw[list(GEM_EMISSION_COLUMNS.values())].to_numpy(float) * 1e6,
                                     list(GEM_EMISSION_COLUMNS))
    capacity = pd.to_numeric(raw["Capacity (MW)"].astype("str").str.replace(r"[\s\u00a0,]", "", regex=True),
                             errors="coerce")
    frame = pd.DataFrame({
        "source_id": "gem:" + raw.index.astype(str),
        "name": name.to_numpy(), "sector": "power-coal",
        "country": harmonise_country(country).to_numpy(),
        "latitude": raw["Latitude"].to_numpy(float), "longitude": raw["Longitude"].to_numpy(float),
        "emission_tCO2_yr": emission, "year": year, "dataset": "gem-coal",
        "capacity_mw": capacity.to_numpy(float),
        "status": raw["Status"].astype("str").str.strip().str.lower().to_numpy(),
        "emission_basis": "capacity-estimate",
    })
    return conform(drop_unusable(frame, counts, "gem")), counts


def _ets_coordinate_source(raw: pd.DataFrame) -> np.ndarray:
    """Which geocode the 2020 project put in ``latitude``: the full address or only the town."""
    source = np.full(len(raw), "dataset", dtype=object)
    source[(raw["latitude"] == raw["city_address_latitude"]).to_numpy()] = "geocoded-city"
    source[(raw["latitude"] == raw["full_address_latitude"]).to_numpy()] = "geocoded-address"
    return source


def read_ets(path: Path) -> tuple[pd.DataFrame, dict]:
    """EU-ETS installations, Sandbag [3]_ (';'-separated, comma decimals, Latin-1) -> normalised rows.

    'Power and heat' installations get sector ``power`` (fuel unknown), all other Sandbag sectors ``industry``
    (the Sandbag sector is kept in ``subsector``). Coordinates are the 2020 project's geocodes (``latitude``,
    ``longitude``); rows without them are dropped and counted, as are geocodes outside Europe that are not in a
    French overseas territory (:data:`ETS_REGION_DEG`). The registry's own ``InstallationLatitude`` is not used: it is
    mostly empty and partly in degrees.minutes.
    """
    raw = pd.read_csv(path, sep=";", decimal=",", encoding="latin-1", index_col=0, low_memory=False)
    counts = {"ets_read": len(raw)}
    name, n_fixed = repair_column(raw["InstallationName"])
    counts["ets_names_repaired"] = n_fixed
    lat, lon = raw["latitude"].to_numpy(float), raw["longitude"].to_numpy(float)
    missing = ~np.isfinite(lat) | ~np.isfinite(lon)
    counts["ets_dropped_missing_coordinates"] = int(missing.sum())
    region = ETS_REGION_DEG
    in_region = ((lat >= region["lat_min"]) & (lat <= region["lat_max"])
                 & (lon >= region["lon_min"]) & (lon <= region["lon_max"]))
    overseas = ((raw["RegCtryName"] == "France")
                & raw["InstallationPostCode"].astype("str").str.strip().str.match(r"^9[78]\d{3}$")).to_numpy()
    outside = ~missing & ~in_region & ~overseas
    counts["ets_dropped_geocode_outside_europe"] = int(outside.sum())
    lat, lon = np.where(outside, np.nan, lat), np.where(outside, np.nan, lon)
    power = (raw["SandbagSector"] == "Power and heat").to_numpy()
    frame = pd.DataFrame({
        "source_id": "ets:" + raw["Key"].astype("str").str.strip().str.replace(" ", "-", regex=False),
        "name": name.to_numpy(), "sector": np.where(power, "power", "industry"),
        "country": harmonise_country(raw["RegCtryName"]).to_numpy(),
        "latitude": lat, "longitude": lon,
        "emission_tCO2_yr": raw["tCO2e"].to_numpy(float), "year": raw["Period"].to_numpy(int),
        "dataset": "eu-ets-sandbag", "subsector": raw["SandbagSector"].to_numpy(),
        "status": "operating", "emission_basis": "verified",
        "coordinate_source": _ets_coordinate_source(raw),
    })
    if frame["source_id"].duplicated().any():
        raise ValueError("EU-ETS Key is not unique")
    frame = drop_unusable(frame, counts, "ets")  # ets_dropped_bad_coordinates: the total of the two counts above
    return conform(frame), counts
