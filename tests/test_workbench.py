"""Unit tests of the workbench's pure modules: controls, URL state, staged detection keys, tables, maps, exports,
uploads, queries."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_MONTH
from orbit_factory import add_gaussian, add_step, crafted_orbit

from core.batch import PEAK_COLUMNS, peaks_table
from core.cache import SoundingsCache
from core.detect import detect_orbit, find_candidates, fit_candidates, judge, prepare_orbit
from core.settings import DetectionSettings, all_settings, fit_stage_keys
from core.vetting import PeakKey, VettingStore
from workbench import basemap, charts, controls, exports, maps, pipeline, queries, tables, uploads, view


# ------------------------------------------------------------------------------------------------ controls

def test_every_setting_has_a_control_with_a_step_landing_on_its_default():
    every = controls.controls()
    assert set(every) == set(all_settings())
    labels = [c.label for c in every.values()]
    assert len(labels) == len(set(labels)), "labels must be unique (the browser finds sliders by label)"
    for key, c in every.items():
        s = all_settings()[key]
        assert c.help.endswith(f"(`{key}`)") and s.meaning.split()[0].lower() in c.help.lower()
        if c.kind == "toggle":
            assert s.kind is bool
            continue
        if c.kind == "choice":  # round values on a log scale, the default and every preset's among them
            assert list(c.options) == sorted(c.options) and s.minimum <= c.options[0] < c.options[-1] <= s.maximum
            assert {DetectionSettings(preset=p)[key] for p in DetectionSettings.preset_names()} <= set(c.options)
            assert 8 <= len(c.options) <= 40
            continue
        assert type(c.minimum) is type(c.maximum) is type(c.step)
        for preset in DetectionSettings.preset_names():
            k = (DetectionSettings(preset=preset)[key] - s.minimum) / c.step
            assert abs(k - round(k)) < 1e-6, (key, preset)
        assert (s.maximum - s.minimum) / c.step <= 5000
    assert controls.label(all_settings()["rules.too_narrow.min_sigma_km"]) == "too-narrow: min sigma [km]"
    assert controls.controls()["rules.support.max_top_share"].tidy(0.30000000000000004) == 0.3
    # the analyst sets a false-alarm rate: a choice of round rates, drawn first
    rate = every[controls.FALSE_ALARMS]
    assert rate.kind == "choice" and rate.label == "false events per 1,000 km"
    assert {0.01, 0.1, 0.2, 1.0} <= set(rate.options)
    grouped = {key for key in every for _, prefix in controls.GROUPS if key.startswith(prefix)}
    ruled = {c.key for _, _, items in controls.rule_sections() for c in items}
    assert grouped | ruled == set(every), "every setting is in the sidebar"


def test_rule_sections_follow_the_declared_rules():
    from core.settings import RULES

    sections = controls.rule_sections()
    assert [name for name, _, _ in sections] == [r.name for r in RULES]
    for (name, _, items), rule in zip(sections, RULES):
        assert items[0].kind == "toggle" and items[0].label == name
        assert [c.key for c in items[1:]] == [s.key for s in rule.settings]


# ------------------------------------------------------------------------------------------------ URL state

def test_url_params_round_trip():
    settings = DetectionSettings({"rules.significance.min_snr": 6.5, "rules.support.enabled": False,
                                  "fit.max_nfev": 300}, preset="chevallier-2020")
    params = view.to_params("2019-08", 27054, 2019080205181564, settings,
                            {"sectors": "power-coal,city", "countries": "", "bogus": "x"})
    assert params["preset"] == "chevallier-2020" and params["orbit"] == "27054"
    assert params["rules.significance.min_snr"] == "6.5" and params["fit.max_nfev"] == "300"
    assert params["sectors"] == "power-coal,city" and "countries" not in params and "bogus" not in params
    parsed, back, warnings = view.parse_params(params)
    assert not warnings
    assert parsed == {"month": "2019-08", "orbit": 27054, "peak": 2019080205181564,
                      "extra": {"sectors": "power-coal,city"}}
    assert back == settings and back.preset == "chevallier-2020"
    assert view.link("/orbit", params).startswith("/orbit?month=2019-08&orbit=27054")


@pytest.mark.parametrize("key, text, value, warned", [
    ("rules.significance.min_snr", "7", 7.0, False),
    ("rules.significance.min_snr", "-3", 0.0, True),  # clamped
    ("fit.max_nfev", "10", 20, True),  # clamped to the minimum
    ("fit.max_nfev", "250.4", 250, True),  # not a whole number
    ("fit.window_km", "wide", None, True),
    ("fit.window_km", "nan", None, True),
    ("rules.support.enabled", "false", False, False),
    ("rules.support.enabled", "maybe", None, True),
])
def test_parse_setting_clamps_or_refuses_with_a_warning(key, text, value, warned):
    got, warning = view.parse_setting(key, text)
    assert got == value and type(got) is type(value)
    assert bool(warning) is warned
    if warning:
        assert key in warning


def test_invalid_view_params_fall_back():
    parsed, settings, warnings = view.parse_params({"month": "2019-8", "orbit": "x", "peak": "1.5",
                                                    "preset": "none", "fit.nothing": "3"})
    assert parsed == {"month": None, "orbit": None, "peak": None, "extra": {}}
    assert settings == DetectionSettings()
    assert len(warnings) == 5


# ------------------------------------------------------------------------------------------------ staged detection

class _Recording:
    """Settings that remember which keys were read."""

    def __init__(self, settings):
        self.settings, self.read = settings, set()

    def __getitem__(self, key):
        self.read.add(key)
        return self.settings[key]

    def enabled(self, name):
        self.read.add(f"rules.{name.replace('-', '_')}.enabled")
        return self.settings.enabled(name)


def _orbit_with_everything():
    df = crafted_orbit(1200, seed=3)
    df = add_gaussian(add_gaussian(df, 300.0, 9.0, 4.0), 600.0, -9.0, 4.0)  # a plume and a depletion
    return prepare_orbit(add_step(df, 900.0, 1.2))  # and a land/water step


@pytest.mark.parametrize("preset, stride", [("recommended", 0), ("chevallier-2020", 0), ("recommended", 15)])
def test_the_fit_stage_reads_only_the_fit_stage_settings(preset, stride):
    """The workbench caches screen + fits on the fit-stage settings only: core must not read any other there."""
    od = _orbit_with_everything()
    rec = _Recording(DetectionSettings(preset=preset).replace({"screen.stride": stride}))
    fit_candidates(od, find_candidates(od, rec), rec)
    outside = rec.read - fit_stage_keys()
    assert not outside, f"core's fit stage reads {outside}: declare them with fit_stage=True in core.settings"
    assert "rules.depletion.enabled" in rec.read or stride
    assert {"noise.calibrate", "detection.mirror"} <= rec.read
    # the month's threshold only judges: changing it must not refit
    for key in ("detection.false_alarms_per_1000km", "detection.min_mirror_events", "detection.fallback_significance"):
        assert key not in fit_stage_keys()


def test_staged_rules_only_rejudge_equals_a_full_detection():
    od = _orbit_with_everything()
    base = DetectionSettings()
    fitted = fit_candidates(od, find_candidates(od, base), base)
    for change in ({"rules.significance.min_snr": 8.0}, {"rules.support.enabled": False},
                   {"rules.too_narrow.min_sigma_km": 5.0, "emission.min_wind_perp_ms": 2.0}):
        settings = base.replace(change)
        assert pipeline.fit_items(settings) == pipeline.fit_items(base)
        staged = judge(od, fitted, settings)
        full = detect_orbit(od.soundings.drop(columns=["x_km", "bearing_deg", "frame"]), settings, calibrate=False)
        pd.testing.assert_frame_equal(staged.reset_index(drop=True), full.reset_index(drop=True))


# ------------------------------------------------------------------------------------------------ tables

@pytest.fixture(scope="module")
def orbit_candidates():
    od = _orbit_with_everything()
    return od, detect_orbit(od.soundings.drop(columns=["x_km", "bearing_deg", "frame"]), DetectionSettings())


def test_funnel_counts_each_candidate_once_and_ends_at_the_accepted_events(orbit_candidates):
    _, cands = orbit_candidates
    settings = DetectionSettings()
    f = tables.funnel(cands, settings)
    accepted = int((cands["status"] == "accepted").sum())
    assert f["removed"].sum() == len(cands) - accepted
    assert f["remaining"].iloc[-1] == accepted >= 1
    assert f["stage"].tolist() == tables.funnel_stages(settings)
    assert (f["fail_any"] >= f["removed"]).all()


def test_candidate_kinds_curves_and_window(orbit_candidates):
    od, cands = orbit_candidates
    labelled = tables.label_candidates(cands)
    assert set(labelled["kind"]) <= {"accepted", "rejected", "duplicate", "not fitted", "mirror"}
    assert (labelled["kind"] == "accepted").sum() == (cands["status"] == "accepted").sum()
    rows = tables.event_rows(cands)
    assert rows["kind"].iloc[0] == "accepted" and "duplicate" not in set(rows["kind"])
    curves = tables.fit_curves(cands, n=40)
    fitted = labelled[labelled["kind"].isin(["accepted", "rejected", "duplicate"]) & ~labelled["mirror"]]
    assert curves["cand"].nunique() == len(fitted) and len(curves) == 40 * len(fitted)
    best = rows.iloc[0]
    window = tables.peak_window(od.soundings, best, 200.0)
    assert window["d_km"].abs().max() <= 100.0
    assert np.allclose(window["xco2"] - window["model_ppm"], window["residual_ppm"])
    params = tables.parameters_table(best)
    assert params["value"].dtype == float and params.loc[0, "stderr"] > 0


def test_peak_window_models_the_neighbours_the_peak_was_fitted_with():
    """A weak plume 25 km from a strong one: its fit subtracted the strong one's Gaussian, so the peak page's model
    holds it too (the residuals are then flat where the strong plume is, as the fit saw them)."""
    df = add_gaussian(add_gaussian(crafted_orbit(1000, seed=4), 500.0, 60.0, 6.0), 525.0, 8.0, 2.0)
    od = prepare_orbit(df)
    cands = detect_orbit(df, DetectionSettings())
    weak = cands[cands["fixed_reason"].eq("") & (cands["center_km"] - 525.0).abs().lt(3)].iloc[0]
    assert weak["n_neighbours"] == 1 and weak["neighbours"] != ""
    with_them = tables.peak_window(od.soundings, weak, 200.0, cands)
    alone = tables.peak_window(od.soundings, weak, 200.0)
    at_strong = (with_them["x_km"] - 500.0).abs() < 3
    assert with_them["neighbours_ppm"].max() == pytest.approx(60.0 / (6.0 * np.sqrt(2 * np.pi)), rel=0.15)
    assert abs(with_them.loc[at_strong, "residual_ppm"].mean()) < 0.5
    assert alone.loc[at_strong, "residual_ppm"].mean() > 2.5
    assert np.allclose(with_them["xco2"] - with_them["model_ppm"], with_them["residual_ppm"])


def test_mirror_fits_are_hidden_by_default_and_drawn_the_right_way_up(orbit_candidates):
    """The depletion at 600 km is fitted upside down (sign -1): its curve and its peak window dip, as the data do."""
    od, cands = orbit_candidates
    mirror = tables.event_rows(cands, mirrors=True).query("kind == 'mirror'")
    mirror = mirror[(mirror["center_km"] - 600.0).abs() < 5].iloc[0]
    assert mirror["sign"] == -1 and mirror["amplitude_ppm_km"] > 0 and mirror["rejected_by"].startswith("mirror")
    assert not tables.event_rows(cands)["mirror"].any()  # hidden unless asked
    assert not tables.fit_curves(cands)["kind"].eq("mirror").any()
    curve = tables.fit_curves(cands, n=41, mirrors=True).query("cand == @mirror.cand")
    assert len(curve) == 41 and curve["kind"].iloc[0] == "mirror"
    centre, ends = curve["xco2_fit"].iloc[20], curve["xco2_fit"].iloc[[0, -1]].mean()
    assert centre < ends - 0.5  # dips by about the depletion's 9 / (4 sqrt(2 pi)) = 0.9 ppm
    near = od.soundings[(od.soundings["x_km"] - mirror["center_km"]).abs() < 2]
    assert abs(centre - near["xco2"].mean()) < 1.0
    window = tables.peak_window(od.soundings, mirror, 200.0, cands)
    core = window["d_km"].abs() < mirror["sigma_km"]
    assert window.loc[core, "model_ppm"].mean() < window.loc[core, "background_ppm"].mean()
    assert abs(window["residual_ppm"].mean()) < 0.2
    assert tables.mirror_events_above(cands) == int((cands["is_event"] & cands["rejected_by"].eq("mirror")).sum())


def test_threshold_note_names_the_method_and_the_fallback_setting():
    from core.false_alarms import MonthThreshold

    settings = DetectionSettings()
    counted = MonthThreshold(2.6, "mirror", 280_000.0, 93, 180, 55, 0.19, (0.15, 0.26), "")
    level, text = tables.threshold_note(counted, settings)
    assert level == "info" and text.startswith("Expected false events: 0.19 per 1,000 km (0.15-0.26")
    assert "threshold 2.60 from 180 mirror events" in text and "burst-like" not in text
    bursts = dataclasses.replace(counted, n_accepted=60, n_burst_like=14)  # 14 / 280,000 km = 0.05 per 1,000 km
    level, text = tables.threshold_note(bursts, settings)
    assert "14 of the 60 accepted events are burst-like" in text and "would reach 0.24 per 1,000 km" in text
    assert "rules.frame_aligned.reject_burst_like" in text
    strict = settings.replace({"rules.frame_aligned.reject_burst_like": True})
    assert "burst-like" not in tables.threshold_note(bursts, strict)[1]
    fallback = MonthThreshold(4.0, "fallback", 9000.0, 6, 5, 0, 0.0, (0.0, 0.33), "")
    level, text = tables.threshold_note(fallback, settings)
    assert level == "warning" and "detection.fallback_significance" in text and "detection.min_mirror_events" in text
    level, text = tables.threshold_note(None, settings.replace({"detection.mirror": False}))
    assert level == "info" and "detection.mirror" in text and "off" in text


def test_upwind_sector_opens_upwind_of_the_peak():
    east, north = tables.upwind_sector_km(5.0, 0.0, 100.0, 30.0, 10.0)  # wind to the east
    assert np.isclose(east[0], east[-1]) and np.isclose(north[0], north[-1])  # closed
    assert east.min() == pytest.approx(-100.0) and east.max() <= 1e-9  # reaches 100 km west, not east
    assert north.max() == pytest.approx(100 * np.tan(np.radians(30)) + 10)
    assert tables.upwind_sector_km(0.0, 0.0, 100.0, 30.0, 10.0)[0].size == 0  # no wind, no sector


def test_east_north_km_inverts_offset_latlon():
    lat, lon = tables.offset_latlon(60.0, 179.5, [-80.0, 0.0, 120.0], [30.0, -50.0, 0.0])  # across the date line
    east, north = tables.east_north_km(60.0, 179.5, lat, lon)
    assert np.allclose(east, [-80.0, 0.0, 120.0]) and np.allclose(north, [30.0, -50.0, 0.0])


def test_sector_plan_frames_place_the_track_and_the_sources_around_the_peak():
    x_km = np.arange(-200.0, 200.0, 1.0)
    soundings = pd.DataFrame({"x_km": x_km, "latitude": 45.0 + x_km / 111.195, "longitude": np.full(x_km.size, 10.0),
                              "xco2": np.full(x_km.size, 411.0)})
    row = pd.Series({"latitude": 45.0, "longitude": 10.0, "center_km": 0.0, "intercept_ppm": 410.0,
                     "wind_u_ms": 5.0, "wind_v_ms": 0.0})
    ranked = pd.DataFrame({"name": ["A", "B"], "sector": ["power-coal", "power-gas"], "country": ["X", "Y"],
                           "latitude": [45.1, 45.0], "longitude": [10.0, 9.5], "emission_tCO2_yr": [2e6, 5e5],
                           "upwind_km": [1.0, 39.3]})
    track, ring, sources, wind = tables.sector_plan_frames(row, soundings, ranked, 100.0, DetectionSettings())
    assert track["north_km"].abs().max() <= 60.001 and len(track) == 61  # within 0.6 L (-60..60 km), every second
    assert np.allclose(track["anomaly_ppm"], 1.0) and np.allclose(track["east_km"], 0.0)
    assert sources["north_km"].iloc[0] == pytest.approx(11.12, abs=0.01)  # 0.1 deg north
    assert sources["east_km"].iloc[1] == pytest.approx(-0.5 * 111.195 * np.cos(np.radians(45.0)), rel=1e-6)
    assert list(sources["rank"]) == [1, 2] and list(sources["emission_MtCO2_yr"]) == [2.0, 0.5]
    assert ring["east_km"].min() == pytest.approx(-100.0)  # the sector opens upwind (west of a wind to the east)
    assert (wind["x2"].iloc[0], wind["y2"].iloc[0]) == (20.0, 0.0) and len(wind) == 3  # 4 km per m/s, with a head
    assert (wind["x2"].iloc[1:] < 20.0).all()  # the head strokes point back from the tip


def test_carried_table_lists_the_first_sources_in_mt_and_km():
    carried = pd.DataFrame({"name": [f"S{i}" for i in range(12)], "sector": "power-coal", "country": "X",
                            "emission_tCO2_yr": np.arange(12) * 1e6 + 2.5e5, "weight": 0.5,
                            "carried_tCO2_yr": np.arange(12) * 5e5, "upwind_km": 12.34, "crosswind_km": 1.26,
                            "score": 3.0})
    table = tables.carried_table(carried)
    assert list(table.index) == [f"S{i}" for i in range(10)]  # 10 at most, in the given order
    assert table.loc["S1", "inventory [Mt/yr]"] == "1.25" and table.loc["S1", "carried [Mt/yr]"] == "0.50"
    assert (table.loc["S1", "upwind [km]"], table.loc["S1", "off axis [km]"]) == ("12", "1.3")


def test_sector_plan_has_equal_km_scales_and_holds_everything():
    track = pd.DataFrame({"east_km": [-5.0, 0.0, 5.0], "north_km": [-40.0, 0.0, 40.0], "anomaly_ppm": [0, 2, 0]})
    ring = pd.DataFrame({"east_km": [0.0, -100.0, -100.0, 0.0], "north_km": [0.0, 60.0, -60.0, 0.0]})
    sources = pd.DataFrame({"east_km": [-70.0], "north_km": [10.0], "name": ["A"], "sector": ["power-coal"],
                            "country": ["X"], "emission_MtCO2_yr": [5.0], "upwind_km": [70.0], "rank": [1]})
    wind = pd.DataFrame(tables.arrow_km(20.0, 0.0), columns=["x", "y", "x2", "y2"]).assign(label="wind 5.0 m/s")
    spec = charts.sector_plan_chart(track, ring, sources, wind, width_px=400, height_px=300).to_dict()
    scales = [layer["encoding"]["x"]["scale"]["domain"] for layer in spec["layer"][:1]] + \
        [layer["encoding"]["y"]["scale"]["domain"] for layer in spec["layer"][:1]]
    (x0, x1), (y0, y1) = scales
    assert (x1 - x0) / 400 == pytest.approx((y1 - y0) / 300)  # km per pixel the same both ways
    assert x0 < -100 and x1 > 20 and y0 < -60 and y1 > 60  # the sector, the track and the wind arrow inside


# ------------------------------------------------------------------------------------------------ maps

def test_maps_use_the_offline_basemap_and_numeric_positions():
    points = pd.DataFrame({"orbit": [1, 1], "latitude": np.float32([45.0, 45.1]),
                           "longitude": np.float32([10.0, 10.0]), "xco2": [410.0, 411.0],
                           "anomaly_ppm": [-0.5, 0.5], "wind_u_ms": np.float32([3.0, 3.0]),
                           "wind_v_ms": np.float32([1.0, 1.0])})
    layers = [maps.track_layer(points), maps.wind_layer(tables.wind_arrows(points, 10.0))]
    spec = json.loads(maps.deck(layers, points["latitude"], points["longitude"]).to_json())
    assert spec["mapStyle"] == basemap.STYLE_URL and spec["mapProvider"] == "carto"
    for layer in spec["layers"]:
        for row in layer["data"]:
            for key in ("longitude", "latitude"):
                assert not isinstance(row.get(key, 0.0), str)
            for key in ("source", "target"):
                assert all(isinstance(v, float) for v in row.get(key, []))
    style = json.loads(basemap.STYLE_FILE.read_text())
    assert style["version"] == 8 and "http" not in basemap.STYLE_FILE.read_text()[:2000]
    assert all("url" not in src and "tiles" not in src for src in style["sources"].values())


def test_compact_deck_is_pydecks_json_without_whitespace():
    import pydeck as pdk

    points = pd.DataFrame({"orbit": [1, 2], "latitude": [45.0, 46.0], "longitude": [10.0, 11.0],
                           "xco2": [410.0, 411.5], "anomaly_ppm": [-0.5, 1.0]})
    spec = maps.deck([maps.track_layer(points)], points["latitude"], points["longitude"], height=300)
    reference = pdk.Deck(layers=[maps.track_layer(points)], initial_view_state=maps.view_for(points["latitude"], points["longitude"]),
                         views=[pdk.View(type="MapView", controller=maps.CONTROLLER, repeat=False)], map_provider="carto",
                         map_style=basemap.STYLE_URL, tooltip=maps.TOOLTIP, height=300).to_json()
    assert json.loads(spec.to_json()) == json.loads(reference)
    assert "\n" not in spec.to_json() and len(spec.to_json()) < 0.7 * len(reference)
    assert spec._tooltip == maps.TOOLTIP and len(spec.layers) == 0
    view = json.loads(spec.to_json())["views"][0]
    assert view["controller"]["scrollZoom"] is False and view["repeat"] is False  # the wheel scrolls the page


def test_layer_units_are_literals_not_expressions():
    """pydeck reads a string property as a JavaScript expression: radiusUnits "pixels" must reach deck.gl as the
    string, or every source becomes a disc over the whole map."""
    sources = pd.DataFrame({"latitude": [36.9], "longitude": [126.4], "emission_tCO2_yr": [2.4e5],
                            "sector": ["power-gas"], "name": ["D"], "country": ["KR"]})
    for layer in (maps.sources_layer(sources, px_per_sqrt_mt=1.3), maps.sources_layer(sources, ranked=True)):
        spec = json.loads(maps.deck([layer], [36.9], [126.4]).to_json())["layers"][0]
        assert spec.get("radiusUnits", "meters") in ("meters", "pixels")


def test_a_clicked_map_point_names_its_peak_and_the_world_is_drawn_once():
    events = pd.DataFrame({"orbit": [27054], "sounding_id": [2019080104383807], "latitude": [36.0],
                           "longitude": [126.0], "status": ["accepted"], "rejected_by": [""], "delta_ppm": [2.0],
                           "emission_MtCO2_yr": [30.0]})
    layer = maps.peaks_layer(events)
    point = dict(layer.data[0])
    assert point["peak"] == "2019080104383807"  # text: a JSON number would lose the id's last digits
    selection = {"indices": {"accepted": [0]}, "objects": {"accepted": [point]}}
    assert maps.picked_peak(selection) == (27054, 2019080104383807)
    assert maps.picked_peak({"indices": {}, "objects": {"sources": [{"label": "x"}]}}) is None
    assert maps.picked_peak(None) is None
    view = {"longitude": 126.0, "latitude": 36.0, "zoom": 3.0}
    assert maps.pixel_of(view, 126.0, 36.0, 800, 400) == (400.0, 200.0)  # the centre
    x, y = maps.pixel_of(view, 126.0 + 90, 36.0, 800, 400)
    assert x == pytest.approx(400 + 512 * 8 / 4) and y == pytest.approx(200)  # a quarter world east at zoom 3
    assert maps.pixel_of(view, 126.0, 40.0, 800, 400)[1] < 200  # north is up
    world = maps.view_for([-60, 70], [-170, 170])
    assert world.zoom >= maps.MIN_ZOOM  # 512 px x 2^zoom >= the map's width: one world, no copies


def test_vega_spec_carries_its_datasets_as_arrow_bytes():
    import altair as alt
    import pyarrow as pa

    from workbench import ui

    frame = pd.DataFrame({"x_km": np.arange(6000.0), "xco2": np.linspace(400, 420, 6000)})  # over Altair's 5000
    spec = ui.vega_spec(alt.Chart(frame).mark_point().encode(x="x_km:Q", y="xco2:Q"))
    (name, data), = spec["datasets"].items()
    table = pa.ipc.open_stream(data).read_all()
    assert spec["data"]["name"] == name and table.num_rows == 6000
    assert np.allclose(table.column("xco2").to_numpy(), frame["xco2"])


def test_month_stamp_moves_when_a_day_file_is_replaced_added_or_removed(tmp_path):
    import os
    import time

    cache = SoundingsCache(tmp_path)
    assert queries.data_stamp(cache, "2019-08") == "0:0" and cache.months() == []
    folder = tmp_path / "soundings" / "month=2019-08"
    folder.mkdir(parents=True)
    (tmp_path / "soundings" / "month=2019-09").mkdir()  # an empty month folder is no month
    (folder / ".2019-08-01.parquet.tmp").write_bytes(b"x")
    assert cache.months() == []
    stamps = []
    for step in ("add", "replace", "add", "remove"):
        time.sleep(0.01)
        if step == "add":
            (folder / f".tmp{len(stamps)}").write_bytes(b"new")
            os.replace(folder / f".tmp{len(stamps)}", folder / f"2019-08-0{len(stamps) + 1}.parquet")
        elif step == "replace":
            (folder / ".tmp").write_bytes(b"newer")
            os.replace(folder / ".tmp", folder / "2019-08-01.parquet")
        else:
            (folder / "2019-08-01.parquet").unlink()
        stamps.append(queries.data_stamp(cache, "2019-08"))
    assert len(set(stamps)) == 4 and [s.split(":")[0] for s in stamps] == ["1", "1", "2", "1"]
    assert cache.months() == ["2019-08"]


def test_view_frames_a_cluster_across_the_antimeridian_but_not_the_globe():
    across = maps.view_for([10, 11], [179.5, -179.5])
    assert abs(abs(across.longitude) - 180) < 1 and across.zoom > 3
    world = maps.view_for([0, 30, -20], [-150, 0, 120])
    assert world.zoom < 1.5


# ------------------------------------------------------------------------------------------------ exports

def test_vetted_csv_has_one_row_per_plume_with_its_decision_and_provenance(tmp_path, orbit_candidates):
    """Two decisions on one plume under two settings are one row (the latest); the row says under which preset
    and settings, how many soundings the fit had, which Lite files hold the peak's day, and links to the peak."""
    import core

    _, cands = orbit_candidates
    peak = cands[cands["status"] == "accepted"].iloc[0]
    first, settings = DetectionSettings(), DetectionSettings({"rules.significance.min_snr": 5.0})
    store = VettingStore(tmp_path)
    sid = int(peak["sounding_id"])
    store.record(PeakKey("2019-08", int(peak["orbit"]), sid, first.hash), "unsure", "first look", "ana",
                 peak=exports.peak_snapshot(peak), settings={**first.as_dict(), "preset": "recommended"},
                 software_version="0.0.9")
    store.record(PeakKey("2019-08", int(peak["orbit"]), sid, settings.hash), "accept", "wind checked", "ben",
                 peak=exports.peak_snapshot(peak), settings={**settings.as_dict(), "preset": "recommended"},
                 software_version=core.__version__)
    store.record(PeakKey("2019-08", 1, 2, "h"), "reject", "burst", "ana")
    day = pd.Timestamp(peak["time"]).strftime("%Y-%m-%d")
    manifest = pd.DataFrame({"month": ["2019-08", "2019-08", "2019-09"], "day": [day, "2019-08-31", "2019-09-01"],
                             "file_name": ["b.nc4", "a.nc4", "c.nc4"]})
    table = pd.read_csv(pd.io.common.BytesIO(exports.vetted_csv(store.history(), manifest)))
    assert list(table.columns[:len(PEAK_COLUMNS)]) == PEAK_COLUMNS
    assert len(table) == 2
    row = table[table["sounding_id"] == sid].iloc[0]
    assert (row["decision"], row["analyst"], row["note"], row["n_decisions"]) == ("accept", "ben", "wind checked", 2)
    assert row["rules_hash"] == settings.hash and row["preset"] == "recommended"
    assert json.loads(row["settings_json"])["rules.significance.min_snr"] == 5.0
    assert row["software_version"] == core.__version__ and row["data_files"] == "b.nc4"  # the peak's day only
    assert row["n_soundings"] == peak["n_window"] > 0
    assert row["peak_link"] == (f"/peak?month=2019-08&orbit={int(peak['orbit'])}&peak={sid}&preset=recommended"
                                "&rules.significance.min_snr=5.0")
    assert np.isclose(row["delta_ppm"], peak["delta_ppm"]) and row["status"] == "accepted"
    # after the contract: the significance, the month's threshold and false rate, the orbit's noise
    after = list(table.columns[len(PEAK_COLUMNS):len(PEAK_COLUMNS) + len(exports.SIGNIFICANCE_COLUMNS)])
    assert after == exports.SIGNIFICANCE_COLUMNS
    for column in ("significance", "significance_threshold", "month_false_per_1000km", "noise_scale",
                   "correlated_ppm"):
        assert np.isclose(row[column], peak[column], equal_nan=True), column
    assert row["threshold_method"] == peak["threshold_method"] and row["noise_fallback"] == peak["noise_fallback"]
    # the CLI's peaks table carries them too (after its contract columns)
    assert set(exports.SIGNIFICANCE_COLUMNS) <= set(peaks_table(cands).columns)
    only = pd.read_csv(pd.io.common.BytesIO(exports.vetted_csv(store.history(), manifest, ["reject"])))
    assert only["decision"].tolist() == ["reject"] and only["data_files"].isna().all()  # no snapshot: no time


