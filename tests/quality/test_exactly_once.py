"""Incident emails exactly once: a run killed between the sender accepting an email and the
database recording it, then the next run, leave one email per incident opening and one per
recovery (real PostgreSQL, moto's SES in server mode, the outbox; a real SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2.extensions
import pytest

from services.alerts.sender import OutboxSender
from services.common.config import Settings
from services.quality import job
from tests.compress.builders import add_rider, at
from tests.quality.test_job import NOW, incidents, quality_settings, ride_window, ses_for_ops

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def killed_run(settings: Settings, now: datetime, transport: str, when: str) -> None:
    """One run in a child process, killed at its first email (tests.quality.crash_while_sending)."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.require_database(),
        "SES_ENDPOINT_URL": settings.ses_endpoint_url or "",
        "EMAIL_OUTBOX_DIR": str(settings.email_outbox_dir),
        "QUALITY_WINDOW_S": str(settings.quality_window_s),
        "QUALITY_RECIPIENTS": settings.quality_recipients,
        "QUALITY_SENDER": settings.quality_sender,
        "QUALITY_EMAIL_LEASE_S": "0",  # the claim has run out by the next run
    }
    args = ["-m", "tests.quality.crash_while_sending", now.isoformat(), transport, when]
    child = subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]


def test_a_run_killed_after_ses_accepted_never_sends_the_email_again(
    conn: psycopg2.extensions.connection, database_url: str, moto_url: str, tmp_path: Path
) -> None:
    ses = ses_for_ops(moto_url)
    # A lease of 0: the killed run's claim has run out by the time the next run looks.
    settings = quality_settings(
        database_url, ses_endpoint_url=moto_url, email_outbox_dir=tmp_path / "outbox",
        quality_email_lease_s=0,
    )  # fmt: skip
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        ride_window(cur, 100, NOW, bad="SN0002")

    killed_run(settings, NOW, "ses", "after")
    assert len(ses.sent()) == 1  # SES has it; the database does not know
    again = job.run(settings, now=NOW + timedelta(seconds=30))
    assert len(ses.sent()) == 1
    assert (again.opened, again.emails_sent, again.emails_unconfirmed) == ([], 0, 1)
    assert incidents(conn) == [("SN0002", True, "unconfirmed", None)]

    later = NOW + timedelta(minutes=10)
    with conn, conn.cursor() as cur:
        ride_window(cur, 200, later, bad="")
    killed_run(settings, later, "ses", "after")  # clears the incident, killed at its email
    assert len(ses.sent()) == 2
    for n in (30, 60):
        job.run(settings, now=later + timedelta(seconds=n))
    sent = ses.sent()
    assert [("SN0002 recovered" in m.subject) for m in sent] == [False, True]
    assert incidents(conn) == [("SN0002", False, "unconfirmed", "unconfirmed")]


@pytest.mark.parametrize("when", ["after", "before"])
def test_the_outbox_tells_whether_a_killed_run_delivered(
    conn: psycopg2.extensions.connection, database_url: str, tmp_path: Path, when: str
) -> None:
    """The outbox keeps what it accepted: the next run finds the email there (`after`) and
    records it sent, or does not (`before`) and sends it. Either way one email."""
    outbox = tmp_path / "outbox"
    settings = quality_settings(database_url, email_outbox_dir=outbox, quality_email_lease_s=0)
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        ride_window(cur, 100, NOW, bad="SN0004")

    killed_run(settings, NOW, "outbox", when)
    assert len(list(outbox.glob("*.eml"))) == (1 if when == "after" else 0)
    again = job.run(settings, now=NOW + timedelta(seconds=30), sender=OutboxSender(outbox))
    assert again.emails_sent == 1
    assert job.run(settings, now=NOW + timedelta(seconds=60)).emails_sent == 0
    assert len(list(outbox.glob("*.eml"))) == 1
    assert incidents(conn) == [("SN0004", True, "sent", None)]


def test_an_email_another_run_is_sending_is_left_to_it(
    conn: psycopg2.extensions.connection, database_url: str, tmp_path: Path
) -> None:
    """A live claim (its lease not run out) is another run's: this run neither sends the email
    nor waits for it, and the email is sent once the claim is gone. (The incident's email is
    made due again by hand, as if the first run had not sent it.)"""
    from services.common import delivery

    outbox = tmp_path / "outbox"
    settings = quality_settings(database_url, email_outbox_dir=outbox)
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        ride_window(cur, 100, NOW, bad="SN0001")
    first = job.run(settings, now=NOW, sender=OutboxSender(outbox))
    assert first.opened == ["SN0001"] and first.emails_sent == 1
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE ops.bike_incidents SET opened_email = 'pending' WHERE bike_serial = 'SN0001' "
            "RETURNING incident_id"
        )
        (incident_id,) = cur.fetchone()
        cur.execute("DELETE FROM ops.email_deliveries")
        claimed = delivery.claim(cur, key=f"incident/{incident_id}/opened", domain="x.example")
    assert claimed.state == "claimed"
    held = job.run(settings, now=NOW + timedelta(seconds=30), sender=OutboxSender(outbox))
    assert (held.emails_sent, held.emails_unconfirmed) == (0, 0)
    assert len(list(outbox.glob("*.eml"))) == 1
    with conn, conn.cursor() as cur:
        delivery.release(cur, claimed)  # that run found the email refused
    assert job.run(settings, now=NOW + timedelta(seconds=60)).emails_sent == 1
    assert len(list(outbox.glob("*.eml"))) == 2
