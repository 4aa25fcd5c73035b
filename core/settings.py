"""Fit constraints and rejection rules, declared once: name, unit, default, bounds and a one-line meaning.

In the spirit of lmfit's ``Parameter`` hints: every number that changes a verdict is a declared, bounded,
documented :class:`Setting`; a :class:`DetectionSettings` holds one value for each, loads from and saves to
TOML, validates (unknown keys, wrong types and out-of-range values give a message naming the key), and has a
stable hash that goes with every exported peak.

The hash identifies a result, not only the values: numbers that are part of the method rather than tunable (the
comparison spans of the rules, the pair grid, the merge distance, the minimum wind angle, ...) live as named
constants in the method's modules, and the hash covers the source of those modules (:data:`METHOD_MODULES`), so
any change to the method gives new hashes and stored detections of the old method read as stale.

Two presets ship: ``chevallier-2020`` (the rules exactly as the 2020 project ran them, to reproduce published
work) and ``recommended`` (validated on simulated truth: ``bench/bench_quality.py``).

References
----------
Chevallier, F. et al. (2020), Large CO2 emitters as seen from satellite: comparison to a gridded global
emission inventory, GRL 47, e2020GL090007 (rules as implemented in oco2peak, 2020). Zheng, T. et al. (2020),
ACP 20, 8501-8510 (the along-track Gaussian model).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

#: The modules of ``core`` whose code decides a stored candidate's numbers and verdict (``batch`` assembles the
#: month and calibrates it, ``attribution`` names the upwind source stored with it). Their source text is part of
#: every :attr:`DetectionSettings.hash`; ``tests/test_settings.py`` checks that every ``core`` module the
#: detection imports is listed here or in :data:`NOT_METHOD_MODULES`.
METHOD_MODULES = ("attribution", "batch", "detect", "emission", "false_alarms", "fitting", "noise", "rules", "screen",
                  "settings", "track")
#: ``core`` modules detection imports that read, store or locate data without changing a number: left out of the
#: hash (a re-ingest is caught by the cache's own freshness stamp).
NOT_METHOD_MODULES = ("cache", "locks", "paths", "lite_format", "lite_reader")


@lru_cache(maxsize=1)
def method_fingerprint() -> str:
    """sha256 of the method modules' source (line endings normalised): changes whenever the method can."""
    digest = hashlib.sha256()
    for name in METHOD_MODULES:
        digest.update(name.encode() + b"\0")
        digest.update((Path(__file__).parent / f"{name}.py").read_bytes().replace(b"\r\n", b"\n"))
    return digest.hexdigest()


