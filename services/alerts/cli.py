"""`deloton alerts`: the heart-rate alerts service."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `alerts` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "alerts",
        help="heart-rate alerts: events -> episodes -> daily.alerts -> email",
        description="Consume ride events, raise one alert per out-of-range episode, "
        "record it in daily.alerts, publish it and email the rider (SES, or .eml files in "
        "EMAIL_OUTBOX_DIR without AWS credentials). Serves /metrics on ALERTS_METRICS_PORT.",
    )
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The alerts options (shared with `python -m services.alerts`)."""
    p.add_argument("--senders", type=int, default=4, help="email sender threads (default 4)")
    p.add_argument(
        "--stale-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="an alert not emailed this long after its reading is `expired` (default "
        "ALERT_STALE_AFTER_S, 900): replaying old events never mails riders about past rides, "
        "and an SES outage is retried until then",
    )
    p.add_argument(
        "--replication-factor",
        type=int,
        default=1,
        help="replication factor of the state changelog topic (1 for the local broker)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the service with Settings from the environment."""
    from services.alerts import service
    from services.common.config import Settings

    settings = Settings()
    if args.stale_after is not None:
        settings = settings.model_copy(update={"alert_stale_after_s": args.stale_after})
    return service.run(
        settings,
        senders=args.senders,
        replication_factor=args.replication_factor,
    )
