"""Real data: a month of OCO-2 Lite files from NASA GES DISC, downloaded with ``earthaccess`` and ingested.

The collection is ``OCO2_L2_Lite_FP`` version ``11.1r`` (one NetCDF4 file per UTC day, 30-90 MB each). NASA
serves it to holders of a free Earthdata login (https://urs.earthdata.nasa.gov), read from the
``EARTHDATA_USERNAME`` / ``EARTHDATA_PASSWORD`` environment variables or from a ``~/.netrc`` entry::

    machine urs.earthdata.nasa.gov login <user> password <password>

:func:`fetch_month` fails fast, before any download, with one line naming what is missing: the credentials are
checked without touching the network, then the Earthdata login server must answer within a short timeout.
``earthaccess`` is imported only then (it is a large import, and the rest of :mod:`core` does not need it).
"""
from __future__ import annotations

import calendar
import netrc
import os
import re
import threading
from pathlib import Path
from typing import Callable

from .paths import cache_root

COLLECTION = "OCO2_L2_Lite_FP"
VERSION = "11.1r"
EARTHDATA_HOST = "urs.earthdata.nasa.gov"
#: Probed before anything else: any HTTP answer means the network is there.
LOGIN_URL = f"https://{EARTHDATA_HOST}/"
ENV_USER, ENV_PASSWORD = "EARTHDATA_USERNAME", "EARTHDATA_PASSWORD"


class FetchError(RuntimeError):
    """Fetching cannot go on; the message is one line for people (what is missing, what to do)."""


def fetch_dir(month: str, cache=None) -> Path:
    """Where a month's downloaded Lite files go: ``<cache>/raw/fetch-YYYY-MM/``."""
    return cache_root(cache) / "raw" / f"fetch-{month}"


