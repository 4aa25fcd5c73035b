"""End to end in a real Chromium (Playwright): the analyst's journey, the share link, offline, screenshots.

The app runs as ``streamlit run workbench/app.py`` on a free port over the small test cache. Chromium is
``$CHROMIUM``, else Debian's ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` does it, or sets
``$CHROMIUM`` to Playwright's own build when installed): these tests fail rather than skip without it.
Screenshots of every page go to ``$OCO2_SCREENSHOTS/<page>.png`` (default: a folder under the system's temporary
directory); the README's are of the demo month, taken by ``docs/screenshots/take.py``.
"""
from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import tempfile
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import SMALL_MONTH, SNR
from playwright.sync_api import Page, expect

from core.settings import DetectionSettings
from workbench import controls, maps

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(os.environ.get("OCO2_SCREENSHOTS", Path(tempfile.gettempdir()) / "oco2-screenshots"))
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 1800}
#: Page: (its link in the sidebar, its heading)
PAGES = {"overview": ("Month overview", "Month overview"), "orbit": ("Orbit explorer", "Orbit explorer"),
         "peak": ("Peak detail", "Peak detail"), "inventory": ("Inventory comparison", "Inventory comparison"),
         "vetted": ("Vetted peaks & export", "Vetted peaks & export"), "data": ("Data", "Data in the cache"),
         "validation": ("Validation", "Validation on simulated truth")}


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    assert Path(CHROMIUM).exists(), (f"{CHROMIUM} is missing: apt-get install -y chromium, or "
                                     "`python -m playwright install chromium` (.ci/run does either)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": VIEWPORT, "accept_downloads": True}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def base_url(small_cache, tmp_path_factory):
    """The app served over the small cache (a separate process, stopped at the end)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = {**os.environ, "OCO2_CACHE": str(small_cache)}
    cmd = [sys.executable, "-m", "streamlit", "run", "workbench/app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not start:\n{log.read_text()}")
            time.sleep(0.25)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def _settled(page: Page, title: str | None = None) -> None:
    """Wait until the script run finished (and the page shows its title): Streamlit flags its state on the app
    root (``data-test-script-state``), as its own end-to-end tests use."""
    if title:
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=60_000)
    for _ in range(2):
        expect(page.locator("[data-testid='stApp'][data-test-script-state='notRunning']")).to_have_count(
            1, timeout=120_000)
        page.wait_for_timeout(150)


def _metric(page: Page, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").get_by_text(label,
                                                                                                        exact=True))
    return metric.get_by_test_id("stMetricValue").inner_text().strip()


def _choose(page: Page, label: str, text: str) -> None:
    """Pick the option containing ``text`` in the selectbox labelled ``label``."""
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True))
    box.click()
    page.keyboard.type(text)
    page.get_by_role("option").filter(has_text=text).first.click()


def _go(page: Page, name: str) -> None:
    link, heading = PAGES[name]
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
    _settled(page, heading)


def _vet(page: Page, peak, decision: str, analyst: str, why: str) -> str:
    """Record a decision on the peak shown with the form of Peak detail; returns the note (unique)."""
    note = f"{why} at {time.time():.0f}"
    page.get_by_test_id("stRadio").get_by_text(decision, exact=True).click()
    page.get_by_label("Note (why)").fill(note)
    page.get_by_label("Analyst").fill(analyst)
    page.get_by_role("button", name="Record decision").click()
    _settled(page)
    expect(page.get_by_text(f"Recorded on peak {peak}: {decision} by {analyst}")).to_be_visible()
    return note


_FIRST_MAP = [True]


def _shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    maps = page.get_by_test_id("stDeckGlJsonChart")
    if maps.count():
        expect(maps.first.locator("canvas").first).to_be_attached(timeout=20_000)
        page.wait_for_timeout(4000 if _FIRST_MAP[0] else 1500)  # the basemap style (200 kB) and the layers draw
        _FIRST_MAP[0] = False
    page.wait_for_timeout(800)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


def test_analyst_journey_share_link_offline_and_screenshots(page: Page, base_url, browser, core_view):
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base_url, "data:", "blob:")) else None)
    page.goto(base_url)
    _settled(page, PAGES["overview"][1])
    _shoot(page, "overview")

    # go to an orbit
    _go(page, "orbit")
    _choose(page, "Orbit", str(core_view["orbit"]))
    _settled(page)
    expect(page.get_by_role("combobox", name="Orbit")).to_have_value(re.compile(f"^{core_view['orbit']} "))
    assert int(_metric(page, "Accepted")) == core_view["default"]

    # change a rule: the significance threshold, with the keyboard (one step per key, each step a rerun)
    slider = page.get_by_role("slider", name="significance: min snr")
    value, step = DetectionSettings()[SNR], controls.controls()[SNR].step
    while value < core_view["value"] - 1e-9:
        value = round(value + step, 6)
        slider.focus()
        page.keyboard.press("ArrowRight")
        expect(page).to_have_url(re.compile(rf"{re.escape(SNR)}={value!r}(&|$)"), timeout=30_000)
    _settled(page)
    shown = controls.controls()[SNR].format % core_view["value"]
    expect(slider).to_have_attribute("aria-valuetext", shown)
    expect(page.get_by_test_id("stMetric").filter(has_text="Accepted").get_by_test_id("stMetricValue")) \
        .to_have_text(str(core_view["changed"]))
    _shoot(page, "orbit")

    # open a peak and vet it
    _choose(page, "Peak", str(core_view["peak"]))
    _settled(page)
    page.get_by_role("button", name="Open peak detail").click()
    _settled(page, PAGES["peak"][1])
    expect(page.get_by_text(f"sounding {core_view['peak']}")).to_be_visible()
    note = _vet(page, core_view["peak"], "accept", "browser-analyst", "browser: checked")
    expect(page.get_by_text(re.compile(r"^1 of \d+ accepted peaks vetted"))).to_be_visible()  # the month's queue
    _shoot(page, "peak")
    share = page.get_by_test_id("stSidebar").get_by_test_id("stCode").inner_text().strip()
    assert f"orbit={core_view['orbit']}" in share and f"peak={core_view['peak']}" in share
    assert f"{SNR}={core_view['value']!r}" in share and share.startswith(f"{base_url}/peak?")

    # download the vetted peaks: our row, with its provenance
    _go(page, "vetted")
    _shoot(page, "vetted")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download vetted peaks (CSV)").click()
    table = pd.read_csv(io.BytesIO(Path(download.value.path()).read_bytes()))
    mine = table[table["note"] == note]
    assert len(mine) == 1
    row = mine.iloc[0]
    settings = DetectionSettings({SNR: core_view["value"]})
    assert (row["orbit"], row["sounding_id"], row["decision"]) == (core_view["orbit"], core_view["peak"], "accept")
    assert row["rules_hash"] == settings.hash
    assert json.loads(row["settings_json"])[SNR] == core_view["value"]
    assert row["software_version"] and str(row["data_files"]).endswith(".nc4")
    assert set(table.columns) >= {"rules_hash", "settings_json", "software_version", "data_files", "exported_at"}

    for name in ("inventory", "data", "validation"):
        _go(page, name)
        if name == "validation":
            expect(page.get_by_test_id("stMetric").filter(has_text="Recall")).to_be_visible(timeout=60_000)
            expect(page.get_by_test_id("stVegaLiteChart")).to_be_visible(timeout=60_000)
        _shoot(page, name)

    # the share link opens the same view in a fresh browser context (another analyst's machine)
    other = browser.new_context(viewport=VIEWPORT)
    try:
        page2 = other.new_page()
        page2.goto(share)
        _settled(page2, PAGES["peak"][1])
        expect(page2.get_by_text(f"orbit {core_view['orbit']} · sounding {core_view['peak']}")).to_be_visible()
        expect(page2.get_by_role("slider", name="significance: min snr")) \
            .to_have_attribute("aria-valuetext", shown)
        expect(page2.get_by_text("browser-analyst").first).to_be_attached()  # the decision, from the shared store
        assert page2.get_by_test_id("stSidebar").get_by_test_id("stCode").inner_text().strip() == share
    finally:
        other.close()
    assert not outside, f"requests left the machine: {outside[:5]}"


def _orbit_map(small_cache, orbit: int) -> dict:
    """The orbit page's map as the server draws it (AppTest over the same cache): view state and layers."""
    from streamlit.testing.v1 import AppTest

    os.environ["OCO2_CACHE"] = str(small_cache)
    at = AppTest.from_file("../workbench/app.py", default_timeout=120)
    at.query_params["month"], at.query_params["orbit"] = SMALL_MONTH, str(orbit)
    at.run()
    at.switch_page("views/orbit.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return json.loads(at.get("deck_gl_json_chart")[0].proto.json)


def test_map_point_to_peak_vet_change_a_rule_next_and_export(page: Page, base_url, small_cache, core_view):
    """Click an accepted peak on the orbit's map: its Peak detail opens. Vet it, move to the next peak and back
    with the keyboard, change a rule: the decision is still shown, made under the other settings. The export holds
    it."""
    orbit = core_view["orbit"]
    spec = _orbit_map(small_cache, orbit)
    accepted = next(layer for layer in spec["layers"] if layer["id"] == "accepted")["data"]
    assert accepted, "the orbit has an accepted peak on its map"
    point = accepted[-1]  # drawn last: on top where two peaks overlap, so a click there picks it
    page.goto(f"{base_url}/orbit?month={SMALL_MONTH}&orbit={orbit}&preset=recommended")
    _settled(page, PAGES["orbit"][1])
    chart = page.get_by_test_id("stDeckGlJsonChart").first
    chart.scroll_into_view_if_needed()
    canvas = chart.locator("canvas").last
    expect(canvas).to_be_attached(timeout=20_000)
    page.wait_for_timeout(3000)  # the layers draw
    box = canvas.bounding_box()
    x, y = maps.pixel_of(spec["initialViewState"], point["longitude"], point["latitude"], box["width"],
                         box["height"])
    page.mouse.click(box["x"] + x, box["y"] + y)
    _settled(page, PAGES["peak"][1])
    expect(page.get_by_text(f"orbit {orbit} · sounding {point['peak']}")).to_be_visible()

    note = _vet(page, point["peak"], "reject", "browser-map", "browser: map click")

    page.evaluate("document.activeElement && document.activeElement.blur()")  # the shortcuts are the page's
    page.keyboard.press("Alt+N")  # the next accepted peak of the month
    _settled(page)
    expect(page.get_by_text(f"sounding {point['peak']}")).to_have_count(0)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Alt+P")  # and back
    _settled(page)
    expect(page.get_by_text(f"orbit {orbit} · sounding {point['peak']}")).to_be_visible()

    slider = page.get_by_role("slider", name="significance: min snr")  # a rule that does not concern this peak
    slider.focus()
    page.keyboard.press("ArrowRight")
    _settled(page)
    changed = DetectionSettings({SNR: round(DetectionSettings()[SNR] + controls.controls()[SNR].step, 6)})
    expect(page).to_have_url(re.compile(rf"{re.escape(SNR)}="))
    expect(page.get_by_text(re.compile(r"reject by browser-map .* settings hash " + DetectionSettings().hash))) \
        .to_be_visible()
    assert changed.hash != DetectionSettings().hash

    _go(page, "vetted")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download vetted peaks (CSV)").click()
    table = pd.read_csv(io.BytesIO(Path(download.value.path()).read_bytes()))
    mine = table[table["note"] == note]
    assert len(mine) == 1 and mine.iloc[0]["decision"] == "reject"
    assert mine.iloc[0]["sounding_id"] == int(point["peak"]) and mine.iloc[0]["preset"] == "recommended"


def _differing_share(a: bytes, b: bytes) -> float:
    """Share of pixels that differ noticeably between two PNG screenshots of the same size."""
    import numpy as np
    from PIL import Image

    x, y = (np.asarray(Image.open(io.BytesIO(d)).convert("L"), float) for d in (a, b))
    return float(np.mean(np.abs(x - y) > 8))  # land and sea differ by ~20 grey levels


def test_the_map_keeps_its_zoom_across_a_rerun(page: Page, base_url):
    """Zoom in on the month's map, then change an option (the page runs again, the map's layers change): the map
    stays where the analyst put it."""
    page.goto(f"{base_url}/?month={SMALL_MONTH}")
    _settled(page, PAGES["overview"][1])
    chart = page.get_by_test_id("stDeckGlJsonChart").first
    chart.scroll_into_view_if_needed()
    expect(chart.locator("canvas").first).to_be_attached(timeout=20_000)
    page.wait_for_timeout(4000)
    start = chart.screenshot()
    for _ in range(2):
        chart.get_by_role("button", name="Zoom in").click()
        page.wait_for_timeout(800)
    page.wait_for_timeout(1500)
    zoomed = chart.screenshot()
    page.get_by_text("Wind arrows", exact=True).click()  # a rerun with other layers
    _settled(page)
    page.wait_for_timeout(2500)
    after = page.get_by_test_id("stDeckGlJsonChart").first.screenshot()
    assert _differing_share(start, zoomed) > 0.2  # the zoom moved the basemap
    assert _differing_share(zoomed, after) < 0.05  # and the rerun kept it (only the arrows went)
