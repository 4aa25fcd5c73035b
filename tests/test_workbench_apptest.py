"""The workbench driven headless with Streamlit's AppTest, on a real small cache (simulate + ingest).

Every page runs clean; a rule slider changes the accepted count exactly as core computes it for the month's orbits
judged together (without refitting); the overview states the month's threshold and false-event rate (or its
fallback), and a new false-alarm rate re-judges without refitting; the orbit explorer shows the orbit's noise and
hides its mirror events unless asked; a vetting decision is stored and listed; a URL opens the orbit and rule values
it names; invalid parameters fall back to defaults with a warning; settings files and Lite uploads are validated.
"""
from __future__ import annotations

import shutil

import pandas as pd
import pytest
from conftest import SMALL_MONTH, SNR, month_accepted, month_fits
from streamlit.testing.v1 import AppTest

from core.batch import SOUNDING_COLUMNS, detect_month, load_detections
from core.cache import SoundingsCache
from core.detect import judge, orbit_noise, prepare_orbit
from core.false_alarms import calibrate_month
from core.settings import DetectionSettings
from core.vetting import VettingStore

APP = "../workbench/app.py"  # relative to this file
PAGES = ["overview", "orbit", "peak", "inventory", "vetted", "data", "validation"]


@pytest.fixture
def cache(small_cache, monkeypatch):
    monkeypatch.setenv("OCO2_CACHE", str(small_cache))
    return small_cache


@pytest.fixture
def unvetted_cache(small_cache, tmp_path, monkeypatch):
    """The small cache without its decisions (other tests vet its peaks): soundings and detections copied."""
    root = tmp_path / "cache"
    root.mkdir()
    for part in ("soundings", "detections"):
        if (small_cache / part).is_dir():
            shutil.copytree(small_cache / part, root / part)
    monkeypatch.setenv("OCO2_CACHE", str(root))
    return root


