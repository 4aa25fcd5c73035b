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


@pytest.fixture(scope="session")
def core_view(small_cache):
    """An orbit of the small cache and a significance threshold that changes its accepted count, a peak on it,
    all computed by core (the expected values of the workbench tests)."""
    from core.batch import SOUNDING_COLUMNS
    from core.cache import SoundingsCache
    from core.detect import detect_orbit
    from core.settings import DetectionSettings

    from workbench.controls import controls

    soundings = SoundingsCache(small_cache).read_month(SMALL_MONTH, SOUNDING_COLUMNS)
    orbits = {int(o): g for o, g in soundings.groupby("orbit")}
    base = DetectionSettings()
    step = controls()[SNR].step  # values on the slider's grid, as few key presses away as possible
    defaults = {o: detect_orbit(g, base) for o, g in orbits.items()}
    for k in range(1, 41):
        value = round(base[SNR] + k * step, 6)
        for orbit, g in orbits.items():
            default = accepted_count(defaults[orbit])
            changed = accepted_count(detect_orbit(g, base.replace({SNR: value})))
            if changed != default:
                cands = defaults[orbit]
                peak = int(cands[cands["is_event"]].sort_values("snr", ascending=False)["sounding_id"].iloc[0])
                return {"orbit": orbit, "value": value, "default": default, "changed": changed, "peak": peak,
                        "orbits": sorted(orbits)}
    pytest.fail("no orbit of the small cache reacts to the significance threshold")
