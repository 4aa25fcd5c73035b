"""A false-alarm rate the analyst sets: the month's acceptance threshold from the data's own null.

CO2 plumes are enhancements. Depletions, fitted with the data turned upside down and judged by the same rules
(``detection.mirror``: candidates with ``sign`` -1), share the noise, the correlated background and the
symmetric artefacts (bursts of bad frames of either sign, steps up and down) with the enhancements, so the rate
of mirror events above a significance estimates the rate of false enhancements above it: the "negative image"
of source detection in astronomy. The month's threshold is the lowest significance at which the mirror rate is
at most ``detection.false_alarms_per_1000km`` (never below ``rules.significance.min_snr``); each accepted event
gets the expected false rate at its own significance and a q-value (the estimated share of false events among
events at least as significant: Benjamini and Hochberg 1995, Storey 2002).

Artefacts that only ever raise XCO2 (cloud-contaminated soundings, some bursts of bad frames) have no mirror image.
Where ``detection.control_distance_km`` is set, track that far from every inventory source big enough to make a
plume (the *control region*: oceans, deserts, forests) holds no plume, so its positive events beyond its mirror
events are such artefacts: their rate per km of control track, times the month's track, is added to the mirror's
estimate at every significance (:class:`ControlExcess`), and the threshold is the lowest at which the sum is at
most the rate asked. An inventory that misses sources puts real plumes in the control region: the estimate then
errs high (fewer events accepted), never low.

Where the month holds few mirror events above the threshold, the tail of the mirror significances is
extrapolated with an exponential fitted to the strongest ones (a heavier tail than the Gaussian's, so the
extrapolation errs on the side of fewer false events); with fewer than ``detection.min_mirror_events`` mirror
events at all (one or two short orbits), the month takes the stated conservative ``detection.fallback_significance``
and says so in every row (``threshold_method`` = ``fallback``).

References
----------
Benjamini, Y. and Hochberg, Y. (1995), Controlling the false discovery rate, JRSS B 57, 289-300.
Storey, J. D. (2002), A direct approach to false discovery rates, JRSS B 64, 479-498.
Serra, P. et al. (2012), Using negative detections to estimate source-finder reliability, MNRAS 422, 1201-1210.
Garwood, F. (1936), Fiducial limits for the Poisson distribution, Biometrika 28, 437-442 (the intervals).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from .detect import rejudge
from .rules import STAT_COLUMNS, rule_failures
from .settings import DetectionSettings

#: Columns every candidate row carries after :func:`calibrate_month` (month-level values repeated).
MONTH_COLUMNS = ("significance_threshold", "threshold_method", "month_false_per_1000km",
                 "month_false_per_1000km_low", "month_false_per_1000km_high", "month_track_km",
                 "month_control_km", "month_control_excess_per_1000km", "false_alarm_per_1000km", "q_value")


@dataclass(frozen=True)
class MonthThreshold:
    """The month's acceptance threshold and the false-event rate expected at it."""

    threshold: float  # significance an accepted event needs
    method: str  # "mirror" (counted), "mirror-tail" (extrapolated), "floor" (min_snr binds), "fallback", "fixed"
    track_km: float  # along-track length of the month's orbits [km]
    n_orbits: int
    n_mirror: int  # mirror events passing every rule but significance
    n_mirror_above: int  # ... at or above the threshold
    false_per_1000km: float  # expected false events per 1,000 km at the threshold
    interval_per_1000km: tuple[float, float]  # its 90 % interval
    message: str
    n_accepted: int = 0  # accepted events (read back from a judged table; 0 before judging)
    n_burst_like: int = 0  # ... of which burst-like (:func:`core.rules.burst_like`)
    control_km: float = 0.0  # track of the control region (detection.control_distance_km) [km]
    control_excess_per_1000km: float = 0.0  # the control region's positive events beyond its mirror events, in
    # false_per_1000km (scaled to the month's track): the artefacts the mirror cannot see

    @property
    def burst_like_per_1000km(self) -> float:
        """The false rate if every burst-like accepted event were a one-sided burst of bad frames: what the mirror
        cannot see, added to what it estimates (an upper bound for that kind of artefact)."""
        return self.false_per_1000km + 1000.0 * self.n_burst_like / self.track_km if self.track_km else np.nan

    def burst_note(self) -> str:
        """One sentence on the burst-like accepted events ('' when there are none)."""
        if not self.n_burst_like:
            return ""
        return (f"{self.n_burst_like} of the {self.n_accepted} accepted events are burst-like (narrow, footprints "
                f"not shifted: one pass cannot tell them from bursts of bad frames); if all were bursts raising XCO2, "
                f"which the mirror does not see, false events would reach {self.burst_like_per_1000km:.2f} per "
                f"1,000 km.")

    def line(self) -> str:
        lo, hi = self.interval_per_1000km
        counted = (f"threshold {self.threshold:.2f} ({self.method}): {self.false_per_1000km:.2f} false events per "
                   f"1,000 km expected (90 % {lo:.2f}-{hi:.2f}) on {self.track_km:,.0f} km of {self.n_orbits} "
                   f"orbits, from {self.n_mirror} mirror events ({self.n_mirror_above} above it)")
        control = (f", {self.control_excess_per_1000km:.2f} of them positive artefacts seen in the "
                   f"{self.control_km:,.0f} km far from every source" if self.control_km > 0 else "") + "."
        return " ".join(part for part in (counted + control, self.burst_note(), self.message) if part)


