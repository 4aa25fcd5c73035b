"""Detection over months: orbits -> candidates and events, attributed, stored under the cache.

Results live next to the soundings, keyed by month and by the settings' hash, so several rule sets can be
compared and a CSV always says which settings produced it::

    detections/month=2019-08/<rules_hash>/candidates.parquet   every candidate of every orbit
    detections/month=2019-08/<rules_hash>/settings.toml        the settings that produced them

Events (one per plume) are the candidates with ``is_event``; accepted events are the peaks.

Two ways to run, one result
---------------------------
* **One process** (``workers=1``, no scheduler): the month is read and its orbits detected one after the other,
  in this process. No Dask.
* **Dask distributed** (``workers > 1``: a local cluster of that many single-threaded worker processes on
  loopback; or ``scheduler="tcp://host:port"``: an existing cluster). The month is cut into :class:`OrbitTask`
  s by :func:`plan_month`: one task per day file, naming the day file(s) that hold its orbits' rows (an orbit
  that crosses midnight UTC has rows in two day files) and the orbit ids. Each worker reads those rows itself
  (:func:`detect_task`) from the soundings folder the workers share, so the client never ships soundings: a
  task carries paths, orbit ids and the settings (about 2 kB pickled) and returns each orbit's candidates
  (tens of kB). The client concatenates them in orbit order: the table is the one-process table, row for row
  and value for value.

Every process detects with one BLAS thread (:func:`one_blas_thread`): the sums inside the fits then add up in
the same order in this process and on every worker, so the numbers agree to the last bit (with the machine's
default of one BLAS thread per core, 2 of the 49,700 candidates of the month OSSE moved in the 9th digit).

The soundings folder is any path or `fsspec <https://filesystem-spec.readthedocs.io>`_ URL the workers can read:
a local or network file system here, an object store on a real cluster (``s3://bucket/oco2/soundings`` with
``s3fs`` installed on the client and the workers, or ``gs://...`` with ``gcsfs``). The tasks are the same; only
the path changes (``soundings_url``, ``python -m core detect --soundings-url URL``). The detections are
written by the client, under its own cache.
"""
from __future__ import annotations

import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .attribution import SOURCE_COLUMNS, attribute
from .cache import SoundingsCache, write_parquet_atomic
from .detect import detect_orbit
from .false_alarms import calibrate_month
from .settings import DetectionSettings

#: The peaks contract: the first columns of every exported CSV, in this order.
PEAK_COLUMNS = ["sounding_id", "orbit", "time", "latitude", "longitude", "status", "rejected_by",
                "amplitude_ppm_km", "amplitude_stderr", "sigma_km", "sigma_stderr", "delta_ppm", "slope_ppm_km",
                "slope_stderr", "intercept_ppm", "intercept_stderr", "r2", "snr", "n_soundings", "n_windows",
                "wind_u_ms", "wind_v_ms", "wind_perp_ms", "track_bearing_deg", "surface_pressure_hpa",
                "tcwv_kg_m2", "emission_gCO2_s", "emission_gCO2_s_stderr", "emission_ktCO2_h",
                "emission_MtCO2_yr", "emission_MtCO2_yr_stderr", "source_id", "source_name", "source_sector",
                "source_country", "source_distance_km", "source_upwind_km", "source_angle_deg",
                "source_emission_tCO2_yr", "n_sources_upwind", "emission_ratio", "emission_ratio_stderr",
                "carried_tCO2_yr", "n_sources_carried", "emission_ratio_carried", "emission_ratio_carried_stderr",
                "rules_hash"]

SOUNDING_COLUMNS = ["sounding_id", "time", "orbit", "footprint", "latitude", "longitude", "xco2",
                    "xco2_uncertainty", "windspeed_u", "windspeed_v", "surface_pressure", "surface_pressure_apriori",
                    "tcwv", "land_water_indicator"]

#: Seconds to wait for a Dask scheduler to answer, and for it to have at least one worker.
CONNECT_TIMEOUT_S = 10.0
#: Dask settings of a local cluster's workers: a worker runs its task in a thread beside its event loop, and the
#: loop's statistical profiler (every 10 ms), 20 ms ticks and 100 ms memory checks each take the GIL from the
#: detection; spilling is off (a task's result is about a megabyte); and Dask's ``MALLOC_TRIM_THRESHOLD_`` for its
#: workers is dropped: setting it turns off glibc's adaptive mmap threshold, so every large numpy temporary of the
#: detection was a fresh mmap. Detection of the month benchmark with 2 workers: 23.7 s with Dask's defaults, 21.0 s
#: without profiler, ticks, checks and spilling, 17.2 s also without the variable (workers' compute 33.6 -> 31.5 s).
LOCAL_WORKER_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
                       "distributed.worker.memory.monitor-interval": "1s", "distributed.worker.memory.target": False,
                       "distributed.worker.memory.spill": False,
                       "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}

