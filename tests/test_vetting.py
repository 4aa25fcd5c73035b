"""The decision store: append-only history, latest decision per peak, safe with many writers (threads, processes)."""
from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from core.vetting import (PeakKey, VettingStore, current_plume_decisions, plume_decisions, plume_history,
                          store_path)

ROOT = Path(__file__).resolve().parent.parent
KEY = PeakKey("2019-08", 27054, 2019080205181564, "63ac103768fa")


def test_history_is_kept_and_current_is_the_latest(tmp_path):
    store = VettingStore(tmp_path)
    assert store.history().empty and store.current_decisions().empty
    store.record(KEY, "unsure", "flank looks thin", "ana")
    store.record(KEY, "accept", "checked the wind", "ben", peak={"delta_ppm": 1.2, "snr": float("nan")},
                 settings={"rules.significance.min_snr": 4.0}, software_version="0.1.0")
    other = PeakKey("2019-08", 27054, 2019080205190011, "63ac103768fa")
    store.record(other, "reject", "", "ana")
    history = store.history(KEY)
    assert history["decision"].tolist() == ["unsure", "accept"]
    assert history["analyst"].tolist() == ["ana", "ben"]
    current = store.current_decisions()
    assert len(current) == 2
    row = current[current["sounding_id"] == KEY.sounding_id].iloc[0]
    assert row["decision"] == "accept" and row["n_decisions"] == 2
    assert '"snr": null' in row["peak_json"]  # NaN stored as JSON null
    when = dt.datetime.fromisoformat(row["decided_at"])
    assert when.utcoffset() == dt.timedelta(0)
    assert store.current(KEY)["note"] == "checked the wind"
    assert store_path(tmp_path) == tmp_path / "vetting" / "decisions.sqlite"


