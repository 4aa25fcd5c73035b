"""Uploaded Lite files: saved under ``<cache>/raw/uploads/``, validated with the reader, then ingested.

No Streamlit here (the Data page draws the progress); unit-tested with files from ``tests/lite_factory.py``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from core.cache import SoundingsCache
from core.ingest import IngestSummary, ingest_paths
from core.lite_reader import LiteFileError, read_lite

SUFFIXES = (".nc4", ".nc")


@dataclass(frozen=True)
class Checked:
    name: str
    path: Path | None
    ok: bool
    detail: str  # why a file is bad, or what it holds


def upload_dir(cache: SoundingsCache) -> Path:
    return cache.raw_dir / "uploads"


def save_and_check(files: Iterable[tuple[str, bytes]], cache: SoundingsCache) -> list[Checked]:
    """Write each ``(name, bytes)`` under the uploads folder and validate it with :func:`core.lite_reader.read_lite`.

    A bad file is reported with the reader's reason and removed; a good one is kept for ingestion.
    """
    folder = upload_dir(cache)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, data in files:
        safe = Path(name).name  # never a path from the browser
        if not safe.endswith(SUFFIXES):
            out.append(Checked(safe, None, False, "not a .nc4 file"))
            continue
        path = folder / safe
        tmp = folder / f".{safe}.part"
        tmp.write_bytes(data)
        os.replace(tmp, path)
        try:
            _, meta = read_lite(path)
        except LiteFileError as exc:
            path.unlink(missing_ok=True)
            out.append(Checked(safe, None, False, exc.reason))
            continue
        out.append(Checked(safe, path, True, f"{meta.build_family} {meta.day}: {meta.n_kept:,} good soundings"))
    return out


def ingest_checked(checked: list[Checked], cache: SoundingsCache,
                   on_file: Callable[[int, int, object], None] | None = None) -> IngestSummary:
    """Ingest the files that passed :func:`save_and_check`."""
    return ingest_paths([c.path for c in checked if c.ok], cache=cache, on_file=on_file)
