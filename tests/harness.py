"""Real infrastructure for tests and benchmarks: the embedded broker and a PostgreSQL server.

KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL in the environment are used when set; otherwise the
embedded broker and an embedded PostgreSQL are started on free ports and stopped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr

from services.common import db, infra
from services.common.config import Settings
from services.common.infra_cli import LOCAL_TUNING

ROOT = Path(__file__).resolve().parents[1]
# The client timings `deloton infra up` writes for the embedded broker, as Settings fields.
LOCAL_CLIENT_SETTINGS = {name.lower(): int(value) for name, value in LOCAL_TUNING.items()}


@contextlib.contextmanager
def running_broker() -> Iterator[str]:
    """Bootstrap servers of a real broker for the duration of the block."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    workdir = Path(tempfile.mkdtemp(prefix="deloton-broker-"))
    broker = infra.start_broker(infra.free_port(), workdir / "broker.log")
    try:
        yield broker.bootstrap
    finally:
        infra.stop_pid(broker.pid, "tansu")
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """DSN of a PostgreSQL server (its `postgres` database) on which we may CREATE DATABASE."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    workdir = Path(tempfile.mkdtemp(prefix="deloton-pg-"))
    server = infra.start_postgres(workdir / "pgdata", infra.free_port())
    try:
        yield server.url("postgres")
    finally:
        infra.stop_postgres(server.pgdata)
        shutil.rmtree(workdir, ignore_errors=True)


def dsn_for(server_dsn: str, database: str) -> str:
    """The same server, another database."""
    params = psycopg2.extensions.parse_dsn(server_dsn)
    params["dbname"] = database
    return psycopg2.extensions.make_dsn(**params)


def admin_execute(server_dsn: str, sql: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
    conn = psycopg2.connect(server_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def create_template(server_dsn: str) -> str:
    """A migrated template database; fresh test databases are cloned from it."""
    name = f"deloton_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_execute(server_dsn, f'CREATE DATABASE "{name}"')
    conn = db.connect(dsn_for(server_dsn, name))
    try:
        db.migrate(conn)
    finally:
        conn.close()
    return name


def create_database(server_dsn: str, template: str) -> str:
    """A fresh migrated database cloned from the template; returns its DSN."""
    name = f"deloton_t_{uuid.uuid4().hex[:12]}"
    admin_execute(server_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return dsn_for(server_dsn, name)


@contextlib.contextmanager
def template_database(server_dsn: str) -> Iterator[str]:
    """A migrated template database for the duration of the block; yields its name."""
    name = create_template(server_dsn)
    try:
        yield name
    finally:
        admin_execute(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def cloned_database(server_dsn: str, template: str) -> Iterator[str]:
    """A fresh database cloned from the template for the duration of the block; yields its DSN."""
    dsn = create_database(server_dsn, template)
    try:
        yield dsn
    finally:
        drop_database(server_dsn, dsn)


@contextlib.contextmanager
def scratch_database(server_dsn: str) -> Iterator[str]:
    """A new migrated database for the duration of the block; yields its DSN."""
    with template_database(server_dsn) as template, cloned_database(server_dsn, template) as dsn:
        yield dsn


def drop_database(server_dsn: str, dsn: str) -> None:
    """Drop a test database, closing whatever is still connected to it."""
    name = psycopg2.extensions.parse_dsn(dsn)["dbname"]
    admin_execute(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def unique_topics(prefix: str = "t") -> dict[str, str]:
    """Topic names of their own for one test."""
    tag = f"{prefix}-{uuid.uuid4().hex[:10]}"
    return {
        "topic_raw": f"{tag}.raw",
        "topic_bikes": f"{tag}.bikes",
        "topic_telemetry": f"{tag}.telemetry",
        "topic_events": f"{tag}.events",
        "topic_rejects": f"{tag}.rejects",
        "topic_alerts": f"{tag}.alerts",
    }


def test_settings(bootstrap: str, database_url: str | None, workdir: Path, **overrides) -> Settings:
    """Settings for a test: real broker and database, own topics, local client timings."""
    values: dict[str, object] = {
        "kafka_bootstrap_servers": bootstrap,
        "database_url": database_url,
        **LOCAL_CLIENT_SETTINGS,
        "state_dir": workdir / ".deloton",
        "email_outbox_dir": workdir / "outbox",
        "ingest_group": f"ingest-{uuid.uuid4().hex[:8]}",
        "alerts_app_id": f"alerts-{uuid.uuid4().hex[:8]}",
        "ingest_metrics_port": 0,
        "alerts_metrics_port": 0,
        **unique_topics(),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# Fields a service process needs from the test's Settings, passed through its environment.
SERVICE_FIELDS = (
    "kafka_bootstrap_servers",
    "database_url",
    *LOCAL_CLIENT_SETTINGS,
    "topic_raw",
    "topic_bikes",
    "topic_telemetry",
    "topic_events",
    "topic_rejects",
    "topic_alerts",
    "ingest_group",
    "ingest_metrics_port",
)


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `deloton` process that must run with these settings."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for field in SERVICE_FIELDS:
        value = getattr(settings, field)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None:
            env[field.upper()] = str(value)
    return env | extra


def consume_all(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0
) -> list[tuple[bytes | None, bytes, int, int]]:
    """Read `expected` messages from the start of a topic: (key, value, partition, offset)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "fetch.queue.backoff.ms": 10,
        }
    )
    out: list[tuple[bytes | None, bytes, int, int]] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 0.5):
                if msg.error() is None:
                    out.append((msg.key(), msg.value(), msg.partition(), msg.offset()))
    finally:
        consumer.close()
    return out


def partition_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's end offset, read from fetch responses (the broker's list-offsets is off)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"ends-{uuid.uuid4().hex[:8]}",
         "enable.partition.eof": True, "auto.offset.reset": "earliest"}
    )  # fmt: skip
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
        consumer.assign(parts)
        ends: dict[int, int] = {}
        deadline = time.monotonic() + 30
        while len(ends) < len(parts) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is not None and msg.error().code() == -191:
                ends[msg.partition()] = msg.offset()
        return ends
    finally:
        consumer.close()