#: ``on_orbit(month, done, total, orbit)``: ``done`` of the month's ``total`` orbits are detected.
MonthProgress = Callable[[str, int, int, int], None]


class ClusterError(RuntimeError):
    """The Dask cluster could not be started or reached (the message names the address and the reason)."""


class DetectTaskError(RuntimeError):
    """A detection task failed on a worker (the message names the month, the day files and the reason)."""


# -- results under the cache -------------------------------------------------------------------------------------
def detections_dir(cache: SoundingsCache, month: str, settings: DetectionSettings) -> Path:
    return cache.root / "detections" / f"month={month}" / settings.hash


def store_detections(cache, month: str, settings: DetectionSettings, candidates: pd.DataFrame) -> Path:
    """Write the candidates table and the settings TOML under ``detections/`` (atomically)."""
    cache = _as_cache(cache)
    folder = detections_dir(cache, month, settings)
    folder.mkdir(parents=True, exist_ok=True)
    # one chunk per column: a month concatenated from its orbits would otherwise write one row group per orbit
    # (438 on bench_detect's month: 2.2 s instead of 0.1 s)
    table = pa.Table.from_pandas(candidates, preserve_index=False).combine_chunks()
    write_parquet_atomic(folder / "candidates.parquet", table.to_batches(), table.schema,
                         {b"rules_hash": settings.hash.encode()})
    tmp = folder / ".settings.toml.tmp"
    tmp.write_text(settings.to_toml(), encoding="utf-8")
    tmp.replace(folder / "settings.toml")
    return folder


def load_detections(cache, month: str, settings: DetectionSettings) -> pd.DataFrame | None:
    """The stored candidates of a month for these settings, fresh or not (see :func:`stored_detections`), or
    None if never detected."""
    stored = stored_detections(cache, month, settings)
    return pd.read_parquet(stored.path) if stored else None


