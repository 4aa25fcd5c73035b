"""The emission inventory: build from raw tables, de-duplication, Parquet layout and DuckDB queries (no mocks)."""
from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from core import inventory as inv
from core import inventory_build as build
from core.inventory_dedupe import pairs_within_km
from core.inventory_names import name_is_lost, name_similarity, readable_names, repair_text
from core.paths import EMBEDDED_INVENTORY
from core.track import EARTH_RADIUS_KM, haversine_km

COMMITTED = EMBEDDED_INVENTORY / "sources.parquet"
RAW = build.RAW_FOLDER  # inventory/raw/ of the repository
KM_PER_DEG = math.pi * EARTH_RADIUS_KM / 180.0  # hand computation: 1 deg along a meridian [km]

WRI_YEARS = ["tCO2_emitted_in_2013", "tCO2_emitted_in_2014", "tCO2_emitted_in_2015", "tCO2_emitted_in_2016",
             "tCO2_emitted_in_2017", "tCO2_emitted_in_2017_with estimated_data",
             "tCO2_emitted_in_2018_with estimated_data_extrapolated",
             "tCO2_emitted_in_2019_with estimated_data_extrapolated"]
FUEL = {"coal": ("Coal power plant", 1050), "gas": ("Gas power plant", 443), "oil": ("Oil power plant", 778)}


# ------------------------------------------------------------------------------------------ crafted raw tables


def _wri(rows):
    """WRI GPPD rows: (name, country, capacity_mw, lat, lon, fuel, tCO2 2017..2019 or None, reported)."""
    records = []
    for name, country, capacity, lat, lon, fuel, tco2, reported in rows:
        primary, factor = FUEL[fuel]
        record = {"country_long": country, "name": name, "capacity_mw": capacity, "latitude": lat, "longitude": lon,
                  "primary_fuel": primary, "generation_gwh_2017": (tco2 / factor / 1000) if reported and tco2 else None,
                  "gCO2/KWh": factor}
        record.update({c: None for c in WRI_YEARS})
        if tco2 is not None:
            record.update({WRI_YEARS[5]: tco2, WRI_YEARS[6]: tco2, WRI_YEARS[7]: tco2})
        records.append(record)
    return pd.DataFrame(records)


def _gem(rows):
    """GEM rows: (country, plant, capacity text, status, lat, lon, Mt 2016, 2017, 2018, 2019)."""
    columns = ["Country", "Plant", "Capacity (MW)", "Status", "Latitude", "Longitude"] + \
        [f"Annual CO2 emissions (millions of tonnes) in {y}" for y in (2016, 2017, 2018, 2019)]
    return pd.DataFrame(rows, columns=columns)


def _ets(rows):
    """EU-ETS rows: (number, name, country code, country, Sandbag sector, tCO2e, postcode, lat, lon, geocode)."""
    records = []
    for number, name, code, country, sector, tco2e, postcode, lat, lon, geocode in rows:
        records.append({
            "InstallationNumber": number, "InstallationName": name, "Key": f"{code} {number}", "RegCtryName": country,
            "SandbagSector": sector, "tCO2e": tco2e, "InstallationLatitude": None, "InstallationLongtitude": None,
            "InstallationPostCode": postcode, "Period": 2019,
            "full_address_latitude": lat if geocode == "address" else None,
            "full_address_longitude": lon if geocode == "address" else None,
            "city_address_latitude": lat if geocode == "city" else None,
            "city_address_longitude": lon if geocode == "city" else None,
            "latitude": lat, "longitude": lon})
    return pd.DataFrame(records)


