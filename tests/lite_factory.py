"""Write small, real OCO-2 Lite-layout NetCDF4 files for tests, with knobs to break them on purpose.

The variable paths and dtypes come from :mod:`core.lite_format`, the same table the reader uses, plus the
root variables (``sounding_id``, ``time``, ``xco2_quality_flag``). The simulator (:mod:`core.simulate`) writes
the full realistic layout; this factory writes the minimum a reader needs, so a test can omit, retype or
corrupt exactly one thing.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import netCDF4
import numpy as np

from core.lite_format import FIELDS, FILL_VALUE, build_family, lite_file_name
from core.lite_writer import BUILD_IDS  # the build ids the simulator writes (the tests' ``build="B10"`` names)


def sounding_columns(n: int, day=dt.date(2019, 8, 1), seed: int = 0, start_hour: int = 12) -> dict:
    """Plausible good soundings: frames at 3 Hz, 8 footprints, a pass running north."""
    rng = np.random.default_rng(seed)
    frame = np.arange(n) // 8
    footprint = (np.arange(n) % 8 + 1).astype(np.int8)
    t0 = dt.datetime(day.year, day.month, day.day, start_hour, tzinfo=dt.timezone.utc).timestamp()
    t_frame = t0 + frame / 3.0
    stamp = [dt.datetime.fromtimestamp(t, dt.timezone.utc) for t in t_frame[::8]]
    tenths = np.array([int(s.strftime("%Y%m%d%H%M%S")) * 10 + s.microsecond // 100_000 for s in stamp], np.int64)
    ids = np.repeat(tenths, 8)[:n] * 10 + footprint
    return {
        "sounding_id": ids,
        "time": t_frame.astype(np.float64),
        "xco2_quality_flag": np.zeros(n, np.int8),
        "orbit": np.full(n, 26500, np.int32),
        "footprint": footprint,
        "latitude": (-80 + (frame * 0.0203) % 160).astype(np.float32),
        "longitude": (20 + footprint * 0.01).astype(np.float32),
        "xco2": (409 + rng.normal(0, 0.5, n)).astype(np.float32),
        "xco2_uncertainty": rng.uniform(0.4, 0.7, n).astype(np.float32),
        "windspeed_u": rng.normal(3, 1, n).astype(np.float32),
        "windspeed_v": rng.normal(-1, 1, n).astype(np.float32),
        "surface_pressure": rng.normal(990, 5, n).astype(np.float32),
        "surface_pressure_apriori": rng.normal(990, 5, n).astype(np.float32),
        "tcwv": rng.uniform(5, 40, n).astype(np.float32),
        "land_water_indicator": np.zeros(n, np.int8),
        "land_fraction": np.full(n, 100, np.float32),
        "operation_mode": np.zeros(n, np.int8),
        "altitude": rng.uniform(0, 800, n).astype(np.float32),
        "solar_zenith_angle": rng.uniform(20, 60, n).astype(np.float32),
    }


def write_lite(folder, columns: dict, build: str = "B10", day=dt.date(2019, 8, 1),
               produced=dt.datetime(2020, 7, 29, 17, 59, 9), name: str | bytes | None = None,
               omit: tuple[str, ...] = (), dtypes: dict | None = None, build_attr: bool = True,
               attrs: dict | None = None) -> Path:
    """Write ``columns`` as a Lite file; ``omit`` drops variable paths or whole groups ("Meteorology"),
    ``dtypes`` overrides the file dtype of a variable path, ``attrs`` sets (or overrides) global attributes
    after ``BuildId`` and ``title`` (e.g. ``{"BuildId": "B7003r"}``); ``name`` may be str or bytes."""
    family = build_family(BUILD_IDS.get(build, build))
    build_id = BUILD_IDS.get(build, build)
    if isinstance(name, bytes):  # a file name that need not be UTF-8: bytes all the way
        path = Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))
    else:
        path = Path(folder) / (name or lite_file_name(day, build_id, produced))
    n = len(columns["sounding_id"])
    dtypes = dtypes or {}
    variables = {"sounding_id": ("int64", columns["sounding_id"]), "time": ("float64", columns["time"]),
                 "xco2_quality_flag": ("int8", columns["xco2_quality_flag"])}
    for f in FIELDS:
        variables[f.path(family)] = (f.file_dtype, columns[f.column])
    if family == "B11":
        variables["xco2_x2019"] = ("float32", columns["xco2"])
    # the NetCDF library takes UTF-8 names only: a non-UTF-8 name is written under a plain one, then renamed
    target = path if isinstance(name, str) or name is None else path.with_name(".lite_factory.tmp.nc4")
    with netCDF4.Dataset(target, "w", format="NETCDF4") as ds:
        ds.createDimension("sounding_id", n)
        if build_attr:
            ds.BuildId = build_id
        ds.title = "ACOS GOSAT/OCO-2 Lite File"
        for key, value in (attrs or {}).items():
            ds.setncattr(key, value)
        for var_path, (dtype, values) in variables.items():
            group_name = var_path.split("/")[0] if "/" in var_path else None
            if var_path in omit or group_name in omit:
                continue
            dtype = dtypes.get(var_path, dtype)
            group = ds
            if group_name:
                group = ds.groups.get(group_name) or ds.createGroup(group_name)
            is_float = np.dtype(dtype).kind == "f"
            var = group.createVariable(var_path.split("/")[-1], dtype, ("sounding_id",), zlib=True, complevel=1,
                                       fill_value=FILL_VALUE if is_float else None)
            var.set_auto_maskandscale(False)
            var[:] = np.asarray(values).astype(dtype)
    if target != path:
        os.replace(target, path)
    return path
