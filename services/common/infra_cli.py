"""`deloton infra up|down|status` and `deloton migrate`."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from services.common import db, infra
from services.common.config import ENV_FILE, ConfigError, Settings

log = logging.getLogger(__name__)

# What `up` writes into .deloton/env beside the addresses: the client timings the embedded
# broker needs. It holds a first group join for half the session timeout, and holds fetches
# for much of fetch.wait.max.ms even when data is waiting. A real cluster keeps each
# client's defaults.
LOCAL_TUNING = {
    "KAFKA_SESSION_TIMEOUT_MS": "6000",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    "KAFKA_FETCH_WAIT_MAX_MS": "100",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `infra` and `migrate` subcommands."""
    p = sub.add_parser("infra", help="start/stop the embedded broker and database")
    p.add_argument("action", choices=["up", "down", "status"])
    p.set_defaults(func=cmd_infra)
    m = sub.add_parser("migrate", help="apply the schema migrations (idempotent)")
    m.set_defaults(func=cmd_migrate)


def external_settings() -> tuple[str | None, str | None]:
    """Addresses given by the environment itself (not by a previous `up`)."""
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("DATABASE_URL")


def up(settings: Settings) -> dict[str, str]:
    """Start whatever is not running yet; write and return the addresses."""
    state_dir = settings.state_dir
    state = infra.read_state(state_dir)
    ext_kafka, ext_db = external_settings()
    env: dict[str, str] = {}
    fresh_broker = False

    if ext_kafka:
        settings.kafka_bootstrap_servers = ext_kafka
        from services.common.kafka import ping

        ping(settings)
        env["KAFKA_BOOTSTRAP_SERVERS"] = ext_kafka
    else:
        b = state.get("broker", {})
        pid, port = int(b.get("pid", 0) or 0), int(b.get("port", 0) or 0)  # type: ignore[call-overload]
        if not (pid and infra.pid_alive(pid) and "tansu" in infra.pid_cmdline(pid)):
            broker = infra.start_broker(settings.embedded_kafka_port, state_dir / "logs/broker.log")
            pid, port = broker.pid, broker.port
            fresh_broker = True
            state["broker"] = {"pid": pid, "port": port}
            infra.write_state(state_dir, state)
        env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{port}"
        env |= LOCAL_TUNING

    if ext_db:
        db.connect(ext_db).close()
        env["DATABASE_URL"] = ext_db
    else:
        pgdata = (state_dir / "pgdata").resolve()
        server = infra.start_postgres(pgdata, settings.embedded_postgres_port)
        state["postgres"] = {"pgdata": str(pgdata), "port": server.port}
        infra.write_state(state_dir, state)
        env["DATABASE_URL"] = server.url()

    if fresh_broker:
        # The embedded broker keeps messages in memory only: a new one starts every topic at
        # offset 0, so offsets the database remembers from the last one would skip new data.
        forget_positions(env["DATABASE_URL"])

    write_env_file(state_dir / ENV_FILE.name, env)
    return env


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """Write the settings readable by the owner only: DATABASE_URL may carry a password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file left by an older version keeps its mode otherwise
    with os.fdopen(fd, "w") as out:
        out.write("".join(f"{k}={v}\n" for k, v in env.items()))


def forget_positions(database_url: str) -> None:
    """Reset ingest's stored offsets and sessions (a new, empty broker)."""
    from services.ingest.repository import forget_positions as forget

    conn = db.connect(database_url)
    try:
        with db.transaction(conn) as cur:
            forgotten = forget(cur)
    finally:
        conn.close()
    if forgotten:
        log.info("new embedded broker: forgot %d stored ingest offsets", forgotten)


def down(settings: Settings) -> list[str]:
    """Stop exactly what `up` started; return what was stopped."""
    state_dir = settings.state_dir
    state = infra.read_state(state_dir)
    stopped = []
    b = state.pop("broker", None)
    if b and infra.stop_pid(int(b["pid"]), "tansu"):  # type: ignore[call-overload]
        stopped.append(f"broker (pid {b['pid']})")
    pg = state.pop("postgres", None)
    if pg and infra.stop_postgres(Path(str(pg["pgdata"]))):
        stopped.append(f"postgres ({pg['pgdata']})")
    infra.write_state(state_dir, state)
    (state_dir / ENV_FILE.name).unlink(missing_ok=True)
    return stopped


def status(settings: Settings) -> list[str]:
    """One line per component: running or not, and where."""
    state = infra.read_state(settings.state_dir)
    lines = []
    b = state.get("broker")
    if b and infra.pid_alive(int(b["pid"])):  # type: ignore[call-overload]
        lines.append(f"kafka     running  127.0.0.1:{b['port']} (pid {b['pid']})")
    else:
        lines.append("kafka     stopped")
    pg = state.get("postgres")
    if pg and infra.port_in_use(int(pg["port"])):  # type: ignore[call-overload]
        lines.append(f"postgres  running  127.0.0.1:{pg['port']} ({pg['pgdata']})")
    else:
        lines.append("postgres  stopped")
    return lines


def cmd_infra(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.action == "up":
        env = up(settings)
        for k, v in env.items():
            print(f"{k}={db.without_password(v) if k == 'DATABASE_URL' else v}")
        print(f"(written to {settings.state_dir / ENV_FILE.name}, readable by you only)")
    elif args.action == "down":
        stopped = down(settings)
        print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")
    else:
        print("\n".join(status(settings)))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = Settings()
    conn = db.connect(settings.require_database())
    try:
        applied = db.migrate(conn)
    finally:
        conn.close()
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


__all__ = ["ConfigError", "down", "register", "status", "up"]
