"""`python -m core fetch`: without credentials or without network it fails fast, with one clear line, exit 2."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from core.fetch import (EARTHDATA_HOST, FetchError, check_reachable, earthdata_credentials, fetch_dir,
                        fetch_month, month_span)
from core.paths import REPO_ROOT


def _env(home, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EARTHDATA_") and k != "NETRC"}
    return {**env, "HOME": str(home), **extra}


def _fetch(home, cache, *args, **extra):
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "core", "fetch", "--cache", str(cache), *args],
                         capture_output=True, text=True, cwd=REPO_ROOT, env=_env(home, **extra), timeout=60)
    return run, time.perf_counter() - started


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_credentials_fails_fast_naming_what_is_missing(tmp_path):
    run, seconds = _fetch(tmp_path, tmp_path / "cache", "--month", "2019-08")
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no Earthdata credentials")
    assert "EARTHDATA_USERNAME" in lines[0] and "EARTHDATA_PASSWORD" in lines[0] and ".netrc" in lines[0]
    assert "Traceback" not in run.stderr and seconds < 10
    assert not fetch_dir("2019-08", tmp_path / "cache").exists()  # nothing downloaded, no folder made


def test_fake_credentials_without_network_fail_fast_with_a_network_message(tmp_path):
    run, seconds = _fetch(tmp_path, tmp_path / "cache", "--month", "2019-08", "--timeout", "3",
                          EARTHDATA_USERNAME="someone", EARTHDATA_PASSWORD="not-a-password")
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    # here the network is unreachable; were it reachable, the fake credentials would be refused instead
    assert "cannot reach the Earthdata login server" in run.stderr or "Earthdata login" in run.stderr
    assert seconds < 30


def test_a_bad_month_is_named(tmp_path):
    run, _ = _fetch(tmp_path, tmp_path / "cache", "--month", "2019-13")
    assert run.returncode == 2 and "--month must be YYYY-MM, got '2019-13'" in run.stderr


def test_credentials_come_from_the_environment_or_a_netrc_entry(tmp_path):
    netrc = tmp_path / "netrc"
    assert earthdata_credentials({"EARTHDATA_USERNAME": "u", "EARTHDATA_PASSWORD": "p"}, netrc) == "environment"
    with pytest.raises(FetchError, match="only EARTHDATA_USERNAME is set"):
        earthdata_credentials({"EARTHDATA_USERNAME": "u"}, netrc)
    netrc.write_text("machine example.org login a password b\n")
    with pytest.raises(FetchError, match=f"has no login and password for machine {EARTHDATA_HOST}"):
        earthdata_credentials({}, netrc)
    netrc.write_text(f"machine {EARTHDATA_HOST} login someone password secret\n")
    assert earthdata_credentials({}, netrc) == "netrc"
    assert earthdata_credentials({"NETRC": str(netrc)}) == "netrc"


def test_an_unreachable_login_server_is_reported_within_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("EARTHDATA_USERNAME", "someone")
    monkeypatch.setenv("EARTHDATA_PASSWORD", "not-a-password")
    started = time.perf_counter()
    with pytest.raises(FetchError, match="cannot reach the Earthdata login server .*connection refused"):
        fetch_month("2019-08", cache=tmp_path, timeout_s=2, login_url=f"https://127.0.0.1:{_closed_port()}/")
    assert time.perf_counter() - started < 10


def test_a_hanging_lookup_is_cut_at_the_deadline(monkeypatch):
    import requests

    def hangs(*args, **kwargs):  # getaddrinfo has no timeout; the abandoned probe ends quietly later
        time.sleep(30)
        raise requests.ConnectionError("the lookup never answered")

    monkeypatch.setattr(requests, "head", hangs)
    started = time.perf_counter()
    with pytest.raises(FetchError, match="no answer within 1 s"):
        check_reachable("https://example.invalid/", timeout_s=1)
    assert time.perf_counter() - started < 3


def test_month_span():
    assert month_span("2020-02") == ("2020-02-01", "2020-02-29")
    assert month_span("2019-08") == ("2019-08-01", "2019-08-31")
