"""`deloton ingest`: the raw feed into the daily schema."""

from __future__ import annotations

import argparse
import json
import logging

from services.common.config import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `ingest` subcommand."""
    p = sub.add_parser("ingest", help="consume the raw bike feed into the daily schema")
    p.add_argument(
        "--until-idle",
        type=float,
        metavar="SECONDS",
        help="exit once caught up and idle this long (tests, backfills, benchmarks)",
    )
    p.add_argument("--split-topics", action="store_true", help="read the bike + telemetry topics")
    p.add_argument("--group", help="consumer group (default: INGEST_GROUP)")
    p.add_argument("--no-events", action="store_true", help="do not publish clean events")
    p.add_argument(
        "--report",
        action="store_true",
        help="print a JSON summary at exit: rate and peak memory",
    )
    p.add_argument(
        "--track-latency",
        action="store_true",
        help="keep each message's produce-to-commit latency for the --report summary",
    )
    p.add_argument(
        "--track-state",
        action="store_true",
        help="keep each batch's saved-state size for the --report summary",
    )
    p.set_defaults(func=cmd_ingest)


def cmd_ingest(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from services.common import db
    from services.common.runtime_store import following
    from services.ingest.service import IngestService

    settings = Settings()
    if args.split_topics:
        settings.ingest_split_topics = True
    if args.group:
        settings.ingest_group = args.group
    if args.no_events:
        settings.ingest_publish_events = False
    conn = db.connect(settings.require_database())
    try:
        db.prepare_schema(conn, settings)
    finally:
        conn.close()
    if settings.ingest_metrics_port:
        start_http_server(settings.ingest_metrics_port, addr=settings.metrics_bind)
    service = IngestService(
        settings, track_latency=args.track_latency, track_state=args.track_state
    )
    service.install_signal_handlers()
    # The silence window may change at run time: the service reads self.settings per batch.
    runtime = following(
        settings,
        application_name="deloton-ingest",
        on_change=lambda current: setattr(service, "settings", current),
    )
    try:
        stats = service.run(until_idle=args.until_idle)
    finally:
        runtime.stop()
    if args.report:
        import resource

        summary = stats.summary()
        summary["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(summary), flush=True)
    log.info(
        "ingest stopped",
        extra={"consumed": stats.consumed, "readings": stats.readings, "rejects": stats.rejects},
    )
    return 0
