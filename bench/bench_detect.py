"""Benchmark: detection speed, and the ratio to a naive per-window lmfit baseline.

Prints, on this machine:

1. a month-size OSSE (>= 2.5 million good soundings, simulated once and ingested under ``bench/out/detect/``)
   from Parquet to attributed events, with 1 and 2 local worker processes (target: <= 20 s);
2. one orbit of ~40k soundings re-detected after a fit-constraint change (screen + fits + rules; the geometry
   is kept, as the workbench keeps it) (target: <= 0.5 s);
3. a rules-only re-evaluation of that orbit (target: <= 50 ms);
4. the naive baseline: an lmfit ``Model.fit`` per window at every 15th sounding (no screen, no Jacobian, crude
   starting values, sigma bounded), timed on a subset of that orbit and extrapolated to the month: the ratio
   to (1) (target: >= 50x).

    python bench/bench_detect.py [--days 31] [--passes-per-day 24] [--pass-km 3500]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lmfit  # noqa: E402
import numpy as np  # noqa: E402

from core.batch import detect_month  # noqa: E402
from core.cache import SoundingsCache  # noqa: E402
from core.detect import find_candidates, fit_candidates, judge, prepare_orbit  # noqa: E402
from core.fitting import gaussian_line  # noqa: E402
from core.ingest import ingest_paths  # noqa: E402
from core.settings import DetectionSettings  # noqa: E402
from core.simulate import OsseSettings, simulate  # noqa: E402
from core.validation import load_osse  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "detect"


def best_of(n, fn):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--passes-per-day", type=int, default=24)
    parser.add_argument("--pass-km", type=float, default=3500.0,
                        help="length of each simulated pass (real day-side passes are longer still)")
    parser.add_argument("--naive-windows", type=int, default=150, help="windows timed for the naive baseline")
    args = parser.parse_args(argv)
    settings = DetectionSettings()

    # 1. a month from Parquet to events
    name = f"{args.days}x{args.passes_per_day}x{args.pass_km:.0f}km"
    raw, cache = OUT / f"month-{name}", OUT / f"cache-{name}"
    if not (raw / "truth_plumes.csv").exists():
        start = time.perf_counter()
        simulate(raw, days=args.days, seed=2025, passes_per_day=args.passes_per_day, pass_km=args.pass_km)
        print(f"simulated the month in {time.perf_counter() - start:.0f} s")
    if not SoundingsCache(cache).months():
        ingest_paths([raw], cache=cache)
    n_month = int(SoundingsCache(cache).manifest()["n_kept"].sum())
    month_seconds = {}
    for workers in (1, 2):
        start = time.perf_counter()
        candidates = detect_month("2019-08", settings, cache=cache, workers=workers)
        month_seconds[workers] = time.perf_counter() - start
        n_events = int((candidates["is_event"] & candidates["status"].eq("accepted")).sum())
        print(f"month: {n_month:,} good soundings, {candidates['orbit'].nunique()} orbits, {len(candidates):,} "
              f"candidates, {n_events} accepted events: {month_seconds[workers]:.1f} s with {workers} worker(s) "
              f"({n_month / month_seconds[workers]:,.0f} soundings/s)")
    best_month = min(month_seconds.values())

    # 2-3. one long orbit
    long_raw = OUT / "long-orbit"
    if not (long_raw / "truth_plumes.csv").exists():  # a day side with mostly clear sky: ~40k good soundings
        simulate(long_raw, days=1, seed=7, passes_per_day=1, pass_km=19000.0,
                 settings=OsseSettings(regime_probabilities=(0.85, 0.1, 0.05)))
    soundings = load_osse(long_raw).soundings
    orbit = soundings[soundings["orbit"] == soundings["orbit"].value_counts().idxmax()]
    od = prepare_orbit(orbit)
    fitted = fit_candidates(od, find_candidates(od, settings), settings)
    judge(od, fitted, settings)
    changed = settings.replace({"fit.centre_shift_km": 8.0})
    redetect, result = best_of(3, lambda: judge(od, fit_candidates(od, find_candidates(od, changed), changed),
                                                changed))
    stricter = settings.replace({"rules.significance.min_snr": 4.0})
    rules_only, _ = best_of(5, lambda: judge(od, fitted, stricter))
    print(f"orbit: {len(orbit):,} soundings over {od.x_km[-1]:,.0f} km, {len(result)} candidates, "
          f"{int(result['fixed_reason'].eq('').sum())} fitted: re-detected after a constraint change in "
          f"{redetect * 1000:.0f} ms (target 500 ms); rules-only re-evaluation {rules_only * 1000:.1f} ms (target 50 ms)")

    # 4. naive baseline on a subset of the orbit, extrapolated to the month
    x, y, unc = od.x_km, od.soundings["xco2"].to_numpy(float), od.soundings["xco2_uncertainty"].to_numpy(float)
    centres = x[::15][: args.naive_windows]
    model = lmfit.Model(gaussian_line)  # stock lmfit, as a naive user would fit
    start = time.perf_counter()
    n_evals = 0
    for c in centres:
        lo, hi = np.searchsorted(x, [c - 100, c + 100])
        params = model.make_params(amplitude=1.0, sigma=dict(value=5.0, min=0.5, max=50.0), center=c, slope=0.0,
                                   intercept=float(np.median(y[lo:hi])))
        fit = model.fit(y[lo:hi], params, x=x[lo:hi], weights=1 / unc[lo:hi], max_nfev=2000)
        n_evals += fit.nfev
    per_window = (time.perf_counter() - start) / len(centres)
    naive_month = per_window * n_month / 15
    print(f"naive baseline: {per_window * 1000:.1f} ms per window ({n_evals / len(centres):.0f} evaluations), "
          f"{n_month // 15:,} windows in the month -> {naive_month:,.0f} s extrapolated; ours {best_month:.1f} s: "
          f"{naive_month / best_month:.0f}x faster (target 50x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