def _cdp(rows):
    """Reported cities: (name, country, 'lat,lon' or None, scope-1 tCO2, year, population)."""
    return pd.DataFrame([{"City name": n, "Country": c, "City location (CDP) [degrees]": xy,
                          "Scope-1 GHG emissions [tCO2 or tCO2-eq]": e, "Scope-1 source dataset": "CDP",
                          "Scope-1 GHG emissions units": "tCO2", "Year of emission": y, "Population (others)": p,
                          "Population (CDP)": None} for n, c, xy, e, y, p in rows])


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    """A small set of the five raw tables in their real formats, with every case the build must handle."""
    folder = tmp_path_factory.mktemp("raw")
    _wri([
        ("Alpha", "Testland", 1000.0, 10.0, 20.0, "coal", 5.0e6, True),                  # wri:0, GEM twin 1 km north
        ("Beta", "Fiji", 200.0, -15.0, 179.5, "gas", 1.0e6, False),                     # wri:1, east of antimeridian
        ("Gamma", "Fiji", 50.0, -15.0, -179.5, "oil", 2.0e5, False),                    # wri:2, west of it
        ("Dead", "Testland", 300.0, 11.0, 21.0, "coal", None, False),                   # wri:3, no emission: dropped
        ("Nowhere", "Testland", 300.0, 95.0, 21.0, "coal", 1.0e6, False),               # wri:4, bad latitude
        ("Tiny", "Testland", 10.0, 12.0, 22.0, "coal", 1.0e9, False),                   # wri:5, capped
        ("Kraftwerk Delta", "Germany", 800.0, 50.0, 10.0, "gas", 2.0e6, False),         # wri:6, EU-ETS twin
        ("Epsilon", "Germany", 2000.0, 51.0, 12.0, "coal", 8.0e6, True),                # wri:7, small ETS neighbour
        ("South", "Testland", 100.0, 10.1, 20.0, "gas", 3.0e5, False),                  # wri:8, 11.1 km from wri:0
        ("Far", "Testland", 100.0, 10.2, 20.0, "oil", 4.0e5, False),                    # wri:9, 22.2 km from wri:0
    ]).to_csv(folder / build.RAW_FILES["wri-gppd"])
    _gem([
        ("Testland", "Alpha power station", "1 200", "Operating", 10.0 + 1.0 / KM_PER_DEG, 20.0, 4, 4, 4, 4),
        ("Otherland", "Omega power station", "1 300", "Retired", 30.0, 100.0, 3.0, 2.5, None, None),
        ("Otherland", "Planned power station", "600", "Cancelled", 31.0, 101.0, None, None, None, None),
        ("Argentina", "RÃ\xado Turbio power station", "120", "Operating", -51.546, -72.2313, 0.6, 0.6, 0.6, 0.6),
    ]).to_csv(folder / build.RAW_FILES["gem-coal"])
    _ets([
        (1, "Heizkraftwerk Delta", "DE", "Germany", "Power and heat", 1500000, "10000", 50.018, 10.0, "address"),
        (2, "Fernwärme Zeta", "DE", "Germany", "Power and heat", 10000, "10001",
         51.0 + 0.5 / KM_PER_DEG, 12.0, "city"),
        (3, "Zementwerk Höver", "DE", "Germany", "Cement and Lime", 500000, "31319", 52.3, 9.9, "address"),
        (4, "Glashütte ohne Ort", "DE", "Germany", "Glass", 20000, "01768", None, None, None),
        (5, "Fábrica en Toledo", "ES", "Spain", "Ceramics", 30000, "45700", 14.06, 121.32, "city"),
        (6, "Centrale du Port", "FR", "France", "Power and heat", 600000, "97420", -20.94, 55.30, "city"),
    ]).to_csv(folder / build.RAW_FILES["eu-ets-sandbag"], sep=";", decimal=",", encoding="latin-1")
    pd.DataFrame({"city": ["Testville", "?saka", "Antipode"], "country": ["Testland", "Japan", "Fiji"],
                  "latitude": [10.05, 34.75, -15.2], "longitude": [20.05, 135.46, 179.9],
                  "pop": [1.0e6, 1.1e7, 5.0e3]}).to_csv(folder / build.RAW_FILES["cities-population"])
    _cdp([
        ("Testville", "Testland", "10.06,20.04", 3.0e6, 2015, 1.0e6),
        ("Osaka", "Japan", None, 5.0e7, 2014, 1.1e7),
        ("Quezon", "Philippines", "14.6,121.0", 7.0e8, 2010, 2.7e6),  # 260 t per inhabitant: rejected
    ]).to_csv(folder / build.RAW_FILES["cities-cdp"], sep=";", index=False)
    return folder


