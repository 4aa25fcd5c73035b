"""The OCO-2 L2 Lite FP file layout (builds B9, B10, B11) and the soundings table contract.

One module, one concept: what a Lite file holds and what the cache's soundings table holds.
The reader (:mod:`core.lite_reader`) and the simulator (:mod:`core.simulate`) both take their
variable names, dtypes and fill values from here, so a simulated file and a real file are read
by the same code path.

References
----------
OCO-2 Science Team, *OCO-2 Data Product User's Guide, Operational L1 and L2 Data Versions 9, 10
and 11* (NASA GES DISC, collection ``OCO2_L2_Lite_FP``); what the reader relies on, in our words:
``docs/LITE_FORMAT.md``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

#: Float fill value of the Lite files (treated as missing).
FILL_VALUE = -999999.0

#: ``oco2_LtCO2_YYMMDD_<Build>_<production time YYMMDDhhmmss>s.nc4``
FILE_NAME_RE = re.compile(
    r"^oco2_LtCO2_(?P<day>\d{6})_(?P<build>B\d+[0-9A-Za-z]*)_(?P<produced>\d{12})s\.nc4$"
)



@dataclass(frozen=True)
class Field:
    """One variable the reader takes from a Lite file into the soundings table.

    ``paths`` maps a build family ("B9", "B10", "B11") to the variable path in the file;
    a build missing from ``paths`` uses ``paths["*"]``.
    """

    column: str
    paths: dict
    file_dtype: str
    unit: str
    meaning: str
    required: bool = True  # a missing required variable makes the file bad

    def path(self, family: str) -> str:
        return self.paths.get(family, self.paths["*"])


# The variables read into the soundings table. Order = column order after `sounding_id`, `time`.
FIELDS: tuple[Field, ...] = (
    Field("orbit", {"*": "Sounding/orbit"}, "int32", "1", "orbit (revolution) number"),
    Field("footprint", {"*": "Sounding/footprint"}, "int8", "1", "footprint across track, 1-8"),
    Field("latitude", {"*": "latitude"}, "float32", "degrees_north", "footprint centre latitude"),
    Field("longitude", {"*": "longitude"}, "float32", "degrees_east", "footprint centre longitude"),
    Field("xco2", {"*": "xco2"}, "float32", "ppm", "bias-corrected column-average CO2"),
    Field("xco2_uncertainty", {"*": "xco2_uncertainty"}, "float32", "ppm", "posterior 1-sigma of xco2"),
    Field("windspeed_u", {"*": "Meteorology/windspeed_u_met"}, "float32", "m/s",
          "10 m eastward wind (GEOS-5 FP-IT)"),
    Field("windspeed_v", {"*": "Meteorology/windspeed_v_met"}, "float32", "m/s",
          "10 m northward wind (GEOS-5 FP-IT)"),
    Field("surface_pressure", {"*": "Retrieval/psurf"}, "float32", "hPa", "retrieved surface pressure"),
    Field("surface_pressure_apriori",
          {"B9": "Meteorology/psurf_apriori", "*": "Meteorology/psurf_apriori_o2a"},
          "float32", "hPa", "a priori surface pressure (B9: psurf_apriori, B10/B11: psurf_apriori_o2a)"),
    Field("tcwv", {"*": "Retrieval/tcwv"}, "float32", "kg/m2", "total column water vapour"),
    Field("land_water_indicator", {"*": "Sounding/land_water_indicator"}, "int8", "1",
          "0 land, 1 water, 2 inland water, 3 mixed"),
    Field("land_fraction", {"*": "Sounding/land_fraction"}, "float32", "percent", "land fraction"),
    Field("operation_mode", {"*": "Sounding/operation_mode"}, "int8", "1",
          "0 nadir, 1 glint, 2 target, 3 transition"),
    Field("altitude", {"*": "Sounding/altitude"}, "float32", "m", "surface altitude"),
    Field("solar_zenith_angle", {"*": "solar_zenith_angle"}, "float32", "degrees", "solar zenith angle",
          required=False),
)

#: Root variables every build has besides the fields above.
ID_VAR, TIME_VAR, FLAG_VAR = "sounding_id", "time", "xco2_quality_flag"

#: Rows whose value in one of these columns is fill or NaN are dropped (and counted).
ESSENTIAL_COLUMNS = ("xco2", "latitude", "longitude")

#: Physical range of the essential values and of ``time``: ``column -> (low, high, unit)``, bounds included.
#: A good sounding (flag 0) with a finite, non-fill value outside its range is dropped and counted as out of
#: range (``LiteMetadata.n_out_of_range``, part of ``n_fill``), with a warning that names the values.
#:
#: * ``xco2`` 300-600 ppm: the background column was 395-425 ppm over the OCO-2 record (2014-2025) and the
#:   strongest plume enhancements a footprint sees are tens of ppm; a value outside this range is a failed
#:   retrieval or a corrupt value, never a plume (0 and 5000 ppm have been seen in damaged files).
#: * ``latitude`` / ``longitude``: the globe.
#: * ``time`` 2000-01-01 to 2100-01-01 UTC [s since 1970]: outside it a value is a wrong epoch, a unit error or
#:   garbage (OCO-2 flies since July 2014); it also keeps time in the range of a microsecond timestamp.
VALID_RANGES: dict[str, tuple[float, float, str]] = {
    "xco2": (300.0, 600.0, "ppm"),
    "latitude": (-90.0, 90.0, "degrees_north"),
    "longitude": (-180.0, 180.0, "degrees_east"),
    "time": (946_684_800.0, 4_102_444_800.0, "s since 1970-01-01 UTC"),
}

#: The soundings table of the cache (``soundings/month=YYYY-MM/*.parquet``).
SOUNDINGS_SCHEMA = pa.schema(
    [pa.field("sounding_id", pa.int64()), pa.field("time", pa.timestamp("us", tz="UTC"))]
    + [pa.field(f.column, pa.from_numpy_dtype(np.dtype(f.file_dtype))) for f in FIELDS]
    # dictionary-encoded: one value per file, cheap in memory and in Parquet
    + [pa.field("source_file", pa.dictionary(pa.int32(), pa.string()))]
)


def build_family(build: str) -> str:
    """Map a build string (``B10206Ar``, ``B10.2.05``, ``B11100Ar``, ``B9003r``) to B9 / B10 / B11."""
    m = re.match(r"^B(\d+)", build.strip())
    if not m:
        raise ValueError(f"unrecognised build id {build!r}")
    digits = m.group(1)
    if "." in build:  # "B10.2.05" style
        major = int(build[1:].split(".")[0])
    elif digits.startswith("9"):
        major = 9
    else:
        major = int(digits[:2])
    if major not in (9, 10, 11):
        raise ValueError(f"unsupported build {build!r}: the reader handles B9, B10 and B11")
    return f"B{major}"


def lite_file_name(day, build: str, produced) -> str:
    """Real Lite file name for a UTC ``day`` (date) and a production time (datetime)."""
    return f"oco2_LtCO2_{day:%y%m%d}_{build}_{produced:%y%m%d%H%M%S}s.nc4"