def poisson_interval(count: float, level: float = 0.9) -> tuple[float, float]:
    """Two-sided interval of a Poisson mean given an observed ``count`` (Garwood 1936)."""
    alpha = 1 - level
    lo = 0.0 if count <= 0 else chi2.ppf(alpha / 2, 2 * count) / 2
    return float(lo), float(chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2)


def _orbit_km(candidates: pd.DataFrame) -> tuple[float, int]:
    per_orbit = candidates.groupby("orbit")["orbit_track_km"].first()
    return float(per_orbit.sum()), int(per_orbit.size)


def rule_passing_events(candidates: pd.DataFrame, settings: DetectionSettings) -> pd.DataFrame:
    """Fitted candidates passing every enabled rule but significance, one per feature: ``orbit``, ``sign``,
    ``significance`` and the row label, strongest first (windows within a width of a stronger one of the same
    sign and orbit are the same feature, as in :func:`core.detect.judge`)."""
    fitted = candidates[candidates["fixed_reason"].eq("")]
    if fitted.empty:
        return pd.DataFrame(columns=["orbit", "sign", "significance", "row", "control"])
    needed = [c for c in (*STAT_COLUMNS, "significance", "sigma_km", "amplitude_ppm_km") if c in fitted]
    failures = rule_failures({c: fitted[c].to_numpy() for c in needed}, settings)
    failures.pop("significance", None)
    ok = ~np.any(np.stack(list(failures.values())), axis=0) if failures else np.ones(len(fitted), bool)
    table = pd.DataFrame({"orbit": fitted["orbit"].to_numpy()[ok], "sign": fitted["sign"].to_numpy()[ok],
                          "significance": fitted["significance"].to_numpy(float)[ok],
                          "center_km": fitted["center_km"].to_numpy(float)[ok],
                          "sigma_km": fitted["sigma_km"].to_numpy(float)[ok], "row": fitted.index[ok],
                          "control": (fitted["control"].to_numpy(bool)[ok] if "control" in fitted
                                      else np.zeros(int(ok.sum()), bool))})
    table = table[np.isfinite(table["significance"])].sort_values("significance", ascending=False, kind="stable")
    keep = np.ones(len(table), bool)
    kept: dict[tuple, list[int]] = {}
    centre, sigma = table["center_km"].to_numpy(), table["sigma_km"].to_numpy()
    for i, key in enumerate(zip(table["orbit"].to_numpy(), table["sign"].to_numpy())):
        same = kept.setdefault(key, [])
        if any(abs(centre[i] - centre[k]) <= max(1.0, min(sigma[i], sigma[k])) for k in same):
            keep[i] = False
        else:
            same.append(i)
    return table[keep].reset_index(drop=True)