@pytest.fixture(scope="module")
def built(raw_dir):
    return build.build_sources(raw_dir)


@pytest.fixture(scope="module")
def cache(built, tmp_path_factory):
    """A cache root whose inventory is the crafted build, written as the real file is."""
    root = tmp_path_factory.mktemp("cache")
    build.write_sources(built, root / "inventory" / "sources.parquet")
    return root


def _row(frame, source_id):
    rows = frame[frame["source_id"] == source_id]
    assert len(rows) == 1, f"{source_id}: {len(rows)} rows"
    return rows.iloc[0]


# ----------------------------------------------------------------------------------------------------- build


def test_build_keeps_contract_columns_and_drops_unusable_rows(built):
    assert list(built.columns) == list(inv.COLUMNS)
    assert {c: str(built[c].dtype) for c in inv.COLUMNS} == inv.COLUMN_DTYPES
    ids = set(built["source_id"])
    assert {"wri:3", "wri:4", "gem:2", "ets:DE-4", "ets:ES-5"}.isdisjoint(ids)
    report = built.attrs["build_report"]
    assert report["wri_dropped_no_emission"] == 1 and report["wri_dropped_bad_coordinates"] == 1
    assert report["gem_dropped_no_emission"] == 1
    assert report["ets_dropped_missing_coordinates"] == 1 and report["ets_dropped_geocode_outside_europe"] == 1
    assert built["source_id"].is_unique
    assert set(built["sector"]) <= set(inv.SECTORS)


def test_wri_and_gem_twins_1_km_apart_merge_into_one_row(built):
    alpha = built[built["name"].str.startswith("Alpha")]
    assert len(alpha) == 1
    row = alpha.iloc[0]
    assert row["source_id"] == "wri:0" and row["merged_ids"] == "gem:0"
    assert row["dataset"] == "wri-gppd+gem-coal" and row["sector"] == "power-coal"
    assert row["emission_tCO2_yr"] == pytest.approx(5.0e6)  # WRI's generation-based figure wins
    assert row["emission_basis"] == "reported-generation" and row["status"] == "operating"
    assert built.attrs["build_report"]["gem_folded_into_wri"] == 1


def test_latest_positive_year_units_and_capacity_text(built):
    omega = _row(built, "gem:1")  # operated 2016-2017 only, in million tonnes
    assert omega["year"] == 2017 and omega["emission_tCO2_yr"] == pytest.approx(2.5e6)
    assert omega["status"] == "retired" and omega["capacity_mw"] == 1300.0
    assert _row(built, "wri:1")["year"] == 2019
    tiny = _row(built, "wri:5")  # 1e9 t from 10 MW: capped at capacity x 8760 h x 1050 g/kWh
    assert tiny["emission_capped"] and tiny["emission_tCO2_yr"] == pytest.approx(10 * 8760 * 1050 / 1000)


def test_mojibake_names_are_repaired():
    assert repair_text("RÃ\xado Turbio") == "Río Turbio"
    assert repair_text("Côte D\x92Ivoire") == "Côte D’Ivoire"
    assert repair_text("Río Turbio") == "Río Turbio"  # already right: untouched
    assert repair_text("?saka") == "?saka"  # lost upstream: left alone


def test_names_lost_upstream_get_a_readable_fallback_and_the_build_checks_it():
    frame = pd.DataFrame({"source_id": ["ets:GR-116", "city:4955", "city:10328", "wri:1"],
                          "name": ["???????????? ??????????? ?.?.", "?ad?b?", "Tôlan?aro", "Kendal"],
                          "sector": ["industry", "city", "city", "power-coal"],
                          "subsector": ["Ceramics", None, None, None],
                          "country": ["Greece", "Yemen", "Madagascar", "South Africa"]})
    assert [name_is_lost(n) for n in frame["name"]] == [True, True, False, False]
    assert name_is_lost("") and name_is_lost(None) and name_is_lost("? ?")
    assert readable_names(frame).tolist() == ["Ceramics, Greece (ets:GR-116)", "City, Yemen (city:4955)",
                                              "Tôlan?aro", "Kendal"]
    with pytest.raises(ValueError, match="ets:GR-116"):
        build.check_names(frame)
    build.check_names(frame.assign(name=readable_names(frame)))


