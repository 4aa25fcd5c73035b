"""Analysts' decisions on peaks: a durable, append-only store that many analysts can write at once.

A decision says *accept*, *reject* or *unsure* about one peak, with a note, the analyst's name and the UTC time.
A decision is recorded under ``(month, orbit, sounding_id, rules_hash)``: the sounding nearest the plume centre,
and the hash of the settings that produced the peak (:attr:`core.settings.DetectionSettings.hash`). It is about the
plume, though: :func:`plume_decisions` finds it again on the peak that any other settings make of the same plume
(same orbit, within the fits' width), and says which settings it was made under and whether the verdict changed
since.

Storage: SQLite at ``<cache>/vetting/decisions.sqlite`` in WAL mode (readers never block the writer), with a busy
timeout (writers queue instead of failing), ``synchronous=FULL`` (a committed decision survives a power cut). One
connection per call, so the store is safe from any thread or process; every write is one ``INSERT`` in its own
``BEGIN IMMEDIATE`` transaction, with bound parameters only. Rows are never updated nor deleted (triggers refuse
it): the history of a peak is every decision made on it, and its current decision is the latest one.

Each row may carry a snapshot of the peak as it was judged (``peak_json``) and the settings values
(``settings_json``), so an export of vetted peaks says exactly what was vetted, whatever the settings are later.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .paths import cache_root
from .track import haversine_km

DECISIONS = ("accept", "reject", "unsure")
#: Seconds a writer waits for the lock before giving up (SQLite busy timeout).
BUSY_TIMEOUT_S = 60.0
KEY_COLUMNS = ["month", "orbit", "sounding_id", "rules_hash"]
COLUMNS = ["decision_id", *KEY_COLUMNS, "decision", "note", "analyst", "decided_at", "software_version",
           "peak_json", "settings_json"]

_SCHEMA = ("""
CREATE TABLE IF NOT EXISTS decisions (
    decision_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    month            TEXT    NOT NULL CHECK (length(month) = 7),
    orbit            INTEGER NOT NULL,
    sounding_id      INTEGER NOT NULL,
    rules_hash       TEXT    NOT NULL,
    decision         TEXT    NOT NULL CHECK (decision IN ('accept', 'reject', 'unsure')),
    note             TEXT    NOT NULL DEFAULT '',
    analyst          TEXT    NOT NULL CHECK (length(analyst) > 0),
    decided_at       TEXT    NOT NULL,
    software_version TEXT    NOT NULL DEFAULT '',
    peak_json        TEXT,
    settings_json    TEXT
)""",
    "CREATE INDEX IF NOT EXISTS decisions_by_peak ON decisions (month, orbit, sounding_id, rules_hash, decision_id)",
    """CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only: record a new decision instead'); END""",
    """CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only: the history is kept'); END""",
)


@dataclass(frozen=True)
class PeakKey:
    """Which peak a decision is about."""

    month: str  # YYYY-MM
    orbit: int
    sounding_id: int  # the sounding nearest the fitted centre
    rules_hash: str  # settings that produced the peak

    def as_params(self) -> list:
        return [self.month, int(self.orbit), int(self.sounding_id), self.rules_hash]


def store_path(cache=None) -> Path:
    """``<cache>/vetting/decisions.sqlite``."""
    return cache_root(cache) / "vetting" / "decisions.sqlite"