def test_settings_toml_round_trip_and_bad_files():
    settings = DetectionSettings({"rules.significance.min_snr": 6.0}, preset="chevallier-2020")
    assert exports.parse_settings_upload(exports.settings_toml(settings)) == settings
    for data, needle in ((b"\xff\xfe", "UTF-8"), (b"[rules\n", "TOML"), (b"[fit]\nwindow_km = 5000.0\n", "window_km"),
                         (b"[fit]\nbogus = 1\n", "bogus")):
        with pytest.raises(ValueError, match=needle):
            exports.parse_settings_upload(data, "x.toml")


# ------------------------------------------------------------------------------------------------ uploads, queries

def test_uploads_are_validated_then_ingested(tmp_path):
    from lite_factory import sounding_columns, write_lite

    (tmp_path / "src").mkdir()
    good = write_lite(tmp_path / "src", sounding_columns(800, day=dt.date(2019, 8, 5)), day=dt.date(2019, 8, 5))
    cache = SoundingsCache(tmp_path / "cache")
    checked = uploads.save_and_check([(good.name, good.read_bytes()), ("../evil.nc4", b"junk"),
                                      ("notes.txt", b"x")], cache)
    assert [c.ok for c in checked] == [True, False, False]
    assert checked[1].name == "evil.nc4" and not (tmp_path / "cache" / "raw" / "evil.nc4").exists()
    assert not (uploads.upload_dir(cache) / "evil.nc4").exists()
    seen = []
    summary = uploads.ingest_checked(checked, cache, on_file=lambda i, n, r: seen.append((i, n)))
    assert summary.n_bad == 0 and seen == [(1, 1)] and cache.months() == ["2019-08"]


