"""Rebuild the embedded inventory from the committed raw CSVs in ``raw/``: ``python inventory/rebuild.py``.

Writes ``core/data/inventory/sources.parquet`` (package data, read at run time). Same as
``python -m core.inventory_build --raw inventory/raw --out core/data/inventory/sources.parquet`` (the defaults of
``python -m core.inventory_build`` in a checkout).
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # the repository root
sys.path.insert(0, str(ROOT))  # so that `core` imports from a plain checkout

from core.inventory_build import main  # noqa: E402

if __name__ == "__main__":
    out = ROOT / "core" / "data" / "inventory" / "sources.parquet"
    raise SystemExit(main(["--raw", str(HERE / "raw"), "--out", str(out)]))
