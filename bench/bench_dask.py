"""Benchmark: a month of detection on Dask, 1 and 2 local workers; speed-up, memory per worker, task sizes.

Prints, on this machine:

1. the month (the OSSE that ``bench/bench_detect.py`` writes under ``bench/out/detect/``, simulated the same way
   if it is not there): good soundings, orbits, tasks (one per day file) and their sizes;
2. detection from Parquet to attributed events in one process (no Dask), the reference;
3. for each worker count: the local cluster's start-up, a first ("cold") run and a second ("warm") run of the
   month, the candidates compared with the reference (same rows and verdicts, or the benchmark fails; the
   numbers equal, or how many rows differ and by how much), and the peak resident memory of each worker process;
4. the ratios: the speed-up from 1 to 2 workers (warm runs; target >= 1.6x) and against one process;
5. what travels: pickled task and result sizes, Parquet bytes each worker reads, and what a year of ~30 million
   soundings makes of it.

    python bench/bench_dask.py [--days 31] [--passes-per-day 21] [--workers 1 2]
    python bench/bench_dask.py --days 3          # a small month, to check that it runs (~1 min)
"""
from __future__ import annotations

import argparse
import pickle
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from core.batch import dask_client, detect_month, plan_month  # noqa: E402
from core.cache import SoundingsCache  # noqa: E402
from core.ingest import ingest_paths  # noqa: E402
from core.settings import DetectionSettings  # noqa: E402
from core.simulate import simulate  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "detect"  # shared with bench_detect.py
MONTH = "2019-08"
YEAR_SOUNDINGS = 30_000_000
TARGET_SPEEDUP = 1.6


def ensure_month(days: int, passes_per_day: int) -> SoundingsCache:
    """The OSSE month of ``bench_detect.py`` (same seed and pass length), simulated and ingested if missing."""
    raw, root = OUT / f"month-{days}x{passes_per_day}", OUT / f"cache-{days}x{passes_per_day}"
    if not (raw / "truth_plumes.csv").exists():
        start = time.perf_counter()
        simulate(raw, days=days, seed=2025, passes_per_day=passes_per_day, pass_km=3000.0)
        print(f"simulated {days} day(s) x {passes_per_day} passes in {time.perf_counter() - start:.0f} s")
    cache = SoundingsCache(root)
    if not cache.months():
        ingest_paths([raw], cache=cache)
    return cache


def worker_peak_rss_mb() -> float:
    """Peak resident memory of the calling process [MB] (Linux ``ru_maxrss`` is in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_rss_mb() -> float:
    """Current resident memory of the calling process [MB]."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def describe_tasks(cache: SoundingsCache) -> list:
    tasks = plan_month(MONTH, str(cache.soundings_dir))
    sizes = [t.n_soundings for t in tasks]
    orbits = [len(t.orbits) for t in tasks]
    print(f"month: {sum(sizes):,} good soundings, {sum(orbits)} orbits, {len(tasks)} tasks (one per day file): "
          f"{min(sizes):,} / {int(statistics.median(sizes)):,} / {max(sizes):,} soundings and "
          f"{min(orbits)} / {int(statistics.median(orbits))} / {max(orbits)} orbits per task (min / median / max)")
    return tasks


def run_cluster(workers: int, cache: SoundingsCache, settings, reference: pd.DataFrame) -> dict:
    """Start a local cluster, run the month cold and warm, check identity, read each worker's memory."""
    from distributed import get_task_stream

    start = time.perf_counter()
    with dask_client(workers) as client:
        startup = time.perf_counter() - start
        rss_idle = client.run(worker_rss_mb)
        cold, _ = timed(lambda: detect_month(MONTH, settings, cache=cache, client=client))
        with get_task_stream(client) as stream:
            warm, candidates = timed(lambda: detect_month(MONTH, settings, cache=cache, client=client))
        peaks = client.run(worker_peak_rss_mb)
    agreement = compare(candidates, reference)
    compute = [sum(s["stop"] - s["start"] for s in task["startstops"] if s["action"] == "compute")
               for task in stream.data]
    result = {"workers": workers, "startup": startup, "cold": cold, "warm": warm,
              "rss_idle": sorted(rss_idle.values()), "rss_peak": sorted(peaks.values()), "task_s": compute}
    print(f"{workers} worker(s): cluster up in {startup:.1f} s; month cold {cold:.1f} s, warm {warm:.1f} s "
          f"({agreement}); per worker memory idle {_mb(result['rss_idle'])}, "
          f"peak {_mb(result['rss_peak'])}; task compute {min(compute):.2f} / {statistics.median(compute):.2f} / "
          f"{max(compute):.2f} s (min / median / max)")
    return result