class MirrorNull:
    """Expected number of false events at or above a significance, from the mirror events' significances."""

    def __init__(self, significances: np.ndarray, min_events: int):
        self.m = np.sort(np.asarray(significances, float))[::-1]
        self.min_events = int(min_events)
        n_tail = min(self.m.size - 1, 2 * self.min_events)  # the strongest ones, above the next one
        self.t0 = float(self.m[n_tail]) if n_tail > 0 else np.nan
        excess = self.m[:n_tail] - self.t0 if n_tail > 0 else np.zeros(0)
        self.n_tail = int(n_tail)
        self.rate = n_tail / excess.sum() if n_tail > 0 and excess.sum() > 0 else np.nan  # per unit significance

    def counted(self, t) -> np.ndarray:
        return np.searchsorted(-self.m, -np.asarray(t, float), side="right").astype(float)

    def expected(self, t) -> np.ndarray:
        """Counted where at least ``min_events`` lie above ``t``; the exponential tail beyond."""
        t = np.asarray(t, float)
        count = self.counted(t)
        tail = self.n_tail * np.exp(-self.rate * (t - self.t0)) if np.isfinite(self.rate) else count
        return np.where(count >= self.min_events, count, np.minimum(np.maximum(tail, 0.0), self.min_events))

    def threshold_for(self, allowed: float) -> tuple[float, str]:
        """Lowest significance with at most ``allowed`` expected false events."""
        k = int(np.floor(allowed))
        if k >= self.min_events and k < self.m.size:  # counted: between the k-th and the (k+1)-th strongest
            return float(0.5 * (self.m[k - 1] + self.m[k])), "mirror"
        if not np.isfinite(self.rate) or allowed <= 0:
            return float("inf"), "mirror-tail"
        return float(self.t0 + np.log(self.n_tail / allowed) / self.rate), "mirror-tail"

    def interval(self, t: float, level: float = 0.9) -> tuple[float, float]:
        """Interval of the expected count at ``t``: Poisson where counted, the tail's rate interval beyond."""
        count = float(self.counted(t))
        if count >= self.min_events or not np.isfinite(self.rate):
            return poisson_interval(count, level)
        alpha = 1 - level  # the exponential rate's interval: 2 n rate_true / rate_hat ~ chi2(2 n)
        rates = (self.rate * chi2.ppf(alpha / 2, 2 * self.n_tail) / (2 * self.n_tail),
                 self.rate * chi2.ppf(1 - alpha / 2, 2 * self.n_tail) / (2 * self.n_tail))
        n_lo, n_hi = poisson_interval(self.n_tail, level)
        values = [n * np.exp(-r * (t - self.t0)) for n in (n_lo, n_hi) for r in rates]
        return float(min(values)), float(max(values))


class ControlExcess:
    """Positive events of the control region beyond its mirror events, at or above a significance, scaled from the
    control track to the month's (``scale`` = month km / control km): expected false events the mirror misses.

    Counted beyond ``shrink_sd`` (``detection.control_shrink_sd``, 1) standard deviations of the difference of the
    two Poisson counts, ``sqrt(P + M)``: where the artefacts are symmetric the difference is noise, and its positive
    part alone would add ~0.4 sd on average (a one-sided excess of P - M events is then taken as
    P - M - sqrt(P + M))."""

    def __init__(self, events: pd.DataFrame, control_km: float, month_km: float, shrink_sd: float = 1.0):
        self.shrink_sd = float(shrink_sd)
        control = events[events["control"].astype(bool)] if "control" in events and control_km > 0 else events[:0]
        self.plus = np.sort(control.loc[control["sign"] > 0, "significance"].to_numpy(float))[::-1]
        self.minus = np.sort(control.loc[control["sign"] < 0, "significance"].to_numpy(float))[::-1]
        self.scale = month_km / control_km if control_km > 0 else 0.0

    def counts(self, t) -> tuple[np.ndarray, np.ndarray]:
        """Positive and mirror events of the control region at or above ``t``."""
        t = -np.asarray(t, float)
        return np.searchsorted(-self.plus, t, side="right"), np.searchsorted(-self.minus, t, side="right")

    def at(self, t) -> np.ndarray:
        plus, minus = self.counts(t)
        return np.maximum(plus - minus - self.shrink_sd * np.sqrt(plus + minus), 0.0) * self.scale

    def interval(self, t: float, level: float = 0.9) -> tuple[float, float]:
        """Interval of the excess at ``t`` (the difference of two Poisson counts, normal approximation)."""
        plus, minus = (float(c) for c in self.counts(t))
        half = norm.ppf(0.5 + level / 2) * np.sqrt(plus + minus)
        return max(plus - minus - half, 0.0) * self.scale, max(plus - minus + half, 0.0) * self.scale


