"""Noise worlds of the OSSE: how far the simulated retrievals stray from what the Lite files state.

A world is a named set of :class:`core.simulate.OsseSettings` overrides (:data:`WORLDS`), chosen with
``simulate(..., world=NAME)`` or ``python -m core simulate OUTDIR --world NAME``. ``as-stated`` is the original
OSSE: white noise exactly as ``xco2_uncertainty`` states, perfect winds. The other worlds add what real OCO-2
retrievals show and the files do not tell:

* understated scatter: single-sounding scatter above the stated posterior uncertainty (Worden et al. 2017 find
  the reported uncertainties too small; the scale factor is drawn per pass);
* errors correlated along the track over 5-50 km, mostly common to the 8 footprints of a frame (Worden et al.
  2017; Kulawik et al. 2019; Baker et al. 2022 fit exponential correlations of ~10 and ~20 km to the OCO-2 minus
  lidar differences), and XCO2 structure on scales down to ~20 km;
* per-footprint biases that drift along an orbit (Kulawik et al. 2019 show footprint-dependent biases);
* artefacts: bursts of a few bad frames of either sign (3-D cloud effects near clouds, Massie et al. 2021),
  XCO2 steps on land that no flag marks, and offsets tied to the retrieved minus a priori surface pressure, the
  ``dp`` term of the bias correction (Kiel et al. 2019: surface-pressure errors propagate into bias-corrected
  XCO2);
* heavier tails than Gaussian: Student-t single-sounding scatter at the same sd (the ``heavy-tailed`` world);
* artefacts of one sign: every burst of bad frames raising XCO2 (the ``one-sided`` world), which the
  depletions' mirror (:mod:`core.false_alarms`) cannot see by construction;
* wind error: the file's winds are off by ``wind_error_ms`` per pass and component while the plumes are carried
  by the true wind (analysed winds are off by ~1-2 m/s).

This module holds the catalogue and the pure random processes (functions of an along-track coordinate and a
numpy ``Generator``); the OSSE places them in a pass (:mod:`core.osse_pass`, :mod:`core.osse_nuisances`) and
:mod:`core.simulate` records them in the truth. Every process draws from its own generator, so switching one effect
on or off changes no other draw, and the ``as-stated`` world draws nothing from them at all (its files are the
original OSSE's, byte for byte in their data).

References
----------
Worden, J. R. et al. (2017), Evaluation and attribution of OCO-2 XCO2 uncertainties, AMT 10, 2759-2771.
Kulawik, S. S. et al. (2019), Characterization of OCO-2 and ACOS-GOSAT biases and errors for CO2 flux
estimates, AMT 12, 5317-5334.
Baker, D. F. et al. (2022), A new exponentially decaying error correlation model for assimilating OCO-2
column-average CO2 data using a length scale computed from airborne lidar measurements, GMD 15, 649-668.
Massie, S. T. et al. (2021), Analysis of 3D cloud effects in OCO-2 XCO2 retrievals, AMT 14, 1475-1499.
Kiel, M. et al. (2019), How bias correction goes wrong: measurement of XCO2 affected by erroneous surface
pressure estimates, AMT 12, 2241-2259.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

DEFAULT_WORLD = "as-stated"
#: Sd of the per-pass, per-component error of the file's winds in every world but ``as-stated`` [m/s].
WIND_ERROR_MS = 1.5

_UNDERSTATED = {"noise_scale": (1.2, 2.0)}
_CORRELATED = {"correlated_sd_ppm": (0.3, 0.5), "fine_waves": 4}
_DRIFTING = {"footprint_drift_sd_ppm": (0.2, 0.4)}
_ARTEFACTS = {"bad_frame_bursts_per_1000km": 2.0, "unflagged_steps_per_1000km": 0.5, "dp_sd_hpa": (1.5, 4.0),
              "dp_ppm_per_hpa": (0.05, 0.1)}

#: World name -> :class:`core.simulate.OsseSettings` overrides.
WORLDS: dict[str, dict] = {
    "as-stated": {},
    "understated": {**_UNDERSTATED, "wind_error_ms": WIND_ERROR_MS},
    "correlated": {**_CORRELATED, "noise_scale": (1.1, 1.4), "wind_error_ms": WIND_ERROR_MS},
    "drifting": {**_DRIFTING, "noise_scale": (1.1, 1.3), "wind_error_ms": WIND_ERROR_MS},
    "artefacts": {**_ARTEFACTS, "noise_scale": (1.1, 1.3), "wind_error_ms": WIND_ERROR_MS},
    "mixture": {"noise_scale": (1.1, 1.6), "correlated_sd_ppm": (0.2, 0.4), "fine_waves": 3,
                "footprint_drift_sd_ppm": (0.15, 0.3), "bad_frame_bursts_per_1000km": 1.5,
                "bad_frame_ppm": (1.0, 4.0), "unflagged_steps_per_1000km": 0.4, "unflagged_step_ppm": (0.4, 1.2),
                "dp_sd_hpa": (1.0, 3.0), "dp_ppm_per_hpa": (0.04, 0.08), "effect_probability": 0.6,
                "wind_error_ms": WIND_ERROR_MS},
    # added 2026-12-06, after the preset was chosen: held out by construction
    "one-sided": {**_ARTEFACTS, "bad_frame_positive_only": True, "noise_scale": (1.1, 1.3),
                  "wind_error_ms": WIND_ERROR_MS},
    "heavy-tailed": {"noise_dof": 4.0, "noise_scale": (1.0, 1.3), "wind_error_ms": WIND_ERROR_MS},
}
#: World name -> one line.
WORLD_DESCRIPTIONS: dict[str, str] = {
    "as-stated": "white noise exactly as xco2_uncertainty states, perfect winds (the original OSSE)",
    "understated": "true scatter 1.2-2.0x the stated uncertainty (per pass); winds off",
    "correlated": "along-track correlated errors (5/15/50 km, 0.3-0.5 ppm), XCO2 waves of 20-200 km, "
                  "scatter 1.1-1.4x; winds off",
    "drifting": "per-footprint biases drifting along the orbit (0.2-0.4 ppm, ~300 km), scatter 1.1-1.3x; winds off",
    "artefacts": "bad-frame bursts (+-1-6 ppm), unflagged steps on land, k*dp offsets, scatter 1.1-1.3x; winds off",
    "mixture": "understated, correlated, drifting, artefacts: milder, each on per pass with p = 0.6; winds off",
    "one-sided": "artefacts, but every bad-frame burst raises XCO2: what the depletions' mirror cannot see; "
                 "winds off",
    "heavy-tailed": "Student-t scatter (4 degrees of freedom) of 1.0-1.3x the stated sd: outliers beyond Gaussian "
                    "tails; winds off",
}
#: The effects a pass can carry (names in ``truth_passes.csv`` ``effects``).
EFFECTS = ("understated", "correlated", "drifting", "artefacts")


def world_overrides(name: str) -> dict:
    """The :class:`core.simulate.OsseSettings` overrides of world ``name``; ValueError naming the choices."""
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}: choose one of {', '.join(WORLDS)}")
    return dict(WORLDS[name])


# ------------------------------------------------------------------------------------------- per pass

@dataclass(frozen=True)
class PassWorld:
    """What the world put in one pass (all zero / off: the as-stated pass)."""

    effects: tuple = ()
    noise_scale: float = 1.0  # true white scatter / stated xco2_uncertainty
    correlated_sd_ppm: float = 0.0  # total sd of the along-track correlated errors [ppm]
    fine_waves: int = 0  # background waves of 20-200 km added (with the correlated errors)
    footprint_drift_sd_ppm: float = 0.0  # sd of each footprint's drifting bias [ppm]
    artefacts: bool = False  # bad-frame bursts, unflagged steps, dp offsets
    dp_sd_hpa: float = 0.0  # sd of the smooth along-track field of psurf - psurf_apriori [hPa]
    dp_ppm_per_hpa: float = 0.0  # XCO2 offset per hPa of psurf - psurf_apriori [ppm/hPa]

    def truth(self) -> dict:
        """The columns ``truth_passes.csv`` gains."""
        return {"effects": "+".join(self.effects) or "none", "noise_scale": self.noise_scale,
                "correlated_sd_ppm": self.correlated_sd_ppm, "footprint_drift_sd_ppm": self.footprint_drift_sd_ppm,
                "dp_sd_hpa": self.dp_sd_hpa, "dp_ppm_per_hpa": self.dp_ppm_per_hpa}


def _active(settings) -> dict:
    """Which effects the settings switch on at all."""
    return {"understated": tuple(settings.noise_scale) != (1.0, 1.0),
            "correlated": max(settings.correlated_sd_ppm) > 0 or settings.fine_waves > 0,
            "drifting": max(settings.footprint_drift_sd_ppm) > 0,
            "artefacts": (settings.bad_frame_bursts_per_1000km > 0 or settings.unflagged_steps_per_1000km > 0
                          or max(settings.dp_sd_hpa) > 0 or max(settings.dp_ppm_per_hpa) > 0)}


def draw_pass_world(settings, rng: np.random.Generator) -> PassWorld:
    """The effects of one pass and their strengths, drawn uniformly in the settings' ranges.

    Each effect the settings switch on is on for the pass with probability ``settings.effect_probability``
    (1: always). Every effect makes the same draws whether on or off, so passes stay comparable.
    """
    active = _active(settings)
    if not any(active.values()):
        return PassWorld()
    on = {name: bool(a and rng.random() < settings.effect_probability) for name, a in active.items()}
    scale, corr, drift = (rng.uniform(*settings.noise_scale), rng.uniform(*settings.correlated_sd_ppm),
                          rng.uniform(*settings.footprint_drift_sd_ppm))
    dp_sd, dp_k = rng.uniform(*settings.dp_sd_hpa), rng.uniform(*settings.dp_ppm_per_hpa)
    return PassWorld(effects=tuple(n for n in EFFECTS if on[n]),
                     noise_scale=float(scale) if on["understated"] else 1.0,
                     correlated_sd_ppm=float(corr) if on["correlated"] else 0.0,
                     fine_waves=int(settings.fine_waves) if on["correlated"] else 0,
                     footprint_drift_sd_ppm=float(drift) if on["drifting"] else 0.0,
                     artefacts=on["artefacts"],
                     dp_sd_hpa=float(dp_sd) if on["artefacts"] else 0.0,
                     dp_ppm_per_hpa=float(dp_k) if on["artefacts"] else 0.0)


# ------------------------------------------------------------------------------------ random processes

def ar1_along_track(n_frames: int, step_km: float, length_km: float, sd: float, rng: np.random.Generator,
                    size: tuple = ()) -> np.ndarray:
    """A stationary Gaussian process of exponential covariance ``sd^2 exp(-|ds| / length_km)`` sampled every
    ``step_km`` along the track: the AR(1) recursion ``x_k = phi x_(k-1) + sd sqrt(1 - phi^2) e_k`` with
    ``phi = exp(-step_km / length_km)``, started from the stationary distribution.

    Parameters
    ----------
    n_frames : int
        Number of samples (frames ~2.25 km apart on OCO-2; the mean spacing of a pass is used).
    step_km, length_km : float
        Sample spacing and e-folding length of the correlation [km].
    sd : float
        Standard deviation of the process (any unit; the output has it).
    rng : numpy.random.Generator
    size : tuple
        Shape of independent copies (e.g. ``(8,)`` one per footprint); output ``(n_frames, *size)``.

    References
    ----------
    Baker, D. F. et al. (2022), GMD 15, 649-668 (exponentially decaying OCO-2 error correlations along track).
    """
    phi = float(np.exp(-step_km / max(length_km, 1e-9)))
    e = rng.normal(0.0, 1.0, (n_frames, *size))
    e[1:] *= np.sqrt(1.0 - phi ** 2)
    return sd * lfilter([1.0], [1.0, -phi], e, axis=0)


def correlated_errors_ppm(s_km, sd_ppm: float, lengths_km, footprint_share: float, n_footprints: int,
                          rng: np.random.Generator) -> np.ndarray:
    """Along-track correlated retrieval errors [ppm], shape ``(frames, footprints)``.

    A sum of exponential-covariance components (:func:`ar1_along_track`), one per correlation length in
    ``lengths_km``, of equal variance and total sd ``sd_ppm``. A share ``footprint_share`` of the variance is
    drawn independently per footprint, the rest is common to the 8 footprints of a frame (errors from the
    scene - aerosol, surface, clouds nearby - are shared by the whole frame).

    References
    ----------
    Worden, J. R. et al. (2017), AMT 10, 2759-2771; Kulawik, S. S. et al. (2019), AMT 12, 5317-5334;
    Baker, D. F. et al. (2022), GMD 15, 649-668.
    """
    s = np.asarray(s_km, float)
    n = s.shape[0]
    step = (s[-1] - s[0]) / max(n - 1, 1) if n > 1 else 1.0
    sd_each = sd_ppm / np.sqrt(len(lengths_km))
    common_sd, own_sd = sd_each * np.sqrt(1.0 - footprint_share), sd_each * np.sqrt(footprint_share)
    out = np.zeros((n, n_footprints))
    for length in lengths_km:
        out += ar1_along_track(n, step, length, common_sd, rng)[:, None]
        out += ar1_along_track(n, step, length, own_sd, rng, (n_footprints,))
    return out


def footprint_drift_ppm(s_km, sd_ppm: float, length_km: float, n_footprints: int,
                        rng: np.random.Generator) -> np.ndarray:
    """A bias per footprint that drifts along the orbit [ppm], shape ``(frames, footprints)``: independent
    exponential-covariance processes of sd ``sd_ppm`` and e-folding length ``length_km`` (hundreds of km: the
    footprint-dependent biases of Kulawik et al. 2019, AMT 12, 5317-5334, wandering with the scene)."""
    s = np.asarray(s_km, float)
    n = s.shape[0]
    step = (s[-1] - s[0]) / max(n - 1, 1) if n > 1 else 1.0
    return ar1_along_track(n, step, length_km, sd_ppm, rng, (n_footprints,))


def fine_waves_ppm(s_km, n_waves: int, amplitude_ppm, wave_length_km, rng: np.random.Generator) -> np.ndarray:
    """``n_waves`` sinusoids along the track [ppm] of amplitudes uniform in ``amplitude_ppm`` and wavelengths
    log-uniform in ``wave_length_km`` (short scales as likely as long ones), random phases."""
    s = np.asarray(s_km, float)
    out = np.zeros_like(s)
    lo, hi = np.log(wave_length_km[0]), np.log(wave_length_km[1])
    for _ in range(n_waves):
        out += rng.uniform(*amplitude_ppm) * np.sin(2 * np.pi * s / np.exp(rng.uniform(lo, hi))
                                                     + rng.uniform(0, 2 * np.pi))
    return out


def dp_field_hpa(s_km, sd_hpa: float, length_km: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth along-track field of retrieved minus a priori surface pressure [hPa] (per frame), of sd
    ``sd_hpa`` and e-folding length ``length_km`` (pointing and meteorology errors vary with the terrain and
    the weather; Kiel et al. 2019, AMT 12, 2241-2259)."""
    s = np.asarray(s_km, float)
    n = s.shape[0]
    step = (s[-1] - s[0]) / max(n - 1, 1) if n > 1 else 1.0
    return ar1_along_track(n, step, length_km, sd_hpa, rng)


def dp_offset_ppm(dp_hpa, ppm_per_hpa: float):
    """XCO2 offset [ppm] tied to ``dp = psurf - psurf_apriori`` [hPa]: ``ppm_per_hpa * dp``. The bias
    correction's dp term leaves such a residual when the retrieved surface pressure is off (Kiel et al. 2019,
    AMT 12, 2241-2259: relative surface-pressure errors propagate nearly 1:1 into relative XCO2 errors, i.e.
    ~0.4 ppm per hPa; the 0.05-0.1 ppm/hPa of the worlds is an assumed residual after the correction)."""
    return ppm_per_hpa * np.asarray(dp_hpa, float)