@dataclass(frozen=True)
class StoredDetections:
    """The stored detections of a month for one settings hash, and the month's data written after them."""

    path: Path  #: ``candidates.parquet``
    mtime_ns: int  #: when it was stored
    changed_after: tuple[str, ...]  #: day files written after it (or the month's folder: a day removed)

    @property
    def fresh(self) -> bool:
        return not self.changed_after

    def stale_reason(self, month: str) -> str:
        """One line for people: which data changed after the detections were stored, and what to run."""
        stored = pd.Timestamp(self.mtime_ns, unit="ns", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
        shown = ", ".join(self.changed_after[:3]) + (f" and {len(self.changed_after) - 3} more"
                                                     if len(self.changed_after) > 3 else "")
        return (f"the stored detections of {month} ({self.path}, stored {stored}) are older than the month's data: "
                f"{shown} changed after them; re-run `python -m core detect --month {month}`")


def stored_detections(cache, month: str, settings: DetectionSettings) -> StoredDetections | None:
    """The stored detections of a month for these settings (None if never stored), with the data changed since.

    The freshness check of every reader of stored detections (the workbench and ``python -m core export``): they
    are fresh when they were written strictly after every day file of the month and after the month's folder
    last changed (a day file added, replaced or removed). Equal times count as stale (coarse file-system clocks).
    """
    cache = _as_cache(cache)
    path = detections_dir(cache, month, settings) / "candidates.parquet"
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    changed = [f.name for f in cache.day_files(month) if f.stat().st_mtime_ns >= mtime]
    folder = cache.soundings_dir / f"month={month}"
    if not changed and folder.is_dir() and folder.stat().st_mtime_ns >= mtime:
        changed = [f"the folder {folder.name} (a day file removed)"]
    return StoredDetections(path, mtime, tuple(changed))


def peaks_table(candidates: pd.DataFrame, include_rejected: bool = False) -> pd.DataFrame:
    """One row per plume event (accepted only, unless ``include_rejected``), contract columns first."""
    if candidates.empty:
        return pd.DataFrame(columns=PEAK_COLUMNS)
    if include_rejected:
        rows = candidates[candidates["is_event"] | candidates["fixed_reason"].ne("")]
    else:
        rows = candidates[candidates["is_event"] & candidates["status"].eq("accepted")]
    rows = rows.rename(columns={"n_window": "n_soundings"})
    for column in PEAK_COLUMNS:
        if column not in rows:
            rows[column] = np.nan
    extras = [c for c in rows.columns if c not in PEAK_COLUMNS]
    return rows[PEAK_COLUMNS + extras].sort_values(["orbit", "center_km"]).reset_index(drop=True)


# -- entry points --------------------------------------------------------------------------------------------------
def detect_month(month: str, settings: DetectionSettings | None = None, cache=None,
                 on_orbit: Callable[[int, int, int], None] | None = None, attribute_events: bool = True,
                 sources: pd.DataFrame | None = None, workers: int = 1, scheduler: str | None = None,
                 client=None, soundings_url: str | None = None) -> pd.DataFrame:
    """Detect every orbit of a month; returns the candidates table (events flagged ``is_event``).

    Parameters
    ----------
    month : str
        ``YYYY-MM``.
    settings : DetectionSettings, optional
        Fit constraints and rules (default: the recommended preset).
    cache : str, os.PathLike or SoundingsCache, optional
        Cache root (default: ``$OCO2_CACHE``, else ``data_cache/``).
    on_orbit : callable, optional
        ``on_orbit(done, total, orbit)`` as orbits finish (with Dask: once per finished task).
    attribute_events : bool
        Attribute the accepted events to inventory sources (in this process).
    sources : pandas.DataFrame, optional
        Inventory sources to attribute to (default: the cache's or the embedded inventory).
    workers : int
        1: this process only, no Dask. N > 1: a local Dask cluster of N single-threaded worker processes.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:port``); its workers must read ``soundings_url``.
    client : distributed.Client, optional
        An already connected client (overrides ``workers`` and ``scheduler``).
    soundings_url : str, optional
        The soundings folder as the workers see it (path or fsspec URL; default: ``<cache>/soundings``).

    Returns
    -------
    pandas.DataFrame
        Every candidate of every orbit, in orbit order; identical whichever way it ran.
    """
    settings = settings or DetectionSettings()
    cache = _as_cache(cache)
    if not uses_dask(workers, scheduler, client):
        soundings = cache.read_month(month, columns=SOUNDING_COLUMNS)
        return detect_soundings(soundings, settings, on_orbit=on_orbit, attribute_events=attribute_events,
                                sources=sources, cache=cache.root)
    progress = (lambda _month, done, total, orbit: on_orbit(done, total, orbit)) if on_orbit else None
    with dask_client(workers, scheduler, client) as dask:
        (_, parts), = _detect_months_dask(dask, [month], settings, cache, soundings_url, progress)
    return assemble_month(parts, settings, attribute_events, sources, cache.root)


def detect_soundings(soundings: pd.DataFrame, settings: DetectionSettings, on_orbit=None,
                     attribute_events: bool = True, sources: pd.DataFrame | None = None,
                     cache=None, workers: int = 1) -> pd.DataFrame:
    """Detect every orbit in a soundings table held in memory (see :func:`detect_month`).

    ``workers > 1`` sends the orbits' rows to a local Dask cluster of that many processes (the table is in
    memory, so it has to travel; a month in the cache is better run with :func:`detect_month`, whose workers
    read their own rows). The result is the same table, in orbit order.
    """
    orbits = [g for _, g in soundings.groupby("orbit", sort=True)]
    parts = []
    with one_blas_thread():
        for i, part in enumerate(_map_orbits(orbits, settings, workers), 1):
            parts.append(part)
            if on_orbit:
                on_orbit(i, len(orbits), int(orbits[i - 1]["orbit"].iloc[0]))
    return assemble_month(parts, settings, attribute_events, sources, cache)


def assemble_month(parts: Iterable[pd.DataFrame], settings: DetectionSettings, attribute_events: bool = True,
                   sources: pd.DataFrame | None = None, cache=None) -> pd.DataFrame:
    """The month's candidates table from its orbits' judged tables, given in orbit order: concatenated, judged at
    the month's own threshold (:func:`core.false_alarms.calibrate_month`) and, unless ``attribute_events`` is
    false, given the best upwind source of each accepted event (:func:`with_sources`).

    Every way of detecting a month ends here: one process, a local or remote Dask cluster, and the workbench's
    orbit by orbit cache (``workbench/pipeline.py``), so the same orbits give the same month table.
    """
    parts = [part for part in parts if not part.empty]
    candidates = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    candidates = calibrate_month(candidates, settings)
    if not attribute_events:
        return candidates
    return with_sources(candidates, settings, sources=sources, cache=cache)


def run_months(months: list[str], settings: DetectionSettings, cache=None, on_orbit: MonthProgress | None = None,
               workers: int = 1, scheduler: str | None = None, client=None,
               soundings_url: str | None = None) -> Iterator[tuple[str, pd.DataFrame, float]]:
    """Detect, attribute and store several months; yields ``(month, candidates, seconds)`` as each is stored.

    With Dask every month's tasks are submitted at once (earlier months first), so the workers never wait
    while the client attributes and stores a finished month. ``seconds`` counts from the start of the run.
    Other parameters as in :func:`detect_month`; ``on_orbit(month, done, total, orbit)``.
    """
    cache = _as_cache(cache)
    start = time.perf_counter()
    if not uses_dask(workers, scheduler, client):
        for month in months:
            progress = (lambda done, total, orbit, m=month: on_orbit(m, done, total, orbit)) if on_orbit else None
            candidates = detect_month(month, settings, cache=cache, on_orbit=progress)
            store_detections(cache, month, settings, candidates)
            yield month, candidates, time.perf_counter() - start
        return
    with dask_client(workers, scheduler, client) as dask:
        for month, parts in _detect_months_dask(dask, months, settings, cache, soundings_url, on_orbit):
            candidates = assemble_month(parts, settings, cache=cache.root)
            store_detections(cache, month, settings, candidates)
            yield month, candidates, time.perf_counter() - start


# -- the Dask path -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrbitTask:
    """One unit of work for a Dask worker: detect these orbits, reading their rows from these day files.

    Attributes
    ----------
    month : str
        ``YYYY-MM``.
    label : str
        The day file the task is named after (``2019-08-03``).
    files : tuple of str
        Day files (paths or fsspec URLs) holding rows of the orbits, in day order.
    orbits : tuple of int
        Orbit numbers, ascending.
    n_soundings : int
        Good soundings of those orbits (the task's size).
    """

    month: str
    label: str
    files: tuple[str, ...]
    orbits: tuple[int, ...]
    n_soundings: int


def uses_dask(workers: int = 1, scheduler: str | None = None, client=None) -> bool:
    """Whether these options run on Dask (``workers > 1``, a scheduler address or a client) or in-process."""
    return client is not None or bool(scheduler) or workers > 1


@contextlib.contextmanager
def dask_client(workers: int = 1, scheduler: str | None = None, client=None,
                timeout_s: float = CONNECT_TIMEOUT_S):
    """A connected ``distributed.Client``: the one given, one on ``scheduler``, or a new local cluster.

    Parameters
    ----------
    workers : int
        Worker processes of a new local cluster (one thread each, loopback only, no dashboard).
    scheduler : str, optional
        Address of an existing scheduler; it must have at least one worker within ``timeout_s``.
    client : distributed.Client, optional
        Used as it is, and left open.
    timeout_s : float
        Seconds to wait for the scheduler and its first worker [s].

    Raises
    ------
    ClusterError
        The scheduler cannot be reached, has no worker, or the local cluster cannot start.
    """
    if client is not None:
        yield client
        return
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            connected = Client(scheduler, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} within {timeout_s:g} s: "
                               f"{_reason(exc)}") from None
        with connected:
            try:
                connected.wait_for_workers(1, timeout=timeout_s)
            except (OSError, TimeoutError) as exc:
                raise ClusterError(f"the Dask scheduler at {scheduler} has no worker after {timeout_s:g} s "
                                   f"(start some with `dask worker {scheduler}`)") from exc
            yield connected
        return
    if workers < 1:
        raise ClusterError(f"workers must be at least 1, got {workers}")
    try:
        # no dashboard; the scheduler's small HTTP server (health, metrics) on a free loopback port
        with dask.config.set(LOCAL_WORKER_CONFIG):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                   silence_logs=logging.ERROR)
    except (OSError, TimeoutError, RuntimeError) as exc:
        raise ClusterError(f"cannot start a local Dask cluster of {workers} workers: {_reason(exc)}") from None
    with cluster, Client(cluster, set_as_default=False) as local:
        yield local


