"""The command line: ``python -m core {ingest,simulate,demo,detect,fetch,export,months} ... [--cache DIR]``.

Every command takes ``--cache DIR`` (default: ``$OCO2_CACHE``, else the checkout's ``data_cache/``, or
``./data_cache`` for an installed package: :func:`core.paths.cache_root`). Summaries go to stdout, progress and
problems to stderr; the exit status is 1 when any input was bad, 2 when the command cannot run
(bad arguments or settings, no such month, an unreadable day file, stale detections, no Dask scheduler, no
Earthdata credentials or network), 0 otherwise. The help texts (:func:`build_parser`) are plain text: this
docstring is not shown.
"""
from __future__ import annotations

import argparse
import sys

from .paths import cache_root

DESCRIPTION = "OCO-2 peak workbench: ingest OCO-2 Lite files, detect CO2 plume events, export them as CSV."
EPILOG = """\
Every command takes --cache DIR (default: $OCO2_CACHE, else data_cache/ of the checkout,
or ./data_cache when the project is installed, not run from a checkout).
Summaries go to stdout, progress and problems to stderr.
Exit status: 0 done; 1 some input was bad; 2 the command cannot run (bad arguments or
settings, no such month, an unreadable day file, stale detections, no Dask scheduler,
no Earthdata credentials or network).

Run "python -m core COMMAND --help" for the options of a command."""


