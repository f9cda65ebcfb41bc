"""`deloton compress`: run the roll-up and retention once, or every compress_interval_s."""

from __future__ import annotations

import argparse
import json
import logging
import time
from datetime import datetime

import psycopg2

from services.common import db
from services.common.config import ConfigError, Settings
from services.compress import metrics
from services.compress.job import run

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `compress` subcommand."""
    p = subparsers.add_parser(
        "compress",
        help="summarise finished rides into historical and drop expired daily data",
        description="Summarise finished rides into the historical schema, then remove "
        "full-resolution data older than RETENTION_HOURS from the daily schema. Prints one "
        "JSON result per run.",
    )
    p.add_argument(
        "--now", type=_iso, help="pretend the clock says this (ISO 8601; no zone means UTC)"
    )
    p.add_argument(
        "--loop", action="store_true", help="run again every COMPRESS_INTERVAL_S until Ctrl-C"
    )
    p.set_defaults(func=main)


def _iso(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 timestamp: {text!r}") from None


def main(args: argparse.Namespace) -> int:
    """Run once (or in a loop); a run skipped because another holds the lock still exits 0."""
    if args.loop and args.now is not None:
        raise ConfigError("--now fixes the clock, so it cannot be combined with --loop")
    settings = Settings()
    if not args.loop:
        _run_and_print(settings, args.now)
        return 0
    if settings.compress_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.compress_metrics_port, addr=settings.metrics_bind)
    while True:
        try:
            _run_and_print(settings, None)
        except (psycopg2.Error, ConfigError) as exc:
            metrics.RUNS.labels("failed").inc()
            # A database restart must not end the schedule; the next run finishes the work.
            log.error(
                "compress run failed; retrying in %d s", settings.compress_interval_s,
                extra={"error": db.error_line(exc), "where": db.error_where(exc)},
            )  # fmt: skip
        time.sleep(settings.compress_interval_s)


def _run_and_print(settings: Settings, now: datetime | None) -> None:
    result = run(settings, now=now).as_dict()
    metrics.RUNS.labels(result["status"]).inc()
    if result["status"] != "skipped":
        metrics.RUN_SECONDS.observe(result["seconds"].get("total", 0.0))
    log.info("compress %s", result["status"], extra={"result": result})
    print(json.dumps(result), flush=True)