def describe_client(client) -> str:
    """One line naming the cluster: scheduler address and workers (for the command line's stderr)."""
    threads = client.nthreads()  # worker address -> threads
    return (f"Dask scheduler {client.scheduler.address}: {len(threads)} worker(s), "
            f"{sum(threads.values())} thread(s)")


def month_day_files(soundings_url: str, month: str) -> list[str]:
    """The day files of a month under a soundings folder (path or fsspec URL), in day order.

    Hidden files (temporaries of a write in progress) are left out, as :meth:`SoundingsCache.day_files` does.
    """
    if not _is_url(soundings_url):
        folder = Path(soundings_url) / f"month={month}"
        return [str(p) for p in sorted(folder.glob("*.parquet")) if not p.name.startswith(".")]
    import fsspec

    fs, root = fsspec.core.url_to_fs(soundings_url)
    found = fs.glob(f"{root.rstrip('/')}/month={month}/*.parquet")
    return [fs.unstrip_protocol(p) for p in sorted(found) if not p.rsplit("/", 1)[-1].startswith(".")]


def plan_month(month: str, soundings_url: str) -> list[OrbitTask]:
    """Cut a month into tasks: one per day file, holding the orbits that start in that file.

    Only the ``orbit`` column of each day file is read here (about 4 bytes a sounding).

    Parameters
    ----------
    month : str
        ``YYYY-MM``.
    soundings_url : str
        The soundings folder (path or fsspec URL) holding ``month=YYYY-MM/*.parquet``.

    Returns
    -------
    list of OrbitTask
        In day order; empty when the month has no day file.
    """
    files_of: dict[int, list[str]] = {}
    counts: dict[int, int] = {}
    for path in month_day_files(soundings_url, month):
        orbit_counts = _read_table(path, ["orbit"]).column("orbit").value_counts()
        for item in orbit_counts.to_pylist():
            orbit = int(item["values"])
            files_of.setdefault(orbit, []).append(path)
            counts[orbit] = counts.get(orbit, 0) + int(item["counts"])
    by_first_file: dict[str, list[int]] = {}
    for orbit in sorted(files_of):
        by_first_file.setdefault(files_of[orbit][0], []).append(orbit)
    tasks = []
    for path, orbits in by_first_file.items():
        files = sorted({f for orbit in orbits for f in files_of[orbit]})
        tasks.append(OrbitTask(month, _day_label(path), tuple(files), tuple(orbits),
                               sum(counts[o] for o in orbits)))
    return sorted(tasks, key=lambda t: t.files[0])


