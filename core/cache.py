"""The soundings cache: hive-partitioned Parquet, one file per UTC day, written atomically.

Layout under the cache root (``data_cache/`` unless ``--cache`` or ``OCO2_CACHE`` says otherwise; see
:func:`core.paths.cache_root`)::

    soundings/month=2019-08/2019-08-01.parquet    good soundings of one day, sorted by sounding_id
    raw/                                          downloaded or simulated .nc4 files (optional)
    inventory/sources.parquet                     optional override of the embedded inventory

Design choices:

* **One Parquet file per day.** A Lite file covers one UTC day, so "re-ingesting a file replaces its rows" and
  "a re-processed file of the same day replaces the older one" are both the replacement of one file, done with
  ``os.replace`` (atomic on POSIX): a reader sees the old day or the new day, never half of one, never both.
* **The manifest is derived, not stored.** Each day file carries its provenance (source file, build, production
  time, counts, ingest time) in its Parquet footer; :meth:`SoundingsCache.manifest` reads the footers. There is
  no second file that a crash could leave out of step with the data.
* Temporary files start with a dot, so DuckDB globs (``*.parquet``) and pyarrow datasets skip them; temporaries
  left by a killed process are removed on the next write.
* **An unreadable day file is listed, never dropped.** A day file whose footer cannot be read (a truncated or
  corrupted file, or a Parquet file this cache did not write) is a manifest row of its month with ``problem``
  saying why, so :meth:`SoundingsCache.months` and :meth:`SoundingsCache.manifest` agree. Ingesting a Lite file of
  that day replaces it with status ``"replaced-unreadable"``, the detail naming the file, and the unreadable bytes
  are moved to ``unreadable/`` under the cache root (nothing is deleted).
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .lite_format import SOUNDINGS_SCHEMA
from .lite_reader import LiteMetadata
from .locks import exclusive_lock
from .paths import cache_root

META_KEY = b"oco2peak"
ROW_GROUP_ROWS = 131_072
MANIFEST_COLUMNS = ["file_name", "build", "build_family", "day", "month", "production_time", "n_read", "n_kept",
                    "n_flagged", "n_fill", "n_duplicate", "n_out_of_range", "warnings", "ingested_at",
                    "partition_file", "size_bytes", "problem"]
#: Crash-test hook (``tests/test_crash_safety.py``): with ``OCO2PEAK_PAUSE_WRITE=N`` in the environment, the N-th
#: :func:`write_parquet_atomic` of the process stops after writing its batches, before the footer and the rename
#: (a partial temporary on disk, the target untouched), prints ``paused writing PATH`` on stderr and sleeps so a
#: test can kill it at that exact point. Unset (always, outside those tests): no effect.
PAUSE_ENV = "OCO2PEAK_PAUSE_WRITE"
_write_count = itertools.count(1)


class UnreadableDayFileError(ValueError):
    """A day file of the cache cannot be read; the message names the file, the reason and the fix."""


class SoundingsCache:
    """A cache root holding the soundings Parquet partitions (see the module docstring for the layout)."""

    def __init__(self, root=None):
        self.root = cache_root(root)
        self.soundings_dir = self.root / "soundings"
        self.raw_dir = self.root / "raw"

    # -- paths ---------------------------------------------------------------------------------------------------
    def day_path(self, day: dt.date) -> Path:
        return self.soundings_dir / f"month={day:%Y-%m}" / f"{day:%Y-%m-%d}.parquet"

    def month_glob(self, month: str | None = None) -> str:
        """Glob of the day files of one month (``YYYY-MM``) or of all months, for DuckDB ``read_parquet``."""
        return str(self.soundings_dir / (f"month={month}" if month else "month=*") / "*.parquet")

    # -- reading -------------------------------------------------------------------------------------------------
    def day_files(self, month: str | None = None) -> list[Path]:
        if not self.soundings_dir.is_dir():
            return []
        pattern = f"month={month}/*.parquet" if month else "month=*/*.parquet"
        return sorted(p for p in self.soundings_dir.glob(pattern) if not p.name.startswith("."))

    def months(self) -> list[str]:
        """Months holding at least one day file (one directory scan per month folder, no per-file stat)."""
        if not self.soundings_dir.is_dir():
            return []
        out = []
        for folder in self.soundings_dir.glob("month=*"):
            with os.scandir(folder) as entries:
                if any(e.name.endswith(".parquet") and not e.name.startswith(".") for e in entries):
                    out.append(folder.name.removeprefix("month="))
        return sorted(out)

    def manifest(self) -> pd.DataFrame:
        """One row per day file, read from the day files' footers (the cache cannot disagree with it).

        ``warnings`` is the reader's warnings joined with ``"; "`` (empty when the file had none). ``problem`` is
        empty for a readable day file; for one whose footer cannot be read it says why, naming the file, and the
        row has only ``day``, ``month``, ``partition_file`` and ``size_bytes`` (``file_name``, ``build`` and
        ``build_family`` empty, counts and times missing): every day file :meth:`months` counts has a row.
        """
        return pd.DataFrame([_footer_record(path) for path in self.day_files()], columns=MANIFEST_COLUMNS)

    def unreadable(self, month: str | None = None) -> pd.DataFrame:
        """The manifest rows of the unreadable day files (of one month, or all), ``problem`` saying why."""
        rows = [r for r in map(_footer_record, self.day_files(month)) if r["problem"]]
        return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)

    def read_month(self, month: str, columns: list[str] | None = None) -> pd.DataFrame:
        """All good soundings of a month, sorted by ``sounding_id``.

        Raises :class:`UnreadableDayFileError` (naming the file) when a day file cannot be read.
        """
        files = self.day_files(month)
        tables = [_read_day(f, columns) for f in files] or [SOUNDINGS_SCHEMA.empty_table()]
        table = pa.concat_tables(tables)
        return (table if columns is None else table.select(columns)).to_pandas()

    # -- writing -------------------------------------------------------------------------------------------------
    def write_lock(self):
        """An exclusive lock on the cache for writers (several ingest processes may run at once): a context manager
        (:func:`core.locks.exclusive_lock` on ``<root>/.write.lock``)."""
        return exclusive_lock(self.root / ".write.lock")

    def store_day(self, table: pa.Table, meta: LiteMetadata, force: bool = False) -> tuple[str, str]:
        """Store one file's soundings as the partition file of its day.

        Returns ``(status, detail)``: status is ``"ingested"`` (new day), ``"replaced"`` (an older production of
        the same day), ``"re-ingested"`` (the same file again: its rows replaced, never duplicated),
        ``"skipped-older"`` (the cache already holds a newer production of that day; ``force`` overrides) or
        ``"replaced-unreadable"`` (the day file held could not be read: the detail names it, says why and where
        its bytes were kept, under ``unreadable/`` of the cache root).
        """
        path = self.day_path(meta.day)
        with self.write_lock():
            current = _footer_record(path) if path.exists() else None
            if current is None:
                status, detail = "ingested", ""
            elif current["problem"]:
                kept = self._set_aside(path)
                status, detail = "replaced-unreadable", f"replaces the {current['problem']}; its bytes kept as {kept}"
            elif current["file_name"] == meta.file_name:
                status, detail = "re-ingested", "its rows replaced"
            elif current["production_time"] > meta.production_time.isoformat() and not force:
                return "skipped-older", f"the cache holds the newer {current['file_name']} for {meta.day}"
            else:
                status, detail = "replaced", f"replaces {current['file_name']}"
            record = {**meta.as_dict(), "day": meta.day.isoformat(),
                      "production_time": meta.production_time.isoformat(),
                      "ingested_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
            write_parquet_atomic(path, table.to_batches(max_chunksize=ROW_GROUP_ROWS), table.schema,
                                 {META_KEY: json.dumps(record).encode()})
        return status, detail

    def _set_aside(self, path: Path) -> Path:
        """Keep the bytes of an unreadable day file under ``unreadable/`` (a unique name, outside the soundings
        readers glob) before the atomic write replaces it: a hard link (a copy where links are not possible)."""
        folder = self.root / "unreadable"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
        _fsync_dir(folder)
        return target


def write_parquet_atomic(path: Path, batches: Iterable[pa.RecordBatch], schema: pa.Schema,
                         metadata: dict[bytes, bytes] | None = None) -> None:
    """Write record batches to ``path`` so that readers see the old file or the whole new one, never a part.

    The batches go to a hidden temporary file in the same folder, which is flushed to disk and renamed over
    ``path`` (``os.replace`` is atomic on POSIX). If anything fails before the rename, including an exception
    raised by the batch iterator itself, the temporary is removed and ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path.parent)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    schema = schema.with_metadata({**(schema.metadata or {}), **(metadata or {})})
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd", compression_level=1,
                              write_statistics=["sounding_id", "time", "orbit", "latitude", "longitude"]) as w:
            for batch in batches:
                w.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
            _maybe_pause(path, tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _maybe_pause(path: Path, tmp: Path) -> None:
    """The crash-test hook (see :data:`PAUSE_ENV`)."""
    wanted = os.environ.get(PAUSE_ENV)
    if wanted and next(_write_count) == int(wanted):
        print(f"{PAUSE_ENV}: paused writing {path} (temporary {tmp.name}, no footer yet)", file=sys.stderr,
              flush=True)
        time.sleep(600)


def _footer_record(path: Path) -> dict:
    """The manifest row of a day file; an unreadable one gets a row too, ``problem`` saying why."""
    try:
        meta = pq.read_schema(path).metadata or {}
        record = json.loads(meta[META_KEY])
        day = str(record["day"])
    except KeyError:
        return _unreadable_record(path, "its footer holds no oco2peak provenance (not a day file this cache wrote)")
    except (OSError, ValueError, pa.ArrowException) as exc:  # truncated, not Parquet, provenance not JSON
        return _unreadable_record(path, f"its footer cannot be read ({type(exc).__name__}: {exc})")
    record.setdefault("n_out_of_range", 0)  # day files written before these were recorded
    record["warnings"] = "; ".join(record.get("warnings") or ())  # one text cell: what the reader survived
    record["month"] = day[:7]
    record["partition_file"] = str(path)
    record["size_bytes"] = path.stat().st_size
    record["problem"] = ""
    return record


def _unreadable_record(path: Path, reason: str) -> dict:
    try:
        size = path.stat().st_size
    except OSError:
        size = None
    return {"file_name": "", "build": "", "build_family": "", "day": path.stem,
            "month": path.parent.name.removeprefix("month="), "warnings": "", "partition_file": str(path),
            "size_bytes": size, "problem": f"unreadable day file {path}: {reason}"}


def _read_day(path: Path, columns: list[str] | None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise UnreadableDayFileError(
            f"unreadable day file {path} ({type(exc).__name__}: {exc}): ingest the Lite file of {path.stem} again "
            "(python -m core ingest PATH) to replace it") from None


def _remove_stale_temporaries(folder: Path) -> None:
    for tmp in folder.glob(".*.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
