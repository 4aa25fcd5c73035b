"""The bytes the workbench offers for download, and the parsing of what it accepts (pure: unit-tested).

* :func:`vetted_csv` - the vetted peaks, one row per peak with its current decision, its significance, the month's
  threshold and false-event rate and its orbit's noise, and provenance columns: the settings hash and values that
  produced the peak, the software version, the month's data files, the export time.
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

#: Columns after the contract ones: how significant the peak is in units of its orbit's own noise, the month's
#: threshold and false-event rate it was judged at, its own expected false rate and q-value, and its orbit's noise
#: (``core.detect.OrbitNoise.columns``, ``core.false_alarms.MONTH_COLUMNS``; empty where a table lacks them).
SIGNIFICANCE_COLUMNS = ["significance", "q_value", "false_alarm_per_1000km", "significance_threshold",
                        "threshold_method", "month_false_per_1000km", "month_false_per_1000km_low",
                        "month_false_per_1000km_high", "noise_scale", "correlated_ppm", "correlation_km",
                        "noise_fallback", "noise_spread"]
DECISION_COLUMNS = ["month", "decision", "note", "analyst", "decided_at", "n_decisions", "decision_id"]
PROVENANCE_COLUMNS = ["rules_hash", "settings_json", "software_version", "vetted_with_version", "data_files",
                      "exported_at"]


def peak_snapshot(row: pd.Series) -> dict:
    """The contract and significance columns of one peak (what a decision records of it)."""
    return {c: _plain(row.get(c)) for c in PEAK_COLUMNS + SIGNIFICANCE_COLUMNS if c in row.index}


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


def vetted_table(decisions: pd.DataFrame, manifest: pd.DataFrame, decisions_to_keep=None) -> pd.DataFrame:
    """The vetted peaks as a table (see :func:`vetted_csv`)."""
    if decisions_to_keep:
        decisions = decisions[decisions["decision"].isin(decisions_to_keep)]
    manifest = manifest[manifest["file_name"].fillna("").ne("")] if len(manifest) else manifest  # unreadable: no name
    files = (manifest.groupby("month")["file_name"].apply(lambda s: ";".join(sorted(s))).to_dict()
             if len(manifest) else {})
    rows = []
    for d in decisions.itertuples(index=False):
        peak = json.loads(d.peak_json) if isinstance(d.peak_json, str) and d.peak_json else {}
        settings = json.loads(d.settings_json) if isinstance(d.settings_json, str) and d.settings_json else {}
        row = {c: peak.get(c) for c in PEAK_COLUMNS + SIGNIFICANCE_COLUMNS}
        row.update(orbit=d.orbit, sounding_id=d.sounding_id)
        row.update({c: getattr(d, c) for c in DECISION_COLUMNS if hasattr(d, c)})
        row.update(rules_hash=d.rules_hash, settings_json=json.dumps(settings, sort_keys=True),
                   software_version=core.__version__, vetted_with_version=d.software_version,
                   data_files=files.get(d.month, ""))
        rows.append(row)
    columns = PEAK_COLUMNS + SIGNIFICANCE_COLUMNS + [c for c in DECISION_COLUMNS if c not in PEAK_COLUMNS] + \
        [c for c in PROVENANCE_COLUMNS if c not in PEAK_COLUMNS]
    table = pd.DataFrame(rows, columns=columns)
    table["exported_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return table


def vetted_csv(decisions: pd.DataFrame, manifest: pd.DataFrame, decisions_to_keep=None) -> bytes:
    """CSV (UTF-8) of the vetted peaks: the peak contract columns (``core.batch.PEAK_COLUMNS``) and
    :data:`SIGNIFICANCE_COLUMNS` as judged when vetted, the current decision with who, when and why, and
    provenance (``rules_hash``, ``settings_json``, ``software_version``, ``data_files``: the month's ingested files,
    ';'-separated; ``exported_at``).

    Parameters
    ----------
    decisions : DataFrame
        :meth:`core.vetting.VettingStore.current_decisions`.
    manifest : DataFrame
        :meth:`core.cache.SoundingsCache.manifest` (for the data files of each month).
    decisions_to_keep : sequence of str, optional
        Keep only these decisions (e.g. ``["accept"]``).
    """
    return vetted_table(decisions, manifest, decisions_to_keep).to_csv(index=False).encode("utf-8")


def settings_toml(settings: DetectionSettings) -> bytes:
    return settings.to_toml().encode("utf-8")


def parse_settings_upload(data: bytes, name: str = "uploaded file") -> DetectionSettings:
    """Settings from an uploaded TOML file; ``ValueError`` with a message for people when it cannot be used."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not a UTF-8 text file") from None
    return DetectionSettings.from_toml(text, source=name)
