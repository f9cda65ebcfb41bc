"""Pooled, read-only PostgreSQL access for the readers (API, dashboard, report).

The write path keeps psycopg2 (its COPY is tuned); readers use psycopg 3 and its pool, so a
request borrows an open connection instead of paying a new one each time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from services.common.config import ConfigError

Connection = psycopg.Connection[dict[str, Any]]


def open_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    application_name: str = "deloton-reader",
    timeout_s: float = 10.0,
) -> ConnectionPool[Connection]:
    """A pool of dict-row connections, opened and checked; ConfigError when unreachable."""
    pool: ConnectionPool[Connection] = ConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        kwargs={"application_name": application_name, "row_factory": dict_row},
        open=False,
        timeout=timeout_s,
        name=application_name,
        # An idle connection cut by a database restart or failover would otherwise be handed
        # to the next request, which fails (503) once per pooled connection, long after the
        # database is back. The check costs one empty round trip per checkout.
        check=ConnectionPool.check_connection,
    )
    try:
        pool.open(wait=True, timeout=timeout_s)
    except Exception as exc:  # psycopg_pool.PoolTimeout and connection errors alike
        pool.close()
        raise ConfigError(f"cannot open a PostgreSQL pool: {exc.__class__.__name__}") from exc
    return pool


@contextmanager
def read_only(pool: ConnectionPool[Connection]) -> Iterator[Connection]:
    """A pooled connection inside one READ ONLY transaction, returned to the pool after."""
    with pool.connection() as conn:
        conn.read_only = True
        with conn.transaction():
            yield conn


@contextmanager
def read_write(pool: ConnectionPool[Connection]) -> Iterator[Connection]:
    """A pooled connection inside one read-write transaction (the few writes readers make)."""
    with pool.connection() as conn:
        conn.read_only = False  # the setting stays on a pooled connection: reset it
        with conn.transaction():
            yield conn


@contextmanager
def read_only_connection(
    dsn: str, *, application_name: str = "deloton-reader"
) -> Iterator[Connection]:
    """One unpooled connection in a READ ONLY transaction (jobs that run once, like the report)."""
    try:
        conn: Connection = psycopg.connect(
            dsn, application_name=application_name, row_factory=dict_row, connect_timeout=10
        )
    except psycopg.OperationalError as exc:
        raise ConfigError(f"cannot connect to PostgreSQL: {exc.__class__.__name__}") from exc
    try:
        conn.read_only = True
        with conn.transaction():
            yield conn
    finally:
        conn.close()