def test_queries_over_the_small_cache(small_cache):
    cache = SoundingsCache(small_cache)
    orbits = queries.orbits_table(cache, SMALL_MONTH)
    month = cache.read_month(SMALL_MONTH)
    assert orbits["soundings"].sum() == len(month)
    assert sorted(orbits["orbit"]) == sorted(month["orbit"].unique())
    points = queries.track_points(cache, SMALL_MONTH, max_points=300)
    assert 0 < len(points) <= 600 and points["anomaly_ppm"].abs().max() < 20
    orbit = int(orbits["orbit"].iloc[0])
    one = queries.orbit_soundings(cache, SMALL_MONTH, orbit)
    assert len(one) == int(orbits["soundings"].iloc[0]) and one["sounding_id"].is_monotonic_increasing
    assert queries.daily_mean(cache, SMALL_MONTH)["soundings"].sum() == len(month)
    stamp = queries.data_stamp(cache, SMALL_MONTH)
    assert stamp.startswith(f"{len(cache.day_files(SMALL_MONTH))}:")
    peaks = pd.DataFrame({"orbit": [1, 2], "sounding_id": [1, 2], "emission_MtCO2_yr": [5.0, 1.0],
                          "source_id": ["nope", None]})
    assert queries.inventory_join(peaks, ["power-coal"], None, cache=small_cache).empty


