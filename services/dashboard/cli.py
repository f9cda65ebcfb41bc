"""`deloton dashboard`: the live rider dashboard."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `dashboard` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "dashboard",
        help="the live rider dashboard (Dash) on DASHBOARD_HOST:DASHBOARD_PORT",
        description="Serve the riders' dashboard: current ride, live leaderboard, recent rides "
        "and the fleet. Live data comes from TOPIC_EVENTS and TOPIC_ALERTS into memory; the "
        "recent-rides and fleet numbers from PostgreSQL, cached for DASHBOARD_CACHE_S.",
    )
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The dashboard's options (shared with `python -m services.dashboard`)."""
    p.add_argument("--host", default=None, help="bind address (DASHBOARD_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (DASHBOARD_PORT, 8050)")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from services.common.config import Settings
    from services.dashboard import service

    settings = Settings()
    if args.host is not None:
        settings.dashboard_host = args.host
    if args.port is not None:
        settings.dashboard_port = args.port
    return service.run(settings)
