"""Where things live: the cache root and the embedded inventory.

The embedded inventory is package data: ``core/data/inventory/sources.parquet`` travels with ``core`` in a checkout,
an editable install and a wheel (``pip install .``) alike. Its raw inputs and rebuild script stay in the repository
(``inventory/``, see ``inventory/README.md``); they are not read at run time.

The default cache root (when neither ``--cache DIR`` nor ``$OCO2_CACHE`` is given) depends on where ``core`` runs
from:

- from a checkout (the folder above ``core/`` holds ``pyproject.toml``: a clone, or an editable install of it):
  the checkout's ``data_cache/``, whatever the working directory;
- from an installed package (``core`` in site-packages): ``data_cache/`` in the working directory at the time of
  the call, as a checkout's folder would be meaningless there (site-packages is not a place for a cache).
"""
from __future__ import annotations

import os
from pathlib import Path

#: The folder holding ``core/``: the repository root in a checkout or an editable install, site-packages otherwise.
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Whether ``core`` runs from a checkout of the repository (not from an installed wheel).
IN_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file()
#: The default cache root, overridden by ``--cache DIR`` or ``$OCO2_CACHE``: the checkout's ``data_cache/``, or
#: (installed package) ``data_cache`` relative to the working directory, resolved when :func:`cache_root` is called.
DEFAULT_CACHE = REPO_ROOT / "data_cache" if IN_CHECKOUT else Path("data_cache")
#: The embedded inventory (package data; built from ``inventory/raw/`` by ``python inventory/rebuild.py``).
EMBEDDED_INVENTORY = Path(__file__).resolve().parent / "data" / "inventory"


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """Resolve the cache root: an explicit argument, else ``$OCO2_CACHE``, else :data:`DEFAULT_CACHE` (the
    checkout's ``data_cache/``, or ``./data_cache`` of the working directory for an installed package)."""
    if cache:
        return Path(cache)
    env = os.environ.get("OCO2_CACHE")
    return Path(env) if env else DEFAULT_CACHE.absolute()