def month_span(month: str) -> tuple[str, str]:
    """First and last day of a ``YYYY-MM`` month as ISO dates; :class:`FetchError` if it is not one."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month or ""):
        raise FetchError(f"--month must be YYYY-MM, got {month!r}")
    year, number = map(int, month.split("-"))
    return f"{month}-01", f"{month}-{calendar.monthrange(year, number)[1]:02d}"


def earthdata_credentials(environ=None, netrc_path=None) -> str:
    """Which Earthdata credentials are there, without any network: ``"environment"`` or ``"netrc"``.

    Parameters
    ----------
    environ : mapping, optional
        The environment to look in (default: ``os.environ``).
    netrc_path : str or os.PathLike, optional
        The netrc file (default: ``$NETRC``, else ``~/.netrc``).

    Raises
    ------
    FetchError
        Neither both environment variables nor a netrc entry for ``urs.earthdata.nasa.gov``.
    """
    environ = os.environ if environ is None else environ
    if environ.get(ENV_USER) and environ.get(ENV_PASSWORD):
        return "environment"
    path = Path(netrc_path or environ.get("NETRC") or Path.home() / ".netrc").expanduser()
    problem = "does not exist"
    if path.is_file():
        try:
            entry = netrc.netrc(str(path)).authenticators(EARTHDATA_HOST)
        except (netrc.NetrcParseError, OSError) as exc:
            problem = f"cannot be read ({exc})"
        else:
            if entry and entry[0] and entry[2]:
                return "netrc"
            problem = f"has no login and password for machine {EARTHDATA_HOST}"
    only = [name for name in (ENV_USER, ENV_PASSWORD) if environ.get(name)]
    env_note = f"only {only[0]} is set" if only else f"{ENV_USER} and {ENV_PASSWORD} are not set"
    raise FetchError(f"no Earthdata credentials: {env_note} and {path} {problem}; register at "
                     f"https://{EARTHDATA_HOST} and set both variables or add "
                     f"'machine {EARTHDATA_HOST} login USER password PASSWORD' to {path}")


def check_reachable(url: str = LOGIN_URL, timeout_s: float = 5.0) -> None:
    """Raise :class:`FetchError` unless ``url`` gives any HTTP answer within ``timeout_s`` seconds.

    The request runs in a daemon thread joined with a deadline, so a name lookup that hangs (``getaddrinfo``
    has no timeout) cannot hold the caller past ``timeout_s`` plus a second.
    """
    import requests

    outcome: dict = {}

    def probe():
        try:
            outcome["status"] = requests.head(url, timeout=(timeout_s, timeout_s), allow_redirects=False).status_code
        except requests.RequestException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=probe, name="earthdata-probe", daemon=True)
    thread.start()
    thread.join(timeout_s + 1.0)
    if "status" in outcome:
        return
    reason = _network_reason(outcome.get("error")) if "error" in outcome else f"no answer within {timeout_s:g} s"
    raise FetchError(f"cannot reach the Earthdata login server {url} ({reason}): fetch needs the internet "
                     f"(NASA GES DISC); bring Lite files by other means and run `python -m core ingest PATH`")


def fetch_month(month: str, cache=None, timeout_s: float = 5.0, login_url: str = LOGIN_URL,
                on_file: Callable | None = None, log: Callable[[str], None] | None = None, threads: int = 4):
    """Download a month's Lite files into ``<cache>/raw/fetch-YYYY-MM/`` and ingest them.

    Parameters
    ----------
    month : str
        ``YYYY-MM``.
    cache : str or os.PathLike, optional
        Cache root (default: ``$OCO2_CACHE``, else ``data_cache/``).
    timeout_s : float
        Seconds the Earthdata login server has to answer before the fetch gives up [s].
    login_url : str
        The Earthdata login server probed first (a parameter for tests).
    on_file : callable, optional
        ``on_file(i, n, report)`` after each ingested file (see :func:`core.ingest.ingest_paths`).
    log : callable, optional
        Receives one line per step (search, download).
    threads : int
        Parallel downloads.

    Returns
    -------
    core.ingest.IngestSummary
        What the ingest did with each downloaded file.

    Raises
    ------
    FetchError
        Bad month, no credentials, no network, login refused, nothing found, or a failed download.
    """
    log = log or (lambda line: None)
    first, last = month_span(month)
    strategy = earthdata_credentials()  # no network before this
    check_reachable(login_url, timeout_s)
    earthaccess = _import_earthaccess()
    _login(earthaccess, strategy)
    granules = _search(earthaccess, first, last)
    log(f"{len(granules)} {COLLECTION} v{VERSION} file(s) for {month}")
    folder = fetch_dir(month, cache)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        paths = earthaccess.download(granules, local_path=str(folder), threads=threads)
    except Exception as exc:  # earthaccess raises many kinds; one line for people
        raise FetchError(f"download into {folder} failed: {type(exc).__name__}: {exc}") from None
    files = [Path(p) for p in paths if p]
    if len(files) < len(granules):
        log(f"warning: {len(granules) - len(files)} of {len(granules)} file(s) did not download")
    if not files:
        raise FetchError(f"no file of {month} could be downloaded into {folder}")
    log(f"downloaded {len(files)} file(s) into {folder}")
    from .ingest import ingest_paths

    return ingest_paths(files, cache=cache, on_file=on_file)


def _import_earthaccess():
    try:
        import earthaccess
    except ImportError:
        raise FetchError("the earthaccess package is not installed: pip install -r requirements.txt") from None
    return earthaccess


def _login(earthaccess, strategy: str) -> None:
    try:
        auth = earthaccess.login(strategy=strategy)
    except Exception as exc:
        raise FetchError(f"Earthdata login ({strategy}) failed: {type(exc).__name__}: {exc}") from None
    if auth is None or not getattr(auth, "authenticated", False):
        raise FetchError(f"Earthdata login refused the credentials from the {strategy}: check the user name "
                         f"and password at https://{EARTHDATA_HOST}")


def _search(earthaccess, first: str, last: str) -> list:
    try:
        granules = earthaccess.search_data(short_name=COLLECTION, version=VERSION, temporal=(first, last))
    except Exception as exc:
        raise FetchError(f"search of {COLLECTION} v{VERSION} failed: {type(exc).__name__}: {exc}") from None
    if not granules:
        raise FetchError(f"no {COLLECTION} v{VERSION} file between {first} and {last} at NASA GES DISC")
    return list(granules)


def _network_reason(exc: BaseException) -> str:
    """A few words for a requests exception: name not resolved, connection refused, timed out, proxy..."""
    text = str(exc)
    for needle, words in (("NameResolution", "name not resolved"), ("Name or service not known", "name not resolved"),
                          ("Temporary failure in name resolution", "name not resolved"),
                          ("Connection refused", "connection refused"), ("ProxyError", "refused by the proxy"),
                          ("Network is unreachable", "network unreachable"), ("timed out", "timed out"),
                          ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted: a proxy in the way?")):
        if needle in text or needle in type(exc).__name__:
            return words
    return type(exc).__name__
