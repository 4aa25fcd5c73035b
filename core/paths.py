"""Where things live: the cache root and the embedded inventory."""
from __future__ import annotations

import os
from pathlib import Path

#: Repository root (the folder holding ``core/``).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: The default cache root; overridden by ``--cache DIR`` or the ``OCO2_CACHE`` environment variable.
DEFAULT_CACHE = REPO_ROOT / "data_cache"
#: The embedded inventory, committed in the repository (see ``data_cache/inventory/README.md``).
EMBEDDED_INVENTORY = DEFAULT_CACHE / "inventory"


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """Resolve the cache root: an explicit argument, else ``$OCO2_CACHE``, else ``data_cache/``."""
    if cache:
        return Path(cache)
    env = os.environ.get("OCO2_CACHE")
    return Path(env) if env else DEFAULT_CACHE
