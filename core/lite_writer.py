"""Writer of OCO-2 Lite-layout NetCDF4 files, the counterpart of :mod:`core.lite_format` and :mod:`core.lite_reader`.

:func:`write_lite_file` writes one day of soundings with every variable the reader takes at the path and dtype
:data:`core.lite_format.FIELDS` gives (so writer and reader cannot drift apart), the root id/time/flag, and the
fields a reader does not need (:func:`derived_fields`). Used by the OSSE (:mod:`core.simulate`). Layout: OCO-2 Data
Product User's Guide (Lite FP, v9/v10/v11).
"""
from __future__ import annotations

import netCDF4
import numpy as np
import pandas as pd

from .lite_format import FIELDS, FILL_VALUE, FLAG_VAR, ID_VAR, TIME_VAR

#: Build id written in file names for a build family, and the matching global attributes.
BUILD_IDS = {"B9": "B9003r", "B10": "B10206Ar", "B11": "B11100Ar"}
BUILD_ATTRS = {"B9": ("B9.0.03", "OCO2_L2_Lite_FP.9r"), "B10": ("B10.2.06", "OCO2_L2_Lite_FP.10r"),
               "B11": ("B11.1.00", "OCO2_L2_Lite_FP.11.1r")}
TITLE = "OCO-2 Lite FP: bias-corrected XCO2 and selected fields of the full-physics retrieval, daily"


# ------------------------------------------------------------------------------------------------ writing

def sounding_ids_and_dates(whole_s, frame_ticks, footprint):
    """Real sounding ids (YYYYMMDDhhmmss, tenths, footprint) and the (N, 7) ``date`` array."""
    stamp = pd.DatetimeIndex(whole_s.astype("datetime64[s]"))
    tenths = (frame_ticks % 3) * 3  # 3 Hz frames on whole seconds: .0, .3(33), .6(67)
    ymdhms = (((((stamp.year.to_numpy(np.int64) * 100 + stamp.month) * 100 + stamp.day) * 100 + stamp.hour) * 100
               + stamp.minute) * 100 + stamp.second)
    ids = (ymdhms * 10 + tenths) * 10 + footprint.astype(np.int64)
    millis = (frame_ticks % 3) * 1000 // 3
    date = np.stack([stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second,
                     millis], axis=1).astype(np.int16)
    return ids.astype(np.int64), date


def _extra_variables(family: str):
    """Variables written besides :data:`FIELDS` and the root id/time/flag: (path, dtype, key, units)."""
    extra = [
        ("date", "int16", "date", "year, month, day, hour, minute, second, millisecond"),
        ("vertex_latitude", "float32", "vertex_latitude", "degrees_north"),
        ("vertex_longitude", "float32", "vertex_longitude", "degrees_east"),
        ("sensor_zenith_angle", "float32", "sensor_zenith_angle", "degrees"),
        ("Retrieval/tcwv_apriori", "float32", "tcwv_apriori", "kg m-2"),
        ("Retrieval/tcwv_uncertainty", "float32", "tcwv_uncertainty", "kg m-2"),
        ("Retrieval/xco2_raw", "float32", "xco2_raw", "ppm"),
        ("Retrieval/dp", "float32", "dp", "hPa"),
        ("Preprocessors/co2_ratio", "float32", "co2_ratio", "1"),
        ("Preprocessors/h2o_ratio", "float32", "h2o_ratio", "1"),
        ("Preprocessors/dp_abp", "float32", "dp_abp", "hPa"),
    ]
    if family in ("B10", "B11"):
        extra += [("Meteorology/psurf_apriori_wco2", "float32", "psurf_apriori_wco2", "hPa"),
                  ("Meteorology/psurf_apriori_sco2", "float32", "psurf_apriori_sco2", "hPa")]
    if family == "B11":
        extra += [("xco2_x2019", "float32", "xco2_x2019", "ppm"),
                  ("Auxiliary/xco2_qf_bitflag", "int16", "xco2_qf_bitflag", "1")]
    return extra


def derived_fields(d: dict, rng) -> None:
    """Fields a reader does not need, derived from the simulated ones (in place)."""
    n = d["xco2"].shape[0]
    fill = d["xco2"] == FILL_VALUE
    d["tcwv_apriori"] = d["tcwv"] * (1.0 + rng.normal(0.0, 0.05, n))
    d["tcwv_uncertainty"] = rng.uniform(0.3, 1.2, n)
    d["xco2_raw"] = np.where(fill, FILL_VALUE, d["xco2"] - rng.normal(0.3, 0.4, n))
    d["dp"] = d["surface_pressure"] - d["surface_pressure_apriori"]
    d["co2_ratio"] = 1.0 + rng.normal(0.0, 0.004, n)
    d["h2o_ratio"] = 1.0 + rng.normal(0.0, 0.02, n)
    d["dp_abp"] = rng.normal(0.0, 5.0, n)
    d["psurf_apriori_wco2"] = d["surface_pressure_apriori"] + rng.normal(0.0, 0.3, n)
    d["psurf_apriori_sco2"] = d["surface_pressure_apriori"] + rng.normal(0.0, 0.3, n)
    d["xco2_x2019"] = d["xco2"].copy()  # Lite v11 xco2 is already on the X2019 scale
    d["xco2_qf_bitflag"] = np.where(d[FLAG_VAR] != 0, 1 + rng.integers(0, 8, n), 0)


def write_lite_file(path, d: dict, family: str, build_id: str, complevel: int = 1, attrs: dict | None = None):
    """Write one day of soundings (dict of arrays keyed by FIELDS columns and extra names) in the Lite layout."""
    n = d[ID_VAR].shape[0]
    variables = [(ID_VAR, "int64", ID_VAR, "1"), (TIME_VAR, "float64", TIME_VAR, "seconds since 1970-01-01 00:00:00"),
                 (FLAG_VAR, "int8", FLAG_VAR, "1")]
    variables += [(f.path(family), f.file_dtype, f.column, f.unit) for f in FIELDS]
    variables += _extra_variables(family)
    build_attr, collection = BUILD_ATTRS[family]
    chunk = max(1, min(n, 1 << 16))
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("sounding_id", n)
        ds.createDimension("vertices", 4)
        ds.createDimension("epoch_dimension", 7)
        ds.setncatts({"BuildId": build_attr, "title": TITLE, "CollectionLabel": collection,
                      "FileBuild": build_id, **(attrs or {})})
        groups = {}
        for var_path, dtype, key, units in variables:
            *group_names, name = var_path.split("/")
            group = ds
            if group_names:
                g = group_names[0]
                if g not in groups:
                    groups[g] = ds.createGroup(g)
                group = groups[g]
            values = np.asarray(d[key])
            dims = ("sounding_id",) if values.ndim == 1 else \
                ("sounding_id", "vertices" if values.shape[1] == 4 else "epoch_dimension")
            is_float = np.dtype(dtype).kind == "f"
            var = group.createVariable(name, dtype, dims, zlib=complevel > 0, complevel=max(complevel, 1),
                                       shuffle=True, chunksizes=(chunk,) + values.shape[1:],
                                       fill_value=FILL_VALUE if is_float else None)
            var.set_auto_maskandscale(False)
            if is_float:
                var.missing_value = np.array(FILL_VALUE, dtype)
            var.units = units
            var[...] = values.astype(dtype)
