"""One file lock for the whole library: an exclusive advisory lock (``fcntl.flock``) held on a lock file.

Used wherever two processes (the app, the command line, several ingest runs) may write the same thing at once:
the soundings cache's writers (:meth:`core.cache.SoundingsCache.write_lock`) and the demo build
(:func:`core.demo.ensure_demo`).
The lock belongs to the open file description, so it is released when the block ends, and by the kernel when the
process dies (a killed writer never leaves a stale lock behind). The lock file itself stays (empty; never removed,
so that every process locks the same inode).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (created if missing, with its folder) for the ``with`` block; waits until
    any other holder releases it. Yields the lock file's path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
