"""Read one OCO-2 L2 Lite FP NetCDF4 file (build B9, B10 or B11) into a soundings table.

A reader does no science (the pvlib ``iotools`` way): it returns ``(data, metadata)`` where data are the good
soundings (``xco2_quality_flag == 0``, no fill or NaN in xco2, coordinates or time) with the columns of
:data:`core.lite_format.SOUNDINGS_SCHEMA`, and metadata tells the build, the day and what was dropped.

Anything wrong with the file raises :class:`LiteFileError`, whose message names the file and the reason
(empty, not NetCDF, truncated, a missing group or variable, a wrong dtype, no good soundings).

References
----------
OCO-2 Data Product User's Guide (v9, B10, v11), collection ``OCO2_L2_Lite_FP``, NASA GES DISC.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pyarrow as pa

from .lite_format import (
    ESSENTIAL_COLUMNS, FIELDS, FILE_NAME_RE, FILL_VALUE, FLAG_VAR, ID_VAR, SOUNDINGS_SCHEMA, TIME_VAR,
    build_family,
)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class LiteFileError(ValueError):
    """A Lite file that cannot be ingested; ``str()`` names the file and the reason."""

    def __init__(self, path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path.name}: {reason}")


@dataclass(frozen=True)
class LiteMetadata:
    """What the reader learnt about one file besides its soundings."""

    file_name: str
    build: str  # as written in the file (BuildId) or its name, e.g. "B10206Ar"
    build_family: str  # "B9", "B10" or "B11"
    day: dt.date  # UTC day the file covers
    production_time: dt.datetime  # from the file name (UTC); the file's mtime when the name has none
    n_read: int  # soundings in the file
    n_kept: int  # good soundings returned
    n_flagged: int  # dropped: xco2_quality_flag != 0
    n_fill: int  # dropped: flag 0 but fill / NaN in xco2, coordinates or time, or coordinates out of range
    n_duplicate: int  # dropped: repeated sounding_id (first kept)

    def as_dict(self) -> dict:
        return asdict(self)


def read_lite(path) -> tuple[pd.DataFrame, LiteMetadata]:
    """Read a Lite file into a pandas DataFrame of good soundings and its :class:`LiteMetadata`."""
    table, meta = read_lite_table(path)
    return table.to_pandas(), meta


def read_lite_table(path) -> tuple[pa.Table, LiteMetadata]:
    """Read a Lite file into an Arrow table (schema :data:`SOUNDINGS_SCHEMA`) and its :class:`LiteMetadata`.

    Raises
    ------
    LiteFileError
        The file is empty, not NetCDF4/HDF5, truncated, lacks a group or variable, has a variable of the wrong
        type or shape, or holds no good sounding.
    """
    path = Path(path)
    _check_container(path)
    try:
        ds = netCDF4.Dataset(path, "r")
    except OSError as exc:  # HDF5 signature present, but the library cannot open it
        raise LiteFileError(path, f"corrupt NetCDF4/HDF5 file ({exc})") from None
    try:
        ds.set_auto_maskandscale(False)
        build = _build_of(ds, path)
        family = _family_of(build, ds, path)
        raw = {ID_VAR: _read(ds, ID_VAR, "i", path), TIME_VAR: _read(ds, TIME_VAR, "f", path),
               FLAG_VAR: _read(ds, FLAG_VAR, "iu", path)}
        for field in FIELDS:
            var_path = field.path(family)
            kind = "f" if field.file_dtype.startswith("float") else "iu"
            if field.required or _has(ds, var_path):
                raw[field.column] = _read(ds, var_path, kind, path, family)
    finally:
        ds.close()

    n_read = raw[ID_VAR].shape[0]
    for name, values in raw.items():
        if values.ndim != 1 or values.shape[0] != n_read:
            raise LiteFileError(path, f"variable {name!r} has shape {values.shape}, expected ({n_read},) "
                                      f"like {ID_VAR!r}")
    if n_read == 0:
        raise LiteFileError(path, "no soundings (the sounding_id dimension is empty)")

    flagged = raw[FLAG_VAR] != 0
    bad_value = np.zeros(n_read, dtype=bool)
    for column in (*ESSENTIAL_COLUMNS, TIME_VAR):
        values = raw[column]
        bad_value |= ~np.isfinite(values) | (values == FILL_VALUE)
    bad_value |= (np.abs(raw["latitude"]) > 90.0) | (np.abs(raw["longitude"]) > 180.0)
    keep = ~flagged & ~bad_value
    n_flagged = int(flagged.sum())
    n_fill = int((~flagged & bad_value).sum())

    ids = raw[ID_VAR][keep].astype(np.int64, copy=False)
    order = None if _strictly_increasing(ids) else np.argsort(ids, kind="stable")
    if order is not None:
        ids = ids[order]
    unique = np.ones(ids.shape[0], dtype=bool)
    unique[1:] = ids[1:] != ids[:-1]
    n_duplicate = int((~unique).sum())

    def take(values):
        values = values[keep]
        if order is not None:
            values = values[order]
        return values[unique] if n_duplicate else values

    n_kept = int(keep.sum()) - n_duplicate
    if n_kept == 0:
        raise LiteFileError(path, f"no good soundings ({n_read} read: {n_flagged} flagged, {n_fill} with fill "
                                  "or NaN in xco2, coordinates or time)")
    time_us = np.round(take(raw[TIME_VAR]).astype(np.float64) * 1e6).astype(np.int64)
    columns = {ID_VAR: take(raw[ID_VAR]).astype(np.int64, copy=False), TIME_VAR: time_us}
    for field in FIELDS:
        values = raw.get(field.column)
        if values is None:  # optional variable absent from this file
            values = np.full(n_read, np.nan if field.file_dtype.startswith("float") else 0, field.file_dtype)
        values = take(values).astype(field.file_dtype, copy=False)
        if values.dtype.kind == "f" and field.column not in ESSENTIAL_COLUMNS:
            values = np.where(values == FILL_VALUE, np.float32(np.nan), values)
        columns[field.column] = values

    arrays = [pa.array(columns[f.name], type=f.type) for f in SOUNDINGS_SCHEMA if f.name != "source_file"]
    source = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n_kept, np.int32)), pa.array([path.name]))
    table = pa.Table.from_arrays([*arrays, source], schema=SOUNDINGS_SCHEMA)

    day = _day_of(path, time_us)
    meta = LiteMetadata(path.name, build, family, day, _production_time(path), n_read, n_kept, n_flagged,
                        n_fill, n_duplicate)
    return table, meta


# -- container checks ------------------------------------------------------------------------------------------

def _check_container(path: Path) -> None:
    """Fail early, with a clear reason, on files that are not (whole) HDF5 containers."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(64)
    except FileNotFoundError:
        raise LiteFileError(path, "no such file") from None
    except IsADirectoryError:
        raise LiteFileError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise LiteFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise LiteFileError(path, "empty file (0 bytes): an interrupted download?")
    if not head.startswith(HDF5_SIGNATURE):
        text = head.lstrip().lower()
        if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
            raise LiteFileError(path, "an HTML/XML page saved as .nc4 (a failed or unauthorised download?), "
                                      "not NetCDF4")
        if head.startswith(b"CDF"):
            raise LiteFileError(path, "a NetCDF3 (classic) file: Lite files are NetCDF4/HDF5")
        raise LiteFileError(path, f"not a NetCDF4/HDF5 file (starts with {head[:8]!r})")
    declared = _hdf5_declared_size(head)
    if declared is not None and size < declared:
        raise LiteFileError(path, f"truncated: {size:,} bytes on disk, the HDF5 header declares {declared:,}")


