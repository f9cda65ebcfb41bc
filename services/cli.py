"""The `deloton` command: one entry point whose subcommands are the product's surface."""

from __future__ import annotations

import argparse
import importlib
import sys

from services.common.config import ConfigError

# Each service registers its own subcommands; the module must define `register(subparsers)`.
COMMAND_MODULES = [
    "services.common.infra_cli",
    "services.simulator.cli",
    "services.ingest.cli",
    "services.compress.cli",
    "services.alerts.cli",
    "services.dashboard.cli",
    "services.api.cli",
    "services.demo.cli",
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every service's subcommands."""
    parser = argparse.ArgumentParser(
        prog="deloton", description="Deloton Stream: live exercise-bike telemetry."
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument("--plain-logs", action="store_true", help="human-readable logs, not JSON")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the chosen subcommand, print configuration errors as one line."""
    from services.common import logs

    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level, json=not args.plain_logs)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"deloton: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
