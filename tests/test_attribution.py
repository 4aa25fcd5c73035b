"""Attribution geometry: a source upwind of a peak is found, one downwind or off-axis is not."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.attribution import attribute, carried_sources, carried_weight, rank_upwind_sources, upwind_geometry
from core.emission import SECONDS_PER_YEAR
from core.inventory import radius_box_deg
from core.settings import DetectionSettings
from core.track import EARTH_RADIUS_KM

KM_PER_DEG = np.pi * EARTH_RADIUS_KM / 180
SETTINGS = DetectionSettings()


def _sources(rows):
    return pd.DataFrame(rows, columns=["source_id", "name", "sector", "country", "latitude", "longitude",
                                       "emission_tCO2_yr", "year", "dataset"])


def _at(lat0, lon0, east_km, north_km):
    return lat0 + north_km / KM_PER_DEG, lon0 + east_km / (KM_PER_DEG * np.cos(np.radians(lat0)))


def test_upwind_source_found_downwind_not():
    lat0, lon0 = 50.0, 10.0
    # wind blows to the east (u=5): upwind is west
    west = _at(lat0, lon0, -30, 0)
    east = _at(lat0, lon0, 30, 0)
    north = _at(lat0, lon0, 0, -30)  # 30 km south: 90 deg off the axis
    sources = _sources([("a", "Upwind plant", "power-coal", "DE", *west, 5e6, 2019, "t"),
                        ("b", "Downwind plant", "power-coal", "DE", *east, 9e6, 2019, "t"),
                        ("c", "Side plant", "power-coal", "DE", *north, 9e6, 2019, "t")])
    ranked = rank_upwind_sources(lat0, lon0, 5.0, 0.0, sources, SETTINGS)
    assert ranked["source_id"].tolist() == ["a"]
    assert ranked["upwind_km"].iloc[0] == pytest.approx(30, abs=0.2)
    assert ranked["angle_deg"].iloc[0] == pytest.approx(0, abs=0.5)
    # reverse the wind: now the east plant is upwind
    assert rank_upwind_sources(lat0, lon0, -5.0, 0.0, sources, SETTINGS)["source_id"].tolist() == ["b"]


def test_ranking_prefers_aligned_large_near_sources():
    lat0, lon0 = 30.0, 100.0
    aligned = _at(lat0, lon0, 0, -40)  # wind from the south (v=4): upwind is south
    skewed = _at(lat0, lon0, 15, -40)
    sources = _sources([("small-aligned", "s", "power-gas", "CN", *aligned, 2e5, 2019, "t"),
                        ("big-aligned", "b", "power-coal", "CN", *_at(lat0, lon0, 1, -45), 2e7, 2019, "t"),
                        ("big-skewed", "k", "power-coal", "CN", *skewed, 2e7, 2019, "t")])
    ranked = rank_upwind_sources(lat0, lon0, 0.0, 4.0, sources, SETTINGS)
    assert ranked["source_id"].iloc[0] == "big-aligned"
    assert set(ranked["source_id"]) == {"small-aligned", "big-aligned", "big-skewed"}


def test_a_source_at_the_antipode_is_not_upwind():
    lat0, lon0 = 40.0, -4.0  # Spain; its antipode is off New Zealand
    west, east = _at(lat0, lon0, -30, 0), _at(lat0, lon0, 20, 0)
    sources = _sources([("a", "Upwind plant", "power-coal", "ES", *west, 5e6, 2019, "t"),
                        ("far", "Antipode plant", "power-coal", "NZ", -east[0], east[1] + 180.0, 9e6, 2019, "t")])
    upwind, cross, _ = upwind_geometry(lat0, lon0, 5.0, 0.0, sources["latitude"].to_numpy(),
                                       sources["longitude"].to_numpy())
    # why it matters: the antipode of a point 20 km east projects onto the peak's plane 20 km west, upwind
    assert upwind[1] == pytest.approx(20, abs=0.5) and cross[1] < 1
    ranked = rank_upwind_sources(lat0, lon0, 5.0, 0.0, sources, SETTINGS)
    assert ranked["source_id"].tolist() == ["a"]
    assert ranked["distance_km"].iloc[0] == pytest.approx(30, abs=0.3)


def test_geometry_across_the_antimeridian():
    up, cross, angle = upwind_geometry(0.0, 179.9, 5.0, 0.0, np.array([0.0]), np.array([179.6]))
    assert up[0] == pytest.approx(0.3 * KM_PER_DEG, rel=1e-3) and angle[0] == pytest.approx(0, abs=0.1)
    box = radius_box_deg([0.0], [179.9], 50)
    assert box[2] > box[3]  # west edge > east edge: the box crosses the antimeridian


def test_attribute_queries_the_inventory_parquet_through_duckdb(tmp_path):
    lat0, lon0 = 50.0, 10.0
    sources = _sources([("a", "Upwind plant", "power-coal", "DE", *_at(lat0, lon0, -30, 0), 5e6, 2019, "t"),
                        ("b", "Downwind plant", "power-coal", "DE", *_at(lat0, lon0, 30, 0), 9e6, 2019, "t")])
    (tmp_path / "inventory").mkdir()
    pq.write_table(pa.Table.from_pandas(sources, preserve_index=False), tmp_path / "inventory" / "sources.parquet")
    events = pd.DataFrame({"latitude": [lat0], "longitude": [lon0], "wind_u_ms": [5.0], "wind_v_ms": [0.0],
                           "emission_gCO2_s": [1.0e5], "emission_gCO2_s_stderr": [2.0e4]})
    out = attribute(events, SETTINGS, cache=tmp_path)
    assert out["source_id"].tolist() == ["a"] and out["n_sources_upwind"].tolist() == [1]
    inventory_g_s = 5e6 * 1e6 / (365.25 * 86400)
    assert out["emission_ratio"].iloc[0] == pytest.approx(1.0e5 / inventory_g_s)
    assert out["source_distance_km"].iloc[0] == pytest.approx(30, abs=0.2)


def test_attribute_picks_each_events_best_ranked_source():
    """A month is attributed at once (sources sorted by latitude, each event measuring only its band): every
    event gets the first source of its own ranking, near the poles and across the antimeridian too."""
    rng = np.random.default_rng(3)
    n_src = 4000
    lat = np.concatenate([rng.uniform(-89, 89, n_src // 2), rng.uniform(45, 47, n_src // 2)])
    lon = np.concatenate([rng.uniform(-180, 180, n_src // 2), rng.uniform(-1, 1, n_src // 2)])
    emission = np.where(rng.random(n_src) < 0.2, np.nan, 10 ** rng.uniform(4, 7, n_src))
    emission[:50] = 1e6  # equal scores are possible: the earlier row wins, as in the ranking
    sources = _sources([(f"s{i}", f"plant {i}", "power-coal", "XX", lat[i], lon[i], emission[i], 2019, "t")
                        for i in range(n_src)])
    n_ev = 300
    events = pd.DataFrame({
        "latitude": np.concatenate([rng.uniform(45, 47, n_ev - 20), [89.5, -89.7, 0.0, 0.0, 10, 10, np.nan],
                                    rng.uniform(-60, 60, 13)]),
        "longitude": np.concatenate([rng.uniform(-1, 1, n_ev - 20), [0.0, 120, 179.9, -179.95, 5, 5, 5],
                                     rng.uniform(-180, 180, 13)]),
        "wind_u_ms": rng.normal(0, 6, n_ev), "wind_v_ms": rng.normal(0, 6, n_ev),
        "emission_gCO2_s": rng.uniform(1e4, 1e6, n_ev), "emission_gCO2_s_stderr": rng.uniform(1e3, 1e5, n_ev),
        "sigma_km": rng.uniform(1, 10, n_ev)})
    events.loc[n_ev - 15, ["wind_u_ms", "wind_v_ms"]] = 0.0  # calm: no sector
    out = attribute(events, SETTINGS, sources=sources)
    n_found = 0
    for i, event in events.iterrows():
        ranked = rank_upwind_sources(event["latitude"], event["longitude"], event["wind_u_ms"], event["wind_v_ms"],
                                     sources, SETTINGS)
        assert out.at[i, "n_sources_upwind"] == len(ranked)
        if ranked.empty:
            assert pd.isna(out.at[i, "source_id"])
            continue
        n_found += 1
        best = ranked.iloc[0]
        assert out.at[i, "source_id"] == best["source_id"]
        assert out.at[i, "source_upwind_km"] == best["upwind_km"]
        assert out.at[i, "source_distance_km"] == best["distance_km"]
        ratio = event["emission_gCO2_s"] / (best["emission_tCO2_yr"] * 1e6 / SECONDS_PER_YEAR)  # g/s over g/s
        assert out.at[i, "emission_ratio"] == pytest.approx(ratio, rel=1e-12, nan_ok=True)
        carried = carried_sources(ranked, event["sigma_km"], event["wind_u_ms"], event["wind_v_ms"], SETTINGS)
        assert out.at[i, "carried_tCO2_yr"] == pytest.approx(carried["carried_tCO2_yr"].sum(), rel=1e-9)
        assert out.at[i, "n_sources_carried"] == int((carried["weight"] >= 0.5).sum())
    assert 50 < n_found < n_ev


def test_a_plume_over_a_cluster_is_compared_with_the_sources_it_carries():
    """Two plants on the wind axis (20 and 40 km upwind) and one 30 km off it: the crossing carries the first two
    (weight 1), not the third; the headline ratio is the estimate over their sum, not over the best one alone."""
    lat0, lon0 = -26.0, 29.0  # wind from the west (u=5): upwind is west
    sources = _sources([("k", "Kendal", "power-coal", "ZA", *_at(lat0, lon0, -20, 0), 20e6, 2019, "t"),
                        ("m", "Matla", "power-coal", "ZA", *_at(lat0, lon0, -40, 0.5), 15e6, 2019, "t"),
                        ("o", "Off axis", "power-coal", "ZA", *_at(lat0, lon0, -40, 30), 10e6, 2019, "t")])
    estimate_g_s = 35e6 * 1e6 / SECONDS_PER_YEAR
    events = pd.DataFrame({"latitude": [lat0], "longitude": [lon0], "wind_u_ms": [5.0], "wind_v_ms": [0.0],
                           "sigma_km": [3.0], "emission_gCO2_s": [estimate_g_s], "emission_gCO2_s_stderr": [0.0]})
    out = attribute(events, SETTINGS, sources=sources).iloc[0]
    assert out["n_sources_upwind"] == 3 and out["n_sources_carried"] == 2
    # the off-axis plant: 30 km off at 40 km upwind, where the wind direction's error (atan 1.5/5 = 17 deg) spreads
    # the axis by 12 km: weight exp(-0.5 x 30^2 / (3^2 + 12^2)) = 0.053
    assert out["carried_tCO2_yr"] == pytest.approx(35e6 + 10e6 * 0.053, rel=0.002)
    assert out["emission_ratio_carried"] == pytest.approx(35 / 35.53, rel=0.002)
    assert out["emission_ratio"] > 1.7  # against one plant alone
    # the rule: a Gaussian in the cross-wind offset, wider with distance upwind by the wind direction's error
    assert carried_weight(10.0, 0.0, 3.0, 5.0, 1.5) == pytest.approx(1.0)
    assert carried_weight(0.0, 3.0, 3.0, 5.0, 1.5) == pytest.approx(np.exp(-0.5))
    assert carried_weight(0.0, 1.0, 0.5, 5.0, 1.5) == pytest.approx(np.exp(-0.5 / 4))  # at least 2 km wide
    assert carried_weight(50.0, 10.0, 3.0, 5.0, 1.5) > carried_weight(10.0, 10.0, 3.0, 5.0, 1.5)