def test_rows_can_be_neither_updated_nor_deleted(tmp_path):
    store = VettingStore(tmp_path)
    store.record(KEY, "accept", "x", "ana")
    con = sqlite3.connect(store.path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchall()[0][0] == "wal"
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("UPDATE decisions SET decision = 'reject'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("DELETE FROM decisions")
    finally:
        con.close()
    assert store.count() == 1


@pytest.mark.parametrize("decision, analyst", [("maybe", "ana"), ("accept", "  ")])
def test_bad_decisions_are_refused(tmp_path, decision, analyst):
    with pytest.raises(ValueError):
        VettingStore(tmp_path).record(KEY, decision, "", analyst)


def test_text_is_bound_not_interpolated(tmp_path):
    store = VettingStore(tmp_path)
    nasty = "x'); DROP TABLE decisions; --"
    store.record(KEY, "reject", nasty, nasty)
    assert store.history()["note"].tolist() == [nasty]


def test_20_threads_x_100_decisions_all_stored(tmp_path):
    store = VettingStore(tmp_path)
    errors = []

    def writer(t):
        try:
            for i in range(100):
                key = PeakKey("2019-08", 30000 + t, 2019080200000000 + i, "h")
                store.record(key, ("accept", "reject", "unsure")[i % 3], f"t{t} i{i}", f"analyst-{t}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    history = store.history()
    assert len(history) == 2000
    assert history["decision_id"].is_unique
    assert set(history["note"]) == {f"t{t} i{i}" for t in range(20) for i in range(100)}
    assert len(store.current_decisions()) == 2000


WRITER = """
import sys
from core.vetting import PeakKey, VettingStore
store = VettingStore(sys.argv[1])
tag = sys.argv[2]
for i in range(150):
    store.record(PeakKey("2019-08", 1, i, "h"), "accept", f"{tag}-{i}", tag)
"""


def test_two_processes_write_at_once(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), tag], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for tag in ("p1", "p2")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    store = VettingStore(tmp_path)
    history = store.history()
    assert len(history) == 300
    assert sorted(history["analyst"].value_counts().tolist()) == [150, 150]
    current = store.current_decisions()
    assert len(current) == 150  # both processes vetted the same 150 peaks: one current decision each
    assert (current["n_decisions"] == 2).all()


KILLED_WRITER = """
import sys
from core.vetting import PeakKey, VettingStore
store = VettingStore(sys.argv[1])
for i in range(100_000):
    store.record(PeakKey("2019-08", 2, i, "h"), "reject", "x" * 2000, "killed")
    print(i, flush=True)  # printed only once the INSERT is committed
"""


def test_sigkill_mid_write_loses_at_most_the_decision_in_flight(tmp_path):
    import os
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    committed = -1
    deadline = time.monotonic() + 60
    try:
        while committed < 200 and time.monotonic() < deadline:  # let it write a while, then kill it mid-stream
            line = proc.stdout.readline()
            if not line:
                break
            committed = int(line.split()[0])
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert committed >= 200, proc.stderr.read()
    history = VettingStore(tmp_path).history()  # the database opens and reads after the kill
    stored = sorted(history["sounding_id"].tolist())
    assert stored == list(range(len(stored)))  # no gap, no torn row
    assert len(stored) >= committed + 1  # every decision reported committed is there: only the one in flight is lost


FIRST_WRITER = """
import sys
from core.vetting import PeakKey, VettingStore
VettingStore(sys.argv[1]).record(PeakKey("2019-08", 1, 1, "h"), "accept", "first", sys.argv[2])
"""


def test_processes_creating_the_store_at_once_all_write(tmp_path):
    # a fresh file switched to WAL by several processes at once: SQLite may answer "locked" without waiting
    for round_ in range(8):
        root = tmp_path / f"round{round_}"
        procs = [subprocess.Popen([sys.executable, "-c", FIRST_WRITER, str(root), tag], cwd=ROOT,
                                  stderr=subprocess.PIPE, text=True) for tag in ("a", "b", "c")]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        assert sorted(VettingStore(root).history()["analyst"]) == ["a", "b", "c"]


# --------------------------------------------------------------------------------- decisions belong to the plume

def _peak(sid, lat, lon, sigma, status="accepted", orbit=27054):
    return {"orbit": orbit, "sounding_id": sid, "latitude": lat, "longitude": lon, "sigma_km": sigma,
            "status": status}


def test_a_decision_follows_its_plume_under_other_settings(tmp_path):
    """Rejected under settings A; settings B fit the same plume 2 km further (another nearest sounding) and reject
    it: the decision is found, with A's hash and preset, and the verdict change is flagged; a plume 40 km away and
    the same place on another orbit get nothing."""
    store = VettingStore(tmp_path)
    judged = _peak(2019080205181564, 30.000, 110.000, 3.0)
    store.record(PeakKey("2019-08", 27054, judged["sounding_id"], "hashA"), "reject", "burst", "ana",
                 peak=judged, settings={"preset": "recommended"})
    now = pd.DataFrame([_peak(2019080205181601, 30.018, 110.000, 2.5, status="rejected"),  # 2.0 km north
                        _peak(2019080205190000, 30.360, 110.000, 2.5),  # 40 km north
                        _peak(2019080205181564, 30.000, 110.000, 2.5, orbit=27055)])
    found = plume_decisions(store.history(month="2019-08"), now)
    assert found["decision"].tolist() == ["reject", "", ""]
    first = found.iloc[0]
    assert (first["decided_rules_hash"], first["decided_preset"], first["note"]) == ("hashA", "recommended", "burst")
    assert first["decided_status"] == "accepted" and bool(first["verdict_changed"])  # accepted then, rejected now
    assert first["n_decisions"] == 1


def test_a_decision_goes_to_the_nearest_of_two_plumes_and_the_latest_wins(tmp_path):
    store = VettingStore(tmp_path)
    a = _peak(1, 30.000, 110.0, 4.0)
    store.record(PeakKey("2019-08", 27054, 1, "h1"), "unsure", "", "ana", peak=a)
    store.record(PeakKey("2019-08", 27054, 1, "h2"), "accept", "seen twice", "ben", peak=a)
    # two peaks within reach of the judged one (4 km): the nearer takes the decisions, the other stays unvetted
    now = pd.DataFrame([_peak(7, 30.027, 110.0, 4.0), _peak(8, 30.009, 110.0, 4.0)])  # 3.0 km and 1.0 km away
    found = plume_decisions(store.history(), now)
    assert found["decision"].tolist() == ["", "accept"]
    assert found["n_decisions"].tolist() == [0, 2] and not found["verdict_changed"].any()
    assert plume_history(store.history(), now, 1)["note"].tolist() == ["", "seen twice"]
    assert plume_history(store.history(), now, 0).empty


def test_one_current_decision_per_plume_whatever_the_settings(tmp_path):
    """Two decisions on one plume under two settings count once (no double vetting); a second plume counts apart."""
    store = VettingStore(tmp_path)
    store.record(PeakKey("2019-08", 27054, 1, "h1"), "unsure", "", "ana", peak=_peak(1, 30.0, 110.0, 3.0))
    store.record(PeakKey("2019-08", 27054, 2, "h2"), "accept", "", "ana", peak=_peak(2, 30.01, 110.0, 3.0))
    store.record(PeakKey("2019-08", 27054, 3, "h2"), "reject", "", "ana", peak=_peak(3, 31.0, 110.0, 3.0))
    store.record(PeakKey("2019-08", 27054, 4, "h2"), "reject", "", "ana")  # no snapshot: its own sounding only
    current = current_plume_decisions(store.history())
    assert current["decision"].tolist() == ["accept", "reject", "reject"]
    assert current["n_decisions"].tolist() == [2, 1, 1]
    assert current_plume_decisions(VettingStore(tmp_path / "empty").history()).empty