def test_month_is_the_orbits_judged_then_attributed_once_and_kept(small_cache):
    # settings no other test uses: the process keeps months, and AppTest pages share this process
    root, settings = str(small_cache), DetectionSettings({"rules.significance.min_snr": 2.45})
    stamp = queries.data_stamp(SoundingsCache(small_cache), SMALL_MONTH)
    orbits = sorted(int(o) for o in queries.orbits_table(SoundingsCache(small_cache), SMALL_MONTH)["orbit"])
    _forget_months()  # else a month held for other judging settings is re-judged at once (no per-orbit progress)
    seen = []
    month = pipeline.month_candidates(root, SMALL_MONTH, stamp, settings, orbits,
                                      on_orbit=lambda i, n, orbit: seen.append(orbit))
    assert seen == orbits and len(month) > 0
    # kept for the process: the second call computes nothing and returns the same table
    again = pipeline.month_candidates(root, SMALL_MONTH, stamp, settings, orbits, on_orbit=lambda *a: seen.append(0))
    assert again is month and 0 not in seen
    # attributing the month at once equals attributing orbit by orbit; each orbit judged at the month's threshold
    assert month["significance_threshold"].nunique() == 1
    by_orbit = pd.concat([pipeline.orbit_candidates(root, SMALL_MONTH, o, stamp, settings, orbits) for o in orbits],
                         ignore_index=True)
    pd.testing.assert_frame_equal(month[VERDICT_COLUMNS].reset_index(drop=True), by_orbit[VERDICT_COLUMNS])


