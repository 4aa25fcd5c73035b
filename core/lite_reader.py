"""Read one OCO-2 L2 Lite FP NetCDF4 file (build B9, B10 or B11) into a soundings table.

A reader does no science (the pvlib ``iotools`` way): it returns ``(data, metadata)`` where data are the good
soundings (``xco2_quality_flag == 0``, no fill or NaN in xco2, coordinates or time) with the columns of
:data:`core.lite_format.SOUNDINGS_SCHEMA`, and metadata tells the build, the day and what was dropped.

Anything wrong with the file raises :class:`LiteFileError`, whose message names the file and the reason
(empty, not NetCDF, truncated, a missing group or variable, a wrong dtype, no good soundings). It is the only
exception the reader raises for a bad file, and its message prints on any UTF-8 stream, even when the file name
is not valid UTF-8 (undecodable bytes are shown as ``\\xNN``).

What a file survives is told in :attr:`LiteMetadata.warnings` (and counted): values outside their physical range
(:data:`core.lite_format.VALID_RANGES`), repeated sounding ids, time going backwards in sounding-id order, a
non-essential variable that is all fill, soundings whose times are not on the day the file name says.

References
----------
OCO-2 Data Product User's Guide (v9, B10, v11), collection ``OCO2_L2_Lite_FP``, NASA GES DISC.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pyarrow as pa

from .lite_format import (
    ESSENTIAL_COLUMNS, FIELDS, FILE_NAME_RE, FILL_VALUE, FLAG_VAR, ID_VAR, SOUNDINGS_SCHEMA, TIME_VAR,
    VALID_RANGES, build_family,
)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def printable(text) -> str:
    """``text`` (str, bytes or path) as a string any UTF-8 stream can print.

    File names are bytes on POSIX; Python decodes undecodable bytes to lone surrogates (``surrogateescape``),
    which raise ``UnicodeEncodeError`` when printed or written to Parquet. They are shown as ``\\xNN`` instead.

    >>> printable(b"caf\\xe9.nc4")
    'caf\\\\xe9.nc4'
    """
    if isinstance(text, os.PathLike):
        text = os.fspath(text)
    if isinstance(text, bytes):
        return text.decode("utf-8", "backslashreplace")
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name decoding made
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _as_path(path) -> Path:
    """A :class:`Path` from a str, bytes or path-like (bytes are decoded the way the OS does)."""
    return Path(os.fsdecode(path))


class LiteFileError(ValueError):
    """A Lite file that cannot be ingested; ``str()`` names the file and the reason (always printable)."""

    def __init__(self, path, reason: str):
        self.path = _as_path(path)
        self.reason = printable(reason)
        super().__init__(f"{printable(self.path.name)}: {self.reason}")


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
    n_fill: int  # dropped: flag 0 but fill / NaN in xco2, coordinates or time, or one of them out of range
    n_duplicate: int  # dropped: repeated sounding_id (first kept)
    n_out_of_range: int = 0  # of n_fill: a value outside its physical range (core.lite_format.VALID_RANGES)
    warnings: tuple[str, ...] = ()  # what the file survived, one sentence each (values, fields, sounding ids)

    def as_dict(self) -> dict:
        return asdict(self)


def read_lite(path) -> tuple[pd.DataFrame, LiteMetadata]:
    """Read a Lite file into a pandas DataFrame of good soundings and its :class:`LiteMetadata`."""
    table, meta = read_lite_table(path)
    return table.to_pandas(), meta


def read_lite_table(path) -> tuple[pa.Table, LiteMetadata]:
    """Read a Lite file into an Arrow table (schema :data:`SOUNDINGS_SCHEMA`) and its :class:`LiteMetadata`.

    Parameters
    ----------
    path : str, bytes or path-like
        The ``.nc4`` file; a bytes path may hold any bytes (a name that is not UTF-8 is read all the same).

    Returns
    -------
    table : pyarrow.Table
        The good soundings, sorted by ``sounding_id``, each id once.
    meta : LiteMetadata
        Build, day, counts of what was dropped and why, and warnings.

    Raises
    ------
    LiteFileError
        The file is missing, a directory, empty, not NetCDF4/HDF5, truncated or corrupt, lacks a group or
        variable, has a variable of the wrong type, shape or range of its type, or holds no good sounding.
        No other exception is raised for a bad file.
    """
    path = _as_path(path)
    mtime = _check_container(path)
    build, family, raw = _read_raw(path)
    return soundings_table(path, mtime, build, family, raw)


def _read_raw(path: Path) -> tuple[str, str, dict[str, np.ndarray]]:
    """The build, build family and raw values (no masking, no scaling) of the variables the table needs, keyed by
    column name (``sounding_id``, ``time``, ``xco2_quality_flag`` and the :data:`FIELDS` columns)."""
    with _open_dataset(path) as ds:
        try:
            build = _build_of(ds, path)
            family = _family_of(build, ds, path)
            raw = {ID_VAR: _read(ds, ID_VAR, "iu", path, target="int64"),  # int64 or uint64 (format guide)
                   TIME_VAR: _read(ds, TIME_VAR, "f", path),
                   FLAG_VAR: _read(ds, FLAG_VAR, "iu", path)}
            for field in FIELDS:
                var_path = field.path(family)
                kind = "f" if field.file_dtype.startswith("float") else "iu"
                if field.required or _has(ds, var_path):
                    raw[field.column] = _read(ds, var_path, kind, path, family, target=field.file_dtype)
        except LiteFileError:
            raise
        except (OSError, RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # the NetCDF/HDF5 library tripped on the file's structure (e.g. a corrupt group or attribute)
            raise LiteFileError(path, f"corrupt or unsupported NetCDF4 content ({type(exc).__name__}: {exc})"
                                ) from None
    return build, family, raw


def soundings_table(path: Path, mtime: float, build: str, family: str,
                    raw: dict[str, np.ndarray]) -> tuple[pa.Table, LiteMetadata]:
    """The good soundings and metadata of a file from its variables' values, as :func:`read_lite_table` returns
    them: shapes checked, flagged / fill / NaN / out-of-range / repeated soundings dropped and counted, warnings.

    ``raw`` maps ``sounding_id``, ``time`` (float seconds since 1970), ``xco2_quality_flag`` and the
    :data:`FIELDS` columns (an optional one may be absent) to 1-D arrays; a float may be the fill value or NaN
    (the same to this function), so values read raw or with CF masking give the same table.
    ``mtime`` is the file's modification time (the production time when the name has none).
    """
    if raw[ID_VAR].ndim != 1:
        raise LiteFileError(path, f"variable {ID_VAR!r} has shape {raw[ID_VAR].shape}, expected one dimension")
    n_read = raw[ID_VAR].shape[0]
    for name, values in raw.items():
        if values.ndim != 1 or values.shape[0] != n_read:
            raise LiteFileError(path, f"variable {name!r} has shape {values.shape}, expected ({n_read},) "
                                      f"like {ID_VAR!r}")
    if n_read == 0:
        raise LiteFileError(path, "no soundings (the sounding_id dimension is empty)")

    warnings: list[str] = []
    flagged = raw[FLAG_VAR] != 0
    bad_value = np.zeros(n_read, dtype=bool)
    out_of_range = np.zeros(n_read, dtype=bool)
    range_notes = []
    for column in (*ESSENTIAL_COLUMNS, TIME_VAR):
        values = raw[column]
        missing = ~np.isfinite(values) | (values == FILL_VALUE)
        low, high, unit = VALID_RANGES[column]
        with np.errstate(invalid="ignore"):
            outside = ~missing & ((values < low) | (values > high))
        bad_value |= missing | outside
        out_of_range |= outside
        hit = outside & ~flagged
        if hit.any():
            bounds = (f"[{_iso(low)[:10]}, {_iso(high)[:10]}] UTC" if column == TIME_VAR
                      else f"[{low:g}, {high:g}] {unit}")
            range_notes.append(f"{column} outside {bounds} in {int(hit.sum()):,} sounding(s) "
                               f"(e.g. {_examples(values[hit])}{' s since 1970' if column == TIME_VAR else ''})")
    keep = ~flagged & ~bad_value
    n_flagged = int(flagged.sum())
    n_fill = int((~flagged & bad_value).sum())
    n_out_of_range = int((~flagged & out_of_range).sum())

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
        raise LiteFileError(path, f"no good soundings ({n_read} read: {n_flagged} flagged, {n_fill} with fill, "
                                  "NaN or out-of-range values in xco2, coordinates or time"
                                  + "".join(f"; {note}" for note in range_notes) + ")")
    if range_notes:
        warnings += [f"dropped: {note}" for note in range_notes]
    if n_duplicate:
        warnings.append(f"dropped: {n_duplicate:,} repeated sounding_id value(s), the first occurrence kept "
                        f"(e.g. {_examples(ids[~unique])})")
    time_s = take(raw[TIME_VAR]).astype(np.float64)
    backwards = np.flatnonzero(time_s[1:] < time_s[:-1]) + 1
    if backwards.size:
        i = int(backwards[0])
        warnings.append(f"time goes backwards at {backwards.size:,} sounding(s) in sounding_id order (first at "
                        f"sounding_id {int(ids[unique][i])}: {_iso(time_s[i])} after {_iso(time_s[i - 1])}); "
                        "kept, in sounding_id order")
    time_us = np.round(time_s * 1e6).astype(np.int64)
    columns = {ID_VAR: take(raw[ID_VAR]).astype(np.int64, copy=False), TIME_VAR: time_us}
    for field in FIELDS:
        values = raw.get(field.column)
        if values is None:  # optional variable absent from this file
            values = np.full(n_read, np.nan if field.file_dtype.startswith("float") else 0, field.file_dtype)
        elif field.column not in ESSENTIAL_COLUMNS and values.dtype.kind == "f":
            values = np.where(np.isfinite(values) & (values != FILL_VALUE), values, np.nan)
            if np.isnan(values[keep]).all():
                warnings.append(f"variable {field.path(family)!r} is all fill or NaN in the good soundings: "
                                f"column {field.column!r} is empty (NaN)")
        with np.errstate(over="ignore"):  # float64 beyond float32 (non-essential only): inf, then NaN below
            values = take(values).astype(field.file_dtype, copy=False)
        if values.dtype.kind == "f" and field.column not in ESSENTIAL_COLUMNS:
            values = np.where(np.isfinite(values), values, np.float32(np.nan)).astype(field.file_dtype)
        columns[field.column] = values

    name = printable(path.name)
    arrays = [pa.array(columns[f.name], type=f.type) for f in SOUNDINGS_SCHEMA if f.name != "source_file"]
    source = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n_kept, np.int32)), pa.array([name]))
    table = pa.Table.from_arrays([*arrays, source], schema=SOUNDINGS_SCHEMA)

    day = _day_of(path, time_us)
    off_day = np.count_nonzero((time_us // 86_400_000_000) != (day - dt.date(1970, 1, 1)).days)
    if off_day > n_kept // 2:
        warnings.append(f"{off_day:,} of {n_kept:,} good soundings have times off the file's day {day} "
                        f"(median time {_iso(float(np.median(time_s)))}): stored under {day}")
    meta = LiteMetadata(name, build, family, day, _production_time(path, mtime), n_read, n_kept, n_flagged,
                        n_fill, n_duplicate, n_out_of_range, tuple(warnings))
    return table, meta


def _examples(values: np.ndarray, k: int = 3) -> str:
    """A few distinct values, for a message: ``0, 5000, 1e+04``."""
    distinct = np.unique(values)
    shown = ", ".join(f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in distinct[:k].tolist())
    return shown + (", ..." if distinct.size > k else "")


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(float(seconds), dt.timezone.utc).isoformat(timespec="milliseconds")


# -- container checks ------------------------------------------------------------------------------------------

def _check_container(path: Path) -> float:
    """Fail early, with a clear reason, on files that are not (whole) HDF5 containers; return the mtime."""
    try:
        stat = path.stat()
        with open(path, "rb") as f:
            head = f.read(64)
    except FileNotFoundError:
        raise LiteFileError(path, "no such file") from None
    except IsADirectoryError:
        raise LiteFileError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise LiteFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    size = stat.st_size
    if size == 0:
        raise LiteFileError(path, "empty file (0 bytes): an interrupted download?")
    if not head.startswith(HDF5_SIGNATURE):
        text = head.lstrip().lower()
        if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
            raise LiteFileError(path, "an HTML/XML page saved as .nc4 (a failed or unauthorised download?), "
                                      "not NetCDF4")
        if head.startswith(b"CDF"):
            raise LiteFileError(path, "a NetCDF3 (classic) file: Lite files are NetCDF4/HDF5")
        if head.startswith(b"\x1f\x8b"):
            raise LiteFileError(path, "a gzip-compressed file, not NetCDF4/HDF5: decompress it first")
        if text.startswith((b"{", b"[")):
            raise LiteFileError(path, f"a JSON/text response saved as .nc4 (starts with {head[:24]!r}), "
                                      "not NetCDF4")
        raise LiteFileError(path, f"not a NetCDF4/HDF5 file (starts with {head[:8]!r})")
    if len(head) < 24:  # no superblock version 0-3 fits in fewer bytes
        raise LiteFileError(path, f"truncated: {size:,} bytes on disk, too short for an HDF5 superblock")
    declared = _hdf5_declared_size(head)
    if declared is not None and size < declared:
        raise LiteFileError(path, f"truncated: {size:,} bytes on disk, the HDF5 header declares {declared:,}")
    return stat.st_mtime


def _hdf5_declared_size(head: bytes) -> int | None:
    """End-of-file address from an HDF5 superblock at offset 0 (versions 0-3), or None if unknown."""
    version = head[8]
    if version in (0, 1):
        if len(head) < 14:
            return None
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


@contextlib.contextmanager
def _open_dataset(path: Path):
    """The open :class:`netCDF4.Dataset` (raw values: no masking, no scaling), closed on exit.

    The NetCDF library takes UTF-8 path names only: a path that is not valid UTF-8 is opened through a
    symbolic link with a plain name in a private temporary folder.
    """
    link_dir = None
    target = path
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        link_dir = tempfile.mkdtemp(prefix="oco2-lite-")
        target = Path(link_dir) / "input.nc4"
        os.symlink(os.path.abspath(path), target)
    try:
        try:
            ds = netCDF4.Dataset(target, "r")
        except FileNotFoundError:
            raise LiteFileError(path, "no such file (it vanished while being read)") from None
        except (OSError, RuntimeError) as exc:  # HDF5 signature present, but the library cannot open it
            hint = "; its last 4 KiB are zeros: a pre-allocated download that never finished?" \
                if _zero_tail(path) else ""
            detail = getattr(exc, "strerror", None) or exc
            raise LiteFileError(path, f"corrupt NetCDF4/HDF5 file ({detail}{hint})") from None
        try:
            ds.set_auto_maskandscale(False)
            yield ds
        finally:
            with contextlib.suppress(OSError, RuntimeError):  # closing a corrupt file may fail too
                ds.close()
    finally:
        if link_dir is not None:
            shutil.rmtree(link_dir, ignore_errors=True)


def _zero_tail(path: Path, size: int = 4096) -> bool:
    """True if the file ends with ``size`` zero bytes (what a pre-allocating downloader leaves unwritten)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() < 2 * size:
                return False
            f.seek(-size, os.SEEK_END)
            return not any(f.read(size))
    except OSError:
        return False