def test_gem_mojibake_name_in_build(built):
    assert _row(built, "gem:3")["name"] == "Río Turbio power station"


def test_eu_ets_semicolon_comma_decimal_latin1(built):
    cement = _row(built, "ets:DE-3")
    assert cement["name"] == "Zementwerk Höver"
    assert cement["sector"] == "industry" and cement["subsector"] == "Cement and Lime"
    assert cement["latitude"] == pytest.approx(52.3) and cement["longitude"] == pytest.approx(9.9)
    assert cement["emission_tCO2_yr"] == 500000.0 and cement["year"] == 2019
    assert cement["coordinate_source"] == "geocoded-address"
    reunion = _row(built, "ets:FR-6")  # overseas department: outside Europe but kept
    assert reunion["sector"] == "power" and reunion["latitude"] == pytest.approx(-20.94)


def test_plant_folds_into_eu_ets_installation_with_verified_emission(built):
    delta = _row(built, "ets:DE-1")  # 2 km from WRI 'Kraftwerk Delta'
    assert delta["merged_ids"] == "wri:6" and "wri:6" not in set(built["source_id"])
    assert delta["dataset"] == "eu-ets-sandbag+wri-gppd"
    assert delta["sector"] == "power-gas" and delta["name"] == "Kraftwerk Delta" and delta["capacity_mw"] == 800.0
    assert delta["emission_tCO2_yr"] == 1500000.0 and delta["emission_basis"] == "verified"


def test_small_installation_beside_a_large_plant_is_not_that_plant(built):
    assert _row(built, "wri:7")["emission_tCO2_yr"] == pytest.approx(8.0e6)
    zeta = _row(built, "ets:DE-2")
    assert zeta["sector"] == "power" and zeta["merged_ids"] == ""


def test_cities_join_reported_emissions(built):
    testville = _row(built, "city:0")
    assert testville["emission_tCO2_yr"] == 3.0e6 and testville["year"] == 2015
    assert testville["dataset"] == "cities-population+cities-cdp" and testville["merged_ids"] == "cdp:0"
    osaka = _row(built, "city:1")  # '?saka' in the world table
    assert osaka["emission_tCO2_yr"] == 5.0e7
    antipode = _row(built, "city:2")
    assert np.isnan(antipode["emission_tCO2_yr"]) and pd.isna(antipode["year"])
    assert built.attrs["build_report"]["cdp_rejected_implausible"] == 1
    assert not built["name"].eq("Quezon").any()


# ----------------------------------------------------------------------------------------------- geometry


def test_pairs_within_km_equals_brute_force():
    rng = np.random.default_rng(1)
    lat_a, lon_a = rng.uniform(40, 42, 300), rng.uniform(5, 7, 300)
    lat_b, lon_b = rng.uniform(40, 42, 200), rng.uniform(5, 7, 200)
    ia, jb, d = pairs_within_km(lat_a, lon_a, lat_b, lon_b, 15.0)
    full = haversine_km(lat_a[:, None], lon_a[:, None], lat_b[None, :], lon_b[None, :])
    expected = set(zip(*np.nonzero(full <= 15.0)))
    assert set(zip(ia.tolist(), jb.tolist())) == expected
    assert np.allclose(d, full[ia, jb])


def test_name_similarity():
    assert name_similarity("Bełchatów", "Elektrownia Bełchatów") == 1.0
    assert name_similarity("Samcheonpo", "Samchonpo power station") == 1.0
    assert name_similarity("Korba STPS", "BALCO Korba power station") == 0.5
    assert name_similarity("Campo de Gibraltar Grupo 20", "Campo de Gibraltar Grupo 10") == 0.0


