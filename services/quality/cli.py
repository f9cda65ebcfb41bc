"""`deloton quality`: judge the fleet's data quality once, or every QUALITY_INTERVAL_S."""

from __future__ import annotations

import argparse
import json
import logging
import time
from datetime import datetime

import psycopg2

from services.common import db
from services.common.config import ConfigError, Settings
from services.quality.job import run

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `quality` subcommand."""
    p = subparsers.add_parser(
        "quality",
        help="score each bike's data quality, open/clear incidents, email ops",
        description="Score each bike's data over the last QUALITY_WINDOW_S (heart-rate "
        "contact, gaps, duplicates, order, stuck sensors, implausible values, clock skew), "
        "open an incident for a bike below QUALITY_MIN_SCORE and email QUALITY_RECIPIENTS, "
        "once when it opens and once when it clears. Prints one JSON result per run.",
    )
    p.add_argument("--now", type=datetime.fromisoformat, help="pretend the clock says this")
    p.add_argument(
        "--loop", action="store_true", help="run again every QUALITY_INTERVAL_S until Ctrl-C"
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run once (or in a loop, serving /metrics on QUALITY_METRICS_PORT)."""
    if args.loop and args.now is not None:
        raise ConfigError("--now fixes the clock, so it cannot be combined with --loop")
    settings = Settings()
    conn = db.connect(settings.require_database(), application_name="deloton-quality")
    try:
        db.prepare_schema(conn, settings)
    finally:
        conn.close()
    if not args.loop:
        _run_and_print(settings, args.now)
        return 0
    if settings.quality_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.quality_metrics_port, addr=settings.metrics_bind)
    while True:
        try:
            _run_and_print(settings, None)
        except (psycopg2.Error, ConfigError) as exc:
            log.error(
                "quality run failed; retrying in %d s", settings.quality_interval_s,
                extra={"error": db.error_line(exc), "where": db.error_where(exc)},
            )  # fmt: skip
        time.sleep(settings.quality_interval_s)


def _run_and_print(settings: Settings, now: datetime | None) -> None:
    result = run(settings, now=now).as_dict()
    log.info("quality %s", result["status"], extra={"result": result})
    print(json.dumps(result), flush=True)