# -- variables -------------------------------------------------------------------------------------------------

def _has(ds, var_path: str) -> bool:
    group = ds
    *groups, name = var_path.split("/")
    for g in groups:
        if g not in group.groups:
            return False
        group = group.groups[g]
    return name in group.variables


def _read(ds, var_path: str, kinds: str, path: Path, family: str | None = None,
          target: str | None = None) -> np.ndarray:
    """A variable's raw values, checked for presence, type kind (``kinds``) and, for integers, the range of
    the ``target`` dtype they are stored as."""
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
    dtype = var.dtype if isinstance(var.dtype, np.dtype) else None  # vlen strings report the type `str`
    expected = {"f": "a float", "i": "an integer", "iu": "an integer"}[kinds]
    if dtype is None or dtype.kind not in kinds:
        shown = "string" if var.dtype is str else "compound" if dtype is not None and dtype.names else \
            (dtype if dtype is not None else var.dtype)
        raise LiteFileError(path, f"variable {var_path!r} has dtype {shown}, expected {expected} type")
    try:
        values = np.asarray(var[...])
    except (OSError, RuntimeError, IndexError, ValueError) as exc:
        raise LiteFileError(path, f"corrupt data in variable {var_path!r} ({exc})") from None
    if values.dtype.kind not in kinds:  # a variable-length type: the library reports its base dtype
        raise LiteFileError(path, f"variable {var_path!r} is variable-length ({dtype} arrays), expected "
                                  f"{expected} type, one value per sounding")
    if target is not None and values.dtype.kind in "iu" and values.size \
            and not np.can_cast(values.dtype, np.dtype(target)):
        info = np.iinfo(np.dtype(target))
        outside = (values < info.min) | (values > info.max)
        if outside.any():
            raise LiteFileError(path, f"variable {var_path!r} holds {_examples(values[outside])}, outside the "
                                      f"range of {target} [{info.min}, {info.max}] (stored as {values.dtype})")
    return values