def _forget_months():
    for kind in ("month", "month-settings", "calibration"):
        pipeline._held(kind)[0].clear()


@pytest.mark.parametrize("change", [{"rules.significance.min_snr": 3.1, "rules.support.min_frames": 3},
                                    {"detection.false_alarms_per_1000km": 0.6, "rules.step_like.enabled": False,
                                     "attribution.half_angle_deg": 20.0},
                                    {"detection.mirror": False}])
def test_a_judging_change_re_judges_the_held_month_as_judging_every_orbit_again(small_cache, change):
    """A month table held for other settings that differ only in judging is re-judged at once: the same table,
    every column, as judging the orbits again (a fit-stage change is never taken that way)."""
    root = str(small_cache)
    stamp = queries.data_stamp(SoundingsCache(small_cache), SMALL_MONTH)
    orbits = sorted(int(o) for o in queries.orbits_table(SoundingsCache(small_cache), SMALL_MONTH)["orbit"])
    base = DetectionSettings({"rules.significance.min_snr": 2.55, "detection.min_mirror_events": 3})
    target = base.replace(change)
    fit_change = not pipeline.judging_only(base, target)
    _forget_months()
    pipeline.month_candidates(root, SMALL_MONTH, stamp, base, orbits)
    seen = []
    fast = pipeline.month_candidates(root, SMALL_MONTH, stamp, target, orbits, on_orbit=lambda *a: seen.append(1))
    assert bool(seen) == fit_change  # re-judged at once (no orbit judged) unless a fit-stage value changed
    _forget_months()
    slow = pipeline.month_candidates(root, SMALL_MONTH, stamp, target, orbits)
    pd.testing.assert_frame_equal(fast.reset_index(drop=True), slow.reset_index(drop=True))
    assert (fast["rules_hash"] == target.hash).all()