def test_radius_box_crosses_the_antimeridian_and_reaches_poles():
    lat_min, lat_max, lon_min, lon_max = inv.radius_box_deg(0.0, 179.9, 50.0)
    assert lon_min > lon_max and lon_min == pytest.approx(179.9 - 50 / KM_PER_DEG, abs=1e-3)
    assert inv.radius_box_deg(89.9, 0.0, 50.0)[2:] == (-180.0, 180.0)


def test_radius_box_of_several_points_is_the_shortest_arc_holding_them():
    dlon = 50 / KM_PER_DEG  # at the equator a circle spans +- r/R in longitude
    # points on both sides of the antimeridian: the box crosses it, it does not span the other 359 degrees
    lat_min, lat_max, lon_min, lon_max = inv.radius_box_deg([0.0, 1.0], [179.0, -178.0], 50.0)
    assert lon_min == pytest.approx(179.0 - dlon) and lon_max == pytest.approx(-178.0 + dlon)
    assert (lat_min, lat_max) == pytest.approx((-dlon, 1.0 + dlon))
    # three points a third of the way round: the largest gap (between two of them) is left out
    lon_min, lon_max = inv.radius_box_deg([0.0] * 3, [-120.0, 0.0, 120.0], 50.0)[2:]
    assert lon_min == pytest.approx(-dlon) and lon_max == pytest.approx(-120.0 + dlon)
    # a point without coordinates is left out; none at all is an error
    assert inv.radius_box_deg([np.nan, 10.0], [5.0, 20.0], 50.0) == inv.radius_box_deg(10.0, 20.0, 50.0)
    with pytest.raises(ValueError, match="finite"):
        inv.radius_box_deg([np.nan], [0.0], 50.0)


# ------------------------------------------------------------------------------------------- Parquet + queries


def test_parquet_sorted_by_coarse_key_in_small_row_groups(built, tmp_path):
    path = build.write_sources(built, tmp_path / "s.parquet", row_group_rows=4)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == math.ceil(len(built) / 4)
    assert meta.row_group(0).column(0).compression == "ZSTD"
    back = pd.read_parquet(path)
    key = np.floor(back["latitude"]) * 1000 + np.floor(back["longitude"])
    assert key.is_monotonic_increasing
    assert build.read_build_report(path)["gem_folded_into_wri"] == 1


def test_sources_path_prefers_the_cache(cache, tmp_path):
    assert inv.sources_path(cache) == cache / "inventory" / "sources.parquet"
    assert inv.sources_path(tmp_path) == EMBEDDED_INVENTORY / "sources.parquet"


def test_box_query(cache):
    found = inv.sources_in_box(9.5, 10.5, 19.5, 20.5, cache=cache)
    assert set(found["source_id"]) == {"wri:0", "wri:8", "wri:9", "city:0"}
    coal = inv.sources_in_box(9.5, 10.5, 19.5, 20.5, sectors="power-coal", cache=cache)
    assert coal["source_id"].tolist() == ["wri:0"]
    big = inv.sources_in_box(9.5, 10.5, 19.5, 20.5, min_emission_tCO2_yr=1e6, cache=cache)
    assert set(big["source_id"]) == {"wri:0", "city:0"}
    assert list(found.columns) == list(inv.COLUMNS)


def test_box_query_across_the_antimeridian(cache):
    found = inv.sources_in_box(-16.0, -14.0, 179.0, -179.0, cache=cache)
    assert set(found["source_id"]) == {"wri:1", "wri:2", "city:2"}
    normal = inv.sources_in_box(-16.0, -14.0, -179.0, 179.0, cache=cache)  # the other way: all but those 2 deg
    assert set(normal["source_id"]) == set()


