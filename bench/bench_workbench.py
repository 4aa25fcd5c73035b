"""Benchmark: responsiveness of the workbench on the demo month, measured with Streamlit's AppTest.

Prints, for every page, the first render in a new session once the caches are warm (target <= 2 s), the orbit
explorer's redraw after a rule change (target <= 1 s) on the busiest orbit of the month, and vetting on Peak detail
(next peak, next unvetted, record a decision, a rule change: target <= 1 s each). Cold figures (the
first visit after the server starts, which detects the whole month once) are printed too, for the record.

AppTest runs the app script in this process, exactly as the server would for one session, without the browser's
drawing time. With ``--browser`` the same pages are timed in a real Chromium: "shown" (the run finished and the page
is on screen) and "drawn" (also the browser's last long task ended: maps and charts drawn; here in a software WebGL
renderer, where opening any deck.gl map costs ~1.2 s), and a click on a peak of the orbit's map to its Peak detail
(target <= 2 s). Before each click the browser is left to finish drawing the
previous page, as an analyst would look at it.

    python bench/bench_workbench.py [--cache DIR] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = ["overview", "orbit", "peak", "inventory", "vetted", "data", "validation"]
SNR = "rules.significance.min_snr"
TARGET_PAGE_S, TARGET_REDRAW_S, TARGET_CLICK_S = 2.0, 1.0, 2.0
#: Records when the page's main thread was last busy (end of the latest long task, > 50 ms), for the browser figures.
LONG_TASKS = """window.__busyUntil = 0;
new PerformanceObserver(list => { for (const e of list.getEntries())
    window.__busyUntil = Math.max(window.__busyUntil, e.startTime + e.duration); }).observe({entryTypes: ['longtask']});"""


def _session(params: dict):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "workbench" / "app.py"), default_timeout=900)
    for key, value in params.items():
        at.query_params[key] = str(value)
    return at


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _check(at, what: str) -> None:
    if at.exception:
        raise SystemExit(f"{what}: the page raised {at.exception[0].value}")


def first_renders(params: dict) -> dict[str, float]:
    """Each page's first render in a fresh session (the overview is the landing page; others are switched to)."""
    out = {}
    for page in PAGES:
        at = _session(params)
        if page == "overview":
            out[page], _ = _timed(at.run)
        else:
            at.run()
            out[page], _ = _timed(lambda: at.switch_page(f"views/{page}.py").run())
        _check(at, page)
    return out


def vetting_figures(params: dict) -> None:
    """Vetting on Peak detail, server side (AppTest), on a copy of the cache's soundings and stored detections (the
    bench's decisions must not land in the analyst's store): next peak, next unvetted, record a decision, a rule
    changed with the decision found again (target 1 s each)."""
    import shutil
    import tempfile

    from core.paths import cache_root

    source = cache_root()
    with tempfile.TemporaryDirectory(prefix="oco2peak-bench-vet-") as tmp:
        for part in ("soundings", "detections"):
            if (source / part).is_dir():
                shutil.copytree(source / part, Path(tmp) / part)  # copy2: the files' times, so detections stay fresh
        before = os.environ.get("OCO2_CACHE")
        os.environ["OCO2_CACHE"] = tmp
        try:
            at = _session(params)
            at.run()
            cold, _ = _timed(lambda: at.switch_page("views/peak.py").run())
            _check(at, "peak")
            times = {}

            def button(label):
                return next(b for b in at.button if b.label == label)

            times["next peak"], _ = _timed(lambda: button("Next").click().run())
            times["next unvetted"], _ = _timed(lambda: button("Next unvetted").click().run())
            peak, orbit = at.query_params["peak"], at.query_params["orbit"]
            form = f"vet:{orbit}:{peak}"
            at.radio(key=f"{form}:decision").set_value("reject")
            at.text_input(key=f"{form}:analyst").input("bench")
            times["record a decision"], _ = _timed(lambda: button("Record decision").click().run())
            _check(at, "record")
            times["rule changed, decision found"], _ = _timed(
                lambda: at.slider(key=f"set:{SNR}").set_value(round(at.slider(key=f"set:{SNR}").value + 0.25, 6)).run())
            _check(at, "rule change")
            found = any("**reject** by bench" in m.value for m in at.markdown)
        finally:
            if before is None:
                os.environ.pop("OCO2_CACHE", None)
            else:
                os.environ["OCO2_CACHE"] = before
    print(f"\nvetting on Peak detail (AppTest, server side; first render of the page {cold:.2f} s on a fresh copy "
          f"of the cache):")
    for what, seconds in times.items():
        print(f"  {what:<30} {seconds:5.2f} s  {'ok' if seconds <= TARGET_REDRAW_S else 'SLOW'}")
    print(f"  decision shown after the rule change: {'yes' if found else 'NO'}")


