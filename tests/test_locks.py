"""core.locks.exclusive_lock: the one file lock of the cache writers and the demo build, checked across real
processes (a second process cannot take the lock while it is held, and can once it is released or its holder died).
No timing: the other process asks with LOCK_NB and reports whether it got the lock."""
from __future__ import annotations

import subprocess
import sys

from core.cache import SoundingsCache
from core.locks import exclusive_lock
from core.paths import REPO_ROOT

PROBE = """
import fcntl, sys
with open(sys.argv[1], "a+") as handle:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("held")
    else:
        print("free")
"""


def _probe(path) -> str:
    return subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


def test_the_lock_excludes_another_process_until_released(tmp_path):
    path = tmp_path / "new" / "folder" / ".x.lock"
    with exclusive_lock(path) as held:
        assert held == path and path.is_file()  # created with its folder
        assert _probe(path) == "held"
    assert _probe(path) == "free"
    assert path.is_file()  # the lock file stays: every process locks the same inode


def test_the_cache_write_lock_is_that_lock(tmp_path):
    cache = SoundingsCache(tmp_path / "cache")
    with cache.write_lock():
        assert _probe(tmp_path / "cache" / ".write.lock") == "held"
    assert _probe(tmp_path / "cache" / ".write.lock") == "free"


def test_a_dead_holder_leaves_no_stale_lock(tmp_path):
    path = tmp_path / ".demo.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from core.locks import exclusive_lock\n"
                               "with exclusive_lock(sys.argv[1]):\n    print('locked', flush=True); sys.stdin.read()",
                               str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert _probe(path) == "held"
        holder.kill()
        holder.wait(timeout=60)
        assert _probe(path) == "free"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=60)
        holder.stdin.close()
        holder.stdout.close()
