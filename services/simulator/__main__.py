"""`python -m services.simulator simulate|replay ...`: the simulator's subcommands alone."""

from __future__ import annotations

import argparse
import sys

from services.common import logs
from services.simulator import cli


def main(argv: list[str] | None = None) -> int:
    """Parse the simulator's arguments and run the chosen subcommand."""
    parser = argparse.ArgumentParser(prog="python -m services.simulator")
    parser.add_argument("--log-level", default="INFO")
    cli.register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    logs.setup(args.log_level, json=False)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
