"""Cities of the inventory: world cities with population, joined with the CO2 the cities reported [4]_.

:func:`read_cities` (run by :mod:`core.inventory_build`) joins each reported city to one world city by name key
and country, else to the nearest world city of its country, else keeps it as a row of its own.

References
----------
.. [4] Nangini, C. et al. (2019). A global dataset of CO2 emissions and ancillary data related to emissions for 343
   cities. Scientific Data 6, 180280. doi:10.1038/sdata.2018.280
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.inventory import conform
from core.inventory_dedupe import join_ids, pairs_within_km
from core.inventory_names import city_key, city_keys_agree, harmonise_country, repair_column
from core.inventory_readers import drop_unusable, valid_coordinates
from core.track import haversine_km

#: A reported city not found by name joins the nearest world city of its country within this distance [km].
CITY_NEAREST_KM = 3.0
#: A reported city not found by exact name key joins the same-country world city of the closest spelling within
#: CITY_SPELLING_KM [km] of its reported coordinates, if at least this similar [0-1] (difflib ratio).
CITY_MIN_NAME_RATIO = 0.85
CITY_SPELLING_KM = 50.0
#: Reported city emissions above this per inhabitant [tCO2/yr/person] are rejected as implausible (the highest
#: national averages are ~40; one report gives 713 MtCO2 for Quezon City, ~260 per inhabitant).
CITY_MAX_TCO2_PER_CAPITA = 100.0
#: Column of the reported scope-1 emission [tCO2/yr] in the reported-city table.
CDP_EMISSION_COLUMN = "Scope-1 GHG emissions [tCO2 or tCO2-eq]"


def _parse_lat_lon(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """'lat,lon' strings [deg] -> two float arrays (NaN where missing or malformed)."""
    parts = values.astype("str").str.extract(r"^\s*(-?\d+(?:\.\d*)?)\s*,\s*(-?\d+(?:\.\d*)?)\s*$")
    return pd.to_numeric(parts[0], errors="coerce").to_numpy(float), \
        pd.to_numeric(parts[1], errors="coerce").to_numpy(float)


def read_cities(population_path: Path, cdp_path: Path) -> tuple[pd.DataFrame, dict]:
    """World cities with population, joined with the cities' reported CO2 [4]_ -> rows of sector ``city``.

    A reported city (scope-1 emission and its year) is joined to one world city:

    * by name key and country (:func:`city_key`); among homonyms, the one nearest the reported coordinates when
      there are some, else the most populous. The world city's coordinates are kept (several reported coordinates
      are geocoding errors: Wellington, New Zealand is placed in Florida);
    * else, when it has coordinates, to the nearest world city of the same country within :data:`CITY_NEAREST_KM`;
    * else, when it has coordinates and a figure, it becomes its own row (dataset ``cities-cdp``, id ``cdp:<row>``);
      otherwise it is dropped.

    When several reports join one city the latest year wins. A figure above :data:`CITY_MAX_TCO2_PER_CAPITA` is
    rejected as implausible. Cities without a report keep ``emission_tCO2_yr`` NaN and ``year`` missing.
    """
    raw = pd.read_csv(population_path, index_col=0, encoding="utf-8")
    counts = {"cities_read": len(raw)}
    name, n_fixed = repair_column(raw["city"])
    country, n_fixed_country = repair_column(raw["country"])
    counts["cities_names_repaired"] = n_fixed + n_fixed_country
    cities = pd.DataFrame({
        "source_id": "city:" + raw.index.astype(str), "name": name.to_numpy(), "sector": "city",
        "country": harmonise_country(country).to_numpy(),
        "latitude": raw["latitude"].to_numpy(float), "longitude": raw["longitude"].to_numpy(float),
        "emission_tCO2_yr": np.nan, "year": pd.array([pd.NA] * len(raw), dtype="Int32"),
        "dataset": "cities-population", "population": raw["pop"].to_numpy(float),
    })
    cities = drop_unusable(cities, counts, "cities", need_emission=False)
    cdp, cdp_counts = _read_cdp(cdp_path)
    counts.update(cdp_counts)
    target = _cdp_targets(cities, cdp)
    joined, standalone, join_counts = _apply_cdp(cities, cdp, target)
    counts.update(join_counts)
    return conform(pd.concat([joined, standalone], ignore_index=True)), counts


def _read_cdp(path: Path) -> tuple[pd.DataFrame, dict]:
    """The reported-city table -> name, country, optional coordinates, scope-1 emission [tCO2/yr] and its year."""
    raw = pd.read_csv(path, sep=";", encoding="utf-8", low_memory=False)
    lat, lon = _parse_lat_lon(raw["City location (CDP) [degrees]"])
    has_xy = valid_coordinates(lat, lon)
    emission = pd.to_numeric(raw[CDP_EMISSION_COLUMN], errors="coerce").to_numpy(float)
    population = pd.to_numeric(raw["Population (others)"], errors="coerce") \
        .fillna(pd.to_numeric(raw["Population (CDP)"], errors="coerce")).to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        implausible = emission / population > CITY_MAX_TCO2_PER_CAPITA
    emission = np.where((emission > 0) & ~implausible, emission, np.nan)
    basis = ("scope-1 " + raw["Scope-1 GHG emissions units"].astype("str").str.strip() + " ("
             + raw["Scope-1 source dataset"].astype("str").str.strip() + ")")
    name, _ = repair_column(raw["City name"])
    cdp = pd.DataFrame({
        "cdp_id": "cdp:" + raw.index.astype(str), "name": name.to_numpy(),
        "country": harmonise_country(raw["Country"]).to_numpy(),
        "latitude": np.where(has_xy, lat, np.nan), "longitude": np.where(has_xy, lon, np.nan),
        "emission_tCO2_yr": emission, "year": pd.to_numeric(raw["Year of emission"], errors="coerce").to_numpy(),
        "emission_basis": basis.to_numpy(),
    })
    return cdp, {"cdp_read": len(raw), "cdp_with_coordinates": int(has_xy.sum()),
                 "cdp_rejected_implausible": int(implausible.sum()),
                 "cdp_with_emission": int(np.isfinite(emission).sum())}


def _cdp_targets(cities: pd.DataFrame, cdp: pd.DataFrame) -> np.ndarray:
    """Row of ``cities`` each reported city joins (-1: none), by the rules of :func:`read_cities`."""
    city_keys = cities["name"].map(city_key).to_numpy()
    cdp_keys = cdp["name"].map(city_key).to_numpy()
    cdp_lat, cdp_lon = cdp["latitude"].to_numpy(), cdp["longitude"].to_numpy()
    # 1. same name key and country; nearest homonym to the reported coordinates, else the most populous
    cand = pd.DataFrame({"cdp": np.arange(len(cdp)), "key": cdp_keys, "country": cdp["country"].to_numpy()}).merge(
        pd.DataFrame({"city": np.arange(len(cities)), "key": city_keys, "country": cities["country"].to_numpy()}),
        on=["key", "country"])
    cand = cand[cand["key"] != ""]
    # 1b. not found: '?' wildcards of the world table ('?saka' ~ 'osaka'), or, near the reported coordinates
    #     (CITY_SPELLING_KM), the closest spelling (ratio >= CITY_MIN_NAME_RATIO); same country
    missing = np.setdiff1d(np.arange(len(cdp)), cand["cdp"].to_numpy())
    key_length = np.fromiter(map(len, city_keys), dtype=int, count=len(city_keys))
    fuzzy = [(i, j, city_keys_agree(cdp_keys[i], city_keys[j])) for i in missing
             for j in np.flatnonzero((cities["country"].to_numpy() == cdp["country"].to_numpy()[i])
                                     & (np.abs(key_length - len(cdp_keys[i])) <= 2))]
    fuzzy = pd.DataFrame(fuzzy, columns=["cdp", "city", "agree"]) if fuzzy else \
        pd.DataFrame({"cdp": [], "city": [], "agree": []})
    if len(fuzzy):
        near_km = haversine_km(cdp_lat[fuzzy["cdp"].astype(int)], cdp_lon[fuzzy["cdp"].astype(int)],
                               cities["latitude"].to_numpy()[fuzzy["city"].astype(int)],
                               cities["longitude"].to_numpy()[fuzzy["city"].astype(int)])
        fuzzy = fuzzy[(fuzzy["agree"] == 1.0) | ((fuzzy["agree"] >= CITY_MIN_NAME_RATIO)
                                                 & (near_km <= CITY_SPELLING_KM))]
    fuzzy = fuzzy.sort_values(["cdp", "agree"], ascending=[True, False])
    fuzzy = fuzzy[fuzzy["agree"] == fuzzy.groupby("cdp")["agree"].transform("max")]
    cand = pd.concat([cand[["cdp", "city"]], fuzzy[["cdp", "city"]].astype(np.int64)], ignore_index=True)
    cand["distance_km"] = np.nan_to_num(haversine_km(cdp_lat[cand["cdp"]], cdp_lon[cand["cdp"]],
                                                     cities["latitude"].to_numpy()[cand["city"]],
                                                     cities["longitude"].to_numpy()[cand["city"]]), nan=0.0)
    cand["population"] = cities["population"].fillna(-1.0).to_numpy()[cand["city"]]
    best = cand.sort_values(["cdp", "distance_km", "population"], ascending=[True, True, False]) \
        .drop_duplicates("cdp")
    target = np.full(len(cdp), -1, dtype=np.int64)
    target[best["cdp"].to_numpy()] = best["city"].to_numpy()
    # 2. not found by name, with coordinates: the nearest world city of the same country within CITY_NEAREST_KM
    rest = np.flatnonzero((target < 0) & np.isfinite(cdp_lat))
    ia, jb, dist = pairs_within_km(cdp_lat[rest], cdp_lon[rest], cities["latitude"].to_numpy(),
                                   cities["longitude"].to_numpy(), CITY_NEAREST_KM)
    near = pd.DataFrame({"cdp": rest[ia], "city": jb, "distance_km": dist})
    near = near[cdp["country"].to_numpy()[near["cdp"]] == cities["country"].to_numpy()[near["city"]]]
    near = near.sort_values(["cdp", "distance_km"]).drop_duplicates("cdp")
    target[near["cdp"].to_numpy()] = near["city"].to_numpy()
    return target


def _apply_cdp(cities: pd.DataFrame, cdp: pd.DataFrame, target: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Write the joined reports into ``cities``; the unjoined ones with coordinates and a figure stand alone."""
    reports = pd.DataFrame({"cdp": np.flatnonzero(target >= 0), "city": target[target >= 0]})
    reports["year"] = cdp["year"].to_numpy()[reports["cdp"]]
    reports["emission"] = cdp["emission_tCO2_yr"].to_numpy()[reports["cdp"]]
    reports["has_emission"] = np.isfinite(reports["emission"])
    reports = reports.sort_values(["city", "has_emission", "year", "emission"], ascending=[True, False, False, False])
    winners = reports.drop_duplicates("city")
    out = cities.copy()
    rows, src = winners["city"].to_numpy(), winners["cdp"].to_numpy()
    emission = cdp["emission_tCO2_yr"].to_numpy()[src]
    out.loc[rows, "emission_tCO2_yr"] = emission
    out["year"] = out["year"].astype("float64")
    out.loc[rows, "year"] = np.where(np.isfinite(emission), cdp["year"].to_numpy(float)[src], np.nan)
    out.loc[rows, "emission_basis"] = np.where(np.isfinite(emission), cdp["emission_basis"].to_numpy()[src], None)
    out.loc[rows, "dataset"] = "cities-population+cities-cdp"
    ids = cdp["cdp_id"].to_numpy()
    merged = reports.groupby("city")["cdp"].agg(lambda rows_: join_ids(ids[rows_.to_numpy()]))
    out["merged_ids"] = ""
    out.loc[merged.index.to_numpy(), "merged_ids"] = merged.to_numpy()
    alone = (target < 0) & np.isfinite(cdp["latitude"].to_numpy()) & np.isfinite(cdp["emission_tCO2_yr"].to_numpy())
    standalone = cdp.loc[alone].rename(columns={"cdp_id": "source_id"}).assign(sector="city", dataset="cities-cdp")
    counts = {
        "cdp_joined_to_city": int((target >= 0).sum()),
        "cdp_duplicate_reports_folded": int(len(reports) - len(winners)),
        "cdp_standalone": int(alone.sum()),
        "cdp_dropped_unmatched": int(((target < 0) & ~alone).sum()),
    }
    return out, standalone, counts
