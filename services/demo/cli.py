"""`deloton demo`: infra up, migrate, then the simulator and every service until Ctrl-C.

Exit codes: 0 when stopped by Ctrl-C or SIGTERM (the normal end), 1 when a service exited
on its own (the demo reports it and stops the rest), 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import sys
import threading
from datetime import datetime
from types import FrameType
from typing import Any

import psycopg2
from pydantic import SecretStr

from services.common import db, infra, infra_cli
from services.common.config import ConfigError, Settings
from services.demo import report, repository, supervisor
from services.simulator.pacing import MAX, parse_speed

log = logging.getLogger(__name__)

TICK_S = 10.0


def register(subparsers: Any) -> None:
    """Add the `demo` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="infra up, migrate, a simulated fleet and every service; Ctrl-C stops them",
        description="Start the embedded broker and database (unless KAFKA_BOOTSTRAP_SERVERS / "
        "DATABASE_URL are set), apply the migrations, then run the simulator, ingest, alerts "
        "and compress as child processes, print where each runs and a progress line every "
        f"{TICK_S:.0f} s. Ctrl-C stops the services (simulator first); the broker and "
        "database keep running with the data unless --down is given.",
        epilog="Exit status: 0 after Ctrl-C or SIGTERM, 1 when a service exited on its own, "
        "2 for a configuration error.",
    )
    p.add_argument("--bikes", type=_positive, default=20, metavar="N", help="bikes (20)")
    p.add_argument(
        "--speed", type=_speed, default="realtime", help="realtime or a factor of it (realtime)"
    )
    p.add_argument(
        "--faults",
        type=_probability,
        default=0.002,
        metavar="P",
        help="fault rate per line (0.002)",
    )
    p.add_argument("--no-alerts", action="store_true", help="do not run the alerts service")
    p.add_argument("--no-dashboard", action="store_true", help="do not run the live dashboard")
    p.add_argument(
        "--down", action="store_true", help="stop the broker and database too when the demo ends"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo until a signal (0) or until a service exits on its own (1)."""
    settings = Settings()
    specs = supervisor.plan(
        settings,
        bikes=args.bikes,
        speed=args.speed,
        faults=args.faults,
        alerts=not args.no_alerts,
        dashboard=not args.no_dashboard,
    )
    preflight(specs)
    signals = _Signals()
    signals.install()
    notes: list[str] = []
    started: list[supervisor.Child] = []
    code = 0
    try:
        _say("infra up (the embedded broker and database unless their addresses are set) ...")
        env = infra_cli.up(settings)
        settings.kafka_bootstrap_servers = env["KAFKA_BOOTSTRAP_SERVERS"]
        settings.database_url = SecretStr(env["DATABASE_URL"])
        _migrate(settings)
        api_key = _demo_api_key(settings) if any(s.name == "api" for s in specs) else None
        notes = speed_notes(args.speed)
        child_env = os.environ | env | {"PYTHONUNBUFFERED": "1"} | speed_env(args.speed)
        for spec in specs:
            if signals.requested.is_set():
                break
            argv = supervisor.command(spec, log_level=args.log_level, plain_logs=args.plain_logs)
            started.append(
                supervisor.start(spec, argv, env=child_env, log_dir=settings.state_dir / "logs")
            )
        if not signals.requested.is_set():
            code = _supervise(started, settings, args, signals, notes, api_key)
    finally:
        if started:
            _say("stopping the services (Ctrl-C again kills them at once) ...")
            supervisor.stop_all(
                started,
                hurry=signals.hurry,
                on_stopped=lambda c, s, k: _say(report.stopped(c, s, k)),
            )
        _finish_infra(settings, down=args.down)
    return code


def preflight(specs: list[supervisor.Spec]) -> None:
    """Fail before starting anything when a service could not start."""
    for spec in specs:
        if spec.metrics_port and infra.port_in_use(spec.metrics_port):
            var = spec.port_var or f"{spec.name.upper()}_METRICS_PORT"
            raise ConfigError(
                f"{spec.name}'s port {spec.metrics_port} is already in use: set {var}"
            )
    if any(s.name == "alerts" for s in specs) and importlib.util.find_spec("faust") is None:
        raise ConfigError(
            "alerts needs the alerts extra (pip install 'deloton-stream[alerts]'): "
            "install it or pass --no-alerts"
        )
    if any(s.name == "dashboard" for s in specs) and importlib.util.find_spec("dash") is None:
        raise ConfigError(
            "the dashboard needs the dashboard extra (pip install 'deloton-stream[dashboard]'): "
            "install it or pass --no-dashboard"
        )


def _supervise(
    started: list[supervisor.Child],
    settings: Settings,
    args: argparse.Namespace,
    signals: _Signals,
    notes: list[str],
    api_key: tuple[str, str] | None = None,
) -> int:
    """Print the table, then progress lines until a signal (0) or a child exits (1)."""
    email = _email(settings) if not args.no_alerts else "off (--no-alerts)"
    dsn = settings.require_database()
    ext_kafka, ext_db = infra_cli.external_settings()
    _say(
        report.table(
            started,
            kafka=settings.require_kafka() + ("" if ext_kafka else " (embedded)"),
            database=db.redact(dsn) + ("" if ext_db else " (embedded)"),
            email=email,
            down=args.down,
            tick_s=TICK_S,
            notes=notes,
            api=_api_line(settings, api_key) if api_key else None,
        )
    )
    if any(c.name == "dashboard" for c in started):
        _say(f"\n  dashboard  {supervisor.dashboard_url(settings)}  (live rides, leaderboard)\n")
    progress = _Progress(dsn)
    try:
        dead = supervisor.watch(
            started, stop=signals.requested, tick_s=TICK_S, on_tick=progress.tick
        )
    finally:
        progress.close()
    if dead is None:
        return 0
    print(
        report.failure(dead, supervisor.tail(dead.log_path, start=dead.log_start)),
        file=sys.stderr,
        flush=True,
    )
    return 1


def _migrate(settings: Settings) -> None:
    """Apply the migrations."""
    conn = db.connect(settings.require_database(), application_name="demo")
    try:
        applied = db.migrate(conn)
    finally:
        conn.close()
    _say(f"migrations: {len(applied)} applied" + (f" ({', '.join(applied)})" if applied else ""))


def _demo_api_key(settings: Settings) -> tuple[str, str]:
    """A fresh key with every scope for this demo run: (name, token); names are never reused."""
    import psycopg
    from psycopg.rows import dict_row

    from services.api import keys

    name = f"demo-{datetime.now():%Y%m%d-%H%M%S}"
    with psycopg.connect(
        settings.require_database(), connect_timeout=10, row_factory=dict_row
    ) as conn:
        token = keys.create(conn, name=name, scopes="read,pii,admin")
    return name, token


def _api_line(settings: Settings, key: tuple[str, str]) -> str:
    """Where the API runs and the demo key, with a request to paste."""
    name, token = key
    url = f"http://localhost:{settings.api_port}"
    return (
        f"{url}  key {token}  (read,pii,admin; `deloton api-key revoke {name}`)\n"
        f"             try: curl -H 'Authorization: Bearer {token}' {url}/daily"
    )


# Above real time the simulated clock runs ahead of the wall clock; ingest must accept that.
FAST_FUTURE_S = 366 * 86_400


def speed_env(speed: str) -> dict[str, str]:
    """Settings the services need at this speed."""
    return {"INGEST_MAX_FUTURE_S": str(FAST_FUTURE_S)} if parse_speed(speed) > 1 else {}


def speed_notes(speed: str) -> list[str]:
    """Tell the user what running faster than real time changes."""
    factor = parse_speed(speed)
    if factor <= 1:
        return []
    return [
        f"at {factor:g}x the simulated clock runs ahead of the wall clock: ingest accepts lines "
        f"up to {FAST_FUTURE_S // 86_400} days ahead (INGEST_MAX_FUTURE_S) for this demo"
    ]


def _email(settings: Settings) -> str:
    """Where alert emails go, decided exactly as the alerts service decides it."""
    from services.alerts.sender import ses_client

    to = settings.email_override_recipient
    override = f", all to {to} (EMAIL_OVERRIDE_RECIPIENT)" if to else ""
    if ses_client(settings) is None:
        outbox = settings.email_outbox_dir.resolve()
        return f"outbox {outbox} (.eml files: no AWS credentials{override})"
    return f"SES in {settings.aws_region} (AWS credentials found{override})"


def _finish_infra(settings: Settings, *, down: bool) -> None:
    if down:
        stopped = infra_cli.down(settings)
        _say("stopped " + ", ".join(stopped) if stopped else "no embedded infra to stop")
    elif infra.read_state(settings.state_dir):
        _say(
            "the broker and database are still running, with the data: "
            "`deloton infra down` stops them"
        )


class _Progress:
    """Prints one line of row counts per tick; survives the database going away."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: psycopg2.extensions.connection | None = None
        self.previous: dict[str, int] | None = None

    def tick(self) -> None:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = db.connect(self.dsn, application_name="demo")
            counts = repository.row_counts(self.conn)
        except (psycopg2.Error, ConfigError) as exc:
            first = db.first_line(exc) or type(exc).__name__
            _say(f"{datetime.now():%H:%M:%S}  (cannot count rows: {first})")
            self.close()
            return
        _say(report.progress(datetime.now(), counts, self.previous))
        self.previous = counts

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class _Signals:
    """SIGINT, SIGTERM and SIGHUP ask for a stop; a second one stops without waiting."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.hurry = threading.Event()

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested.is_set():
            self.hurry.set()
        self.requested.set()


def _say(text: str) -> None:
    print(text, flush=True)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _speed(text: str) -> str:
    """'realtime' or a factor, passed on to the simulator as written."""
    try:
        value = parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value == MAX:
        raise argparse.ArgumentTypeError("max would flood the broker for ever: give a factor")
    return text


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


__all__ = ["preflight", "register", "run"]
