"""Database errors in logs: what went wrong, never the row that carried personal data."""

from __future__ import annotations

import logging
import threading

import psycopg
import psycopg2
import pytest
from pydantic import SecretStr

from services.common import db
from services.common.config import Settings
from services.ingest.service import IngestService

pytestmark = pytest.mark.postgres

PERSONAL = ("Amelia", "Smith-Jones", "Harris Mill", "E8 5BR", "amelia@example.com", "1950-01-01")
REFUSED_RIDER = """
    INSERT INTO daily.riders (user_id, first_name, last_name, gender, address_line, city,
                              postcode, date_of_birth, email_address, details_at)
    VALUES (7, 'Amelia', 'Smith-Jones', 'unknown', '4 Harris Mill', 'Ryantown', 'E8 5BR',
            '1950-01-01', 'amelia@example.com', now())
"""


def refused(database_url: str) -> psycopg2.Error:
    """A real error whose DETAIL (PostgreSQL's "Failing row contains ...") holds a rider."""
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(REFUSED_RIDER)
    except psycopg2.Error as exc:
        assert any(p in str(exc) for p in PERSONAL), str(exc)
        return exc
    finally:
        conn.close()
    raise AssertionError("the row was accepted")


def test_error_line_names_the_error_and_never_the_row(database_url: str) -> None:
    line = db.error_line(refused(database_url))
    assert line.startswith("23514") and "riders_gender_check" in line, line
    assert not any(p in line for p in PERSONAL), line

    # psycopg 3 (the readers' driver) says the same of the same error.
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.Error) as caught:
        conn.execute(REFUSED_RIDER)
    line = db.error_line(caught.value)
    assert line.startswith("23514") and "riders_gender_check" in line, line
    assert not any(p in line for p in PERSONAL), line

    # Anything else: its first line, bounded.
    assert db.error_line(RuntimeError("first\nsecond")) == "RuntimeError: first"
    assert len(db.error_line(ValueError("x" * 5_000))) <= 300


def test_ingest_logs_a_database_error_without_the_row(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    exc = refused(database_url)
    # Only what _reconnect uses: the settings, the connection it replaces, the stop flag.
    service = IngestService.__new__(IngestService)
    service.settings = Settings(_env_file=None, database_url=SecretStr(database_url))  # type: ignore[call-arg]
    service.conn = psycopg2.connect(database_url)
    service.stop = threading.Event()
    with caplog.at_level(logging.WARNING, logger="services.ingest.service"):
        service._reconnect(exc, delay=0.01)
    service.conn.close()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "riders_gender_check" in logged, logged
    assert not any(p in logged for p in PERSONAL), logged
