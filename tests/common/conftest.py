"""Fixtures for the shared read layer: a fresh database, a writer and a readers' pool."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import psycopg2.extensions
import pytest
from pydantic import SecretStr

from services.common import pool
from services.common.config import Settings


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg2.extensions.connection]:
    """A writing connection to this test's database (test data, compress runs)."""
    connection = psycopg2.connect(database_url)
    yield connection
    connection.close()


@pytest.fixture
def readers(database_url: str) -> Iterator[pool.ConnectionPool[pool.Connection]]:
    """The readers' pool on this test's database."""
    opened = pool.open_pool(database_url, max_size=2)
    yield opened
    opened.close()


@pytest.fixture
def compress_settings(database_url: str) -> Settings:
    """Settings for compress runs on this test's database, small batches."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=SecretStr(database_url),
        compress_batch_rides=2,
        retention_hours=12,
        ride_silence_s=60,
    )