def browser_figures(params: dict, map_view: dict, map_points: list[dict]) -> None:
    """The same figures in a real Chromium, drawing included: opening the app by a link (the app's JavaScript
    loads, a session starts), each page reached from the sidebar (twice: the second pass is warm), and the orbit
    redrawn after a key press on the rule slider."""
    import re
    import socket
    import subprocess
    import urllib.request
    from urllib.parse import urlencode

    from playwright.sync_api import expect, sync_playwright

    from workbench import controls, maps

    headings = {"overview": "Month overview", "orbit": "Orbit explorer", "peak": "Peak detail",
                "inventory": "Inventory comparison", "vetted": "Vetted peaks & export", "data": "Data in the cache",
                "validation": "Validation on simulated truth"}
    links = {"overview": "Month overview", "orbit": "Orbit explorer", "peak": "Peak detail",
             "inventory": "Inventory comparison", "vetted": "Vetted peaks & export", "data": "Data",
             "validation": "Validation"}
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "workbench/app.py", "--server.headless",
                               "true", "--server.port", str(port), "--server.address", "127.0.0.1",
                               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def settle(page, heading=None):
        if heading:
            expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=900_000)
        for _ in range(2):  # Streamlit flags its script state on the app root
            expect(page.locator("[data-testid='stApp'][data-test-script-state='notRunning']")).to_have_count(
                1, timeout=900_000)
            page.wait_for_timeout(100)

    def quiet(page, for_ms=500):
        """Wait until the page's main thread ran no long task (> 50 ms: drawing, WebGL) for ``for_ms``: the
        analyst sees the finished page before the next click, so one page's drawing is not billed to the next."""
        page.wait_for_function(f"performance.now() - window.__busyUntil > {for_ms}", timeout=900_000, polling=100)

    def timed(page, action, heading=None) -> tuple[float, float]:
        """(seconds until the run finished and the page is on screen, seconds until it is also drawn: the last
        long task after the action ended)."""
        quiet(page)
        t0 = page.evaluate("performance.now()")
        start = time.perf_counter()
        action()
        settle(page, heading)
        shown = time.perf_counter() - start - 0.2
        quiet(page)
        drawn = (page.evaluate("window.__busyUntil") - t0) / 1000
        return shown, max(shown, drawn)

    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{base}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.25)
        query = urlencode({k: str(v) for k, v in params.items()})
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)

            def new_page():
                """A page in a new browser context (a new analyst), recording its long tasks."""
                context = browser.new_context(viewport={"width": 1440, "height": 1000})
                context.add_init_script(LONG_TASKS)
                return context.new_page()

            page = new_page()
            start = time.perf_counter()
            page.goto(f"{base}/?{query}")
            settle(page, headings["overview"])
            print(f"\nin Chromium (software WebGL; 0.2 s of settling checks removed). 'shown': the run finished and "
                  f"the page is on screen; 'drawn': also its maps and charts drawn (the browser's last long task "
                  f"ended)\nopen the app by a link, server cold (the month detected): "
                  f"{time.perf_counter() - start - 0.2:.2f} s")
            passes = []
            for _ in range(2):
                times = {}
                for name in PAGES[1:] + PAGES[:1]:
                    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=links[name])
                    times[name] = timed(page, link.click, headings[name])
                passes.append(times)
            print(f"{'page':<12} {'1st shown':>10} {'drawn':>7} {'warm shown':>11} {'drawn':>7}   "
                  f"(reached from the sidebar; target {TARGET_PAGE_S:.0f} s)")
            for name in PAGES:
                (s1, d1), (s2, d2) = passes[0][name], passes[1][name]
                print(f"{name:<12} {s1:10.2f} {d1:7.2f} {s2:11.2f} {d2:7.2f}")
            other = new_page()
            start = time.perf_counter()
            other.goto(f"{base}/orbit?{query}")
            settle(other, headings["orbit"])
            print(f"open a shared link to the orbit explorer in a new browser, server warm: "
                  f"{time.perf_counter() - start - 0.2:.2f} s")
            timed(page, page.get_by_test_id("stSidebarNav").get_by_role("link", name=links["orbit"]).click,
                  headings["orbit"])
            clicks = []
            for point in map_points[:3]:  # accepted peaks of the busiest orbit, as the orbit map draws them
                timed(page, lambda: page.goto(f"{base}/orbit?{query}"), headings["orbit"])
                canvas = page.get_by_test_id("stDeckGlJsonChart").first.locator("canvas").last
                canvas.scroll_into_view_if_needed()
                quiet(page)
                box = canvas.bounding_box()
                x, y = maps.pixel_of(map_view, point["longitude"], point["latitude"], box["width"], box["height"])
                clicks.append(timed(page, lambda: page.mouse.click(box["x"] + x, box["y"] + y), headings["peak"]))
            if clicks:
                print(f"a click on a peak of the orbit's map to its Peak detail: median shown "
                      f"{statistics.median(c[0] for c in clicks):.2f} s, drawn {statistics.median(c[1] for c in clicks):.2f} s; "
                      f"worst drawn {max(c[1] for c in clicks):.2f} s (target {TARGET_CLICK_S:.0f} s; {len(clicks)} clicks)")
            timed(page, lambda: page.goto(f"{base}/orbit?{query}"), headings["orbit"])
            slider = page.get_by_role("slider", name=controls.controls()[SNR].label)
            step, redraws = controls.controls()[SNR].step, []
            value = float(slider.get_attribute("aria-valuetext"))
            for _ in range(5):
                value = round(value + step, 6)
                slider.focus()

                def press(expected=value):
                    page.keyboard.press("ArrowRight")
                    expect(page).to_have_url(re.compile(rf"{re.escape(SNR)}={expected!r}(&|$)"), timeout=60_000)

                redraws.append(timed(page, press))
            shown, drawn = (statistics.median(r[i] for r in redraws) for i in (0, 1))
            print(f"orbit redraw after a key press on the rule slider: median shown {shown:.2f} s, drawn "
                  f"{drawn:.2f} s; worst drawn {max(r[1] for r in redraws):.2f} s (target {TARGET_REDRAW_S:.0f} s)")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=None, help="cache root (default: $OCO2_CACHE, else data_cache/)")
    parser.add_argument("--repeats", type=int, default=5, help="rule changes timed on the orbit explorer")
    parser.add_argument("--browser", action="store_true",
                        help="also time the pages and the redraw in Chromium (the app served over the cache)")
    args = parser.parse_args(argv)
    if args.cache:
        os.environ["OCO2_CACHE"] = str(Path(args.cache).resolve())

    from core.cache import SoundingsCache
    from core.demo import DEMO_MONTH, ensure_demo
    from core.paths import cache_root
    from core.settings import DetectionSettings
    from workbench import controls, queries

    summary = ensure_demo(cache=cache_root())
    print(f"cache {cache_root()}: {summary['message']}")
    cache = SoundingsCache(cache_root())
    orbits = queries.orbits_table(cache, DEMO_MONTH)
    busiest = int(orbits.sort_values("soundings", ascending=False)["orbit"].iloc[0])
    params = {"month": DEMO_MONTH, "orbit": busiest}
    print(f"{DEMO_MONTH}: {len(orbits)} orbits, {int(orbits['soundings'].sum()):,} soundings; busiest orbit {busiest} "
          f"({int(orbits['soundings'].max()):,} soundings)")

    cold = first_renders(params)
    warm = first_renders(params)
    print(f"\n{'page':<12} {'cold [s]':>9} {'warm [s]':>9}  target <= {TARGET_PAGE_S:.0f} s")
    for page in PAGES:
        flag = "ok" if warm[page] <= TARGET_PAGE_S else "SLOW"
        print(f"{page:<12} {cold[page]:9.2f} {warm[page]:9.2f}  {flag}")

    # redraw after a rule change: a new threshold each time (never cached), the fits reused
    at = _session(params)
    at.run()
    at.switch_page("views/orbit.py").run()
    _check(at, "orbit")
    step = controls.controls()[SNR].step
    base = DetectionSettings()[SNR]
    redraws = []
    for i in range(1, args.repeats + 1):
        value = round(base + i * step * (1 if i % 2 else -1) * 3, 6)
        seconds, _ = _timed(lambda: at.slider(key=f"set:{SNR}").set_value(value).run())
        _check(at, "orbit redraw")
        accepted = next(m.value for m in at.metric if m.label == "Accepted")
        redraws.append(seconds)
        print(f"orbit {busiest}: {SNR} = {value:<5} -> {accepted:>3} accepted, redrawn in {seconds:.2f} s")
    worst = max(redraws)
    print(f"\norbit redraw after a rule change: median {statistics.median(redraws):.2f} s, worst {worst:.2f} s "
          f"(target <= {TARGET_REDRAW_S:.0f} s: {'ok' if worst <= TARGET_REDRAW_S else 'SLOW'})")
    # for the record: the month overview after a rule change re-judges every orbit (no refit)
    at = _session(params)
    at.run()
    seconds, _ = _timed(lambda: at.slider(key=f"set:{SNR}").set_value(round(base + 7 * step, 6)).run())
    _check(at, "overview after a rule change")
    print(f"month overview after a rule change ({len(orbits)} orbits re-judged, none refitted): {seconds:.2f} s")
    vetting_figures(params)
    if args.browser:
        import json

        at = _session(params)
        at.run()
        at.switch_page("views/orbit.py").run()
        spec = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
        points = next((layer["data"] for layer in spec["layers"] if layer["id"] == "accepted"), [])
        browser_figures(params, spec["initialViewState"], points[::-1])  # drawn last, on top: picked first
    slow = [p for p in PAGES if warm[p] > TARGET_PAGE_S]
    print(f"pages within {TARGET_PAGE_S:.0f} s warm: {len(PAGES) - len(slow)}/{len(PAGES)}"
          + (f" (slow: {', '.join(slow)})" if slow else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
