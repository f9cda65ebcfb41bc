"""Fixtures for the report: databases seeded through simulator, broker, ingest and compress,
and a moto server standing in for SES and S3."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import psycopg2
import pytest

from services.common.config import Settings
from tests import harness
from tests.alerts.support import Ses
from tests.report import seed

SENDER = "reports@deloton.example"
DAY = date(2026, 11, 26)  # a Thursday, London on GMT


@dataclass(frozen=True)
class Seeded:
    """A seeded database and the settings that point at it."""

    settings: Settings
    dsn: str
    workdir: Path

    def for_test(self, tmp_path: Path, **overrides: object) -> Settings:
        """The seeded settings with the test's own report and outbox directories."""
        return self.settings.model_copy(
            update={
                "report_dir": tmp_path / "reports",
                "email_outbox_dir": tmp_path / "outbox",
                **overrides,
            }
        )


@pytest.fixture(scope="module")
def seeded(
    broker: str, pg_server: str, pg_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    """Eight days of a small fleet: rides on DAY-3 and DAY-1, and on DAY a morning that
    compress has summarised (its readings gone) plus an evening still in daily. Some faults
    in the feed give rejected lines; a few alerts are recorded for the day's rides."""
    workdir = tmp_path_factory.mktemp("report-seed")
    with harness.cloned_database(pg_server, pg_template) as dsn:
        settings = harness.test_settings(broker, dsn, workdir)
        seed.simulate(settings, bikes=3, rides=1, seconds=240, seed=7,
                      start=datetime.fromisoformat("2026-11-23T10:00:00+00:00"))  # fmt: skip
        seed.simulate(settings, bikes=4, rides=2, seconds=300, seed=7,
                      start=datetime.fromisoformat("2026-11-25T09:00:00+00:00"))  # fmt: skip
        seed.simulate(settings, bikes=6, rides=3, seconds=400, seed=7, riders=30, faults=0.002,
                      start=datetime.fromisoformat("2026-11-26T07:30:00+00:00"))  # fmt: skip
        seed.ingest(settings)
        seed.record_alerts(dsn, day_start=datetime.fromisoformat("2026-11-26T07:00:00+00:00"))
        seed.date_rejects(dsn, at=datetime.fromisoformat("2026-11-26T08:00:00+00:00"))
        seed.roll_up(settings, datetime.fromisoformat("2026-11-26T23:00:00+00:00"))
        seed.simulate(settings, bikes=5, rides=2, seconds=300, seed=7, riders=30,
                      first_serial=20,
                      start=datetime.fromisoformat("2026-11-26T20:15:00+00:00"))  # fmt: skip
        seed.ingest(settings)
        seed.record_alerts(dsn, day_start=datetime.fromisoformat("2026-11-26T20:00:00+00:00"))
        yield Seeded(settings, dsn, workdir)


@pytest.fixture
def ses(moto_url: str) -> Ses:
    """The SES endpoint, emptied, with the report sender verified."""
    endpoint = Ses(moto_url)
    endpoint.reset()
    endpoint.verify(SENDER)
    return endpoint


@pytest.fixture
def fresh_db(pg_server: str, pg_template: str) -> Iterator[str]:
    """An empty migrated database of the test's own."""
    with harness.cloned_database(pg_server, pg_template) as dsn:
        yield dsn


def query(dsn: str, sql: str, params: object = None) -> list[tuple]:
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()
