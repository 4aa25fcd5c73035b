"""Benchmark: are the emission's 1-sigma honest? The fitted area's share and the wind's, on the simulated worlds.

For the matched isolated plumes of each world (recommended preset; the OSSEs of ``bench_worlds.py``, cached under
``bench/out/worlds/``; the tuning worlds on seeds 1, 2, 101, 102, the others on 101, 102) it prints the median of
``z = |estimate - truth| / stderr`` and the share with ``z <= 1`` (0.674 and 68 % when the 1-sigma is right), for

* the emission as reported (its stderr adds the area's error and ``emission.wind_uncertainty_ms`` across the track);
* the area alone: the estimate with the true cross-track wind against the area's own relative error
  (``amplitude_stderr x noise_spread / amplitude``), the part no wind error touches;

the area's median signed error (estimate with the true wind / truth - 1: a bias of the fitted area), and the same
for the area's error without the orbit's noise calibration (``noise_spread`` = 1); and the wind's
share alone: the files' cross-track wind at each plume against the true one, in units of
``emission.wind_uncertainty_ms`` (on ``as-stated`` the files' wind is exact, so its z is 0).

    python bench/bench_coverage.py
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench_worlds import HELD_OUT_SEEDS, TUNING_SEEDS, TUNING_WORLDS, WORLDS, matched_isolated  # noqa: E402
from core.settings import DetectionSettings  # noqa: E402


def plume_rows(world: str, seed: int, settings: DetectionSettings) -> pd.DataFrame:
    hit, events = matched_isolated(world, seed, settings)
    estimate = events["emission_gCO2_s"].to_numpy(float)
    truth = hit["emission_gCO2_s"].to_numpy(float)
    true_wind = estimate * np.abs(hit["wind_perp_ms"].to_numpy(float)) / np.abs(events["wind_perp_ms"].to_numpy(float))
    rel_area = events["amplitude_stderr"].to_numpy(float) / np.abs(events["amplitude_ppm_km"].to_numpy(float))
    stderr = events["emission_gCO2_s_stderr"].to_numpy(float)
    return pd.DataFrame({"world": world, "z": np.abs(estimate - truth) / stderr,
                         "z_area": np.abs(true_wind - truth) / (np.abs(true_wind) * rel_area
                                                               * events["noise_spread"].to_numpy(float)),
                         # the wind's own share: the files' cross-track wind against the true one, in units of
                         # the stated wind uncertainty (0.674 / 68 % when the worlds' wind errors are as stated)
                         "z_wind": hit["wind_error"].to_numpy(float) * np.abs(hit["wind_perp_ms"].to_numpy(float))
                         / settings["emission.wind_uncertainty_ms"],
                         "z_area_stated": np.abs(true_wind - truth) / (np.abs(true_wind) * rel_area),
                         "bias_area": true_wind / truth - 1})


def main() -> int:
    settings = DetectionSettings()
    rows = [plume_rows(world, seed, settings) for world in WORLDS
            for seed in (TUNING_SEEDS + HELD_OUT_SEEDS if world in TUNING_WORLDS else HELD_OUT_SEEDS)]
    table = pd.concat(rows, ignore_index=True)

    def summary(frame: pd.DataFrame) -> pd.Series:
        return pd.Series({"n": len(frame), "median z": frame["z"].median(), "within 1 sigma": (frame["z"] <= 1).mean(),
                          "area: median z": frame["z_area"].median(),
                          "area: within 1 sigma": (frame["z_area"] <= 1).mean(),
                          "area, stated noise: median z": frame["z_area_stated"].median(),
                          "area: median signed error": frame["bias_area"].median(),
                          "wind: median z": frame["z_wind"].median(),
                          "wind: within 1 sigma": (frame["z_wind"] <= 1).mean()})

    print(f"settings hash {settings.hash}; matched isolated plumes (right 1-sigma: median z 0.674, 68 % within)\n")
    print(table.groupby("world").apply(summary, include_groups=False).round(3).to_string())
    print("\nall worlds:\n" + summary(table).round(3).to_string())
    print("\nthe worlds whose files' wind is off:\n"
          + summary(table[table["world"] != "as-stated"]).round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