class VettingStore:
    """The decisions of one cache (see the module docstring).

    >>> store = VettingStore(cache_dir)                                        # doctest: +SKIP
    >>> store.record(PeakKey("2019-08", 27054, 2019080205181564, "63ac103768fa"), "accept", "clear plume", "ana")
    """

    def __init__(self, cache=None, path=None):
        self.path = Path(path) if path is not None else store_path(cache)
        self._ready = False
        self._init_lock = threading.Lock()

    # -- connections ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _connect(self):
        self._ensure_schema()
        con = self._open()
        try:
            yield con
        finally:
            con.close()

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        con.execute("PRAGMA synchronous = FULL")
        return con

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        with self._init_lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Two processes creating the store at once: switching a fresh file to WAL needs an exclusive lock,
            # and SQLite answers "database is locked" at once, without its busy handler, when another connection
            # holds one. So retry with a short pause until the busy timeout.
            deadline = time.monotonic() + BUSY_TIMEOUT_S
            while True:
                try:
                    self._create_schema()
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.02 + 0.08 * random.random())
            self._ready = True

    def _create_schema(self) -> None:
        con = self._open()
        try:
            # WAL is a property of the database file: set once, every later connection uses it
            mode = con.execute("PRAGMA journal_mode = WAL").fetchall()[0][0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
            con.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA:
                    con.execute(statement)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            con.close()

    # -- writing -------------------------------------------------------------------------------------------------
    def record(self, key: PeakKey, decision: str, note: str = "", analyst: str = "", *, peak: dict | None = None,
               settings: dict | None = None, software_version: str = "", decided_at: dt.datetime | None = None
               ) -> int:
        """Append one decision; returns its ``decision_id``.

        Parameters
        ----------
        key : PeakKey
            The peak.
        decision : str
            ``"accept"``, ``"reject"`` or ``"unsure"``.
        note : str
            Why (free text).
        analyst : str
            Who (required, non-blank).
        peak : dict, optional
            Snapshot of the peak's values (JSON-serialisable; NaN becomes null).
        settings : dict, optional
            The settings values that produced the peak.
        software_version : str
            ``core.__version__`` of the software that judged the peak.
        decided_at : datetime, optional
            UTC time of the decision (default: now).
        """
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
        analyst = (analyst or "").strip()
        if not analyst:
            raise ValueError("the analyst's name is required")
        if not isinstance(key, PeakKey):
            raise TypeError("key must be a PeakKey")
        when = (decided_at or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
        row = [*key.as_params(), decision, note or "", analyst, when.isoformat(timespec="microseconds"),
               software_version or "", _to_json(peak), _to_json(settings)]
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                cur = con.execute(
                    "INSERT INTO decisions (month, orbit, sounding_id, rules_hash, decision, note, analyst, "
                    "decided_at, software_version, peak_json, settings_json) VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            return int(cur.lastrowid)

    # -- reading -------------------------------------------------------------------------------------------------
    def history(self, key: PeakKey | None = None, month: str | None = None) -> pd.DataFrame:
        """Every decision (of one peak, of one month, or all), oldest first."""
        where, params = _where(key, month)
        return self._frame(f"SELECT {', '.join(COLUMNS)} FROM decisions {where} ORDER BY decision_id", params)

    def current_decisions(self, month: str | None = None) -> pd.DataFrame:
        """The latest decision of each peak (of one month, or all), with ``n_decisions`` (its history length)."""
        where, params = _where(None, month)
        sql = (f"SELECT {', '.join('d.' + c for c in COLUMNS)}, g.n_decisions FROM decisions d JOIN "
               f"(SELECT MAX(decision_id) AS last_id, COUNT(*) AS n_decisions FROM decisions {where} "
               f"GROUP BY month, orbit, sounding_id, rules_hash) g ON d.decision_id = g.last_id "
               f"ORDER BY d.month, d.orbit, d.sounding_id, d.rules_hash")
        return self._frame(sql, params, extra=["n_decisions"])

    def current(self, key: PeakKey) -> dict | None:
        """The latest decision on one peak, or None."""
        found = self.history(key)
        return None if found.empty else found.iloc[-1].to_dict()

    def count(self) -> int:
        if not self.path.exists():
            return 0
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM decisions").fetchall()[0][0])

    def _frame(self, sql: str, params: list, extra: list | None = None) -> pd.DataFrame:
        columns = COLUMNS + (extra or [])
        if not self.path.exists():
            return pd.DataFrame(columns=columns)
        with self._connect() as con:
            rows = con.execute(sql, params).fetchall()
        frame = pd.DataFrame(rows, columns=columns)
        for column in ("decision_id", "orbit", "sounding_id", *(extra or [])):
            frame[column] = frame[column].astype("int64")
        return frame


def _where(key: PeakKey | None, month: str | None) -> tuple[str, list]:
    if key is not None:
        return "WHERE month = ? AND orbit = ? AND sounding_id = ? AND rules_hash = ?", key.as_params()
    if month is not None:
        return "WHERE month = ?", [month]
    return "", []


def _to_json(values: dict | None) -> str | None:
    if values is None:
        return None
    return json.dumps({k: _json_value(v) for k, v in values.items()}, sort_keys=True)


def _json_value(v):
    """JSON-safe scalar: NaN/inf -> None, numpy scalars -> Python, timestamps -> ISO text."""
    if v is None:
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (bool, int, float, str)):
        return v
    if v is pd.NA or v is pd.NaT:
        return None
    return str(v)


# ------------------------------------------------------------------------------------------ decisions on plumes
#
# A decision is recorded on the peak that some settings made (its key names the settings' hash), but it is about
# the plume: other settings fit the same plume a little elsewhere, with another nearest sounding. So a decision is
# found again on any peak of the same month and orbit that lies within the width of either fit (its ``sigma_km``,
# at least PLUME_MATCH_MIN_KM) of the judged peak, or that has the same nearest sounding. Each decision goes to the
# nearest such peak only, so two plumes side by side never share one decision.

#: Least distance [km] within which a decision carries over to a peak (about a frame and a half at 2.25 km).
PLUME_MATCH_MIN_KM = 3.0
#: What :func:`plume_decisions` gives each peak.
PLUME_COLUMNS = ["decision", "note", "analyst", "decided_at", "decision_id", "decided_rules_hash",
                 "decided_status", "decided_preset", "n_decisions", "verdict_changed"]


def _snapshot(history: pd.DataFrame) -> pd.DataFrame:
    """Position, width, verdict and preset of each decision's peak as it was judged (NaN/'' where not recorded)."""
    def field(text, name):
        try:
            return json.loads(text).get(name) if isinstance(text, str) and text else None
        except ValueError:
            return None

    peaks = history["peak_json"].tolist()
    settings = history["settings_json"].tolist()
    return pd.DataFrame({
        "latitude": pd.to_numeric([field(p, "latitude") for p in peaks], errors="coerce"),
        "longitude": pd.to_numeric([field(p, "longitude") for p in peaks], errors="coerce"),
        "sigma_km": pd.to_numeric([field(p, "sigma_km") for p in peaks], errors="coerce"),
        "status": [field(p, "status") or "" for p in peaks],
        "preset": [field(s, "preset") or "" for s in settings],
    }, index=history.index)


def _owners(history: pd.DataFrame, snap: pd.DataFrame, peaks: pd.DataFrame) -> np.ndarray:
    """For each decision (rows of :meth:`VettingStore.history`, their snapshots parsed by :func:`_snapshot`), the
    position in ``peaks`` of the peak it is about, or -1.

    ``peaks`` needs ``orbit``, ``sounding_id``, ``latitude``, ``longitude``, ``sigma_km`` (and ``month`` when the
    history spans several months). A decision goes to the nearest peak of its month and orbit that has its sounding
    (distance 0) or lies within ``max(sigma of either fit, PLUME_MATCH_MIN_KM)`` of the peak it judged.
    """
    out = np.full(len(history), -1, dtype=np.int64)
    if history.empty or peaks is None or len(peaks) == 0:
        return out
    p_orbit = peaks["orbit"].to_numpy(np.int64)
    p_sid = peaks["sounding_id"].to_numpy(np.int64)
    p_lat, p_lon = peaks["latitude"].to_numpy(float), peaks["longitude"].to_numpy(float)
    p_sigma = np.nan_to_num(peaks["sigma_km"].to_numpy(float), nan=0.0)
    p_month = peaks["month"].to_numpy(object) if "month" in peaks else None
    for i, (month, orbit, sid) in enumerate(zip(history["month"], history["orbit"], history["sounding_id"])):
        same = p_orbit == int(orbit)
        if p_month is not None:
            same &= p_month == month
        if not same.any():
            continue
        dist = haversine_km(snap["latitude"].iat[i], snap["longitude"].iat[i], p_lat, p_lon)
        reach = np.maximum(np.maximum(p_sigma, np.nan_to_num(snap["sigma_km"].iat[i], nan=0.0)), PLUME_MATCH_MIN_KM)
        dist = np.where(p_sid == int(sid), 0.0, np.where(np.isfinite(dist) & (dist <= reach), dist, np.inf))
        dist = np.where(same, dist, np.inf)
        best = int(np.argmin(dist))
        if np.isfinite(dist[best]):
            out[i] = best
    return out


def plume_decisions(history: pd.DataFrame, peaks: pd.DataFrame) -> pd.DataFrame:
    """The current decision on each peak's plume, whatever settings it was made under (index: ``peaks``' index).

    Columns :data:`PLUME_COLUMNS`: the latest decision on the plume (``decision`` is '' where none), the hash,
    verdict and preset of the settings it was made under, how many decisions the plume has, and
    ``verdict_changed``: the verdict then (accepted/rejected) differs from the peak's ``status`` now.
    """
    out = pd.DataFrame({"decision": "", "note": "", "analyst": "", "decided_at": "", "decision_id": -1,
                        "decided_rules_hash": "", "decided_status": "", "decided_preset": "", "n_decisions": 0,
                        "verdict_changed": False}, index=peaks.index if peaks is not None else None)
    if history.empty or out.empty:
        return out
    snap = _snapshot(history)
    owner = _owners(history, snap, peaks)
    for i in np.argsort(history["decision_id"].to_numpy(), kind="stable"):  # oldest first: the latest wins
        j = owner[i]
        if j < 0:
            continue
        d = history.iloc[i]
        out.iloc[j, out.columns.get_indexer(["decision", "note", "analyst", "decided_at", "decision_id",
                                             "decided_rules_hash", "decided_status", "decided_preset"])] = [
            d["decision"], d["note"], d["analyst"], d["decided_at"], int(d["decision_id"]), d["rules_hash"],
            snap["status"].iat[i], snap["preset"].iat[i]]
        out.iat[j, out.columns.get_loc("n_decisions")] += 1
    if "status" in peaks:
        out["verdict_changed"] = out["decided_status"].ne("") & out["decided_status"].ne(peaks["status"].astype(str))
    return out


def plume_history(history: pd.DataFrame, peaks: pd.DataFrame, position: int) -> pd.DataFrame:
    """Every decision on the plume of ``peaks``' row ``position`` (oldest first), with the verdict and preset of
    the settings each was made under (``decided_status``, ``decided_preset``)."""
    snap = _snapshot(history)
    mine = _owners(history, snap, peaks) == position
    return history[mine].assign(decided_status=snap["status"][mine], decided_preset=snap["preset"][mine])


def plumes_of(history: pd.DataFrame) -> np.ndarray:
    """A plume number for each decision: decisions of one month and orbit join the plume of an earlier decision
    whose peak lies within reach (as :func:`assign_decisions`), oldest first; the others start a new plume."""
    plume = np.full(len(history), -1, dtype=np.int64)
    if history.empty:
        return plume
    snap = _snapshot(history)
    order = np.argsort(history["decision_id"].to_numpy(), kind="stable")
    heads: list[int] = []  # per plume: the row of its latest decision
    for i in order:
        if heads:
            known = history.iloc[heads][["month", "orbit", "sounding_id"]].assign(
                latitude=snap["latitude"].iloc[heads].to_numpy(), longitude=snap["longitude"].iloc[heads].to_numpy(),
                sigma_km=snap["sigma_km"].iloc[heads].to_numpy())
            found = _owners(history.iloc[[i]], snap.iloc[[i]], known.reset_index(drop=True))[0]
        else:
            found = -1
        if found >= 0:
            plume[i] = found
            heads[found] = i
        else:
            plume[i] = len(heads)
            heads.append(i)
    return plume


def current_plume_decisions(history: pd.DataFrame) -> pd.DataFrame:
    """The latest decision on each plume (:func:`plumes_of`), with ``n_decisions`` (the plume's history length,
    under any settings) and ``plume``; the columns of :meth:`VettingStore.current_decisions`."""
    if history.empty:
        return history.assign(n_decisions=pd.Series(dtype="int64"), plume=pd.Series(dtype="int64"))
    plume = plumes_of(history)
    frame = history.assign(plume=plume)
    counts = frame.groupby("plume").size()
    latest = frame.sort_values("decision_id").groupby("plume").tail(1)
    latest = latest.assign(n_decisions=latest["plume"].map(counts).astype("int64"))
    return latest.sort_values(["month", "orbit", "sounding_id", "decision_id"]).reset_index(drop=True)