#: What an orbit must show as its month shows it.
VERDICT_COLUMNS = ["orbit", "sounding_id", "sign", "status", "rejected_by", "event_id", "is_event", "significance",
                   "significance_threshold", "threshold_method", "q_value", "false_alarm_per_1000km", "source_id",
                   "source_distance_km"]


@pytest.mark.parametrize("change", [{"detection.min_mirror_events": 3, "screen.min_significance": 2.5},
                                    {"detection.false_alarms_per_1000km": 1.0, "detection.min_mirror_events": 3,
                                     "screen.min_significance": 2.5}, {}])
def test_an_orbit_shows_the_verdicts_of_its_month_before_the_month_is_computed(small_cache, change):
    """The orbit pages get the month's threshold from the month's fits when no month table is at hand: the same
    threshold, verdicts and q-values as the month table computed afterwards (and the month's threshold is not the
    floor an orbit judged alone would take)."""
    root = str(small_cache)
    settings = DetectionSettings(change).replace({"rules.significance.min_snr": 2.5})  # keys no other test made
    stamp = queries.data_stamp(SoundingsCache(small_cache), SMALL_MONTH)
    orbits = sorted(int(o) for o in queries.orbits_table(SoundingsCache(small_cache), SMALL_MONTH)["orbit"])
    seen = []
    by_orbit = pd.concat([pipeline.orbit_candidates(root, SMALL_MONTH, o, stamp, settings, orbits,
                                                    on_orbit=lambda i, n, o: seen.append(o)) for o in orbits],
                         ignore_index=True)
    assert seen == orbits, "the month's fits are gathered once, then its calibration is kept"
    month = pipeline.month_candidates(root, SMALL_MONTH, stamp, settings, orbits)
    pd.testing.assert_frame_equal(month[VERDICT_COLUMNS].reset_index(drop=True), by_orbit[VERDICT_COLUMNS])
    t = pipeline.month_threshold(month, settings)
    assert t.threshold == month["significance_threshold"].iloc[0] and t.n_orbits == len(orbits)
    if change:
        assert t.method.split("+")[0] in ("mirror", "mirror-tail", "floor") and np.isfinite(t.false_per_1000km)
        assert by_orbit["q_value"].notna().any()
    else:
        assert t.method == "fallback" and t.threshold == settings["detection.fallback_significance"]


