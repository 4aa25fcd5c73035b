"""Experiment (not a method in core): the month's threshold set per stratum of candidates instead of one for all.

Candidates are split by ``geometry_tells`` (the wind's geometry can tell a plume from a burst of bad frames) or,
with ``--width KM``, by fitted width below / above KM. Each stratum's threshold comes from its own mirror events
(:class:`core.false_alarms.MirrorNull`); the month's false-event budget (``detection.false_alarms_per_1000km``) is
split between the strata to maximise the positive events above the thresholds (the data only, no truth); the result
is scored against the truth beside the single threshold of the recommended preset. Findings: docs/VALIDATION.md.

    python bench/bench_strata.py [--width 2.0]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from bench_worlds import HELD_OUT_SEEDS, TUNING_SEEDS, osse  # noqa: E402
from core.batch import detect_soundings  # noqa: E402
from core.detect import rejudge  # noqa: E402
from core.false_alarms import MirrorNull, rule_passing_events  # noqa: E402
from core.settings import DetectionSettings  # noqa: E402
from core.validation import score_many  # noqa: E402

RUNS = [("as-stated", TUNING_SEEDS), ("understated", TUNING_SEEDS), ("correlated", TUNING_SEEDS),
        ("drifting", HELD_OUT_SEEDS), ("artefacts", HELD_OUT_SEEDS), ("mixture", HELD_OUT_SEEDS),
        ("as-stated", HELD_OUT_SEEDS), ("understated", HELD_OUT_SEEDS), ("correlated", HELD_OUT_SEEDS)]


def stratified(candidates, settings: DetectionSettings, stratum: np.ndarray, track_km: float):
    """The candidates judged at one threshold per stratum (``stratum``: a boolean per row), and the thresholds."""
    events = rule_passing_events(candidates, settings)
    events["stratum"] = stratum[candidates.index.get_indexer(events["row"])]
    allowed = settings["detection.false_alarms_per_1000km"] * track_km / 1000.0
    floor, best = settings["rules.significance.min_snr"], None
    for share in np.linspace(0.05, 0.95, 19):
        thresholds = {}
        for part, fraction in ((True, share), (False, 1 - share)):
            mirror = events.loc[(events["stratum"] == part) & (events["sign"] < 0), "significance"].to_numpy(float)
            t = (MirrorNull(mirror, settings["detection.min_mirror_events"]).threshold_for(allowed * fraction)[0]
                 if mirror.size > 2 else settings["detection.fallback_significance"])
            thresholds[part] = max(t, floor)
        above = sum(int(((events["stratum"] == part) & (events["sign"] > 0) & (events["significance"] >= t)).sum())
                    for part, t in thresholds.items())
        if best is None or above > best[0]:
            best = (above, thresholds)
    thresholds = best[1]
    judged = rejudge(candidates, settings, thresholds[True])
    other = rejudge(candidates, settings, thresholds[False])
    judged.loc[~stratum] = other.loc[~stratum]
    return judged, thresholds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, help="strata by fitted width [km] instead of geometry_tells")
    args = parser.parse_args(argv)
    settings = DetectionSettings()
    print(f"settings hash {settings.hash}; strata: "
          f"{'sigma >= %g km' % args.width if args.width else 'geometry_tells'}")
    for world, seeds in RUNS:
        single, split = [], []
        for seed in seeds:
            data, plumes, _ = osse(world, seed, 10)
            candidates = detect_soundings(data.soundings, settings, attribute_events=False)
            stratum = (candidates["sigma_km"].to_numpy(float) >= args.width if args.width else
                       candidates["geometry_tells"].fillna(True).to_numpy(bool))
            track_km = float(candidates["month_track_km"].iloc[0])
            judged, thresholds = stratified(candidates, settings, stratum, track_km)
            single.append((candidates, data, plumes))
            split.append((judged, data, plumes))
            print(f"  {world} seed {seed}: thresholds {thresholds[True]:.2f} (stratum) / {thresholds[False]:.2f} "
                  f"(the rest); one threshold {candidates['significance_threshold'].iloc[0]:.2f}", flush=True)
        a, b = score_many(single, n_boot=0), score_many(split, n_boot=0)
        print(f"{world:<12} {seeds}: recall {a.recall:.3f} -> {b.recall:.3f}; false per 1,000 km "
              f"{a.false_per_1000_km:.3f} -> {b.false_per_1000_km:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
