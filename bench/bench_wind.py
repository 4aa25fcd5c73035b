"""Benchmark: where the cross-track wind of the emission comes from, on the simulated worlds with a wind error.

For the matched isolated plumes of each world (the recommended preset; the OSSEs of ``bench_worlds.py``, cached
under ``bench/out/worlds/``), the median relative error of the cross-track wind |u_perp| against the truth's, taken

* from the files' wind (what ``core.detect`` uses), and
* from the files' wind speed with the crossing angle the plume's own footprints chose (``shift_ratio`` of the fit:
  ``|u_perp| = speed / sqrt(1 + ratio^2)``, :func:`core.track.shift_ratio`).

    python bench/bench_wind.py
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench_worlds import HELD_OUT_SEEDS, TUNING_SEEDS, matched_isolated  # noqa: E402
from core.settings import DetectionSettings  # noqa: E402

RUNS = [("understated", TUNING_SEEDS), ("correlated", TUNING_SEEDS), ("drifting", HELD_OUT_SEEDS),
        ("artefacts", HELD_OUT_SEEDS), ("mixture", HELD_OUT_SEEDS), ("understated", HELD_OUT_SEEDS)]


def main() -> int:
    settings, rows = DetectionSettings(), []
    for world, seeds in RUNS:
        for seed in seeds:
            hit, events = matched_isolated(world, seed, settings)
            speed = np.hypot(events["wind_u_ms"].to_numpy(float), events["wind_v_ms"].to_numpy(float))
            true = np.abs(hit["wind_perp_ms"].to_numpy(float))
            plume = speed / np.sqrt(1 + events["shift_ratio"].to_numpy(float) ** 2)
            rows.append(pd.DataFrame({"world": world, "seed": seed, "files": hit["wind_error"].to_numpy(float),
                                      "plume_angle": np.abs(plume - true) / true}))
    table = pd.concat(rows, ignore_index=True)
    print(f"settings hash {settings.hash}; median |u_perp error| / |u_perp| on matched isolated plumes\n")
    print(table.groupby("world")[["files", "plume_angle"]].median().round(3).to_string())
    print(f"\nall {len(table)} plumes: the files' wind {table['files'].median():.3f}, the plume's crossing angle with "
          f"the files' speed {table['plume_angle'].median():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
