"""Rebuild ``sources.parquet`` here from the committed raw CSVs in ``raw/``: ``python data_cache/inventory/rebuild.py``.

Same as ``python -m core.inventory_build --raw data_cache/inventory/raw --out data_cache/inventory/sources.parquet``.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository root, so that `core` imports from a plain checkout

from core.inventory_build import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["--raw", str(HERE / "raw"), "--out", str(HERE / "sources.parquet")]))