def test_the_validation_osse_is_simulated_and_fitted_once_per_cache_and_scored_as_detect_does(tmp_path):
    """The OSSE and its fits are stored in the cache: a new server process (caches cleared) reads them and scores
    the same; the score is the CLI's month judging (its own threshold) of the same fits."""
    from core.batch import assemble_month
    from core.validation import score

    key = (str(tmp_path), 3, 2, 2, 1500.0)
    settings = DetectionSettings()
    progress = []
    first = pipeline.osse_score(key, settings, on_orbit=lambda i, n, orbit: progress.append(i))
    folder = pipeline.osse_folder(*key)
    assert (folder / "soundings.parquet").is_file() and len(list(folder.glob("fits-*.parquet"))) == 1
    assert progress and progress[-1] == len(pipeline.osse(*key)[2])
    pipeline.osse.clear()
    pipeline._osse_score.clear()
    pipeline._held("osse-fits")[0].clear()
    again = pipeline.osse_score(key, settings, on_orbit=lambda i, n, orbit: pytest.fail("fitted again"))
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)  # NaN == NaN here
    data, plumes, orbits, _ = pipeline.osse(*key)
    parts = [judge(od, fit_candidates(od, find_candidates(od, settings), settings), settings)
             for od in orbits.values()]
    direct = score(assemble_month(parts, settings, attribute_events=False), data, plumes)
    assert (first["n_matched"], first["n_false"], first["n_detectable"]) == \
        (direct.n_matched, direct.n_false, direct.n_detectable)



