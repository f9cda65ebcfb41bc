"""`deloton export`: a progress bar (rows, rate, ETA) on a terminal, nothing otherwise."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from services.common.config import ConfigError, Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `export` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="readings or hourly/daily aggregates to CSV or Parquet",
        description="Export raw readings (those still in daily) or the hourly or daily "
        "aggregates of [--from, --to) to CSV or Parquet, streamed so memory stays flat. "
        "A progress bar shows on a terminal only.",
    )
    p.add_argument("--from", dest="start", required=True, type=_iso, help="ISO date or time")
    p.add_argument("--to", dest="end", required=True, type=_iso, help="ISO date or time (excl.)")
    p.add_argument("--bike", help="one bike serial")
    p.add_argument("--city", help="riders' city (case- and accent-insensitive)")
    p.add_argument("--resolution", choices=["raw", "hourly", "daily"], default="raw")
    p.add_argument("--format", dest="fmt", choices=["csv", "parquet"], required=True)
    p.add_argument("--out", required=True, type=Path, help="file to write")
    p.set_defaults(func=main)


def _iso(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def main(args: argparse.Namespace) -> int:
    """Run the export; configuration problems (bad range, no database) exit 2 with one line."""
    from services.common.reads.export import ExportQuery
    from services.export import job

    try:
        query = ExportQuery(args.resolution, args.start, args.end, args.bike, args.city)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not args.out.parent.is_dir():
        raise ConfigError(f"no such directory: {args.out.parent}")
    dsn = Settings().require_database()
    if not sys.stderr.isatty():
        job.export(dsn, query=query, fmt=args.fmt, out=args.out)
        return 0
    from tqdm import tqdm

    total = job.count(dsn, query=query)
    with tqdm(total=total, unit=" rows", unit_scale=True, file=sys.stderr, smoothing=0.1) as bar:
        rows = job.export(dsn, query=query, fmt=args.fmt, out=args.out, on_rows=bar.update)
    print(f"{rows} rows to {args.out}", file=sys.stderr)
    return 0
