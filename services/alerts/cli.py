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
        default=900.0,
        metavar="SECONDS",
        help="record but do not email alerts whose reading is older than this (default 900), "
        "so replaying old events never mails riders about past rides",
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

    return service.run(
        Settings(),
        senders=args.senders,
        stale_after_s=args.stale_after,
        replication_factor=args.replication_factor,
    )