def _control_km(candidates: pd.DataFrame) -> float:
    if "orbit_control_km" not in candidates:
        return 0.0
    return float(candidates.groupby("orbit")["orbit_control_km"].first().sum())


def month_threshold(candidates: pd.DataFrame, settings: DetectionSettings) -> MonthThreshold:
    """The month's threshold for ``detection.false_alarms_per_1000km`` (see the module docstring)."""
    s = settings
    floor = float(s["rules.significance.min_snr"])
    km, n_orbits = _orbit_km(candidates) if len(candidates) else (0.0, 0)
    if not s["detection.mirror"]:
        return MonthThreshold(floor, "fixed", km, n_orbits, 0, 0, np.nan, (np.nan, np.nan),
                              "detection.mirror is off: rules.significance.min_snr, no false-rate estimate")
    events = rule_passing_events(candidates, s)
    mirror = events.loc[events["sign"] < 0, "significance"].to_numpy(float)
    target = s["detection.false_alarms_per_1000km"]
    allowed = target * km / 1000.0
    if mirror.size < s["detection.min_mirror_events"] and km > 0:
        # few mirror events: enough only if even all of them are surely fewer than allowed (90 % upper bound)
        above = int(np.count_nonzero(mirror >= floor))
        lo, hi = poisson_interval(above)
        if hi <= allowed:
            scale = 1000.0 / km
            return MonthThreshold(floor, "floor", km, n_orbits, int(mirror.size), above, above * scale,
                                  (lo * scale, hi * scale), "")
    if mirror.size < s["detection.min_mirror_events"] or km <= 0:
        threshold = max(floor, float(s["detection.fallback_significance"]))
        above = int(np.count_nonzero(mirror >= threshold))
        lo, hi = poisson_interval(above)
        scale = 1000.0 / km if km > 0 else np.nan
        return MonthThreshold(threshold, "fallback", km, n_orbits, int(mirror.size), above, above * scale,
                              (lo * scale, hi * scale),
                              f"too little track to set a threshold ({km:,.0f} km, {mirror.size} mirror events < "
                              f"detection.min_mirror_events = {s['detection.min_mirror_events']}): the conservative "
                              f"detection.fallback_significance = {s['detection.fallback_significance']}")
    null = MirrorNull(mirror, s["detection.min_mirror_events"])
    threshold, method = null.threshold_for(allowed)
    if threshold < floor:
        threshold, method = floor, "floor"
    control_km = _control_km(candidates) if s["detection.control_distance_km"] > 0 else 0.0
    excess = ControlExcess(events, control_km, km, s["detection.control_shrink_sd"])
    if control_km > 0 and float(null.expected(threshold) + excess.at(threshold)) > allowed:
        # the lowest significance where the mirror's and the control region's expected false events fit
        steps = np.unique(events["significance"].to_numpy(float))
        steps = np.r_[threshold, np.nextafter(steps[steps >= threshold], np.inf)]
        fits = null.expected(steps) + excess.at(steps) <= allowed
        threshold = float(steps[np.argmax(fits)] if fits.any() else steps[-1])
        method += "+control"
    expected = float(null.expected(threshold))
    lo, hi = null.interval(threshold)
    more = float(excess.at(threshold))
    more_lo, more_hi = excess.interval(threshold) if control_km > 0 else (0.0, 0.0)
    scale = 1000.0 / km
    return MonthThreshold(float(threshold), method, km, n_orbits, int(mirror.size),
                          int(null.counted(threshold)), (expected + more) * scale,
                          ((lo + more_lo) * scale, (hi + more_hi) * scale), "", control_km=control_km,
                          control_excess_per_1000km=more * scale)