def _app(params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    return at.run()


def _page(at: AppTest, name: str) -> AppTest:
    return at.switch_page(f"views/{name}.py").run()


def _no_exception(at: AppTest):
    assert not at.exception, [e.value for e in at.exception]


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_every_page_runs_clean(cache):
    at = _app()
    _no_exception(at)
    assert at.title[0].value == "Month overview"
    assert at.get("deck_gl_json_chart") and at.get("vega_lite_chart")
    for name in PAGES:
        _page(at, name)
        _no_exception(at)
        assert at.title, name
    share = [c.value for c in at.sidebar.code]
    assert share and f"month={SMALL_MONTH}" in share[0] and "preset=recommended" in share[0]


def test_rule_slider_changes_the_accepted_count_as_core_computes_without_refitting(cache, core_view, monkeypatch):
    from workbench import pipeline

    calls = []
    real = pipeline.fit_candidates
    monkeypatch.setattr(pipeline, "fit_candidates", lambda *a, **k: calls.append(1) or real(*a, **k))
    at = _page(_app({"month": SMALL_MONTH, "orbit": str(core_view["orbit"])}), "orbit")
    _no_exception(at)
    assert at.selectbox(key="pick:orbit").value == core_view["orbit"]
    assert int(_metric(at, "Accepted")) == core_view["default"]
    before = len(calls)
    at.slider(key=f"set:{SNR}").set_value(core_view["value"]).run()
    _no_exception(at)
    assert int(_metric(at, "Accepted")) == core_view["changed"]
    assert len(calls) == before, "a rules-only change must not refit"
    assert at.query_params[SNR] == repr(core_view["value"])
    # a fit constraint does refit (the cache is keyed on the fit-stage settings)
    at.slider(key="set:fit.window_km").set_value(150.0).run()
    _no_exception(at)
    assert len(calls) > before


def test_url_opens_the_orbit_and_rule_values_it_names(cache, core_view):
    params = {"month": SMALL_MONTH, "orbit": str(core_view["orbit"]), "preset": "recommended",
              SNR: str(core_view["value"]), "rules.fit_quality.enabled": "true"}
    at = _page(_app(params), "orbit")
    _no_exception(at)
    assert not at.warning
    assert at.selectbox(key="pick:orbit").value == core_view["orbit"]
    assert at.slider(key=f"set:{SNR}").value == core_view["value"]
    assert at.toggle(key="set:rules.fit_quality.enabled").value is True
    soundings = SoundingsCache(cache).read_month(SMALL_MONTH, SOUNDING_COLUMNS)
    settings = DetectionSettings({SNR: core_view["value"], "rules.fit_quality.enabled": True})
    expected = month_accepted(month_fits(soundings, settings), settings)[core_view["orbit"]]
    assert int(_metric(at, "Accepted")) == expected
    link = at.sidebar.code[0].value
    assert f"orbit={core_view['orbit']}" in link and f"{SNR}={core_view['value']!r}" in link
    assert "rules.fit_quality.enabled=true" in link


def test_invalid_params_fall_back_to_defaults_with_a_warning(cache, core_view):
    params = {"month": "2019-13", "orbit": "not-a-number", "preset": "nope", SNR: "999",
              "fit.window_km": "wide", "no.such.setting": "1", "rules.support.enabled": "maybe"}
    at = _app(params)  # the page the link opens shows the warnings once
    _no_exception(at)
    warnings = " ".join(w.value for w in at.warning)
    _page(at, "orbit")
    for needle in ("2019-13", "not-a-number", "nope", "999", "fit.window_km", "no.such.setting",
                   "rules.support.enabled"):
        assert needle in warnings, needle
    default = DetectionSettings()
    assert at.slider(key=f"set:{SNR}").value == 50.0  # clamped to the maximum
    assert at.slider(key="set:fit.window_km").value == default["fit.window_km"]
    assert at.toggle(key="set:rules.support.enabled").value is default["rules.support.enabled"]
    assert at.selectbox(key="set:preset").value == "recommended"
    assert at.selectbox(key="pick:month").value == SMALL_MONTH
    assert at.selectbox(key="pick:orbit").value == core_view["orbits"][0]
    # an orbit that is a number but not in the month: a warning, then the first orbit
    at = _app({"month": SMALL_MONTH, "orbit": "1"})
    assert any("orbit 1" in w.value for w in at.warning)
    assert _page(at, "orbit").selectbox(key="pick:orbit").value == core_view["orbits"][0]


def test_overview_states_the_months_threshold_and_false_event_rate(cache, monkeypatch):
    from workbench import pipeline

    # the small month holds too few mirror events: the fallback, named with its settings
    at = _app({"month": SMALL_MONTH})
    _no_exception(at)
    warning = " ".join(w.value for w in at.warning)
    default = DetectionSettings()
    assert "Fallback threshold" in warning
    assert f"`detection.fallback_significance` = {default['detection.fallback_significance']:g}" in warning
    assert f"`detection.min_mirror_events` = {default['detection.min_mirror_events']}" in warning
    # with fewer mirror events needed, they set it: the rate and its interval, as core computes them
    calls = []
    real = pipeline.fit_candidates
    monkeypatch.setattr(pipeline, "fit_candidates", lambda *a, **k: calls.append(1) or real(*a, **k))
    at = _app({"month": SMALL_MONTH, "detection.min_mirror_events": "3", "screen.min_significance": "2.5"})
    _no_exception(at)
    settings = DetectionSettings({"detection.min_mirror_events": 3, "screen.min_significance": 2.5})
    soundings = SoundingsCache(cache).read_month(SMALL_MONTH, SOUNDING_COLUMNS)
    fits = month_fits(soundings, settings)
    month = calibrate_month(pd.concat([judge(od, f, settings) for od, f in fits.values() if not f.empty],
                                      ignore_index=True), settings)
    row = month.iloc[0]
    info = " ".join(i.value for i in at.info)
    assert f"Expected false events: {row['month_false_per_1000km']:.2f} per 1,000 km " \
           f"({row['month_false_per_1000km_low']:.2f}-{row['month_false_per_1000km_high']:.2f}, 90 %), " \
           f"threshold {row['significance_threshold']:.2f} from " in info
    assert row["threshold_method"] != "fallback" and not any("Fallback" in w.value for w in at.warning)
    # the false-alarm rate is the first control of the sidebar; a new rate re-judges, never refits
    before = len(calls)
    rate = at.select_slider(key="set:detection.false_alarms_per_1000km")
    assert rate.value == 0.2 and rate.label == "false events per 1,000 km"
    rate.set_value(2.0).run()
    _no_exception(at)
    assert at.query_params["detection.false_alarms_per_1000km"] == "2.0"
    assert len(calls) == before, "a false-alarm rate change must not refit"
    assert " ".join(i.value for i in at.info) != info


@pytest.mark.parametrize("change", [{}, {"detection.min_mirror_events": 3, "detection.false_alarms_per_1000km": 0.4,
                                         SNR: 1.0, "screen.min_significance": 2.5}])
def test_orbit_explorer_shows_the_orbits_noise_and_its_mirror_events(cache, change):
    """The orbit's own noise as core estimates it, its mirror events above the month's threshold per 1,000 km, the
    threshold it was judged at (the fallback for the small month as preset; set by its mirror events when fewer are
    needed and a low floor lets them reach it); mirror rows only when asked."""
    settings = DetectionSettings(change)
    soundings = SoundingsCache(cache).read_month(SMALL_MONTH, SOUNDING_COLUMNS)
    month = calibrate_month(pd.concat([judge(od, f, settings) for od, f in month_fits(soundings, settings).values()
                                       if not f.empty], ignore_index=True), settings)
    above = (month["is_event"] & (month["sign"] < 0) & month["rejected_by"].eq("mirror")).groupby(month["orbit"]).sum()
    orbit = int(above.idxmax())  # the orbit with the most mirror events above the threshold
    at = _page(_app({"month": SMALL_MONTH, "orbit": str(orbit), **{k: str(v) for k, v in change.items()}}), "orbit")
    _no_exception(at)
    noise = orbit_noise(prepare_orbit(soundings[soundings["orbit"] == orbit]), settings)
    v = noise.variogram
    assert _metric(at, "Noise scale") == f"{v.noise_scale:.2f}"
    assert _metric(at, "Correlated noise") == f"{v.correlated_ppm:.2f} ppm"
    assert _metric(at, "Correlation length") == f"{v.correlation_km:.0f} km"
    assert _metric(at, "Noise calibration") == ("prior (fallback)" if noise.fallback else "own data")
    assert above[orbit] > 0 or not change
    assert _metric(at, "Mirror events / 1,000 km") == f"{above[orbit] * 1000 / noise.track_km:.2f}"
    threshold, method = month["significance_threshold"].iloc[0], month["threshold_method"].iloc[0]
    assert (method == "fallback") is not bool(change)
    assert any(f"Judged at the month's threshold: significance >= {threshold:.2f} ({method};" in c.value
               for c in at.caption)
    table = at.dataframe(key="orbit:candidates").value
    assert "significance" in table and "q_value" in table and "mirror" not in set(table["kind"])
    at.toggle(key="orbit:mirrors").set_value(True).run()
    _no_exception(at)
    assert "mirror" in set(at.dataframe(key="orbit:candidates").value["kind"])


def _progress_text(at: AppTest) -> str:
    return next(p.proto.text for p in at.get("progress"))


def test_a_vetting_decision_is_stored_found_again_under_other_settings_and_the_queue_moves_on(unvetted_cache,
                                                                                                  core_view):
    """Record a decision on a peak (the form keyed on the peak), see the month's vetted count go up, change a
    setting that does not concern the peak and find the decision again (made under the other settings), then go to
    the next unvetted peak: another peak, with an empty form."""
    orbit, peak = core_view["orbit"], core_view["peak"]
    at = _page(_app({"month": SMALL_MONTH, "orbit": str(orbit), "peak": str(peak)}), "peak")
    _no_exception(at)
    assert not at.warning
    before = _progress_text(at)
    n_accepted = int(before.split(" of ")[1].split()[0])
    assert before.startswith("**0 of") and n_accepted >= 2
    assert any("No decision on this plume yet" in c.value for c in at.caption)
    # the upwind sector as a plan in km (a Vega chart), no WebGL map on the page
    assert any("km east of the peak" in c.proto.spec for c in at.get("vega_lite_chart"))
    assert not at.get("deck_gl_json_chart")
    note = "apptest: plume clear, wind across the track"
    form = f"vet:{orbit}:{peak}"
    at.radio(key=f"{form}:decision").set_value("reject")
    at.text_area(key=f"{form}:note").input(note)
    at.text_input(key=f"{form}:analyst").input("apptest-analyst")
    next(b for b in at.button if b.label == "Record decision").click().run()
    _no_exception(at)
    assert any("Recorded" in s.value for s in at.success)
    assert _progress_text(at).startswith(f"**1 of {n_accepted}")
    assert any(note in set(t.value["note"]) for t in at.table if "note" in t.value)  # the plume's history
    history = VettingStore(unvetted_cache).history()
    row = history[history["note"] == note].iloc[-1]
    assert (row["decision"], row["analyst"], row["orbit"], row["sounding_id"]) == \
        ("reject", "apptest-analyst", orbit, peak)
    assert row["rules_hash"] == DetectionSettings().hash and '"preset": "recommended"' in row["settings_json"]

    next(b for b in at.button if b.label == "Next unvetted").click().run()
    _no_exception(at)
    moved = int(at.query_params["peak"])
    assert moved != peak
    assert at.radio(key=f"vet:{at.query_params['orbit']}:{moved}:decision").value is None

    # other settings (a link naming them), the same plume: the decision is found, made under the default settings
    at = _page(_app({"month": SMALL_MONTH, "orbit": str(orbit), "peak": str(peak), SNR: str(core_view["value"])}),
               "peak")
    _no_exception(at)
    shown = " ".join(m.value for m in at.markdown)
    assert "**reject** by apptest-analyst" in shown and DetectionSettings().hash in shown
    assert at.radio(key=f"{form}:decision").value == "reject"  # the form starts from the plume's decision
    _page(at, "vetted")
    _no_exception(at)
    listed = pd.concat([d.value for d in at.dataframe], ignore_index=True)
    assert note in set(listed["note"])


def test_settings_file_is_validated_before_it_is_loaded(cache):
    at = _page(_app({"month": SMALL_MONTH}), "vetted")
    at.file_uploader(key="vetted:toml").upload("bad.toml", b"[rules.significance]\nmin_snr = 500.0\n").run()
    _no_exception(at)
    assert any("min_snr" in e.value for e in at.error)
    assert at.slider(key=f"set:{SNR}").value == DetectionSettings()[SNR]  # unchanged
    good = DetectionSettings({SNR: 7.0}, preset="recommended").to_toml().encode()
    at.file_uploader(key="vetted:toml").upload("good.toml", good).run()
    _no_exception(at)
    assert any("Loaded good.toml" in s.value for s in at.success)
    assert at.slider(key=f"set:{SNR}").value == 7.0


def test_data_page_detects_a_month_and_ingests_uploads(small_cache, tmp_path, monkeypatch):
    import datetime as dt

    from lite_factory import sounding_columns, write_lite

    root = tmp_path / "cache"
    shutil.copytree(small_cache, root, ignore=shutil.ignore_patterns("vetting", "detections"))
    monkeypatch.setenv("OCO2_CACHE", str(root))
    at = _page(_app(), "data")
    next(b for b in at.button if b.label == "Run detection for the month").click().run()
    _no_exception(at)
    # stored: the month as core detects it (what `python -m core detect` stores), and the page says what it stored
    stored = load_detections(root, SMALL_MONTH, DetectionSettings())
    expected = detect_month(SMALL_MONTH, DetectionSettings(), cache=root)
    pd.testing.assert_frame_equal(stored, expected)
    n_accepted = int((expected["is_event"] & expected["status"].eq("accepted")).sum())
    assert len(expected) > 0 and n_accepted > 0
    assert any(s.value.startswith(f"{SMALL_MONTH}: {len(expected):,} candidates, {n_accepted:,} accepted peaks; "
                                  "stored in") for s in at.success)
    # the status table, drawn after the button, lists what was just stored as up to date
    status = next(d.value for d in at.dataframe if "up to date" in d.value.columns)
    row = status[status["rules_hash"].eq(DetectionSettings().hash)]
    assert row["month"].tolist() == [SMALL_MONTH] and row["up to date"].tolist() == ["yes"]
    (tmp_path / "up").mkdir()
    good = write_lite(tmp_path / "up", sounding_columns(4000, day=dt.date(2019, 9, 3)), day=dt.date(2019, 9, 3))
    at.file_uploader(key="data:upload").set_value([(good.name, good.read_bytes(), "application/x-netcdf"),
                                                  ("broken.nc4", b"not a netcdf file", "application/x-netcdf")]).run()
    next(b for b in at.button if b.label == "Validate and ingest").click().run()
    _no_exception(at)
    assert any("broken.nc4" in e.value for e in at.error)
    assert "2019-09" in SoundingsCache(root).months()
    # a day file whose footer cannot be read is named on the page, and the month's detections are no longer current
    day = SoundingsCache(root).day_files(SMALL_MONTH)[0]
    day.write_bytes(day.read_bytes()[: day.stat().st_size // 2])
    at = _page(_app(), "data")
    _no_exception(at)
    assert any(day.name in e.value and "ingested again" in e.value for e in at.error)
    status = next(d.value for d in at.dataframe if "up to date" in d.value.columns)
    assert status.loc[status["rules_hash"].eq(DetectionSettings().hash), "up to date"].str.startswith("no").all()


def test_contradictory_settings_are_named_and_nothing_is_detected(cache):
    at = _app({"fit.sigma_min_km": "20", "fit.sigma_max_km": "5"})
    _no_exception(at)
    errors = [e.value for e in at.error]
    assert any("fit.sigma_min_km" in e and "fit.sigma_max_km" in e for e in errors), errors
    assert not at.metric  # the page did not run: no month figures on contradictory settings
    at = _app({"fit.sigma_min_km": "2", "fit.sigma_max_km": "5"})  # consistent again: the overview runs
    _no_exception(at)
    assert not at.error and at.metric


def test_inventory_filters_travel_in_the_share_link(cache):
    at = _page(_app({"month": SMALL_MONTH, "sectors": "power-coal", "compare": "best"}), "inventory")
    _no_exception(at)
    assert at.get("multiselect"), "the small month has attributed peaks: the filters are shown"
    assert at.multiselect(key="inv:sectors").value == ["power-coal"]
    assert at.get("button_group")[0].value == "best-ranked source"
    assert any("estimate / best source" in m.label for m in at.metric)
    at.multiselect(key="inv:sectors").set_value(["power-coal", "power-gas"]).run()
    _no_exception(at)
    share = at.sidebar.code[0].value
    assert "sectors=power-coal%2Cpower-gas" in share and "compare=best" in share
    assert not at.warning  # page parameters are not taken for unknown settings