def test_a_validation_sweep_rejudges_the_held_osse_as_judging_its_orbits_again(tmp_path):
    """A rules-only change on the Validation page (a sweep) re-runs the rules on the held OSSE month table at once:
    the same scores as judging every orbit again, for a threshold, a rule turned on and the false-alarm target."""
    from core.batch import assemble_month
    from core.validation import score

    key = (str(tmp_path), 4, 2, 2, 1500.0)
    base = DetectionSettings()
    pipeline.osse_score(key, base)
    data, plumes, orbits, _ = pipeline.osse(*key)
    fits = pipeline._osse_fits(key, pipeline.fit_items(base))
    off = next(k for k in all_settings() if k.startswith("rules.") and k.endswith(".enabled") and not base[k])
    for change in ({"rules.significance.min_snr": 4.0}, {off: True}, {"detection.false_alarms_per_1000km": 0.5}):
        settings = base.replace(change)
        assert pipeline.judging_only(base, settings)
        assert pipeline._rejudged("osse-month", (key, pipeline.fit_items(base)), settings) is not None  # the fast path
        swept = pipeline.osse_score(key, settings)
        parts = [judge(od, fits[o], settings) for o, od in orbits.items() if o in fits]
        direct = dataclasses.asdict(score(assemble_month(parts, settings, attribute_events=False), data, plumes))
        assert json.dumps(swept, sort_keys=True) == json.dumps(direct, sort_keys=True), change


def test_a_row_without_emission_says_why():
    rows = pd.DataFrame({"fixed_reason": ["", "", "screen", ""], "emission_MtCO2_yr": [3.0, np.nan, np.nan, np.nan],
                         "wind_perp_ms": [4.0, 0.31, 2.0, 3.0]})
    assert tables.emission_notes(rows, 0.5).tolist() == ["", "wind across the track 0.31 m/s < 0.5", "not fitted",
                                                         "no estimate"]


def test_peak_detail_ratios_are_the_month_tables(small_cache):
    """Peak detail attributes its one peak against its ranked upwind sources (core.attribution.attribute): the
    same ratios, to the sources carried and to the best source, as the month table's row."""
    from core.attribution import attribute

    root, settings = str(small_cache), DetectionSettings()
    stamp = queries.data_stamp(SoundingsCache(small_cache), SMALL_MONTH)
    orbits = sorted(int(o) for o in queries.orbits_table(SoundingsCache(small_cache), SMALL_MONTH)["orbit"])
    month = pipeline.month_candidates(root, SMALL_MONTH, stamp, settings, orbits)
    attributed = pipeline.events(month)
    attributed = attributed[attributed["source_id"].notna()]
    assert len(attributed)
    for _, row in attributed.iterrows():
        ranked, _ = pipeline.ranked_sources(root, float(row["latitude"]), float(row["longitude"]),
                                            float(row["wind_u_ms"]), float(row["wind_v_ms"]), settings)
        judged = attribute(row.to_frame().T, settings, sources=ranked).iloc[0]
        for column in ("source_id", "emission_ratio", "emission_ratio_carried", "emission_ratio_carried_stderr",
                       "n_sources_carried"):
            assert judged[column] == pytest.approx(row[column], rel=1e-9) if column != "source_id" else \
                judged[column] == row[column], column


def test_charts_say_what_the_surface_offsets_took_off_the_water_soundings():
    """The detection view lowers a water stretch by its offset against the land (noise.surface_offsets); the caption
    of the orbit, or of a peak's window that reaches the water, names it with the range of offsets; none on a window
    all land, nor on an orbit all land."""
    from core.detect import detection_view
    from workbench import ui

    df = add_step(crafted_orbit(600, seed=51), 300.0, 0.9)  # water from 300 km on, 0.9 ppm higher
    view = detection_view(prepare_orbit(df), DetectionSettings())
    assert view.soundings["surface_offset_ppm"].max() == pytest.approx(0.9, abs=0.1)
    for note in (ui.surface_note(view.soundings), ui.surface_note(view.soundings, 310.0, 200.0)):
        assert "1 offset(s)" in note and "noise.surface_offsets" in note
    assert ui.surface_note(view.soundings, 100.0, 200.0) == ""  # the window 0-200 km is all land
    land = detection_view(prepare_orbit(crafted_orbit(300, seed=52)), DetectionSettings())
    assert ui.surface_note(land.soundings) == ""
