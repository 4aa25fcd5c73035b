"""Load benchmark: 10 concurrent analysts browsing the demo month, on loopback only (bounded in count and time).

Starts ``streamlit run workbench/app.py`` on 127.0.0.1 over a cache holding the demo month, warms it with one
session (the first visit of the month overview detects the month once per server process), then opens N
sessions at once. Each session (one websocket, as one browser tab) is a real Streamlit client speaking the app's own websocket protocol
(``/_stcore/stream``, the protobuf BackMsg / ForwardMsg messages the browser sends and receives): it asks for the
month overview, the orbit explorer, the peak detail and the inventory comparison in turn, and a page counts as
rendered when the server reports ``script_finished``. An exception element on a page is an error. This measures
the server under load; the browser's own drawing time for one session is measured by
``bench/bench_workbench.py`` (a headless Chromium drawing 10 WebGL maps in software on 2 cores measures the
test machine, not the app).

Prints every page's render times, errors, and the p50 / p95 (target: no error, p95 <= 3 s), and the server's
memory (``/proc/<pid>/status``: resident now, ``VmRSS``, and its peak so far, ``VmHWM``) after the first analyst
and after the N sessions: a hosted app has a memory cap (Streamlit Community Cloud documents 690 MB to 2.7 GB per
app), so the target is a peak under 1 GB with 1 and with 5 sessions.

    python bench/bench_load.py [--sessions 10] [--cache DIR]
    python bench/bench_load.py --sessions 5      # the hosted-link check: peak memory with 1 and 5 sessions
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.demo import DEMO_MONTH, ensure_demo  # noqa: E402

#: page url paths in visiting order ("" is the default page, the month overview)
PAGES = ["", "orbit", "peak", "inventory"]
#: the view every analyst opens (the query string a shared link carries); the orbit is chosen by the app
QUERY = f"month={DEMO_MONTH}"
TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cache: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "workbench/app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    server = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "OCO2_CACHE": str(cache)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return server, url
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the app did not start within 60 s")


async def render(ws, page: str) -> float:
    """Ask the session for a page, wait for ``script_finished``; raise on an exception element."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    msg = BackMsg()
    msg.rerun_script.page_name = page
    msg.rerun_script.query_string = QUERY
    start = time.perf_counter()
    await ws.send(msg.SerializeToString())
    while True:
        forward = ForwardMsg()
        forward.ParseFromString(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
        kind = forward.WhichOneof("type")
        if kind == "delta" and forward.delta.new_element.WhichOneof("type") == "exception":
            raise RuntimeError(f"page {page or 'overview'!r}: {forward.delta.new_element.exception.message}")
        if kind == "script_finished":
            return time.perf_counter() - start


async def session(url: str, index: int, results: list, errors: list) -> None:
    """One analyst: one websocket session (as one browser tab) visiting the pages in turn."""
    import websockets

    try:
        async with websockets.connect(url.replace("http", "ws") + "/_stcore/stream", max_size=None,
                                      subprotocols=["streamlit"]) as ws:
            for page in PAGES:
                try:
                    results.append((index, page or "overview", await render(ws, page)))
                except Exception as exc:  # noqa: BLE001 - every failure is a counted error of the load test
                    errors.append(f"session {index}: {type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''}")
    except OSError as exc:
        errors.append(f"session {index}: could not connect: {exc}")


def memory_mb(pid: int) -> tuple[float, float]:
    """``(resident, peak resident)`` of a process [MB] (Linux ``/proc/<pid>/status``: VmRSS, VmHWM in kB)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return tuple(float(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))


async def run(url: str, sessions: int, pid: int) -> tuple[list, list, float]:
    warm, warm_errors = [], []
    await session(url, -1, warm, warm_errors)  # one analyst first: the month is detected once per process
    if warm_errors:
        raise SystemExit(f"warm-up failed: {warm_errors}")
    print("warm-up (first analyst): " + ", ".join(f"{p} {t:.2f} s" for _, p, t in warm))
    print("server memory after 1 session: resident {:.0f} MB, peak {:.0f} MB".format(*memory_mb(pid)))
    results, errors = [], []
    start = time.perf_counter()
    await asyncio.gather(*(session(url, i, results, errors) for i in range(sessions)))
    wall = time.perf_counter() - start
    print(f"server memory after {sessions} more concurrent sessions: resident {{:.0f}} MB, peak {{:.0f}} MB "
          "(target: peak < 1,000 MB)".format(*memory_mb(pid)))
    return results, errors, wall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--cache", default=str(ROOT / "bench" / "out" / "load-cache"))
    args = parser.parse_args(argv)
    cache = Path(args.cache)
    ensure_demo(cache=cache)
    server, url = start_server(cache)
    try:
        results, errors, wall = asyncio.run(run(url, args.sessions, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
    times = np.array([t for _, _, t in results])
    for name in [p or "overview" for p in PAGES]:
        page_times = np.array([t for _, h, t in results if h == name])
        if page_times.size:
            print(f"{name:<10} n={page_times.size:2d}  p50 {np.median(page_times):.2f} s  "
                  f"p95 {np.percentile(page_times, 95):.2f} s  max {page_times.max():.2f} s")
    p95 = float(np.percentile(times, 95)) if times.size else float("nan")
    print(f"{args.sessions} concurrent sessions, {len(results)} page renders in {wall:.1f} s, {len(errors)} errors; "
          f"p50 {np.median(times):.2f} s, p95 {p95:.2f} s (target: no error, p95 <= 3 s)")
    for error in errors:
        print("  " + error)
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
