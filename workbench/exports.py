"""The bytes the workbench offers for download, and the parsing of what it accepts (pure: unit-tested).

* :func:`vetted_csv` - the vetted plumes, one row per plume with its current decision (under any settings), its
  significance, the month's threshold and false-event rate and its orbit's noise, and provenance columns: the
  settings hash, preset and values that produced the peak, the software version, the peak's own data files, a link
  to the peak, the export time.
* :func:`settings_toml` / :func:`parse_settings_upload` - the settings as TOML, and a TOML file read back
  (validated; an error names the problem and the current settings stay).
"""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

import core
from core.batch import PEAK_COLUMNS
from core.settings import DetectionSettings
from core.vetting import current_plume_decisions

#: Columns after the contract ones: how significant the peak is in units of its orbit's own noise, the month's
#: threshold and false-event rate it was judged at, its own expected false rate and q-value, its orbit's noise
#: (``core.detect.OrbitNoise.columns``, ``core.false_alarms.MONTH_COLUMNS``; empty where a table lacks them), and
#: whether one pass cannot tell it from a burst of bad frames (``core.rules.burst_like``); whether it lies in the
#: control region and what that region added to the month's estimate (``core.false_alarms.ControlExcess``).
SIGNIFICANCE_COLUMNS = ["significance", "q_value", "false_alarm_per_1000km", "significance_threshold",
                        "threshold_method", "month_false_per_1000km", "month_false_per_1000km_low",
                        "month_false_per_1000km_high", "month_control_excess_per_1000km", "control", "noise_scale",
                        "correlated_ppm", "correlation_km", "noise_fallback", "noise_spread", "burst_like"]
DECISION_COLUMNS = ["month", "decision", "note", "analyst", "decided_at", "n_decisions", "decision_id"]
PROVENANCE_COLUMNS = ["rules_hash", "preset", "settings_json", "software_version", "vetted_with_version",
                      "data_files", "peak_link", "exported_at"]


def peak_snapshot(row: pd.Series) -> dict:
    """The contract and significance columns of one peak (what a decision records of it); a candidate row's
    ``n_window`` is the contract's ``n_soundings``."""
    if "n_soundings" not in row.index and "n_window" in row.index:
        row = row.rename({"n_window": "n_soundings"})
    return {c: _plain(row.get(c)) for c in PEAK_COLUMNS + SIGNIFICANCE_COLUMNS if c in row.index}


#: A peak's data files are those of the days its window's soundings may fall on: its time +- this many seconds
#: (a 200 km window is crossed in ~30 s at 6.8 km/s).
WINDOW_HALF_S = 30.0


def peak_files(time, manifest: pd.DataFrame) -> str:
    """The Lite files (';'-separated) of the day(s) the peak's window lies on, from the cache manifest."""
    if manifest is None or len(manifest) == 0 or time is None or pd.isna(time):
        return ""
    t = pd.Timestamp(time)
    t = t.tz_convert("UTC") if t.tzinfo else t.tz_localize("UTC")
    half = pd.Timedelta(seconds=WINDOW_HALF_S)
    days = {(t - half).strftime("%Y-%m-%d"), (t + half).strftime("%Y-%m-%d")}
    named = manifest[manifest["day"].isin(days) & manifest["file_name"].fillna("").ne("")]
    return ";".join(sorted(named["file_name"]))


def peak_link(month: str, orbit: int, sounding_id: int, settings_values: dict, base: str = "/peak") -> str:
    """A link to the peak on Peak detail with the settings it was judged under (preset and changed values; today's
    defaults when the recorded values no longer fit the declared settings)."""
    from .view import DEFAULT_PRESET, link, to_params

    values = dict(settings_values)
    preset = values.pop("preset", DEFAULT_PRESET)
    declared = DetectionSettings().as_dict()
    try:
        settings = DetectionSettings({k: v for k, v in values.items() if k in declared}, preset=preset)
    except ValueError:
        settings = DetectionSettings()
    return link(base, to_params(month, int(orbit), int(sounding_id), settings))


def _plain(value):
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def vetted_table(history: pd.DataFrame, manifest: pd.DataFrame, decisions_to_keep=None) -> pd.DataFrame:
    """The vetted plumes as a table (see :func:`vetted_csv`): one row per plume, its latest decision under any
    settings (:func:`core.vetting.current_plume_decisions`)."""
    decisions = current_plume_decisions(history)
    if decisions_to_keep:
        decisions = decisions[decisions["decision"].isin(decisions_to_keep)]
    rows = []
    for d in decisions.itertuples(index=False):
        peak = json.loads(d.peak_json) if isinstance(d.peak_json, str) and d.peak_json else {}
        settings = json.loads(d.settings_json) if isinstance(d.settings_json, str) and d.settings_json else {}
        row = {c: peak.get(c) for c in PEAK_COLUMNS + SIGNIFICANCE_COLUMNS}
        row.update(orbit=d.orbit, sounding_id=d.sounding_id)
        row.update({c: getattr(d, c) for c in DECISION_COLUMNS if hasattr(d, c)})
        row.update(rules_hash=d.rules_hash, preset=settings.get("preset", ""),
                   settings_json=json.dumps(settings, sort_keys=True), software_version=core.__version__,
                   vetted_with_version=d.software_version, data_files=peak_files(peak.get("time"), manifest),
                   peak_link=peak_link(d.month, d.orbit, d.sounding_id, settings))
        rows.append(row)
    columns = PEAK_COLUMNS + SIGNIFICANCE_COLUMNS + [c for c in DECISION_COLUMNS if c not in PEAK_COLUMNS] + \
        [c for c in PROVENANCE_COLUMNS if c not in PEAK_COLUMNS]
    table = pd.DataFrame(rows, columns=columns)
    table["exported_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return table


def vetted_csv(history: pd.DataFrame, manifest: pd.DataFrame, decisions_to_keep=None) -> bytes:
    """CSV (UTF-8) of the vetted plumes, one row each (two decisions on one plume under two settings are one row):
    the peak contract columns (``core.batch.PEAK_COLUMNS``) and :data:`SIGNIFICANCE_COLUMNS` as judged when vetted,
    the plume's current decision with who, when and why (``n_decisions``: its history under any settings), and
    provenance (``rules_hash`` and ``preset`` of the settings it was judged under, ``settings_json``,
    ``software_version``, ``data_files``: the Lite files of the day(s) of the peak's window, ';'-separated;
    ``peak_link``: the peak on Peak detail under those settings; ``exported_at``).

    Parameters
    ----------
    history : DataFrame
        :meth:`core.vetting.VettingStore.history` (every decision; the latest on each plume is exported).
    manifest : DataFrame
        :meth:`core.cache.SoundingsCache.manifest` (for the data files of each month).
    decisions_to_keep : sequence of str, optional
        Keep only these decisions (e.g. ``["accept"]``).
    """
    return vetted_table(history, manifest, decisions_to_keep).to_csv(index=False).encode("utf-8")


def settings_toml(settings: DetectionSettings) -> bytes:
    return settings.to_toml().encode("utf-8")


def parse_settings_upload(data: bytes, name: str = "uploaded file") -> DetectionSettings:
    """Settings from an uploaded TOML file; ``ValueError`` with a message for people when it cannot be used."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not a UTF-8 text file") from None
    return DetectionSettings.from_toml(text, source=name)