def calibrate_month(candidates: pd.DataFrame, settings: DetectionSettings) -> pd.DataFrame:
    """Judge a month's candidates (every orbit, as detected) at the month's threshold; add the month's false-rate
    estimate, and each event's expected false rate at its significance and q-value (:data:`MONTH_COLUMNS`)."""
    if candidates.empty or "orbit_track_km" not in candidates:
        return candidates
    t = month_threshold(candidates, settings)
    out = rejudge(candidates, settings, t.threshold) if t.method != "fixed" else candidates.copy()
    n = len(out)
    columns = {"significance_threshold": np.full(n, t.threshold), "threshold_method": np.full(n, t.method, object),
               "month_false_per_1000km": np.full(n, t.false_per_1000km),
               "month_false_per_1000km_low": np.full(n, t.interval_per_1000km[0]),
               "month_false_per_1000km_high": np.full(n, t.interval_per_1000km[1]),
               "month_track_km": np.full(n, t.track_km), "month_control_km": np.full(n, t.control_km),
               "month_control_excess_per_1000km": np.full(n, t.control_excess_per_1000km),
               "false_alarm_per_1000km": np.full(n, np.nan), "q_value": np.full(n, np.nan)}
    if t.method not in ("fixed", "fallback"):
        events = rule_passing_events(out, settings)
        null = MirrorNull(events.loc[events["sign"] < 0, "significance"].to_numpy(float),
                          settings["detection.min_mirror_events"])
        plus = np.sort(events.loc[events["sign"] > 0, "significance"].to_numpy(float))[::-1]
        rows = out.index.get_indexer(events.loc[events["sign"] > 0, "row"])
        sig = out["significance"].to_numpy(float)[rows]
        expected = null.expected(sig) + ControlExcess(events, t.control_km, t.track_km, settings["detection.control_shrink_sd"]).at(sig)
        n_plus = np.searchsorted(-plus, -sig, side="right")
        q = np.minimum(1.0, expected / np.maximum(n_plus, 1))
        order = np.argsort(sig)  # q-values monotone in significance (the step-up of Benjamini-Hochberg)
        q[order] = np.minimum.accumulate(q[order][::-1])[::-1]
        columns["false_alarm_per_1000km"][rows] = expected * 1000.0 / t.track_km
        columns["q_value"][rows] = q
    for name, values in columns.items():
        out[name] = values
    return out


def month_summary(candidates: pd.DataFrame) -> MonthThreshold | None:
    """The month's threshold read back from a calibrated candidates table (None when it carries none)."""
    if candidates.empty or "significance_threshold" not in candidates:
        return None
    row = candidates.iloc[0]
    fitted = candidates[candidates["fixed_reason"].eq("")]
    mirror = fitted[(fitted["sign"] < 0) & fitted["is_event"]] if "sign" in fitted else fitted.iloc[0:0]
    above = int((mirror["rejected_by"] == "mirror").sum())
    km, n_orbits = _orbit_km(candidates)
    accepted = candidates["is_event"].astype(bool) & candidates["status"].eq("accepted")
    burst = candidates["burst_like"].astype(bool) if "burst_like" in candidates else False
    return MonthThreshold(float(row["significance_threshold"]), str(row["threshold_method"]), km, n_orbits,
                          int(len(mirror)), above, float(row["month_false_per_1000km"]),
                          (float(row["month_false_per_1000km_low"]), float(row["month_false_per_1000km_high"])), "",
                          int(accepted.sum()), int((accepted & burst).sum()),
                          float(row.get("month_control_km", 0.0)),
                          float(row.get("month_control_excess_per_1000km", 0.0)))