def _hdf5_declared_size(head: bytes) -> int | None:
    """End-of-file address from an HDF5 superblock at offset 0 (versions 0-3), or None if unknown."""
    version = head[8]
    if version in (0, 1):
        offset_size = head[13]
        start = 24 + (4 if version == 1 else 0) + 2 * offset_size  # base, free-space addresses come first
    elif version in (2, 3):
        offset_size = head[9]
        start = 12 + 2 * offset_size  # base, superblock-extension addresses come first
    else:
        return None
    if offset_size not in (4, 8) or start + offset_size > len(head):
        return None
    value = int.from_bytes(head[start:start + offset_size], "little")
    return None if value in (0, 2 ** (8 * offset_size) - 1) else value


# -- variables -------------------------------------------------------------------------------------------------

def _has(ds, var_path: str) -> bool:
    group = ds
    *groups, name = var_path.split("/")
    for g in groups:
        if g not in group.groups:
            return False
        group = group.groups[g]
    return name in group.variables


def _read(ds, var_path: str, kinds: str, path: Path, family: str | None = None) -> np.ndarray:
    group = ds
    *groups, name = var_path.split("/")
    for g in groups:
        if g not in group.groups:
            raise LiteFileError(path, f"missing group {g!r} (needed for {var_path!r}"
                                      f"{', build ' + family if family else ''})")
        group = group.groups[g]
    if name not in group.variables:
        raise LiteFileError(path, f"missing variable {var_path!r}{' (build ' + family + ')' if family else ''}")
    var = group.variables[name]
    if var.dtype.kind not in kinds:
        expected = {"f": "a float", "i": "an integer", "iu": "an integer"}[kinds]
        raise LiteFileError(path, f"variable {var_path!r} has dtype {var.dtype}, expected {expected} type")
    try:
        return np.asarray(var[...])
    except (OSError, RuntimeError, IndexError) as exc:
        raise LiteFileError(path, f"corrupt data in variable {var_path!r} ({exc})") from None


def _build_of(ds, path: Path) -> str:
    build = getattr(ds, "BuildId", None)
    if isinstance(build, bytes):
        build = build.decode("ascii", "replace")
    if build:
        return str(build).strip()
    m = FILE_NAME_RE.match(path.name)
    if m:
        return m.group("build")
    return ""


def _family_of(build: str, ds, path: Path) -> str:
    if build:
        try:
            return build_family(build)
        except ValueError as exc:
            raise LiteFileError(path, str(exc)) from None
    # no BuildId and no standard name: infer from the one variable that differs between builds
    if _has(ds, "Meteorology/psurf_apriori_o2a"):
        return "B11" if _has(ds, "xco2_x2019") else "B10"
    if _has(ds, "Meteorology/psurf_apriori"):
        return "B9"
    raise LiteFileError(path, "unknown build: no BuildId attribute, no standard file name, and no "
                              "Meteorology/psurf_apriori(_o2a) to tell B9 from B10/B11")


def _strictly_increasing(values: np.ndarray) -> bool:
    return bool(values.shape[0] < 2 or np.all(values[1:] > values[:-1]))


def _day_of(path: Path, time_us: np.ndarray) -> dt.date:
    m = FILE_NAME_RE.match(path.name)
    if m:
        return dt.datetime.strptime(m.group("day"), "%y%m%d").date()
    median_s = float(np.median(time_us)) / 1e6
    return dt.datetime.fromtimestamp(median_s, dt.timezone.utc).date()


def _production_time(path: Path) -> dt.datetime:
    m = FILE_NAME_RE.match(path.name)
    if m:
        return dt.datetime.strptime(m.group("produced"), "%y%m%d%H%M%S").replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromtimestamp(os.stat(path).st_mtime, dt.timezone.utc).replace(microsecond=0)
