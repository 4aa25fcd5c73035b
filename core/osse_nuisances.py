"""What the OSSE (:mod:`core.simulate`) puts in a pass besides plumes and background: sky, nuisances, world effects.

* Sky: stretches of clear, broken and cloudy sky (:data:`SKY_REGIMES`) set the share of flagged soundings and the
  cloud gaps (frames removed).
* Nuisances are placed along a pass away from the plumes (:func:`free_positions`): water stretches and cloud bursts
  (placed by :func:`core.osse_pass.simulate_pass`), and in the noise worlds of :mod:`core.worlds` unflagged steps and
  bursts of bad frames (:func:`world_artefacts`), along-track correlated errors and drifting footprint biases
  (:func:`correlated_ppm`). The world's effects draw from streams of their own (:func:`world_rng`).

References
----------
Massie, S. T. et al. (2021), Analysis of 3D cloud effects in OCO-2 XCO2 retrievals, AMT 14, 1475-1499 (bad frames
near clouds). The other processes and their references: :mod:`core.worlds`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import orbit as orb
from .worlds import PassWorld, correlated_errors_ppm, footprint_drift_ppm

#: Regimes of the sky along a pass: share of flagged soundings, mean clear run and mean gap length [km].
SKY_REGIMES = {"clear": (0.2, 300.0, 4.0), "broken": (0.55, 45.0, 8.0), "cloudy": (0.9, 20.0, 20.0)}


# ------------------------------------------------------------------------------------------------- placement

def free_positions(rng, n, length_km, extent_km, avoid_km, min_distance_km, taken=None):
    """``(start, extent)`` [km] of up to ``n`` stretches along a pass, ``min_distance_km`` from every point of
    ``avoid_km`` and not overlapping each other nor the stretches in ``taken`` (extended in place)."""
    taken = [] if taken is None else taken
    placed = []
    for ext in extent_km[:n]:
        for _ in range(50):
            s0 = rng.uniform(0.0, max(length_km - ext, 0.0))
            if all(s0 - min_distance_km > a or s0 + ext + min_distance_km < a for a in avoid_km) and \
                    all(s0 > b0 + bext + 5.0 or s0 + ext + 5.0 < b0 for b0, bext in taken):
                placed.append((s0, ext))
                taken.append((s0, ext))
                break
    return placed


# ------------------------------------------------------------------------------------------------------- sky

def sky_regimes(s_km, rng, settings):
    """Regime index per frame (0 clear, 1 broken, 2 cloudy) in stretches of random length."""
    regime = np.empty(s_km.shape[0], np.int8)
    pos, end = s_km[0], s_km[-1]
    while pos <= end:
        length = rng.exponential(settings.regime_length_km)
        sel = (s_km >= pos) & (s_km < pos + length)
        regime[sel] = rng.choice(3, p=settings.regime_probabilities)
        pos += length
    return regime


def cloud_gaps(s_km, regime, rng):
    """Frames lost to clouds: alternating clear runs and gaps whose mean lengths follow the sky regime."""
    gap = np.zeros(s_km.shape[0], bool)
    params = list(SKY_REGIMES.values())
    pos, end = s_km[0], s_km[-1]
    while pos <= end:
        k = min(np.searchsorted(s_km, pos), s_km.shape[0] - 1)
        _, run_km, gap_km = params[regime[k]]
        pos += rng.exponential(run_km)
        length = float(np.clip(rng.exponential(gap_km), 2.0, 150.0))
        gap |= (s_km >= pos) & (s_km < pos + length)
        pos += length
    return gap


# ------------------------------------------------------------------------------- the world's effects (pass)

def world_rng(seed, pass_index, effect) -> np.random.Generator:
    """The generator of one world effect on one pass: streams apart from every as-stated draw (``[seed, 7, ...]``),
    and from each other (0 the pass's draw of effects, 1 fine waves, 2 correlated errors, 3 footprint drift,
    4 artefacts, 5 the dp field)."""
    return np.random.default_rng([seed, 7, pass_index, effect])


def correlated_ppm(world: PassWorld, s_km, settings, seed, pass_index):
    """Along-track correlated errors plus drifting footprint biases [ppm] ``(frames, footprints)``."""
    out = np.zeros((np.shape(s_km)[0], orb.N_FOOTPRINTS))
    if world.correlated_sd_ppm > 0:
        out = out + correlated_errors_ppm(s_km, world.correlated_sd_ppm, settings.correlated_length_km,
                                          settings.correlated_footprint_share, orb.N_FOOTPRINTS,
                                          world_rng(seed, pass_index, 2))
    if world.footprint_drift_sd_ppm > 0:
        out = out + footprint_drift_ppm(s_km, world.footprint_drift_sd_ppm, settings.footprint_drift_length_km,
                                        orb.N_FOOTPRINTS, world_rng(seed, pass_index, 3))
    return out


@dataclass
class Artefacts:
    """The artefacts of one pass: XCO2 offsets, the soundings of bad-frame bursts, and their truth rows."""

    ppm: np.ndarray  # (frames, footprints) offsets [ppm]
    mask: np.ndarray  # (frames, footprints) soundings of a bad-frame burst (kept with flag 0)
    frames: np.ndarray  # (frames,) frames of a bad-frame burst (never lost to a cloud gap)
    rows: list


def _nuisance_row(kind, g, k, along_km, extent_km, magnitude_ppm, n_footprints=orb.N_FOOTPRINTS,
                  first_footprint=1) -> dict:
    return {"kind": kind, "lat": float(g.frame_lat_deg[k]), "lon": float(g.frame_lon_deg[k]),
            "along_track_km": float(along_km), "extent_km": float(extent_km), "magnitude_ppm": float(magnitude_ppm),
            "n_footprints": int(n_footprints), "first_footprint": int(first_footprint)}


def world_artefacts(kind, g, avoid, taken, settings, rng) -> Artefacts:
    """Unflagged steps and bursts of bad frames along a pass, placed as the other nuisances are.

    * ``unflagged_step``: a stretch of land (``unflagged_step_length_km``) whose XCO2 is offset by
      ``unflagged_step_ppm`` (random sign) where nothing in the file changes: no flag, no land/water change. One
      truth row per edge, as for water stretches.
    * ``bad_frames``: 1-4 consecutive frames offset by 1-6 ppm of either sign (``bad_frame_positive_only``: always
      up; x 0.7-1.3 per sounding), on all 8
      footprints or (``bad_frame_partial_share``) on 3-7 contiguous ones; they keep flag 0 and no cloud gap hides
      them (night still does): 3-D cloud effects near clouds that the screening misses (Massie et al. 2021,
      AMT 14, 1475-1499).

    Both keep ``nuisance_min_distance_km`` from the plumes in ``avoid`` and from the other nuisances (``taken``,
    extended), except a share ``bad_frame_anywhere_share`` of the bursts of a plume-free pass, placed anywhere.
    """
    s = g.along_track_km
    n_frames, nfp = s.shape[0], orb.N_FOOTPRINTS
    length_km = float(s[-1])
    step = length_km / max(n_frames - 1, 1)
    ppm, mask, rows = np.zeros((n_frames, nfp)), np.zeros((n_frames, nfp), bool), []

    n_steps = rng.poisson(settings.unflagged_steps_per_1000km * length_km / 1000.0)
    extents = rng.uniform(*settings.unflagged_step_length_km, size=max(n_steps, 1))
    for s0, ext in free_positions(rng, n_steps, length_km, extents, avoid, settings.nuisance_min_distance_km,
                                   taken):
        magnitude = rng.uniform(*settings.unflagged_step_ppm) * rng.choice([-1.0, 1.0])
        ppm[(s >= s0) & (s < s0 + ext)] += magnitude
        for edge in [s0] + ([s0 + ext] if s0 + ext < length_km else []):
            rows.append(_nuisance_row("unflagged_step", g, min(np.searchsorted(s, edge), n_frames - 1), edge,
                                      min(ext, length_km - s0), magnitude))

    n_burst = rng.poisson(settings.bad_frame_bursts_per_1000km * length_km / 1000.0)
    frames = rng.integers(settings.bad_frame_frames[0], settings.bad_frame_frames[1] + 1, size=max(n_burst, 1))
    anywhere = (rng.random(max(n_burst, 1)) < settings.bad_frame_anywhere_share) & (kind == "plume-free")
    placed = []
    for nf, free in zip(frames[:n_burst], anywhere):
        if free:
            placed.append((rng.uniform(0.0, max(length_km - nf * step, 0.0)), nf * step))
        else:
            placed += free_positions(rng, 1, length_km, [nf * step], avoid, settings.nuisance_min_distance_km, taken)
    for s0, ext in placed:
        nf = max(1, int(round(ext / step)))
        k0 = min(np.searchsorted(s, s0), n_frames - nf)
        magnitude = rng.uniform(*settings.bad_frame_ppm) * rng.choice([-1.0, 1.0])
        if settings.bad_frame_positive_only:  # the sign drawn all the same: the other draws do not move
            magnitude = abs(magnitude)
        n_fp, f0 = nfp, 0
        if rng.random() < settings.bad_frame_partial_share:
            n_fp = int(rng.integers(settings.bad_frame_partial_footprints[0],
                                    settings.bad_frame_partial_footprints[1] + 1))
            f0 = int(rng.integers(0, nfp - n_fp + 1))
        ppm[k0:k0 + nf, f0:f0 + n_fp] += magnitude * rng.uniform(0.7, 1.3, size=(nf, n_fp))
        mask[k0:k0 + nf, f0:f0 + n_fp] = True
        rows.append(_nuisance_row("bad_frames", g, k0 + nf // 2, s[k0 + nf // 2], nf * step, magnitude, n_fp, f0 + 1))
    return Artefacts(ppm, mask, mask.any(axis=1), rows)
