"""Shared fixtures of the workbench tests: a small real cache (simulated Lite files, ingested)."""
from __future__ import annotations

import pytest

#: The small cache: 2 days x 3 passes of 1500 km (plume and plume-free passes over the real inventory).
SMALL_OSSE = dict(days=2, seed=3, passes_per_day=3, pass_km=1500.0)
SMALL_MONTH = "2019-08"


@pytest.fixture(scope="session")
def small_cache(tmp_path_factory):
    """A cache root holding one small simulated month (``SMALL_MONTH``), made with simulate + ingest."""
    from core.ingest import ingest_paths
    from core.simulate import simulate

    root = tmp_path_factory.mktemp("small_cache")
    raw = root / "raw" / "osse"
    simulate(raw, **SMALL_OSSE)
    summary = ingest_paths([raw], cache=root)
    assert summary.n_bad == 0 and summary.n_kept > 0
    return root


SNR = "rules.significance.min_snr"


def accepted_count(candidates) -> int:
    """Accepted plume events in a candidates table (what the pages call "Accepted")."""
    return int((candidates["is_event"] & candidates["status"].eq("accepted")).sum()) if len(candidates) else 0


def month_accepted(fits: dict, settings) -> dict[int, int]:
    """Accepted events per orbit with the orbits judged together as one month at its threshold
    (:func:`core.false_alarms.calibrate_month`), as the workbench shows them; ``fits``: orbit -> (OrbitData, its
    fitted candidates)."""
    import pandas as pd

    from core.detect import judge
    from core.false_alarms import calibrate_month

    parts = [judge(od, fitted, settings) for od, fitted in fits.values()]
    month = calibrate_month(pd.concat([p for p in parts if not p.empty], ignore_index=True), settings)
    return {orbit: accepted_count(month[month["orbit"] == orbit]) for orbit in fits}


def month_fits(soundings, settings) -> dict:
    """orbit -> (OrbitData, fitted candidates) of a month's soundings (the fit stage, done once)."""
    from core.detect import find_candidates, fit_candidates, prepare_orbit

    out = {}
    for orbit, g in soundings.groupby("orbit"):
        od = prepare_orbit(g)
        out[int(orbit)] = od, fit_candidates(od, find_candidates(od, settings), settings)
    return out


@pytest.fixture(scope="session")
def core_view(small_cache):
    """An orbit of the small cache and a significance floor that changes its accepted count (its orbits judged
    together, at the month's threshold), a peak on it, all computed by core (the expected values of the workbench
    tests)."""
    from core.batch import SOUNDING_COLUMNS
    from core.cache import SoundingsCache
    from core.detect import judge
    from core.settings import DetectionSettings

    from workbench.controls import controls

    soundings = SoundingsCache(small_cache).read_month(SMALL_MONTH, SOUNDING_COLUMNS)
    base = DetectionSettings()
    fits = month_fits(soundings, base)  # the floor only judges: the fits serve every value
    step = controls()[SNR].step  # values on the slider's grid, as few key presses away as possible
    defaults = month_accepted(fits, base)
    for k in range(1, 41):
        value = round(base[SNR] + k * step, 6)
        changed = month_accepted(fits, base.replace({SNR: value}))
        for orbit in sorted(fits):
            if changed[orbit] != defaults[orbit]:
                cands = judge(*fits[orbit], base)
                events = cands[cands["is_event"] & (cands["sign"] > 0)]
                peak = int(events.sort_values("snr", ascending=False)["sounding_id"].iloc[0])
                return {"orbit": orbit, "value": value, "default": defaults[orbit], "changed": changed[orbit],
                        "peak": peak, "orbits": sorted(fits)}
    pytest.fail("no orbit of the small cache reacts to the significance threshold")
