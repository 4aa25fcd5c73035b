"""`python -m core fetch`: without credentials or without network it fails fast, with one clear line, exit 2.

No test contacts a real server: the command runs behind a proxy that is a socket this test holds on loopback
(``HTTPS_PROXY``), so any request it makes arrives there, and the tests see whether one was made. "Fast" is
checked by what happened (no request before the credentials are checked; the probe given up while the lookup
still hangs), never by a stopwatch (timings belong in ``bench/``).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from core.fetch import (EARTHDATA_HOST, FetchError, check_reachable, earthdata_credentials, fetch_dir,
                        fetch_month, month_span)
from core.paths import REPO_ROOT


class SilentProxy:
    """A TCP socket listening on loopback that never answers: the kernel completes the connections it is sent
    (its backlog), so :meth:`connections` tells how many requests were made, and a client waits for an answer
    that never comes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def connections(self) -> int:
        self.sock.setblocking(False)
        n = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return n
            conn.close()
            n += 1

    def close(self):
        self.sock.close()


@pytest.fixture
def proxy():
    p = SilentProxy()
    yield p
    p.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home, proxy_url: str, **extra):
    """This environment without Earthdata credentials or proxy settings, every request sent to ``proxy_url``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("EARTHDATA_") and k != "NETRC" and not k.lower().endswith("_proxy")}
    return {**env, "HOME": str(home), "HTTPS_PROXY": proxy_url, "HTTP_PROXY": proxy_url, "ALL_PROXY": proxy_url,
            **extra}


def _fetch(home, cache, *args, proxy_url: str, **extra):
    return subprocess.run([sys.executable, "-m", "core", "fetch", "--cache", str(cache), *args],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=_env(home, proxy_url, **extra),
                          timeout=60)


def test_no_credentials_fails_before_any_request_naming_what_is_missing(tmp_path, proxy):
    run = _fetch(tmp_path, tmp_path / "cache", "--month", "2019-08", proxy_url=proxy.url)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no Earthdata credentials")
    assert "EARTHDATA_USERNAME" in lines[0] and "EARTHDATA_PASSWORD" in lines[0] and ".netrc" in lines[0]
    assert "Traceback" not in run.stderr
    assert proxy.connections() == 0  # no request: the credentials are checked first
    assert not fetch_dir("2019-08", tmp_path / "cache").exists()  # nothing downloaded, no folder made


def test_fake_credentials_without_network_fail_with_a_network_message(tmp_path):
    """No network: the proxy every request goes through refuses connections (a closed loopback port)."""
    run = _fetch(tmp_path, tmp_path / "cache", "--month", "2019-08", "--timeout", "3",
                 proxy_url=f"http://127.0.0.1:{_closed_port()}", EARTHDATA_USERNAME="someone",
                 EARTHDATA_PASSWORD="not-a-password")
    assert run.returncode == 2, run.stderr
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach the Earthdata login server https://urs.earthdata.nasa.gov/ ("
                           "connection refused): fetch needs the internet"), line
    assert "python -m core ingest PATH" in line
    assert not fetch_dir("2019-08", tmp_path / "cache").exists()


def test_a_login_server_that_never_answers_is_given_up_at_the_timeout(tmp_path, proxy):
    run = _fetch(tmp_path, tmp_path / "cache", "--month", "2019-08", "--timeout", "1", proxy_url=proxy.url,
                 EARTHDATA_USERNAME="someone", EARTHDATA_PASSWORD="not-a-password")
    assert run.returncode == 2, run.stderr
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach the Earthdata login server https://urs.earthdata.nasa.gov/ ("), line
    assert "(timed out)" in line or "(no answer within 1 s)" in line, line
    assert proxy.connections() == 1  # one probe, to the stand-in: nothing else was tried
    assert not fetch_dir("2019-08", tmp_path / "cache").exists()


def test_a_bad_month_is_named(tmp_path, proxy):
    run = _fetch(tmp_path, tmp_path / "cache", "--month", "2019-13", proxy_url=proxy.url)
    assert run.returncode == 2 and "--month must be YYYY-MM, got '2019-13'" in run.stderr
    assert proxy.connections() == 0


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


def test_an_unreachable_login_server_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("EARTHDATA_USERNAME", "someone")
    monkeypatch.setenv("EARTHDATA_PASSWORD", "not-a-password")
    with pytest.raises(FetchError, match="cannot reach the Earthdata login server .*connection refused"):
        fetch_month("2019-08", cache=tmp_path, timeout_s=2, login_url=f"https://127.0.0.1:{_closed_port()}/")
    assert not fetch_dir("2019-08", tmp_path).exists()


def test_a_hanging_lookup_is_given_up_while_it_still_hangs(monkeypatch):
    """``getaddrinfo`` has no timeout: the probe runs in a thread, abandoned at the deadline. The lookup here
    hangs until the test releases it, so the error must come while it still hangs."""
    import requests

    release, entered = threading.Event(), threading.Event()

    def hangs(*args, **kwargs):
        entered.set()
        release.wait(60)
        raise requests.ConnectionError("the lookup never answered")

    monkeypatch.setattr(requests, "head", hangs)
    try:
        with pytest.raises(FetchError, match=r"cannot reach .*example\.invalid.* \(no answer within 1 s\)"):
            check_reachable("https://example.invalid/", timeout_s=1)
        assert entered.is_set() and not release.is_set()  # given up while the lookup was still hanging
        probes = [t for t in threading.enumerate() if t.name == "earthdata-probe"]
        assert probes and all(t.daemon for t in probes)  # abandoned alive, and cannot hold the interpreter at exit
    finally:
        release.set()


def test_month_span():
    assert month_span("2020-02") == ("2020-02-01", "2020-02-29")
    assert month_span("2019-08") == ("2019-08-01", "2019-08-31")
