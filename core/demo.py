"""The embedded demo month: August 2019 over the largest real emitters, simulated and ingested once.

:func:`ensure_demo` writes the month's daily Lite files (build B10, real names and layout) with
:func:`core.simulate.simulate` under ``<cache>/raw/demo-2019-08/`` with a fixed seed (the same files on every
machine), then ingests them into the soundings cache. It is idempotent: when every demo file is already in the
cache's manifest it does nothing and says so; when the files exist but some are not ingested it ingests those.

The month: 31 days x 3 passes of 3000 km, 55 % of them crossing the plume of one of the 45 largest non-city
emitters of the inventory (10-50 km downwind, wind 2-8 m/s), the others plume-free (> 300 km from any source
above 0.1 MtCO2/yr) with land/water steps and cloud bursts. The truth tables lie beside the files
(``truth_plumes.csv``, ``truth_passes.csv``, ``truth_nuisances.csv``).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .locks import exclusive_lock
from .paths import cache_root

DEMO_MONTH = "2019-08"
DEMO_SEED = 20190801
DEMO_DAYS = 31
DEMO_PASSES_PER_DAY = 3
DEMO_PASS_KM = 3000.0
DEMO_PLUME_FRACTION = 0.55
DEMO_BUILD = "B10"
DEMO_TARGETS = 45  # plume passes aim at the largest non-city emitters, in order of emission
#: Bumped whenever the simulator or the settings above change what the demo holds: an older demo is rebuilt.
DEMO_VERSION = 1
SUMMARY_FILE = "demo_summary.json"


def demo_dir(cache=None) -> Path:
    """Folder of the demo's Lite files and truth: ``<cache>/raw/demo-2019-08/``."""
    return cache_root(cache) / "raw" / f"demo-{DEMO_MONTH}"


def ensure_demo(cache=None, on_file=None) -> dict:
    """Make the demo month and ingest it, unless it is there already.

    Parameters
    ----------
    cache : str or os.PathLike, optional
        Cache root (default: ``$OCO2_CACHE``, else ``data_cache/``).
    on_file : callable, optional
        ``on_file(i, n, report)`` after each ingested file (see :func:`core.ingest.ingest_paths`).

    Returns
    -------
    dict
        ``status`` ("present", "ingested" or "created"), ``message`` (one line for people), the folder, the file
        names and the demo's figures: passes, plume and plume-free passes, distinct emitters, good soundings,
        plume-free km, target plume peak heights [ppm], timings [s].
    """
    from .cache import SoundingsCache
    from .ingest import ingest_paths

    folder = demo_dir(cache)
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(folder / ".demo.lock"):  # two processes (app and command line) never build it at once
        summary = _read_summary(folder)
        if summary is None:
            summary = _create(folder, cache)
            status = "created"
        else:
            status = "ingested"
        ingested = set(SoundingsCache(cache).manifest()["file_name"])
        missing = [name for name in summary["files"] if name not in ingested]
        if not missing:
            message = (f"demo {DEMO_MONTH} already in the cache ({len(summary['files'])} files, "
                       f"{summary['good_soundings']:,} good soundings): nothing to do")
            return {**summary, "status": "present", "message": message, "n_bad": 0}
        started = time.perf_counter()
        report = ingest_paths([folder / name for name in missing], cache=cache, on_file=on_file)
        seconds = time.perf_counter() - started
    bad = [f"{r.path.name}: {r.detail}" for r in report.files if r.bad]
    message = (f"demo {DEMO_MONTH} {'written and ' if status == 'created' else ''}ingested: "
               f"{len(missing)} files, {summary['passes']} passes ({summary['plume_passes']} over "
               f"{summary['distinct_emitters']} emitters, {summary['plume_free_passes']} plume-free), "
               f"{summary['good_soundings']:,} good soundings; ingest {seconds:.1f} s"
               + (f"; {len(bad)} bad file(s): " + "; ".join(bad) if bad else ""))
    return {**summary, "status": status, "message": message, "ingest_seconds": seconds, "n_bad": len(bad)}


def _create(folder: Path, cache) -> dict:
    """Simulate the demo month into ``folder`` (replacing an older demo) and write its summary."""
    import numpy as np

    from .inventory import largest_emitters
    from .simulate import TRUTH_FILES, simulate

    for stale in [*folder.glob("oco2_LtCO2_*.nc4"), folder / SUMMARY_FILE,
                  *(folder / name for name in TRUTH_FILES.values())]:
        stale.unlink(missing_ok=True)
    targets = largest_emitters(DEMO_TARGETS, cache=cache)
    result = simulate(folder, days=DEMO_DAYS, seed=DEMO_SEED, month=DEMO_MONTH,
                      passes_per_day=DEMO_PASSES_PER_DAY, pass_km=DEMO_PASS_KM,
                      plume_fraction=DEMO_PLUME_FRACTION, build=DEMO_BUILD, targets=targets, cache=cache)
    passes, plumes = result.passes, result.plumes
    target_plumes = plumes[plumes["role"] == "target"]
    peaks = target_plumes["peak_footprint_ppm"].to_numpy(float)
    quantiles = dict(zip(["min", "p25", "median", "p75", "max"],
                         np.round(np.quantile(peaks, [0, 0.25, 0.5, 0.75, 1.0]), 2).tolist())) if peaks.size else {}
    summary = {
        "version": DEMO_VERSION, "month": DEMO_MONTH, "seed": DEMO_SEED, "build": DEMO_BUILD,
        "folder": str(folder), "files": [p.name for p in result.files],
        "passes": int(len(passes)), "plume_passes": int((passes["kind"] == "plume").sum()),
        "plume_free_passes": int((passes["kind"] == "plume-free").sum()),
        "distinct_emitters": int(target_plumes["source_id"].nunique()),
        "soundings": int(result.n_soundings), "good_soundings": int(result.n_good),
        "plume_free_km": round(float(passes.loc[passes["kind"] == "plume-free", "length_km"].sum()), 1),
        "plumes_in_truth": int(len(plumes)),
        "secondary_plumes_over_0_5_ppm": int(((plumes["role"] == "secondary")
                                              & (plumes["peak_footprint_ppm"] >= 0.5)).sum()),
        "target_peak_footprint_ppm": quantiles,
        "simulate_seconds": round(result.seconds, 2),
    }
    tmp = folder / f".{SUMMARY_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, folder / SUMMARY_FILE)  # the summary last: its presence means the demo files are complete
    return summary


def _read_summary(folder: Path) -> dict | None:
    """The summary of a complete demo of the current version in ``folder``, else None."""
    try:
        summary = json.loads((folder / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None
    if summary.get("version") != DEMO_VERSION or not all((folder / n).is_file() for n in summary.get("files", [])):
        return None
    return summary

