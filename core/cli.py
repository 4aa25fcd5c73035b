"""The command line: ``python -m core {ingest,simulate,demo,detect,export,months} ... [--cache DIR]``.

Every command takes ``--cache DIR`` (default: ``$OCO2_CACHE``, else ``data_cache/``). Summaries go to stdout,
progress and problems to stderr; the exit status is 1 when any input was bad, 0 otherwise.
"""
from __future__ import annotations

import argparse
import sys

from .paths import cache_root


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
                      passes_per_day=args.passes_per_day, pass_km=args.pass_km, build=args.build)
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
    from .batch import peaks_table, run_month
    from .cache import SoundingsCache

    settings = _load_settings(args.rules)
    if settings is None:
        return 2
    months = SoundingsCache(args.cache).months()
    if args.month not in months:
        print(f"error: the cache {cache_root(args.cache)} holds no soundings for {args.month} "
              f"(months: {', '.join(months) or 'none'})", file=sys.stderr)
        return 2
    bar = ProgressBar(f"detect {args.month}")
    candidates, seconds = run_month(args.month, settings, cache=args.cache, workers=args.workers,
                                    on_orbit=lambda i, n, orbit: bar.update(i, n, f"orbit {orbit}"))
    peaks = peaks_table(candidates, include_rejected=args.all)
    n_events = int(candidates["is_event"].sum()) if len(candidates) else 0
    n_accepted = int((candidates["is_event"] & candidates["status"].eq("accepted")).sum()) if len(candidates) else 0
    n_attributed = int(peaks["source_id"].notna().sum()) if len(peaks) else 0
    print(f"{args.month}: {len(candidates):,} candidates, {n_events:,} events, {n_accepted:,} accepted, "
          f"{n_attributed:,} attributed in {seconds:.1f} s (settings {settings.preset}, hash {settings.hash})")
    if args.out:
        peaks.to_csv(args.out, index=False)
        print(f"wrote {len(peaks):,} rows to {args.out}")
    return 0


def _cmd_export(args) -> int:
    from .batch import load_detections, peaks_table

    settings = _load_settings(args.rules)
    if settings is None:
        return 2
    candidates = load_detections(args.cache, args.month, settings)
    if candidates is None:
        print(f"error: no detections for {args.month} with settings {settings.hash}: run "
              f"`python -m core detect --month {args.month}` first", file=sys.stderr)
        return 2
    peaks = peaks_table(candidates, include_rejected=args.all)
    peaks.to_csv(args.out, index=False)
    print(f"wrote {len(peaks):,} rows to {args.out}")
    return 0


def _cmd_months(args) -> int:
    from .cache import SoundingsCache

    manifest = SoundingsCache(args.cache).manifest()
    if manifest.empty:
        print(f"the cache {cache_root(args.cache)} holds no soundings")
        return 0
    per_month = manifest.groupby("month").agg(files=("file_name", "size"), soundings=("n_kept", "sum"))
    print(per_month.to_string())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache", metavar="DIR", default=None,
                        help="cache root (default: $OCO2_CACHE, else data_cache/)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", parents=[common], help="ingest Lite .nc4 files or folders (recursive)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--force", action="store_true",
                   help="replace a day even when the cache holds a newer production of it")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("simulate", parents=[common], help="write OSSE Lite files with plumes of known emission")
    p.add_argument("outdir")
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--month", default="2019-08", help="YYYY-MM of the simulated days")
    p.add_argument("--passes-per-day", type=int, default=4)
    p.add_argument("--pass-km", type=float, default=3000.0, help="length of each pass [km]")
    p.add_argument("--build", default="B10", choices=["B9", "B10", "B11"])
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("demo", parents=[common], help="make and ingest the embedded demo month (idempotent)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("detect", parents=[common], help="detect plume events in a month")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--rules", metavar="FILE.toml", help="detection settings (default: the recommended preset)")
    p.add_argument("--out", metavar="FILE.csv", help="write the accepted events as CSV")
    p.add_argument("--all", action="store_true", help="with --out: rejected candidates too")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="local processes (default 1)")
    p.set_defaults(func=_cmd_detect)

    p = sub.add_parser("export", parents=[common], help="export stored detections of a month as CSV")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--rules", metavar="FILE.toml", help="the settings the detections were made with")
    p.add_argument("--out", required=True, metavar="FILE.csv")
    p.add_argument("--all", action="store_true", help="rejected candidates too")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("months", parents=[common], help="list the months the cache holds")
    p.set_defaults(func=_cmd_months)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