@dataclass(frozen=True)
class Setting:
    """One tunable value: a fit constraint, a screen or emission setting, or a rule's threshold or switch."""

    key: str  # "section.name", e.g. "fit.window_km" or "rules.min_soundings.threshold"
    default: float | int | bool
    unit: str
    meaning: str
    minimum: float | None = None
    maximum: float | None = None
    #: the screen or the fits read it (a change refits); the others only judge fitted candidates (rules-only)
    fit_stage: bool = False

    @property
    def kind(self) -> type:
        return type(self.default)

    def check(self, value, source: str = "settings"):
        """Return ``value`` converted to this setting's type, or raise ``ValueError`` naming the key."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{source}: {self.key} must be true or false, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{source}: {self.key} must be a number [{self.unit}], got {value!r}")
        if isinstance(value, int) and abs(value) > 2 ** 53:  # TOML integers are unbounded: may overflow a float
            digits = str(value)
            shown = digits if len(digits) <= 20 else f"{digits[:12]}... ({len(digits.lstrip('-'))} digits)"
            raise ValueError(f"{source}: {self.key} = {shown} is outside [{self.minimum}, {self.maximum}] {self.unit}")
        if not math.isfinite(value):
            raise ValueError(f"{source}: {self.key} must be finite, got {value!r}")
        if self.kind is int and float(value) != int(value):
            raise ValueError(f"{source}: {self.key} must be a whole number, got {value!r}")
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise ValueError(f"{source}: {self.key} = {value!r} is outside [{self.minimum}, {self.maximum}] {self.unit}")
        return self.kind(value)

    def clamp(self, value):
        """The nearest allowed value (for values that come from a URL)."""
        if self.kind is bool:
            return bool(value)
        value = self.kind(value)
        if self.minimum is not None:
            value = max(value, self.kind(self.minimum))
        if self.maximum is not None:
            value = min(value, self.kind(self.maximum))
        return value


@dataclass(frozen=True)
class Rule:
    """A rejection rule: a candidate *fails* it when its test does not hold; ``name`` goes in ``rejected_by``."""

    name: str
    meaning: str
    origin: str  # "chevallier-2020" or "oco2peak-workbench"
    settings: tuple[Setting, ...] = field(default_factory=tuple)
    #: the fits read the rule's switch (an enabled rule spares hopeless fits: the screen skips them)
    switch_fit_stage: bool = False


def _s(key, default, unit, meaning, minimum=None, maximum=None, fit_stage=False) -> Setting:
    return Setting(key, default, unit, meaning, minimum, maximum, fit_stage)


def _fit_stage(settings: tuple[Setting, ...]) -> tuple[Setting, ...]:
    return tuple(dataclasses.replace(s, fit_stage=True) for s in settings)


FIT = _fit_stage((
    _s("fit.window_km", 200.0, "km", "full width W of the along-track window around a candidate centre", 40, 600),
    _s("fit.sigma_min_km", 0.8, "km", "lower bound of the Gaussian width in the fit (frames are 2.25 km apart: "
       "narrower is unresolved)", 0.1, 20),
    _s("fit.sigma_max_km", 50.0, "km", "upper bound of the Gaussian width in the fit", 5, 200),
    _s("fit.wind_aligned", False, "", "fit in the wind-aligned coordinate: each footprint shifted along the track "
       "to where its distance across the wind meets the track (sharper oblique plumes)"),
    _s("fit.shift_search", False, "", "with fit.wind_aligned: each candidate tries footprint shifts within two "
       "sigma of the file wind's (emission.wind_uncertainty_ms) and the track's, and keeps the best fitting"),
    _s("fit.shift_search_steps", 7, "1", "shifts tried around the file wind's (fit.shift_search)", 2, 51),
    _s("fit.positive_amplitude", False, "", "bound the Gaussian area to A >= 0 (else the depletion rule judges)"),
    _s("fit.centre_shift_km", 10.0, "km", "how far the fitted centre may move from the candidate position", 0, 100),
    _s("fit.max_nfev", 200, "1", "cap on model evaluations per fit (a fit that hits it is fit-failed)", 20, 5000),
    _s("fit.min_soundings", 30, "1", "fewest soundings in a window for a fit to be attempted", 5, 2000),
    _s("fit.surface_covariates", False, "", "a fit's significance is the one left when the surface is modelled "
       "beside the Gaussian: one offset per land/water kind in its soundings, and psurf - psurf_apriori where that "
       "term is significant (core.rules.covariate_share)"),
    _s("fit.neighbour_min_snr", 0.0, "1", "fits of at least this |A|/stderr are part of the model of weaker "
       "candidates' windows (their Gaussians, fitted first, subtracted): a plume beside stronger ones is fitted on "
       "its own background; 0: off", 0, 100),
))
SCREEN = _fit_stage((
    _s("screen.bin_km", 0.5, "km", "along-track bin of the vectorised screen", 0.1, 5),
    _s("screen.n_sigma", 16, "1", "number of Gaussian widths tried by the screen (log-spaced over the fit bounds)",
       4, 64),
    _s("screen.min_significance", 3.5, "1", "screen A/stderr(A) a local maximum needs to be fitted", 0, 20),
    _s("screen.min_significance_beside", 3.5, "1", "screen A/stderr(A) enough to fit a candidate beside a "
       "modelled neighbour (fit.neighbour_min_snr): the screen, blind to the neighbour, underrates it", 0, 20),
    _s("screen.min_abs_snr", 2.0, "1", "weakest screen extremum listed as a candidate at all", 0, 20),
    _s("screen.min_separation_km", 3.0, "km", "closest two screen extrema may be", 0.5, 50),
    _s("screen.every_width", False, "", "candidates also at the extrema of each narrow width's significance, not "
       "only of the best width's (a narrow plume beside a broader or stronger feature keeps its own candidate)"),
    _s("screen.every_width_max_sigma_km", 4.0, "km", "widest screen width whose own extrema are candidates "
       "(screen.every_width); wider ones add fits, rarely plumes", 0.5, 50),
    _s("screen.stride", 0, "1", "0: screen every window; N > 0: a candidate every N-th sounding, all fitted "
       "(the 2020 project used 15)", 0, 500),
))
NOISE = _fit_stage((
    _s("noise.calibrate", False, "", "divide every significance by its orbit's own spread at that width "
       "(core.noise.screen_spread): the noise as the data show it, not as xco2_uncertainty states it"),
    _s("noise.prior_spread", 1.5, "1", "conservative spread an orbit with few independent values leans towards "
       "(noise.calibrate)", 1, 5),
    _s("noise.surface_offsets", False, "", "subtract each water stretch's offset against the land beside it before "
       "the screen, the noise estimates and the fits (a step at every coast would inflate the orbit's spread)"),
    _s("noise.prior_samples", 20.0, "1", "weight of that prior, in independent values of the orbit's own", 0, 1000),
))
DETECTION = (
    _s("detection.mirror", False, "", "fit depletions with the data mirrored and judge them by the same rules: "
       "they sample the noise and the symmetric artefacts, and set the acceptance threshold for the false-alarm "
       "rate asked (never accepted themselves)", fit_stage=True),
    _s("detection.false_alarms_per_1000km", 0.2, "1/1000 km", "false events per 1,000 km of track the month's "
       "acceptance threshold is set for (detection.mirror; rules.significance.min_snr is its floor)", 0.001, 10),
    _s("detection.min_mirror_events", 8, "1", "fewest mirror events a month needs to set its threshold; fewer: "
       "detection.fallback_significance", 3, 1000),
    _s("detection.fallback_significance", 6.0, "1", "conservative significance threshold where the month holds "
       "too few mirror events to set one", 0, 50),
    _s("detection.control_distance_km", 0.0, "km", "track this far from every inventory source of at least "
       "detection.control_min_emission_MtCO2_yr holds no plume: its positive events beyond the mirror's are artefacts "
       "the mirror cannot see, and their rate is added to the month's false-rate estimate; 0: off", 0, 5000,
       fit_stage=True),
    _s("detection.control_min_emission_MtCO2_yr", 0.1, "Mt/yr", "smallest inventory source that keeps the track "
       "near it out of the control region (detection.control_distance_km)", 0, 10, fit_stage=True),
    _s("detection.control_shrink_sd", 1.0, "1", "the control region's positive events beyond its mirror events are "
       "counted beyond this many standard deviations of their Poisson difference (0: every one; where artefacts "
       "are symmetric the difference is noise)", 0, 5),
)
EMISSION = (
    _s("emission.wind_uncertainty_ms", 1.5, "m/s", "1-sigma error of the analysed wind across the track (the "
       "footprint shifts fit.shift_search tries follow it)", 0, 10, fit_stage=True),
    _s("emission.min_wind_perp_ms", 0.5, "m/s", "below this cross-track wind no emission is estimated", 0, 5),
)
ATTRIBUTION = (
    _s("attribution.sector_length_km", 0.0, "km",
       "upwind search length; 0 = automatic (wind speed x 4 h, within 50-150 km)", 0, 1000),
    _s("attribution.half_angle_deg", 30.0, "deg", "half-angle of the upwind sector around the reversed wind", 1, 90),
    _s("attribution.crosswind_km", 10.0, "km", "sector widening near the peak (footprint + plume width)", 0, 100),
)

RULES = (
    Rule("min-soundings", "the window holds enough soundings", "chevallier-2020",
         (_s("rules.min_soundings.threshold", 400, "1", "soundings needed in the window", 0, 5000),)),
    Rule("min-orbit-soundings", "the orbit holds enough soundings", "chevallier-2020",
         (_s("rules.min_orbit_soundings.threshold", 500, "1", "good soundings needed in the orbit", 0, 50000),)),
    Rule("too-narrow", "the Gaussian is not narrower than a footprint can resolve", "chevallier-2020",
         (_s("rules.too_narrow.min_sigma_km", 2.0, "km", "smallest accepted sigma", 0, 30),)),
    Rule("too-wide", "three sigma fit inside the half-window (3 sigma <= W/2)", "chevallier-2020",
         (_s("rules.too_wide.n_sigma", 3.0, "1", "k in k*sigma <= W/2", 0.5, 10, fit_stage=True),),
         switch_fit_stage=True),
    Rule("depletion", "an enhancement (A > 0), not a depletion", "chevallier-2020", switch_fit_stage=True),
    Rule("near-sides", "soundings on both sides of the centre within one sigma", "chevallier-2020",
         (_s("rules.near_sides.per_sigma_km", 1.0, "1/km", "soundings needed in [-sigma,0] and in [0,sigma], "
             "per km of sigma (original: int(sigma))", 0, 20),)),
    Rule("flanks", "soundings on both flanks, between 2 and 3 sigma", "chevallier-2020",
         (_s("rules.flanks.per_sigma_km", 1.0, "1/km", "soundings needed in [-3,-2] and [2,3] sigma, per km of "
             "sigma (original: int(sigma))", 0, 20),)),
    Rule("fit-quality", "Pearson r between fit and data within +-4 sigma is positive and r^2 high enough",
         "chevallier-2020",
         (_s("rules.fit_quality.min_r2", 0.25, "1", "smallest accepted r^2", 0, 1),)),
    Rule("significance", "the Gaussian area is significant: A / stderr(A) high enough", "oco2peak-workbench",
         (_s("rules.significance.min_snr", 4.0, "1", "smallest accepted A / stderr(A)", 0, 50),)),
    Rule("step-like", "a Gaussian explains the window better than a step (land/water edge, bias jump)",
         "oco2peak-workbench",
         (_s("rules.step_like.min_delta_chi2", 0.0, "1",
             "chi2(step) - chi2(Gaussian) must exceed this (0: the Gaussian must simply fit better)", -100, 1000),)),
    Rule("box-like", "a Gaussian explains the window better than a plateau with sharp edges (a burst of "
         "cloud-contaminated soundings)", "oco2peak-workbench",
         (_s("rules.box_like.min_delta_chi2", -6.0, "1",
             "chi2(plateau) - chi2(Gaussian) must exceed this (negative: the plateau must win clearly to reject)",
             -1000, 1000),
          _s("rules.box_like.min_width_km", 5.0, "km",
             "narrowest plateau compared (narrower ones look like a narrow plume at 2.25 km sampling)", 0, 100,
             fit_stage=True),
          _s("rules.box_like.spare_blends", False, "",
             "a plateau that two Gaussians beat (a blend of two plumes, not a burst) does not reject, unless the "
             "bump is burst-like (narrow, its footprints not shifted: two plumes a frame apart are then a burst's "
             "twin, and 3-frame bursts of cloud-contaminated soundings were spared as blends)"),
          _s("rules.box_like.min_pair_advantage", 10.0, "1",
             "chi2(plateau) - chi2(two Gaussians) above which a bump is a blend (rules.box_like.spare_blends; the "
             "pair is fitted where the plateau beats the Gaussian)", 0, 500))),
    Rule("surface-transition", "no land/water transition within +-2 sigma of the centre", "oco2peak-workbench",
         (_s("rules.surface_transition.margin_km", 5.0, "km", "extra margin around +-2 sigma", 0, 50,
             fit_stage=True),)),
    Rule("frame-aligned", "the bump is a plume across the swath, not a burst of bad frames: its footprints agree "
         "and, where the wind can tell, its geometry is the wind's, not the frames'", "oco2peak-workbench",
         (_s("rules.frame_aligned.max_footprint_chi2", 30.0, "1", "largest chi2 gain of one amplitude per footprint "
             "over one for all (about chi2 with 7 degrees of freedom for a plume: 24 at p = 0.001)", 0, 1000),
          _s("rules.frame_aligned.max_frame_advantage", 10.0, "1", "largest chi2 by which frame-aligned edges may "
             "beat the wind's footprint shifts, where those spread the plume by a width or more", -100, 1000),
          _s("rules.frame_aligned.max_burst_advantage", 18.0, "1", "largest chi2 by which a frame-aligned burst with "
             "one amplitude per footprint may beat every plume crossing, at any footprint shift (for a plume about "
             "chi2 with 7 degrees of freedom less the crossing's gain: 18.5 at p = 0.01 at right angles)", -100,
             1000),
          _s("rules.frame_aligned.burst_sigma_km", 3.0, "km", "a bump this narrow (a burst of 1-4 bad frames fits "
             "sigma 1-3 km) whose footprints show no crossing is burst-like", 0, 30),
          _s("rules.frame_aligned.min_shift_gain", 2.0, "1", "chi2 by which the best footprint shift must beat "
             "frame-aligned edges for a narrow bump not to be burst-like", 0, 1000),
          _s("rules.frame_aligned.reject_burst_like", False, "", "reject burst-like bumps; else they are flagged "
             "(burst_like) and counted in the month's summary: one pass cannot tell them from a plume crossed at "
             "right angles"))),
    Rule("support", "the enhancement is seen by several frames and footprints, not a burst of a few soundings",
         "oco2peak-workbench",
         (_s("rules.support.min_frames", 4, "1", "frames within +-2 sigma above the background", 1, 100),
          _s("rules.support.min_footprints", 4, "1", "distinct footprints (of 8) within +-2 sigma above it", 1, 8),
          _s("rules.support.max_top_share", 0.5, "1",
             "largest share of the enhancement carried by the 10 % highest soundings", 0.05, 1),)),
)

RULE_BY_NAME = {r.name: r for r in RULES}
#: Always-on reasons that are not tunable rules.
FIXED_REASONS = {
    "fit-failed": "the non-linear fit failed, did not converge or hit max_nfev",
    "screen": "the vectorised screen found the bump too weak to fit (screen.min_significance)",
    "depletion": "the screen found a depletion (A < 0): not fitted (the depletion rule)",
    "too-wide": "the screen's best width is beyond the too-wide limit: a background wave, not fitted",
    "mirror": "a depletion fitted with the data mirrored and judged by the same rules: it samples the null that "
              "sets the month's threshold (detection.mirror), never a plume",
    "duplicate": "another window saw the same plume and fitted it better (or its start lay within that fit's "
                 "width: not fitted)",
}


def _enable_key(rule: Rule) -> str:
    return f"rules.{rule.name.replace('-', '_')}.enabled"


def all_settings() -> dict[str, Setting]:
    """Every setting by key, switches of the rules included (enabled by default as in ``recommended``)."""
    out: dict[str, Setting] = {s.key: s for s in (*FIT, *SCREEN, *NOISE, *DETECTION, *EMISSION, *ATTRIBUTION)}
    for rule in RULES:
        enabled = PRESETS["recommended"].get(_enable_key(rule), True)
        out[_enable_key(rule)] = _s(_enable_key(rule), enabled, "", f"apply the rule: {rule.meaning}",
                                    fit_stage=rule.switch_fit_stage)
        for s in rule.settings:
            out[s.key] = s
    return out


@lru_cache(maxsize=1)
def fit_stage_keys() -> frozenset[str]:
    """The keys the screen and the fits read (:attr:`Setting.fit_stage`): every ``fit.*``, ``screen.*`` and
    ``noise.*`` key (the orbit's noise calibration changes the screen and every significance),
    ``detection.mirror`` (depletions are fitted upside down), ``emission.wind_uncertainty_ms`` (the shifts tried),
    the rule settings that shape fit-time statistics and the rules that spare hopeless fits. The month's threshold
    (``detection.false_alarms_per_1000km`` ...) and every other rule setting only judge. ``tests/test_workbench.py``
    records what the fit stage reads and fails when it reads another setting."""
    return frozenset(k for k, s in all_settings().items() if s.fit_stage)


PRESETS: dict[str, dict] = {
    "chevallier-2020": {
        **{_enable_key(r): r.origin == "chevallier-2020" for r in RULES},
    },
    "recommended": {
        "rules.fit_quality.enabled": False,  # blunt: rejects real 1 ppm plumes (docs/METHOD.md section 2)
        "rules.min_soundings.enabled": False,  # the significance rule weighs the data the window has
        "rules.significance.enabled": True,
        "rules.step_like.enabled": True,
        "rules.box_like.enabled": True,
        # a coast or a lake is modelled, not rejected: many large emitters sit on a coast (fit.surface_covariates)
        "rules.surface_transition.enabled": False,
        "fit.surface_covariates": True,
        "noise.surface_offsets": True,  # coasts and lakes: their steps are not the orbit's noise
        "rules.support.enabled": True,
        "rules.frame_aligned.enabled": True,
        # values chosen on the OSSE by bench/bench_quality.py (the trade-off is printed there):
        "fit.shift_search": True,  # the file's wind is uncertain: the plume's footprints tell the crossing angle
        "fit.wind_aligned": True,  # footprints on the plume's crosswind scale: +0.1 recall, -6 points of error
        "fit.sigma_min_km": 0.6,
        "rules.too_narrow.min_sigma_km": 0.65,  # above the fit bound: a fit stuck at 0.6 km is a spike
        "rules.support.min_frames": 2,
        "screen.every_width": True,  # narrow plumes beside broader or stronger features: +0.065 recall
        "rules.significance.min_snr": 2.0,  # a floor only: detection.mirror sets the month's threshold
        "rules.box_like.min_delta_chi2": -10.0,
        "rules.step_like.min_delta_chi2": -10.0,  # a plume on a slope may fit a step almost as well
        "rules.box_like.spare_blends": True,  # blends of two plumes: +0.020 recall, +0.009 false events
        "rules.near_sides.per_sigma_km": 0.5,  # judged on the data the window has (cloud gaps)
        "rules.flanks.per_sigma_km": 0.5,
        "fit.neighbour_min_snr": 4.0,  # passes over clusters of sources: +0.020 recall, -1 point of emission error
        "noise.calibrate": True,  # significances in units of the orbit's own noise at each width
        "detection.mirror": True,  # the month's threshold from the mirrored depletions (false-alarm rate)
        # calibrated screen thresholds: the mirror samples the null around the month thresholds it sets on the
        # worlds (2.4-3.1 on most; 2.8 cost 1.7x the fits for the same recall: bench/bench_worlds.py)
        "screen.min_significance": 3.0,
        "screen.min_significance_beside": 2.4,
        "detection.fallback_significance": 4.0,
        # track 200 km from every source of >= 0.1 Mt/yr holds no detectable plume (12 h at 5 m/s): its positive
        # events beyond the mirror's measure the artefacts that only raise XCO2 (docs/NOISE.md)
        "detection.control_distance_km": 200.0,
    },
}


class DetectionSettings:
    """One value for every declared setting; immutable, hashable, TOML round-trip.

    >>> s = DetectionSettings.preset("chevallier-2020")
    >>> s["rules.fit_quality.min_r2"]
    0.25
    >>> s.replace({"fit.window_km": 150.0})["fit.window_km"]
    150.0
    """

    def __init__(self, values: dict | None = None, preset: str = "recommended"):
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        declared = all_settings()
        merged = {k: s.default for k, s in declared.items()}
        merged.update(PRESETS[preset])
        for key, value in (values or {}).items():
            if key not in declared:
                raise ValueError(f"unknown setting {key!r}")
            merged[key] = declared[key].check(value)
        self._values = merged
        self.preset = preset

    # -- access ----------------------------------------------------------------------------------------------
    def __getitem__(self, key: str):
        return self._values[key]

    def as_dict(self) -> dict:
        return dict(self._values)

    def enabled(self, rule_name: str) -> bool:
        return bool(self._values[_enable_key(RULE_BY_NAME[rule_name])])

    def replace(self, changes: dict) -> "DetectionSettings":
        return DetectionSettings({**self.changed(), **changes}, preset=self.preset)

    def contradictions(self) -> list[str]:
        """Settings that contradict one another, one sentence each naming both keys (empty when consistent).

        Each value is checked on its own when set (:meth:`Setting.check`); these are the pairs no single value
        shows: a bound pair the wrong way round, or a rule that every fit the bounds allow would fail.
        """
        v = self._values
        found = []
        if v["fit.sigma_min_km"] >= v["fit.sigma_max_km"]:
            found.append(f"fit.sigma_min_km ({v['fit.sigma_min_km']:g} km) must be below fit.sigma_max_km "
                         f"({v['fit.sigma_max_km']:g} km): every fit would be pinned at a bound")
        if self.enabled("too-narrow") and v["rules.too_narrow.min_sigma_km"] > v["fit.sigma_max_km"]:
            found.append(f"rules.too_narrow.min_sigma_km ({v['rules.too_narrow.min_sigma_km']:g} km) is above "
                         f"fit.sigma_max_km ({v['fit.sigma_max_km']:g} km): the too-narrow rule would reject every "
                         "fit")
        if self.enabled("too-wide") and v["rules.too_wide.n_sigma"] * v["fit.sigma_min_km"] > v["fit.window_km"] / 2:
            found.append(f"rules.too_wide.n_sigma x fit.sigma_min_km ({v['rules.too_wide.n_sigma']:g} x "
                         f"{v['fit.sigma_min_km']:g} km) exceeds half of fit.window_km ({v['fit.window_km']:g} km): "
                         "the too-wide rule would reject every fit")
        return found

    def check_consistent(self, source: str = "settings") -> "DetectionSettings":
        """These settings, or ValueError naming every contradiction (:meth:`contradictions`)."""
        found = self.contradictions()
        if found:
            raise ValueError(f"{source}: " + "; ".join(found))
        return self

    def fit_stage_items(self) -> tuple:
        """The values the screen and the fits read (:func:`fit_stage_keys`), as a hashable cache key."""
        keys = fit_stage_keys()
        return tuple(sorted((k, v) for k, v in self._values.items() if k in keys))

    def changed(self) -> dict:
        """The values that differ from the preset's defaults (what a share link carries)."""
        base = DetectionSettings(preset=self.preset)._values
        return {k: v for k, v in self._values.items() if v != base[k]}

    @property
    def hash(self) -> str:
        """Stable 12-hex digest of every value and of the method's code (:func:`method_fingerprint`); not of the
        preset's name: equal settings hash equally."""
        canonical = json.dumps({"values": {k: self._values[k] for k in sorted(self._values)},
                                "method": method_fingerprint()}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def __eq__(self, other) -> bool:
        return isinstance(other, DetectionSettings) and self._values == other._values

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return f"DetectionSettings(preset={self.preset!r}, changed={self.changed()!r}, hash={self.hash})"

    # -- TOML ------------------------------------------------------------------------------------------------
    @classmethod
    def preset_names(cls) -> list[str]:
        return sorted(PRESETS)

    @classmethod
    def preset(cls, name: str) -> "DetectionSettings":
        return cls(preset=name)

    def to_toml(self) -> str:
        """TOML with every value and its unit and meaning as comments."""
        declared = all_settings()
        lines = ["# oco2peak detection settings", f'preset = "{self.preset}"', f'# hash = "{self.hash}"']
        section = None
        for key in sorted(self._values, key=_toml_order):
            head, name = key.rsplit(".", 1)
            if head != section:
                section = head
                lines += ["", f"[{head}]"]
            value = self._values[key]
            text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
            unit = f" [{declared[key].unit}]" if declared[key].unit else ""
            lines.append(f"{name} = {text}  # {declared[key].meaning}{unit}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str, source: str = "TOML") -> "DetectionSettings":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{source}: not valid TOML ({exc})") from None
        preset = data.pop("preset", "recommended")
        if not isinstance(preset, str) or preset not in PRESETS:
            raise ValueError(f"{source}: preset must be one of {sorted(PRESETS)}, got {preset!r}")
        flat: dict = {}
        _flatten(data, "", flat)
        declared = all_settings()
        for key, value in flat.items():
            if key not in declared:
                raise ValueError(f"{source}: unknown setting {key!r}")
            flat[key] = declared[key].check(value, source)
        return cls(flat, preset=preset).check_consistent(source)

    @classmethod
    def load(cls, path) -> "DetectionSettings":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is not an error
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path.name}: cannot read ({exc})") from None
        return cls.from_toml(text, source=path.name)


def _flatten(data: dict, prefix: str, out: dict) -> None:
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, full + ".", out)
        else:
            out[full] = value


def _toml_order(key: str):
    order = ["fit", "screen", "noise", "detection", "rules", "emission", "attribution"]
    head = key.split(".")[0]
    return (order.index(head) if head in order else 99, key)
