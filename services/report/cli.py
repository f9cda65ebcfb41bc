"""`deloton report`: make the daily executive report of one day, store it and email it."""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path

from services.common.config import ConfigError, Settings
from services.report import data

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `report` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="make the daily executive PDF report and email it",
        description="Make the PDF report of one business day (REPORT_TIMEZONE), keep it in "
        "REPORT_DIR (and S3 when REPORT_BUCKET is set) and email it to the recipients, once "
        "per date. Prints one JSON result.",
    )
    p.add_argument(
        "--date",
        default="yesterday",
        metavar="YYYY-MM-DD",
        help="the day to report: a date, `yesterday` (default) or `today` (so far)",
    )
    p.add_argument(
        "--to",
        action="append",
        default=None,
        metavar="ADDR",
        help="recipient (repeat for several); overrides REPORT_RECIPIENTS",
    )
    p.add_argument("--out", type=Path, default=None, metavar="PATH", help="write the PDF here")
    p.add_argument(
        "--resend", action="store_true", help="email again even if this date was already sent"
    )
    p.set_defaults(func=main)


def resolve_date(text: str, tz_name: str, now: datetime | None = None) -> date:
    """`today`, `yesterday` (in the business time zone) or an ISO date."""
    tz = data.zone(tz_name)
    moment = now or datetime.now(UTC)
    if text == "yesterday":
        return data.yesterday(tz, moment)
    if text == "today":
        return moment.astimezone(tz).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--date must be YYYY-MM-DD, today or yesterday, not {text!r}") from None


def main(args: argparse.Namespace) -> int:
    """Run once and print the result as JSON."""
    settings = Settings()
    day = resolve_date(args.date, settings.report_timezone)
    # Imported here: matplotlib and fpdf2 take seconds to import, and every `deloton`
    # command builds the parser that imports this module.
    from services.report.job import run

    result = run(settings, day=day, recipients=args.to, out=args.out, resend=args.resend)
    log.info("report %s", result.status, extra={"result": result.as_dict()})
    print(json.dumps(result.as_dict()), flush=True)
    return 0
