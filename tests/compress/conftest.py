"""Fixtures for compress: a fresh database of the test's own, no broker needed."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import psycopg2.extensions
import pytest
from pydantic import SecretStr

from services.common.config import Settings
from tests import harness


@pytest.fixture
def compress_settings(database_url: str) -> Settings:
    """Settings pointing at this test's database, with tiny batches so batching is exercised."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=SecretStr(database_url),
        compress_batch_rides=2,
        retention_hours=12,
        ride_silence_s=60,
    )


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg2.extensions.connection]:
    """A connection to this test's database (the `db` fixture would also start a broker)."""
    connection = psycopg2.connect(database_url)
    yield connection
    connection.close()


@pytest.fixture
def reference_conn(pg_server: str, pg_template: str) -> Iterator[psycopg2.extensions.connection]:
    """A connection to a second fresh database, to compute the state a clean run reaches."""
    with harness.cloned_database(pg_server, pg_template) as dsn:
        connection = psycopg2.connect(dsn)
        yield connection
        connection.close()