def compare(left: pd.DataFrame, right: pd.DataFrame) -> str:
    """How a cluster's candidates agree with the one-process reference, in words.

    Raises if the rows or verdicts differ (ids, status, rules, every non-numeric column); the numbers (fits,
    statistics, fit evaluations) are counted where they differ, with the largest relative difference.
    """
    numbers = [c for c in left.select_dtypes("number").columns if c not in ("sounding_id", "orbit")]
    pd.testing.assert_frame_equal(left.drop(columns=numbers), right.drop(columns=numbers), check_exact=True)
    a, b = left[numbers].to_numpy(float), right[numbers].to_numpy(float)
    differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    if not differ.any():
        return "identical to one process"
    with np.errstate(invalid="ignore", over="ignore"):
        rel = np.abs(a - b)[differ] / np.maximum(np.abs(b[differ]), 1e-12)
    rows = differ.any(axis=1)
    verdicts = ", ".join(sorted(set(right.loc[rows, "status"])))
    amplitude = np.nanmax(np.abs(right.loc[rows, "amplitude_ppm_km"].to_numpy(float)))
    return (f"same rows and verdicts as one process; the numbers of {int(rows.sum())} of {len(left):,} rows "
            f"({verdicts}; |amplitude| up to {amplitude:.0e} ppm km) differ, by at most {np.nanmax(rel):.0e} "
            f"(relative)")


def network_figures(cache: SoundingsCache, tasks: list, settings, reference: pd.DataFrame) -> dict:
    """Bytes a task message, a result and a worker's Parquet reads take (what moves between machines)."""
    messages = [len(pickle.dumps((task, settings))) for task in tasks]
    results = []
    for task in tasks:
        part = reference[reference["orbit"].isin(task.orbits)]
        results.append(len(pickle.dumps([(o, g) for o, g in part.groupby("orbit")])))
    parquet = [sum(Path(f).stat().st_size for f in task.files) for task in tasks]
    return {"message": statistics.median(messages), "result": statistics.median(results),
            "parquet": statistics.median(parquet), "parquet_total": sum(p.stat().st_size for p in
                                                                       cache.day_files(MONTH))}


def _mb(values) -> str:
    return "/".join(f"{v:,.0f}" for v in values) + " MB"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--passes-per-day", type=int, default=21)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    args = parser.parse_args(argv)
    settings = DetectionSettings()
    cache = ensure_month(args.days, args.passes_per_day)
    tasks = describe_tasks(cache)
    n_soundings = sum(t.n_soundings for t in tasks)

    serial, reference = timed(lambda: detect_month(MONTH, settings, cache=cache))
    accepted = int((reference["is_event"] & reference["status"].eq("accepted")).sum())
    print(f"one process (no Dask): {serial:.1f} s ({n_soundings / serial:,.0f} soundings/s), "
          f"{len(reference):,} candidates, {accepted} accepted events")

    runs = {n: run_cluster(n, cache, settings, reference) for n in args.workers}
    if 1 in runs and 2 in runs:
        speedup = runs[1]["warm"] / runs[2]["warm"]
        verdict = "met" if speedup >= TARGET_SPEEDUP else "NOT met"
        print(f"speed-up 1 -> 2 workers: {speedup:.2f}x warm (target {TARGET_SPEEDUP}x: {verdict}); "
              f"{runs[1]['cold'] / runs[2]['cold']:.2f}x cold; 2 workers vs one process: "
              f"{serial / runs[2]['warm']:.2f}x warm, {serial / (runs[2]['startup'] + runs[2]['cold']):.2f}x "
              f"counting the cluster's start-up")
    net = network_figures(cache, tasks, settings, reference)
    best = min(runs.values(), key=lambda r: r["warm"])
    per_worker = n_soundings / sum(best["task_s"])  # soundings per second of task compute on one worker
    year_hours = YEAR_SOUNDINGS / per_worker / 3600
    print(f"network per task (median): task message {net['message'] / 1024:.1f} kB, result "
          f"{net['result'] / 1024:.0f} kB, Parquet read by the worker {net['parquet'] / 2**20:.1f} MB "
          f"(month {net['parquet_total'] / 2**20:.0f} MB); the client sends no soundings")
    print(f"a year (~{YEAR_SOUNDINGS / 1e6:.0f} M soundings, ~365 day tasks) at {per_worker:,.0f} soundings/s per "
          f"worker: {year_hours:.2f} worker-hours of tasks, ~{year_hours * 60 / 32:.1f} min on 32 workers; peak "
          f"memory per worker {max(max(r['rss_peak']) for r in runs.values()):,.0f} MB on this month")
    return 0


if __name__ == "__main__":
    sys.exit(main())