class ProgressBar:
    """A one-line text progress bar on stderr (redrawn in place on a terminal, one line per step elsewhere)."""

    def __init__(self, label: str, stream=sys.stderr, width: int = 30):
        self.label, self.stream, self.width = label, stream, width
        self.tty = stream.isatty()

    def update(self, done: int, total: int, note: str = "") -> None:
        filled = int(self.width * done / total) if total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"{self.label} [{bar}] {done}/{total} {note}"
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(160) + ("\n" if done == total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _cmd_ingest(args) -> int:
    from .ingest import ingest_paths

    bar = ProgressBar("ingest")

    def on_file(i, n, report):
        bar.update(i, n, report.path.name)
        print(report.summary_line(), file=sys.stderr if report.bad else sys.stdout, flush=True)

    summary = ingest_paths(args.paths, cache=args.cache, on_file=on_file, force=args.force)
    print(summary.summary_line())
    return 1 if summary.n_bad else 0


def _cmd_simulate(args) -> int:
    from .simulate import simulate

    result = simulate(args.outdir, days=args.days, seed=args.seed, month=args.month,
                      passes_per_day=args.passes_per_day, pass_km=args.pass_km, build=args.build,
                      world=args.world, wind_error_ms=args.wind_error_ms)
    print(result.summary_line() if hasattr(result, "summary_line") else result)
    return 0


def _cmd_demo(args) -> int:
    from .demo import ensure_demo

    bar = ProgressBar("demo")
    summary = ensure_demo(cache=args.cache, on_file=lambda i, n, report: bar.update(i, n, report.path.name))
    print(summary["message"] if isinstance(summary, dict) and "message" in summary else summary)
    return 0


def _load_settings(path):
    """The settings of ``--rules FILE`` (default: the recommended preset), or None after printing why not."""
    from .settings import DetectionSettings

    try:
        return DetectionSettings.load(path) if path else DetectionSettings()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _cmd_detect(args) -> int:
    from .batch import ClusterError, DetectTaskError, describe_client, peaks_table, run_months
    from .cache import SoundingsCache

    settings = _load_settings(args.rules)
    if settings is None:
        return 2
    cache = SoundingsCache(args.cache)
    months = _months_to_detect(args, cache.months())
    if months is None or not _all_readable(cache, months):
        return 2
    if args.scheduler and args.workers != 1:
        print("error: give --workers N (a local Dask cluster) or --scheduler ADDRESS (an existing one), "
              "not both", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f"error: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    if args.soundings_url and args.workers == 1 and not args.scheduler:
        print("note: --soundings-url is where Dask workers read; one process reads the cache", file=sys.stderr)
    bars: dict[str, ProgressBar] = {}

    def on_orbit(month, done, total, orbit):
        bars.setdefault(month, ProgressBar(f"detect {month}")).update(done, total, f"orbit {orbit}")

    peaks = []
    try:
        with _cluster(args) as client:
            if client is not None:
                print(describe_client(client), file=sys.stderr, flush=True)
            runs = run_months(months, settings, cache=args.cache, on_orbit=on_orbit, client=client,
                              soundings_url=args.soundings_url)
            for month, candidates, seconds in runs:
                print(_detect_summary(month, candidates, seconds, settings), flush=True)
                peaks.append(peaks_table(candidates, include_rejected=args.all))
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DetectTaskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.out:
        table = _concat_peaks(peaks)
        table.to_csv(args.out, index=False)
        print(f"wrote {len(table):,} rows to {args.out}")
    return 0


def _cluster(args):
    """A Dask client for ``--workers N`` (N > 1) or ``--scheduler``, else a context holding None."""
    import contextlib

    from .batch import dask_client, uses_dask

    if not uses_dask(args.workers, args.scheduler):
        return contextlib.nullcontext(None)
    return dask_client(args.workers, args.scheduler)


def _concat_peaks(tables):
    """Concatenate peaks tables (one per month), keeping the contract columns when all are empty."""
    import pandas as pd

    non_empty = [t for t in tables if len(t)]
    return pd.concat(non_empty, ignore_index=True) if non_empty else tables[0]


def _detect_summary(month: str, candidates, seconds: float, settings) -> str:
    from .batch import peaks_table

    peaks = peaks_table(candidates)
    n_events = int(candidates["is_event"].sum()) if len(candidates) else 0
    n_accepted = len(peaks)
    n_attributed = int(peaks["source_id"].notna().sum()) if len(peaks) else 0
    from .false_alarms import month_summary

    line = (f"{month}: {len(candidates):,} candidates, {n_events:,} events, {n_accepted:,} accepted, "
            f"{n_attributed:,} attributed in {seconds:.1f} s (settings {settings.preset}, hash {settings.hash})")
    summary = month_summary(candidates)
    if summary is not None and summary.method != "fixed":
        lo, hi = summary.interval_per_1000km
        line += (f"; expected false events {summary.false_per_1000km:.2f} per 1,000 km (90 % {lo:.2f}-{hi:.2f}) at "
                 f"significance {summary.threshold:.2f} ({summary.method})")
        if summary.method == "fallback":
            line += ": too little track for the month's own null, detection.fallback_significance used"
        if summary.n_burst_like:
            line += (f"; {summary.n_burst_like} accepted events burst-like (up to "
                     f"{summary.burst_like_per_1000km:.2f} false per 1,000 km if all were one-sided bursts)")
    return line


def _months_to_detect(args, cached: list[str]) -> list[str] | None:
    """The months of ``--month`` or ``--months A:B`` that the cache holds, or None after printing why not."""
    root = cache_root(args.cache)
    held = f"(months: {', '.join(cached) or 'none'})"
    if args.month:
        if not _valid_month(args.month):
            print(f"error: --month must be YYYY-MM, got {args.month!r}", file=sys.stderr)
            return None
        if args.month not in cached:
            print(f"error: the cache {root} holds no soundings for {args.month} {held}", file=sys.stderr)
            return None
        return [args.month]
    first, sep, last = args.months.partition(":")
    if not sep or not _valid_month(first) or not _valid_month(last) or first > last:
        print(f"error: --months must be YYYY-MM:YYYY-MM (first <= last), got {args.months!r}", file=sys.stderr)
        return None
    wanted = _month_range(first, last)
    missing = [m for m in wanted if m not in cached]
    present = [m for m in wanted if m in cached]
    if not present:
        print(f"error: the cache {root} holds no soundings for {args.months} {held}", file=sys.stderr)
        return None
    if missing:
        print(f"note: no soundings for {', '.join(missing)} in {root}: skipped", file=sys.stderr)
    return present


def _all_readable(cache, months: list[str]) -> bool:
    """True when every day file of these months can be read; else prints each unreadable one and the fix."""
    bad = [row for month in months for row in cache.unreadable(month)["problem"]]
    for problem in bad:
        print(f"error: {problem}", file=sys.stderr)
    if bad:
        print("error: ingest the Lite file of each of those days again (python -m core ingest PATH: it replaces "
              "the unreadable file, keeping its bytes under unreadable/) or remove the file, then detect",
              file=sys.stderr)
    return not bad


def _valid_month(text: str) -> bool:
    import re

    return bool(re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text or ""))


def _month_range(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last`` inclusive."""
    year, month = map(int, first.split("-"))
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _cmd_fetch(args) -> int:
    from .fetch import FetchError, fetch_month

    bar = ProgressBar(f"ingest {args.month}")
    try:
        summary = fetch_month(args.month, cache=args.cache, timeout_s=args.timeout,
                              on_file=lambda i, n, report: bar.update(i, n, report.path.name),
                              log=lambda line: print(line, file=sys.stderr, flush=True))
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for report in summary.files:
        print(report.summary_line(), file=sys.stderr if report.bad else sys.stdout)
    print(summary.summary_line())
    return 1 if summary.n_bad else 0


def _cmd_export(args) -> int:
    import pandas as pd

    from .batch import peaks_table, stored_detections

    settings = _load_settings(args.rules)
    if settings is None:
        return 2
    stored = stored_detections(args.cache, args.month, settings)
    if stored is None:
        print(f"error: no detections for {args.month} with settings {settings.hash}: run "
              f"`python -m core detect --month {args.month}` first", file=sys.stderr)
        return 2
    if not stored.fresh:
        if not args.allow_stale:
            print(f"error: {stored.stale_reason(args.month)} (or export them anyway with --allow-stale)",
                  file=sys.stderr)
            return 2
        print(f"warning: exporting stale detections: {stored.stale_reason(args.month)}", file=sys.stderr)
    peaks = peaks_table(pd.read_parquet(stored.path), include_rejected=args.all)
    peaks.to_csv(args.out, index=False)
    print(f"wrote {len(peaks):,} rows to {args.out}")
    return 0


def _cmd_grid(args) -> int:
    from .cache import SoundingsCache
    from .xco2_grid import month_grid

    if args.month not in SoundingsCache(args.cache).months():
        print(f"error: the cache {cache_root(args.cache)} holds no soundings of {args.month}", file=sys.stderr)
        return 2
    try:
        grid = month_grid(args.month, cache=args.cache, resolution_deg=args.resolution)
    except ValueError as exc:  # a resolution that does not divide the sphere, an unreadable day file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    grid.to_netcdf(args.out)
    cells = int((grid["n_soundings"] > 0).sum())
    print(f"wrote {args.out}: {args.month} on a {args.resolution:g} degree grid, {cells:,} cells with data, "
          f"{int(grid['n_soundings'].sum()):,} good soundings")
    return 0


def _cmd_months(args) -> int:
    from .cache import SoundingsCache

    manifest = SoundingsCache(args.cache).manifest()
    if manifest.empty:
        print(f"the cache {cache_root(args.cache)} holds no soundings")
        return 0
    print(f"cache {cache_root(args.cache)}")
    print(months_table(manifest))
    for problem in manifest.loc[manifest["problem"].ne(""), "problem"]:
        print(f"error: {problem}; ingest the Lite file of that day again to replace it", file=sys.stderr)
    return 1 if manifest["problem"].ne("").any() else 0


def months_table(manifest) -> str:
    """The months of a cache manifest as an aligned text table: one line per month, then a total line when there
    are several (days, their first and last, good soundings, size [MB], unreadable day files when there are any).
    """
    readable = manifest["problem"].eq("")
    header = ["month", "day files", "first day", "last day", "good soundings", "size [MB]"]
    unreadable = int((~readable).sum())
    if unreadable:
        header.append("unreadable")
    rows = []
    for month, g in manifest.groupby("month", sort=True):
        ok = g[readable.loc[g.index]]
        row = [month, f"{len(g):,}", min(g["day"]), max(g["day"]), f"{int(ok['n_kept'].sum()):,}",
               f"{g['size_bytes'].fillna(0).sum() / 1e6:,.1f}"]
        rows.append(row + ([f"{len(g) - len(ok):,}"] if unreadable else []))
    if len(rows) > 1:
        total = ["total", f"{len(manifest):,}", min(manifest["day"]), max(manifest["day"]),
                 f"{int(manifest.loc[readable, 'n_kept'].sum()):,}",
                 f"{manifest['size_bytes'].fillna(0).sum() / 1e6:,.1f}"]
        rows.append(total + ([f"{unreadable:,}"] if unreadable else []))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    right = [False, True, False, False, True, True, True]

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache", metavar="DIR", default=None,
                        help="cache root (default: $OCO2_CACHE, else data_cache/ of the checkout, or "
                             "./data_cache for an installed package)")
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")

    def command(name: str, summary: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=summary, description=summary[0].upper() + summary[1:]
                              + ".", **kwargs)

    p = command("ingest", "ingest Lite .nc4 files or folders (recursive) into the cache",
                epilog="A bad file is reported by name with its reason and the others go in (exit status 1). "
                       "A day already held is replaced by a newer production of it, never by an older one.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="a Lite .nc4 file or a folder holding some")
    p.add_argument("--force", action="store_true",
                   help="replace a day even when the cache holds a newer production of it")
    p.set_defaults(func=_cmd_ingest)

    from .worlds import DEFAULT_WORLD, WIND_ERROR_MS, WORLD_DESCRIPTIONS

    p = command("simulate", "write OSSE Lite files with plumes of known emission",
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="noise worlds (--world):\n" + "\n".join(
                    f"  {name:<12} {text}" for name, text in WORLD_DESCRIPTIONS.items())
                + f"\n'winds off': the files' winds err by N(0, {WIND_ERROR_MS} m/s) per pass and component "
                  "(--wind-error-ms);\nthe plumes move with the true wind (truth_plumes.csv)")
    p.add_argument("outdir", metavar="OUTDIR", help="folder for the Lite files and the truth tables")
    p.add_argument("--days", type=int, default=3, metavar="N", help="days to simulate (default 3)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument("--month", default="2019-08", metavar="YYYY-MM",
                   help="month of the simulated days (default 2019-08)")
    p.add_argument("--passes-per-day", type=int, default=4, metavar="N", help="passes per day (default 4)")
    p.add_argument("--pass-km", type=float, default=3000.0, metavar="KM",
                   help="length of each pass [km] (default 3000)")
    p.add_argument("--build", default="B10", choices=["B9", "B10", "B11"], help="Lite file build (default B10)")
    p.add_argument("--world", default=DEFAULT_WORLD, choices=list(WORLD_DESCRIPTIONS), metavar="WORLD",
                   help=f"noise world, listed below (default {DEFAULT_WORLD}: noise exactly as the files state)")
    p.add_argument("--wind-error-ms", type=float, default=None, metavar="X",
                   help="sd of the per-pass error of the files' winds, each component [m/s] (default: the "
                        "world's, 0 in as-stated, 1.5 in the others)")
    p.set_defaults(func=_cmd_simulate)

    p = command("demo", "make and ingest the embedded demo month (does nothing when the cache holds it)")
    p.set_defaults(func=_cmd_demo)

    p = command("detect", "detect plume events in a month or a range of months and store them in the cache",
                epilog="The detections are stored under <cache>/detections/month=YYYY-MM/<settings hash>/, "
                       "where export and the workbench read them.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--month", metavar="YYYY-MM", help="the month to detect")
    which.add_argument("--months", metavar="YYYY-MM:YYYY-MM",
                       help="a range of months, first and last included (each stored as with --month)")
    p.add_argument("--rules", metavar="FILE.toml", help="detection settings (default: the recommended preset)")
    p.add_argument("--out", metavar="FILE.csv", help="write the accepted events as CSV (all months in one file)")
    p.add_argument("--all", action="store_true", help="with --out: rejected candidates too")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="1 (default): this process, no Dask; N > 1: a local Dask cluster of N worker processes")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on an existing Dask cluster (tcp://HOST:PORT) instead of local processes")
    p.add_argument("--soundings-url", metavar="URL",
                   help="where the Dask workers read the soundings (folder or fsspec URL such as "
                        "s3://bucket/oco2/soundings; default: <cache>/soundings)")
    p.set_defaults(func=_cmd_detect)

    p = command("fetch", "download a month of real OCO-2 Lite files (Earthdata login) and ingest them",
                epilog="Credentials: EARTHDATA_USERNAME and EARTHDATA_PASSWORD, or a ~/.netrc entry for "
                       "urs.earthdata.nasa.gov. The files go to <cache>/raw/fetch-YYYY-MM/.")
    p.add_argument("--month", required=True, metavar="YYYY-MM", help="the month to download")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds to wait for the Earthdata servers to answer (default 5)")
    p.set_defaults(func=_cmd_fetch)

    p = command("export", "export the stored detections of a month as CSV",
                epilog="Detections stored before the month's data last changed (a day file ingested, replaced "
                       "or removed since) are refused: run detect again, or pass --allow-stale.")
    p.add_argument("--month", required=True, metavar="YYYY-MM", help="the month to export")
    p.add_argument("--rules", metavar="FILE.toml",
                   help="the settings the detections were made with (default: the recommended preset)")
    p.add_argument("--out", required=True, metavar="FILE.csv", help="the CSV to write")
    p.add_argument("--all", action="store_true", help="rejected candidates too")
    p.add_argument("--allow-stale", action="store_true",
                   help="export detections older than the month's data (with a warning) instead of refusing")
    p.set_defaults(func=_cmd_export)

    p = command("grid", "write a month's mean XCO2 anomaly and sounding counts on a lat/lon grid (NetCDF)",
                epilog="The anomaly is each sounding's XCO2 minus its orbit's median [ppm], averaged per cell; "
                       "the file (CF attributes) opens as a map in QGIS, Panoply or ncview.")
    p.add_argument("--month", required=True, metavar="YYYY-MM", help="the month to grid")
    p.add_argument("--out", required=True, metavar="FILE.nc", help="the NetCDF file to write")
    p.add_argument("--resolution", type=float, default=1.0, metavar="DEG",
                   help="cell size [degrees], dividing 180 and 360 (default 1)")
    p.set_defaults(func=_cmd_grid)

    p = command("months", "list the months the cache holds (day files, good soundings, size)",
                epilog="Unreadable day files are counted and named on stderr (exit status 1).")
    p.set_defaults(func=_cmd_months)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
