"""Ingest Lite files (files or folders, recursive) into the soundings cache.

One bad file never stops a batch: it is reported by name with its reason and the others go in. What a good
file survived (values out of range, repeated ids, time going backwards, an all-fill variable) is reported
with it as warnings. Names are printed safely even when they are not valid UTF-8.
"""
from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .cache import SoundingsCache
from .lite_reader import LiteFileError, LiteMetadata, printable, read_lite_table

LITE_SUFFIXES = (".nc4", ".nc")


@dataclass
class FileReport:
    """What happened to one input file."""

    path: Path
    status: str  # ingested | replaced | re-ingested | skipped-older | replaced-unreadable | bad
    detail: str = ""
    meta: LiteMetadata | None = None
    seconds: float = 0.0

    @property
    def bad(self) -> bool:
        return self.status == "bad"

    def summary_line(self) -> str:
        """One line per file (plus one indented ``warning:`` line per reader warning), printable on any stream."""
        if self.bad:
            return f"BAD  {printable(self.path)}: {self.detail}"
        m = self.meta
        counts = (f"{m.n_read:,} read, {m.n_kept:,} kept, {m.n_flagged:,} flagged, {m.n_fill:,} fill"
                  + (f" ({m.n_out_of_range:,} out of range)" if m.n_out_of_range else "")
                  + (f", {m.n_duplicate:,} duplicate ids" if m.n_duplicate else ""))
        extra = f" ({self.detail})" if self.detail else ""
        line = f"{self.status:<12} {m.file_name} [{m.build_family} {m.day}] {counts} in {self.seconds:.2f} s{extra}"
        return "".join([line, *(f"\n    warning: {w}" for w in m.warnings)])


@dataclass
class IngestSummary:
    files: list[FileReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_bad(self) -> int:
        return sum(r.bad for r in self.files)

    @property
    def n_read(self) -> int:
        return sum(r.meta.n_read for r in self.files if r.meta and r.status != "skipped-older")

    @property
    def n_kept(self) -> int:
        return sum(r.meta.n_kept for r in self.files if r.meta and r.status != "skipped-older")

    def summary_line(self) -> str:
        ok = len(self.files) - self.n_bad
        rate = self.n_read / self.seconds if self.seconds > 0 else 0.0
        return (f"{len(self.files)} file(s): {ok} ok, {self.n_bad} bad; {self.n_read:,} soundings read, "
                f"{self.n_kept:,} kept in {self.seconds:.1f} s ({rate:,.0f} soundings/s)")


def find_lite_files(paths: Iterable) -> tuple[list[Path], list[FileReport]]:
    """Expand files and folders (recursively) into Lite files.

    Paths may be str, bytes or path-like. Paths that do not exist (a dangling link included) are reported as
    bad, and so is a folder named like a Lite file (``*.nc4``) that holds none: someone meant a file.
    """
    found, missing = [], []
    for p in map(lambda q: Path(os.fsdecode(q)), paths):
        if p.is_dir():
            inside = sorted(q for q in p.rglob("*") if q.suffix in LITE_SUFFIXES and q.is_file())
            if not inside and p.suffix in LITE_SUFFIXES:
                missing.append(FileReport(p, "bad", "is a directory, not a file (and holds no .nc4 file)"))
            found.extend(inside)
        elif p.exists():
            found.append(p)
        else:
            missing.append(FileReport(p, "bad", "no such file or folder"))
    return found, missing


def ingest_file(path, cache: SoundingsCache, force: bool = False) -> FileReport:
    """Read one Lite file and store its good soundings; a bad file gives a report, never an exception."""
    start = time.perf_counter()
    path = Path(os.fsdecode(path))
    try:
        table, meta = read_lite_table(path)
    except LiteFileError as exc:
        return FileReport(path, "bad", exc.reason, seconds=time.perf_counter() - start)
    except Exception as exc:  # a reader bug must not stop a month's batch: report it with the file
        return FileReport(path, "bad", printable(f"unexpected reader error {type(exc).__name__}: {exc} "
                                                 "(please report it with the file)"),
                          seconds=time.perf_counter() - start)
    status, detail = cache.store_day(table, meta, force=force)
    return FileReport(path, status, detail, meta, time.perf_counter() - start)


def ingest_paths(paths, cache=None, on_file: Callable[[int, int, FileReport], None] | None = None,
                 force: bool = False) -> IngestSummary:
    """Ingest files and folders into the cache; ``on_file(i, n, report)`` is called after each file."""
    cache = cache if isinstance(cache, SoundingsCache) else SoundingsCache(cache)
    start = time.perf_counter()
    files, missing = find_lite_files(paths)
    summary = IngestSummary()
    total = len(missing) + len(files)
    reports = itertools.chain(missing, (ingest_file(path, cache, force=force) for path in files))
    for i, report in enumerate(reports, 1):
        summary.files.append(report)
        if on_file:
            on_file(i, total, report)
    summary.seconds = time.perf_counter() - start
    return summary