def test_radius_query_distances(cache):
    con = duckdb.connect()
    found = inv.sources_within_radius(10.0, 20.0, 15.0, cache=cache, con=con)
    assert found["source_id"].tolist()[0] == "wri:0" and found["distance_km"].iloc[0] == pytest.approx(0.0, abs=1e-9)
    south = _row(found, "wri:8")
    assert south["distance_km"] == pytest.approx(0.1 * KM_PER_DEG, rel=1e-9)  # 11.12 km along the meridian
    assert "wri:9" not in set(found["source_id"])  # 22.24 km
    assert found["distance_km"].is_monotonic_increasing
    wider = inv.sources_within_radius(10.0, 20.0, 25.0, sectors=["power-oil"], cache=cache, con=con)
    assert wider["source_id"].tolist() == ["wri:9"]
    assert wider["distance_km"].iloc[0] == pytest.approx(0.2 * KM_PER_DEG, rel=1e-9)
    across = inv.sources_within_radius(-15.0, 179.9, 70.0, cache=cache, con=con)  # 43, 64 and 22 km
    assert set(across["source_id"]) == {"wri:1", "wri:2", "city:2"}


def test_by_sector_and_largest_emitters(cache):
    coal = inv.sources_by_sector("power-coal", cache=cache)
    assert coal["emission_tCO2_yr"].is_monotonic_decreasing and set(coal["sector"]) == {"power-coal"}
    top = inv.largest_emitters(3, cache=cache)
    assert top["source_id"].tolist() == ["wri:7", "wri:0", "gem:1"]
    with_cities = inv.largest_emitters(1, exclude_sectors=(), cache=cache)
    assert with_cities["source_id"].tolist() == ["city:1"]
    with pytest.raises(ValueError):
        inv.sources_by_sector("power'; DROP TABLE x; --", cache=cache)


def test_main_rebuilds_and_prints_counts(raw_dir, tmp_path, capsys):
    out = tmp_path / "inventory" / "sources.parquet"
    assert build.main(["--raw", str(raw_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "gem_folded_into_wri" in printed and "rows_per_sector" in printed
    assert len(pd.read_parquet(out)) == len(build.build_sources(raw_dir))


# ------------------------------------------------------------------------------------------- committed inventory


@pytest.fixture(scope="module")
def committed():
    return pd.read_parquet(COMMITTED)


def test_committed_inventory_contract(committed):
    assert list(committed.columns) == list(inv.COLUMNS)
    assert {c: str(committed[c].dtype) for c in inv.COLUMNS} == inv.COLUMN_DTYPES
    assert committed["source_id"].is_unique
    assert committed[["latitude", "longitude"]].notna().all().all()
    assert committed["latitude"].abs().max() <= 90 and committed["longitude"].abs().max() <= 180
    assert set(committed["sector"]) == set(inv.SECTORS)
    plants = committed[committed["sector"] != "city"]
    assert (plants["emission_tCO2_yr"] > 0).all() and plants["year"].notna().all()
    assert not committed["name"].map(name_is_lost).any()  # every source can be told apart by its name
    assert committed.set_index("source_id").loc["ets:GR-116", "name"] == "Ceramics, Greece (ets:GR-116)"
    assert COMMITTED.stat().st_size < 5e6
    assert pq.ParquetFile(COMMITTED).metadata.num_row_groups > 1


def test_committed_inventory_has_no_cross_dataset_twins_within_1_km(committed):
    plants = committed[committed["sector"].isin(inv.FUEL_SECTORS)].reset_index(drop=True)
    ia, jb, _ = pairs_within_km(plants["latitude"], plants["longitude"], plants["latitude"], plants["longitude"],
                                    1.0)
    keep = ia < jb
    ia, jb = ia[keep], jb[keep]
    same_fuel = plants["sector"].to_numpy()[ia] == plants["sector"].to_numpy()[jb]
    datasets = [set(d.split("+")) for d in plants["dataset"]]
    twins = [(plants["source_id"][i], plants["source_id"][j]) for i, j in zip(ia[same_fuel], jb[same_fuel])
             if not datasets[i] & datasets[j]]
    assert twins == []


def test_committed_inventory_rebuilds_from_committed_csvs(committed, tmp_path):
    rebuilt = build.build_sources(RAW)
    pd.testing.assert_frame_equal(rebuilt.reset_index(drop=True),
                                  committed.sort_values("source_id").reset_index(drop=True))
    # the build is deterministic: the same bytes as the embedded file (package data, core/data/inventory/)
    assert build.write_sources(rebuilt, tmp_path / "sources.parquet").read_bytes() == COMMITTED.read_bytes()
