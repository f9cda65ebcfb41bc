"""`python -m services.dashboard`: the dashboard without importing the other services' CLIs."""

import argparse
import sys

from services.common import logs
from services.common.config import ConfigError
from services.dashboard.cli import add_arguments, run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m services.dashboard")
    add_arguments(parser)
    args = parser.parse_args()
    logs.setup("INFO", json=True)
    try:
        sys.exit(run(args))
    except ConfigError as exc:
        print(f"dashboard: error: {exc}", file=sys.stderr)
        sys.exit(2)
