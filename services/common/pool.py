"""Pooled, read-only PostgreSQL access for the readers (API, dashboard, report).

The write path keeps psycopg2 (its COPY is tuned); readers use psycopg 3 and its pool, so a
request borrows an open connection instead of paying a new one each time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from services.common.config import ConfigError

Connection = psycopg.Connection[dict[str, Any]]
AsyncConnection = psycopg.AsyncConnection[dict[str, Any]]


IDLE_CHECK_S = 1.0


def _stamp_returned(conn: Connection | AsyncConnection) -> None:
    """Remember when the connection went back to the pool.

    Called by this module's context managers as they give the connection back, not as the
    pool's `reset` callback: with one, the pool hands every returned connection to a worker
    (a queue and a thread or task wake-up per request) just to run it.
    """
    conn._deloton_returned_at = time.monotonic()  # type: ignore[union-attr]


def _idle(conn: Connection | AsyncConnection) -> bool:
    """Whether the connection sat in the pool for IDLE_CHECK_S or longer (or is new)."""
    returned = getattr(conn, "_deloton_returned_at", None)
    return returned is None or time.monotonic() - returned >= IDLE_CHECK_S


def _check_if_idle(conn: Connection) -> None:
    """Ping a connection that sat idle for IDLE_CHECK_S or longer; the pool replaces it on error."""
    if _idle(conn):
        ConnectionPool.check_connection(conn)


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
        # database is back. Only connections idle for a while pay the round trip of the check:
        # under load they come straight back and a ping per request would cost the API latency.
        check=_check_if_idle,
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
        try:
            conn.read_only = True
            with conn.transaction():
                yield conn
        finally:
            _stamp_returned(conn)


@contextmanager
def read_write(pool: ConnectionPool[Connection]) -> Iterator[Connection]:
    """A pooled connection inside one read-write transaction (the few writes readers make)."""
    with pool.connection() as conn:
        try:
            conn.read_only = False  # the setting stays on a pooled connection: reset it
            with conn.transaction():
                yield conn
        finally:
            _stamp_returned(conn)


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


# --- asyncio ---------------------------------------------------------------------------------


async def _check_if_idle_async(conn: AsyncConnection) -> None:
    if _idle(conn):
        await AsyncConnectionPool.check_connection(conn)


async def _read_only_session(conn: AsyncConnection) -> None:
    # Every statement on these connections is its own read-only transaction.
    await conn.execute("SET default_transaction_read_only = on")


async def open_async_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    application_name: str = "deloton-reader",
    timeout_s: float = 10.0,
) -> AsyncConnectionPool[AsyncConnection]:
    """A pool of read-only, autocommit dict-row connections for asyncio readers.

    Each statement runs as its own READ ONLY transaction (the session default), so a read of
    one statement is one round trip instead of three (BEGIN, the query, COMMIT). Statements
    of one request each take their own snapshot, as they already did in a READ COMMITTED
    transaction. Idle connections are checked like `open_pool`'s; ConfigError when unreachable.
    """
    pool: AsyncConnectionPool[AsyncConnection] = AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        kwargs={"application_name": application_name, "row_factory": dict_row, "autocommit": True},
        open=False,
        timeout=timeout_s,
        name=f"{application_name}-async",
        configure=_read_only_session,
        check=_check_if_idle_async,
    )
    try:
        await pool.open(wait=True, timeout=timeout_s)
    except Exception as exc:  # psycopg_pool.PoolTimeout and connection errors alike
        await pool.close()
        raise ConfigError(f"cannot open a PostgreSQL pool: {exc.__class__.__name__}") from exc
    return pool


@asynccontextmanager
async def reading(pool: AsyncConnectionPool[AsyncConnection]) -> AsyncIterator[AsyncConnection]:
    """A pooled read-only connection (autocommit: a transaction per statement)."""
    async with pool.connection() as conn:
        try:
            yield conn
        finally:
            _stamp_returned(conn)