def _build_of(ds, path: Path) -> str:
    try:
        build = getattr(ds, "BuildId", None)
    except (UnicodeError, AttributeError, RuntimeError) as exc:
        raise LiteFileError(path, f"global attribute 'BuildId' cannot be read ({exc})") from None
    if isinstance(build, bytes):
        build = build.decode("ascii", "replace")
    if build is not None and not isinstance(build, str):
        raise LiteFileError(path, f"global attribute 'BuildId' is not text: {build!r}")
    if build and build.strip():
        return build.strip()
    m = FILE_NAME_RE.match(printable(path.name))
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


def _name_match(path: Path):
    return FILE_NAME_RE.match(printable(path.name))


def _day_of(path: Path, time_us: np.ndarray) -> dt.date:
    """The UTC day of the file: from its standard name, else from the median time of its good soundings."""
    m = _name_match(path)
    if m:
        try:
            return dt.datetime.strptime(m.group("day"), "%y%m%d").date()
        except ValueError:
            raise LiteFileError(path, f"the file name holds an impossible day {m.group('day')!r} (YYMMDD)") from None
    median_s = float(np.median(time_us)) / 1e6
    return dt.datetime.fromtimestamp(median_s, dt.timezone.utc).date()


def _production_time(path: Path, mtime: float) -> dt.datetime:
    """Production time from the standard name, else the file's modification time (taken when it was opened)."""
    m = _name_match(path)
    if m:
        try:
            return dt.datetime.strptime(m.group("produced"), "%y%m%d%H%M%S").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            raise LiteFileError(path, f"the file name holds an impossible production time "
                                      f"{m.group('produced')!r} (YYMMDDhhmmss)") from None
    return dt.datetime.fromtimestamp(mtime, dt.timezone.utc).replace(microsecond=0)
