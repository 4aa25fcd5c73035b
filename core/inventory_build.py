"""Build of the emission-source inventory: the offline ETL that writes the Parquet table :mod:`core.inventory` queries.

:func:`build_sources` reads the five raw tables compiled by the oco2peak 2020 project
(:mod:`core.inventory_readers`, :mod:`core.inventory_cities`), normalises them to one row per source with the data
contract (``docs/ARCHITECTURE.md``, Sources; :data:`core.inventory.COLUMNS`) and folds the duplicates the 2020
project counted twice (:mod:`core.inventory_dedupe`). :func:`write_sources` writes zstd Parquet sorted by a
1-degree lat/lon key in small row groups, so the box filters of the query helpers skip most of the file. Run it with
``python -m core.inventory_build --raw DIR --out FILE`` (or ``python inventory/rebuild.py``); in a checkout the
defaults read ``inventory/raw/`` and write the embedded ``core/data/inventory/sources.parquet``.

References
----------
.. [1] Global Energy Observatory, Google, KTH Royal Institute of Technology in Stockholm, Enipedia, World Resources
   Institute (2019). Global Power Plant Database v1.2.0. https://datasets.wri.org/dataset/globalpowerplantdatabase
   (CC BY 4.0); annual tCO2 = generation x fuel emission factor, as compiled by the oco2peak 2020 project.
.. [2] Global Energy Monitor (2020). Global Coal Plant Tracker, with per-year operating status 2016-2019 added by
   Data for Good (oco2peak 2020 project).
.. [3] Sandbag (2020). EU ETS installations, 2019 verified emissions (EUTL data release 2020-04-15), geocoded by the
   oco2peak 2020 project.
.. [4] Nangini, C. et al. (2019). A global dataset of CO2 emissions and ancillary data related to emissions for 343
   cities. Scientific Data 6, 180280. doi:10.1038/sdata.2018.280
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.inventory import conform
from core.inventory_cities import read_cities
from core.inventory_dedupe import COAL_RULE, ETS_RULE, DedupRule, fold_gem_into_wri, fold_plants_into_ets
from core.inventory_names import name_is_lost, readable_names
from core.inventory_readers import read_ets, read_gem, read_wri
from core.paths import EMBEDDED_INVENTORY, REPO_ROOT

#: The committed raw CSVs (in the repository, not in the package: the build runs offline from a checkout).
RAW_FOLDER = REPO_ROOT / "inventory" / "raw"
#: Raw file of each dataset, as committed in ``inventory/raw/``.
RAW_FILES = {
    "wri-gppd": "wri_fossil_power_plants_co2.csv",
    "gem-coal": "gem_coal_plant_tracker_co2.csv",
    "eu-ets-sandbag": "eu_ets_installations_sandbag.csv",
    "cities-population": "world_cities_population.csv",
    "cities-cdp": "cities_co2_emissions_cdp.csv",
}
#: Parquet row-group size [rows]: small, so a box filter reads few groups.
ROW_GROUP_ROWS = 2000
#: Key of the build report in the Parquet schema metadata.
REPORT_METADATA_KEY = b"oco2peak.inventory.build_report"


# ------------------------------------------------------------------------------------------------------ build


def build_sources(raw_dir: Path, coal_rule: DedupRule = COAL_RULE, ets_rule: DedupRule = ETS_RULE) -> pd.DataFrame:
    """Build the normalised, de-duplicated source table from the five raw inventory files.

    Parameters
    ----------
    raw_dir : pathlib.Path
        Folder holding the files named in :data:`RAW_FILES`.
    coal_rule : DedupRule
        When a GEM coal plant is a WRI coal plant (default :data:`COAL_RULE`: 3 km, or 10 km and similar names).
    ets_rule : DedupRule
        When a WRI / GEM plant is an EU-ETS power installation (default :data:`ETS_RULE`).

    Returns
    -------
    pandas.DataFrame
        One row per source, columns :data:`COLUMNS` with :data:`COLUMN_DTYPES`, sorted by source_id.
        ``frame.attrs['build_report']`` holds the counts (rows read, dropped, merged, per sector and dataset).

    References
    ----------
    See the module docstring ([1]_ - [4]_).
    """
    raw_dir = Path(raw_dir)
    missing = [f for f in RAW_FILES.values() if not (raw_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(f"raw inventory files missing in {raw_dir}: {missing}")
    wri, report = read_wri(raw_dir / RAW_FILES["wri-gppd"])
    gem, counts = read_gem(raw_dir / RAW_FILES["gem-coal"])
    report.update(counts)
    ets, counts = read_ets(raw_dir / RAW_FILES["eu-ets-sandbag"])
    report.update(counts)
    cities, counts = read_cities(raw_dir / RAW_FILES["cities-population"], raw_dir / RAW_FILES["cities-cdp"])
    report.update(counts)
    plants, counts = fold_gem_into_wri(wri, gem, coal_rule)
    report.update(counts)
    emitters, counts = fold_plants_into_ets(ets, plants, ets_rule)
    report.update(counts)
    sources = conform(pd.concat([emitters, cities], ignore_index=True))
    sources = sources.sort_values("source_id", kind="stable").reset_index(drop=True)
    if sources["source_id"].duplicated().any():
        raise ValueError("duplicate source_id after the build")
    lost = sources["name"].map(name_is_lost)
    report["names_lost_upstream"] = int(lost.sum())  # replaced by activity, id and country
    sources["name"] = readable_names(sources)
    check_names(sources)
    report["rows"] = len(sources)
    report["rows_per_sector"] = {k: int(v) for k, v in sources["sector"].value_counts().sort_index().items()}
    report["rows_per_dataset"] = {k: int(v) for k, v in sources["dataset"].value_counts().sort_index().items()}
    report["coal_rule"] = _json_safe(asdict(coal_rule))
    report["ets_rule"] = _json_safe(asdict(ets_rule))
    sources.attrs["build_report"] = report
    return sources


def check_names(sources: pd.DataFrame) -> None:
    """Refuse a table where a source has no readable name (:func:`core.inventory_names.name_is_lost`), naming
    them: an analyst must be able to tell the sources apart."""
    lost = sources[sources["name"].map(name_is_lost)]
    if len(lost):
        raise ValueError(f"{len(lost)} sources without a readable name, e.g. "
                         + ", ".join(f"{r.source_id} {r.name!r}" for r in lost.head(5).itertuples()))


def _json_safe(values: dict) -> dict:
    """Non-finite floats as strings ('inf'), so the report is strict JSON."""
    return {k: (str(v) if isinstance(v, float) and not np.isfinite(v) else v) for k, v in values.items()}


def _spatial_order(frame: pd.DataFrame) -> np.ndarray:
    """Row order by a coarse spatial key: floor(lat) then floor(lon) [deg], then source_id (deterministic)."""
    key = pd.DataFrame({"lat": np.floor(frame["latitude"].to_numpy()), "lon": np.floor(frame["longitude"].to_numpy()),
                        "id": frame["source_id"].to_numpy()})
    return key.sort_values(["lat", "lon", "id"], kind="stable").index.to_numpy()


def write_sources(frame: pd.DataFrame, path, row_group_rows: int = ROW_GROUP_ROWS) -> Path:
    """Write the source table as zstd Parquet, sorted by a 1-degree lat/lon key, in small row groups.

    The write is atomic (temporary file, then rename). The build report in ``frame.attrs`` goes in the schema
    metadata under :data:`REPORT_METADATA_KEY`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`build_sources` (any row order).
    path : str or os.PathLike
        Destination ``.parquet`` file; its folder is created.
    row_group_rows : int
        Rows per row group [rows].

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = conform(frame).iloc[_spatial_order(frame)].reset_index(drop=True)
    table = pa.Table.from_pandas(ordered, preserve_index=False)
    report = frame.attrs.get("build_report")
    if report is not None:
        metadata = dict(table.schema.metadata or {})
        metadata[REPORT_METADATA_KEY] = json.dumps(report, sort_keys=True).encode()
        table = table.replace_schema_metadata(metadata)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_rows, write_statistics=True)
    os.replace(tmp, path)
    return path


def read_build_report(path) -> dict:
    """The build report stored in a sources Parquet file ({} when absent)."""
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(REPORT_METADATA_KEY)
    return json.loads(raw) if raw else {}


# ------------------------------------------------------------------------------------------------------ CLI


def format_report(report: dict) -> str:
    """The build report as readable lines."""
    lines = []
    for key, value in report.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines.extend(f"  {k:<52} {v}" for k, v in value.items())
        else:
            lines.append(f"{key:<54} {value}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m core.inventory_build --raw DIR --out FILE``: rebuild the source table and print the counts."""
    parser = argparse.ArgumentParser(prog="python -m core.inventory_build", description=main.__doc__)
    parser.add_argument("--raw", type=Path, default=RAW_FOLDER,
                        help="folder of the raw CSV files (default: inventory/raw/ of the checkout)")
    parser.add_argument("--out", type=Path, default=EMBEDDED_INVENTORY / "sources.parquet",
                        help="Parquet to write (default: the embedded core/data/inventory/sources.parquet)")
    args = parser.parse_args(argv)
    sources = build_sources(args.raw)
    path = write_sources(sources, args.out)
    print(format_report(sources.attrs["build_report"]))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {len(sources)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
