"""Session-wide real broker and PostgreSQL; a fresh database and topics for every test."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from services.common.config import Settings
from tests import harness

REAL_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "deloton_real_sample.jsonl"
FIXTURE_SAMPLE = Path(__file__).resolve().parent / "fixtures" / "deloton_real_sample.jsonl"


@pytest.fixture(scope="session")
def real_sample() -> Path:
    """The 1,000 messages captured from the real feed (kept in tests/fixtures)."""
    return FIXTURE_SAMPLE


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """Bootstrap servers of a real Kafka-compatible broker for the session."""
    with harness.running_broker() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """DSN of a real PostgreSQL server for the session (DATABASE_URL, else embedded)."""
    with harness.running_postgres() as dsn:
        yield dsn


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> Iterator[str]:
    """A migrated template database that each test's database is cloned from."""
    with harness.template_database(pg_server) as name:
        yield name


@pytest.fixture
def database_url(pg_server: str, pg_template: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    with harness.cloned_database(pg_server, pg_template) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real SES-compatible endpoint (moto in server mode) shared by the session's tests."""
    from tests.alerts.support import running_moto

    with running_moto(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


@pytest.fixture
def kafka_settings(broker: str, tmp_path: Path) -> Settings:
    """Settings with the real broker and topics of this test's own (no database)."""
    return harness.test_settings(broker, None, tmp_path)


@pytest.fixture
def settings(broker: str, database_url: str, tmp_path: Path) -> Settings:
    """Settings with the real broker, this test's own topics and its own fresh database."""
    return harness.test_settings(broker, database_url, tmp_path)


@pytest.fixture
def db(settings: Settings) -> Iterator[psycopg2.extensions.connection]:
    """A connection to this test's database."""
    conn = psycopg2.connect(settings.require_database())
    yield conn
    conn.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    """SIGTERM (a CI timeout, `kill`) interrupts like Ctrl-C, so teardown stops the servers."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the real servers are marked, so `-m "not kafka"` skips them."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"broker", "kafka_settings", "settings"}:
            item.add_marker(pytest.mark.kafka)
        if names & {"pg_server", "database_url", "settings", "db"}:
            item.add_marker(pytest.mark.postgres)