def read_task_soundings(task: OrbitTask, columns: list[str] | None = None) -> pd.DataFrame:
    """The rows of a task's orbits, read from its day files (in file order, as :meth:`read_month` has them)."""
    columns = columns or SOUNDING_COLUMNS
    wanted = pa.array(task.orbits, pa.int32())
    tables = []
    for path in task.files:
        table = _read_table(path, columns)
        tables.append(table.filter(pc.is_in(table.column("orbit"), value_set=wanted)))
    return pa.concat_tables(tables).to_pandas()


def detect_task(task: OrbitTask, settings: DetectionSettings) -> list[tuple[int, pd.DataFrame]]:
    """Run on a worker: read the task's rows and detect each orbit; ``[(orbit, candidates), ...]``."""
    soundings = read_task_soundings(task)
    with one_blas_thread():
        return [(int(orbit), detect_orbit(rows, settings, calibrate=False))
                for orbit, rows in soundings.groupby("orbit", sort=True)]


def detect_orbit_one_thread(soundings: pd.DataFrame, settings: DetectionSettings) -> pd.DataFrame:
    """:func:`core.detect.detect_orbit` with one BLAS thread (what a worker runs for an in-memory orbit)."""
    with one_blas_thread():
        return detect_orbit(soundings, settings, calibrate=False)


