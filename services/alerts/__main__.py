"""`python -m services.alerts [options]`: `deloton alerts` without the other services' imports."""

from __future__ import annotations

import argparse
import sys

from services.alerts.cli import add_arguments, run
from services.common import logs
from services.common.config import ConfigError


def main(argv: list[str] | None = None) -> int:
    """Parse the alerts options and run the service."""
    parser = argparse.ArgumentParser(prog="python -m services.alerts")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--plain-logs", action="store_true")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logs.setup(args.log_level, json=not args.plain_logs)
    try:
        return run(args)
    except ConfigError as exc:
        print(f"alerts: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
