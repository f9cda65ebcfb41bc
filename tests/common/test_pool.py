"""The readers' pool: dict rows, read-only transactions, a clear error when unreachable."""

import time

import psycopg
import pytest

from services.common import pool
from services.common.config import ConfigError


def test_read_only_transaction_refuses_writes(database_url: str) -> None:
    readers = pool.open_pool(database_url, max_size=2)
    try:
        with pool.read_only(readers) as conn:
            row = conn.execute("SELECT count(*) AS n FROM daily.rides").fetchone()
            assert row == {"n": 0}
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), pool.read_only(readers) as conn:
            conn.execute("DELETE FROM daily.rides")
        with pool.read_only(readers) as conn:  # the connection went back usable
            assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
    finally:
        readers.close()


def test_single_connection_is_read_only(database_url: str) -> None:
    with pool.read_only_connection(database_url) as conn:
        assert conn.execute("SHOW transaction_read_only").fetchone() == {
            "transaction_read_only": "on"
        }


def test_unreachable_server_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        pool.open_pool("postgresql://nobody@127.0.0.1:1/none", timeout_s=1)


def test_connections_cut_by_a_database_restart_are_replaced_not_handed_out(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a restart (here: every server process of the pool terminated, as a fast
    shutdown does) the idle pooled connections are dead; a reader must get a live one.
    A restart takes longer than the idle time after which a connection is checked."""
    monkeypatch.setattr(pool, "IDLE_CHECK_S", 0.2)
    readers = pool.open_pool(database_url, min_size=2, max_size=2, application_name="pool-cut")
    try:
        with pool.read_only(readers) as a, pool.read_only(readers) as b:
            assert (
                a.execute("SELECT 1 AS one").fetchone() == b.execute("SELECT 1 AS one").fetchone()
            )
        with psycopg.connect(database_url, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'pool-cut'"
            ).fetchone()
            assert cut is not None and cut[0] == 2
        time.sleep(0.3)
        for _ in range(3):
            with pool.read_only(readers) as conn:
                assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
    finally:
        readers.close()
