"""The fleet health job on a real database and SES (moto): one email per incident opening and
per recovery, the bike flagged in GET /fleet/health until it recovers."""

from __future__ import annotations

from datetime import timedelta

import psycopg2.extensions
import pytest
from psycopg2.extras import execute_values

from services.common.config import Settings
from services.quality import job
from tests.alerts.support import Ses
from tests.api.conftest import LiveApi
from tests.compress.builders import add_rider, at, write_ride

pytestmark = pytest.mark.postgres

NOW = at("2026-11-20 10:00:00")
OPS = "ops@deloton.example"
SENDER = "fleet-health@deloton.example"
BIKES = ("SN0001", "SN0002", "SN0003", "SN0004")


def quality_settings(database_url: str, **extra: object) -> Settings:
    """The settings of a fleet health run on this test's database, sending to OPS."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, quality_window_s=300,
        quality_recipients=OPS, quality_sender=SENDER, **extra,
    )  # fmt: skip


def ses_for_ops(moto_url: str) -> Ses:
    """Moto's SES emptied, with the fleet health sender verified."""
    ses = Ses(moto_url)
    ses.reset()
    ses.verify(SENDER)
    return ses


def ride_window(cur: psycopg2.extensions.cursor, first_ride: int, end: object, *, bad: str) -> None:
    """Five minutes of readings on every bike up to `end`; `bad` loses heart-rate contact."""
    for i, bike in enumerate(BIKES):
        write_ride(
            cur, first_ride + i, 1, started_at=end - timedelta(seconds=301),  # type: ignore[operator]
            seconds=300, bike_serial=bike, hr_missing=1.0 if bike == bad else 0.0,
        )  # fmt: skip
    # Ingest wrote every bike's latest line a second after its time: no clock skew.
    execute_values(
        cur,
        """INSERT INTO daily.bikes (bike_serial, first_seen_at, last_seen_at, written_at)
           VALUES %s ON CONFLICT (bike_serial) DO UPDATE SET
           last_seen_at = EXCLUDED.last_seen_at, written_at = EXCLUDED.written_at""",
        [(b, end, end, end + timedelta(seconds=1)) for b in BIKES],  # type: ignore[operator]
    )


def incidents(conn: psycopg2.extensions.connection) -> list[tuple[str, bool, str, str | None]]:
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT bike_serial, cleared_at IS NULL, opened_email, cleared_email "
            "FROM ops.bike_incidents ORDER BY incident_id"
        )
        return cur.fetchall()


def test_an_incident_emails_ops_once_stays_flagged_and_emails_its_recovery(
    conn: psycopg2.extensions.connection,
    database_url: str,
    moto_url: str,
    live_api: LiveApi,
) -> None:
    ses = ses_for_ops(moto_url)
    settings = quality_settings(database_url, ses_endpoint_url=moto_url)
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        ride_window(cur, 100, NOW, bad="SN0002")

    first = job.run(settings, now=NOW)
    assert (first.status, first.judged, first.opened, first.emails_sent) == (
        "done", 4, ["SN0002"], 1,
    )  # fmt: skip
    again = job.run(settings, now=NOW + timedelta(seconds=30))
    assert (again.opened, again.cleared, again.emails_sent) == ([], [], 0)
    sent = ses.sent()
    assert len(sent) == 1
    assert sent[0].destinations == [OPS] and sent[0].source == SENDER
    assert "SN0002" in sent[0].subject and "no_contact" in sent[0].subject
    assert incidents(conn) == [("SN0002", True, "sent", None)]

    with live_api.client("read") as client:
        body = client.get("/fleet/health").json()
        flagged = client.get("/fleet/health", params={"flagged": "true"}).json()
    assert body["flagged"] == 1 and body["bikes"][0]["bike_serial"] == "SN0002"
    assert body["bikes"][0]["flagged"] and body["bikes"][0]["problems"] == ["no_contact"]
    assert body["bikes"][0]["measures"]["no_contact"] == 1.0
    assert all(not b["flagged"] and b["score"] == 1.0 for b in body["bikes"][1:])
    assert [b["bike_serial"] for b in flagged["bikes"]] == ["SN0002"]
    assert body["recent_incidents"][0]["cleared_at"] is None

    later = NOW + timedelta(minutes=10)
    with conn, conn.cursor() as cur:
        ride_window(cur, 200, later, bad="")
    recovered = job.run(settings, now=later)
    assert (recovered.cleared, recovered.emails_sent, recovered.open_incidents) == (
        ["SN0002"], 1, 0,
    )  # fmt: skip
    assert job.run(settings, now=later + timedelta(seconds=30)).emails_sent == 0
    sent = ses.sent()
    assert len(sent) == 2 and "SN0002 recovered" in sent[1].subject
    assert incidents(conn) == [("SN0002", False, "sent", "sent")]
    with live_api.client("read") as client:
        body = client.get("/fleet/health").json()
    assert body["flagged"] == 0 and not any(b["flagged"] for b in body["bikes"])
    assert body["recent_incidents"][0]["cleared_at"] is not None


def test_an_ses_outage_leaves_the_email_due_for_the_next_run(
    conn: psycopg2.extensions.connection, database_url: str, moto_url: str
) -> None:
    ses = Ses(moto_url)
    ses.reset()
    # Nothing listens on port 9: a transient failure.
    unreachable = quality_settings(database_url, ses_endpoint_url="http://127.0.0.1:9")
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        ride_window(cur, 100, NOW, bad="SN0003")
    down = job.run(unreachable, now=NOW)
    assert (down.opened, down.emails_sent, down.emails_failed) == (["SN0003"], 0, 0)
    assert incidents(conn) == [("SN0003", True, "pending", None)]
    ses.verify(SENDER)
    back = job.run(unreachable.model_copy(update={"ses_endpoint_url": moto_url}), now=NOW)
    assert (back.opened, back.emails_sent) == ([], 1)
    assert len(ses.sent()) == 1
