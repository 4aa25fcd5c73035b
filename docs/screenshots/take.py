"""Retake the README's screenshots on the embedded demo month, and time the workbench's first start.

    .venv/bin/python docs/screenshots/take.py                      # fresh temporary cache, PNGs into docs/screenshots/
    .venv/bin/python docs/screenshots/take.py --cache data_cache   # an existing cache (decisions are recorded in it)

It starts ``streamlit run workbench/app.py`` as the README does (cache: ``--cache``, default a new temporary folder,
so the first start builds the demo month 2019-08), opens it in headless Chromium at 1440x900, waits until the month
overview is drawn (demo built, month detected, map on screen) and prints how long that took from the server's
start. It then runs ``python -m core detect`` on the same cache to pick peaks to show (the accepted events with an
inventory source, most significant first), records decisions on three of them on the Peak detail page (so the
Vetted page has rows) and saves overview, orbit, peak, peak_sources, inventory, vetted, data and validation PNGs
into ``--out`` (the validation page simulates and fits its OSSE on its first visit: ~25 s more).

Chromium: ``$CHROMIUM``, else ``/usr/bin/chromium`` (Debian's package), else Playwright's own build
(``python -m playwright install chromium``). The icons are Streamlit's bundled Material symbols (no font needed).
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
MONTH = "2019-08"
VIEWPORT = {"width": 1440, "height": 900}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    for path in (os.environ.get("CHROMIUM"), "/usr/bin/chromium"):
        if path and Path(path).exists():
            return path
    return None  # Playwright's own build


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settled(page: Page, heading: str | None = None, timeout_ms: int = 300_000) -> None:
    """The script run finished (Streamlit's state flag on the app root) and the page shows its heading."""
    if heading:
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=timeout_ms)
    for _ in range(2):
        expect(page.locator("[data-testid='stApp'][data-test-script-state='notRunning']")).to_have_count(
            1, timeout=timeout_ms)
        page.wait_for_timeout(300)


def drawn(page: Page, first: bool = False) -> None:
    """No placeholder left, every chart drawn, maps attached and given time to draw (basemap style and layers)."""
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=300_000)
    charts = page.get_by_test_id("stVegaLiteChart")
    for i in range(charts.count()):
        expect(charts.nth(i).locator("canvas, svg").first).to_be_attached(timeout=120_000)
    maps = page.get_by_test_id("stDeckGlJsonChart")
    if maps.count():
        expect(maps.first.locator("canvas").first).to_be_attached(timeout=120_000)
        page.wait_for_timeout(8000 if first else 3000)
    page.wait_for_timeout(1500)
    settled(page)


def shoot(page: Page, out: Path, name: str) -> None:
    page.screenshot(path=out / f"{name}.png")
    print(f"  {out / f'{name}.png'}", flush=True)


def pick_peaks(cache: Path, n: int = 3) -> pd.DataFrame:
    """Accepted events with an inventory source, most significant first (from ``python -m core detect``); those
    of a typical plume width whose estimate is within 1.5x of the inventory come first."""
    csv = Path(tempfile.gettempdir()) / "oco2-take-peaks.csv"
    subprocess.run([sys.executable, "-m", "core", "detect", "--month", MONTH, "--cache", str(cache), "--out",
                    str(csv)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks = pd.read_csv(csv)
    peaks = peaks[peaks["status"].eq("accepted") & peaks["source_id"].notna()]
    ratio = peaks["emission_ratio"].astype(float)
    typical = (ratio > 1 / 1.5) & (ratio < 1.5) & peaks["sigma_km"].between(4, 12)
    peaks = peaks.assign(typical=typical).sort_values(["typical", "significance"], ascending=False)
    return peaks.drop_duplicates("source_id").head(n)


def into_view(page: Page, test_id: str, block: str = "center") -> None:
    """Scroll the first element with this test id into view (the main area scrolls, not the window)."""
    element = page.get_by_test_id(test_id).first
    if element.count():
        element.evaluate(f"e => e.scrollIntoView({{block: '{block}'}})")
        page.wait_for_timeout(1500)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, help="cache root (default: a new temporary folder)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="where the PNGs go")
    args = ap.parse_args()
    cache = (args.cache or Path(tempfile.mkdtemp(prefix="oco2-demo-"))).resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(Path(tempfile.gettempdir()) / f"oco2-take-{port}.log", "w")
    cmd = [sys.executable, "-m", "streamlit", "run", "workbench/app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none"]
    print(f"cache {cache}; server log {log.name}")
    t0 = time.monotonic()
    server = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "OCO2_CACHE": str(cache)}, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() - t0 > 120:
                raise SystemExit(f"the server did not start: see {log.name}")
            time.sleep(0.2)
        t_health = time.monotonic() - t0
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.goto(url)
            expect(page.get_by_role("heading", name="Month overview", exact=True)).to_be_visible(timeout=300_000)
            t_demo = time.monotonic() - t0
            settled(page, "Month overview")
            expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=300_000)
            expect(page.get_by_test_id("stDeckGlJsonChart").first.locator("canvas").first).to_be_attached(
                timeout=120_000)
            t_overview = time.monotonic() - t0
            print(f"first start: server healthy {t_health:.1f} s, demo month built (overview heading) "
                  f"{t_demo:.1f} s, month detected and the overview's map on screen {t_overview:.1f} s after the "
                  "server's start", flush=True)
            page.reload()  # a new session: the overview as any later visitor sees it (no first-start message)
            settled(page, "Month overview")
            drawn(page, first=True)
            into_view(page, "stDeckGlJsonChart", "end")
            shoot(page, args.out, "overview")

            peaks = pick_peaks(cache)
            first = peaks.iloc[0]
            orbit, peak = int(first["orbit"]), int(first["sounding_id"])
            page.goto(f"{url}/orbit?month={MONTH}&orbit={orbit}&peak={peak}")
            settled(page, "Orbit explorer")
            drawn(page)
            into_view(page, "stVegaLiteChart", "end")
            shoot(page, args.out, "orbit")

            decisions = [("accept", "a.analyst", "plume shape clear, wind consistent"),
                         ("unsure", "b.analyst", "second source upwind, check the wind"),
                         ("accept", "a.analyst", "clear plume, upwind source as ranked")]
            for (decision, analyst, why), row in zip(decisions, reversed(list(peaks.itertuples(index=False)))):
                page.goto(f"{url}/peak?month={MONTH}&orbit={int(row.orbit)}&peak={int(row.sounding_id)}")
                settled(page, "Peak detail")
                page.get_by_test_id("stRadio").get_by_text(decision, exact=True).click()
                page.get_by_label("Note (why)").fill(f"{row.source_name}: {why}")
                page.get_by_label("Analyst").fill(analyst)
                page.get_by_role("button", name="Record decision").click()
                settled(page)
            page.goto(f"{url}/peak?month={MONTH}&orbit={orbit}&peak={peak}")  # the most significant, from the top
            settled(page, "Peak detail")
            drawn(page)
            shoot(page, args.out, "peak")
            page.get_by_role("heading", name="Emission", exact=True).evaluate(
                "e => e.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(2000)
            shoot(page, args.out, "peak_sources")  # emission, upwind sector and ranked sources

            for path, heading, name in (("inventory", "Inventory comparison", "inventory"),
                                        ("vetted", "Vetted peaks & export", "vetted"),
                                        ("data", "Data in the cache", "data"),
                                        ("validation", "Validation on simulated truth", "validation")):
                page.goto(f"{url}/{path}?month={MONTH}&orbit={orbit}&peak={peak}")
                settled(page, heading)
                drawn(page)
                shoot(page, args.out, name)
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