def one_blas_thread():
    """A context limiting BLAS (OpenBLAS, MKL, ...) to one thread in this process, restored on exit.

    Detection runs many small fits, so it loses nothing by it; what it gains is the same floating-point sums,
    hence the same numbers, in every process whatever its number of cores (see the module docstring).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _detect_months_dask(client, months: list[str], settings: DetectionSettings, cache: SoundingsCache,
                        soundings_url: str | None, on_orbit: MonthProgress | None):
    """Submit every task of every month; yield ``(month, parts)`` as months complete: the orbits' judged tables
    in orbit order, for :func:`assemble_month`."""
    from distributed import as_completed

    url = soundings_url or str(cache.soundings_dir)
    plans = {month: plan_month(month, url) for month in months}
    remaining = {month: len(tasks) for month, tasks in plans.items()}
    totals = {month: sum(len(t.orbits) for t in tasks) for month, tasks in plans.items()}
    done = dict.fromkeys(months, 0)
    parts: dict[str, dict[int, pd.DataFrame]] = {month: {} for month in months}
    for month in months:
        if not plans[month]:
            yield month, []
    futures = {}
    run_id = uuid.uuid4().hex[:8]
    for rank, month in enumerate(months):  # earlier months first; within a month the largest tasks first
        for task in sorted(plans[month], key=lambda t: -t.n_soundings):
            future = client.submit(detect_task, task, settings, key=f"detect-{task.label}-{run_id}",
                                   priority=-rank, pure=False)
            futures[future] = task
    pending = as_completed(list(futures), loop=client.loop)
    try:
        for future in pending:
            task = futures.pop(future)
            for orbit, candidates in _task_result(future, task, url):
                parts[task.month][orbit] = candidates
            future.release()
            done[task.month] += len(task.orbits)
            remaining[task.month] -= 1
            if on_orbit:
                on_orbit(task.month, done[task.month], totals[task.month], task.orbits[-1])
            if remaining[task.month] == 0:
                by_orbit = parts.pop(task.month)
                yield task.month, [by_orbit[orbit] for orbit in sorted(by_orbit)]
    finally:
        if futures:
            client.cancel(list(futures))


def _task_result(future, task: OrbitTask, url: str) -> list[tuple[int, pd.DataFrame]]:
    try:
        return future.result()
    except Exception as exc:  # a worker's exception, re-raised here: name the task and the reason
        hint = (f"; the workers must read the soundings at {url} (see --soundings-url)"
                if isinstance(exc, (FileNotFoundError, PermissionError)) else "")
        raise DetectTaskError(f"detection of {task.month} day {task.label} (orbits {task.orbits[0]}-"
                              f"{task.orbits[-1]}, {', '.join(task.files)}) failed on a worker: "
                              f"{_reason(exc)}{hint}") from exc


def _map_orbits(orbits: list[pd.DataFrame], settings: DetectionSettings, workers: int):
    """``detect_orbit`` over in-memory orbits, in order: in this process, or on a local Dask cluster."""
    if workers <= 1 or len(orbits) < 2:
        yield from (detect_orbit(orbit, settings, calibrate=False) for orbit in orbits)
        return
    with dask_client(workers) as client:
        # largest orbits first keeps every worker busy to the end; results come back in orbit order
        order = sorted(range(len(orbits)), key=lambda i: -len(orbits[i]))
        futures = {i: client.submit(detect_orbit_one_thread, orbits[i], settings, priority=len(orbits[i]),
                                    pure=False)
                   for i in order}
        for i in range(len(orbits)):
            yield futures.pop(i).result()


# -- helpers -------------------------------------------------------------------------------------------------------
def with_sources(candidates: pd.DataFrame, settings: DetectionSettings, sources: pd.DataFrame | None = None,
                 cache=None) -> pd.DataFrame:
    """The candidates with the best upwind source of each accepted event (``SOURCE_COLUMNS``; one inventory query
    for the whole table, so attribute a month at once rather than orbit by orbit)."""
    if candidates.empty:
        return candidates
    accepted = candidates.index[candidates["is_event"] & candidates["status"].eq("accepted")]
    attributed = attribute(candidates.loc[accepted], settings, sources=sources, cache=cache)
    for column in SOURCE_COLUMNS:
        candidates[column] = attributed[column].reindex(candidates.index)
    return candidates


def _as_cache(cache) -> SoundingsCache:
    return cache if isinstance(cache, SoundingsCache) else SoundingsCache(cache)


def _is_url(path: str) -> bool:
    return "://" in str(path)


def _read_table(path: str, columns: list[str]) -> pa.Table:
    """Columns of one Parquet file, local or behind an fsspec URL."""
    if not _is_url(path):
        return pq.read_table(path, columns=columns)
    import fsspec

    fs, inner = fsspec.core.url_to_fs(path)
    return pq.read_table(inner, columns=columns, filesystem=fs)


def _day_label(path: str) -> str:
    return str(path).rsplit("/", 1)[-1].removesuffix(".parquet")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
