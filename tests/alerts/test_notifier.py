"""daily.alerts -> email, against the real PostgreSQL and the moto SES server."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest
from prometheus_client import REGISTRY

from services.alerts import repository
from services.alerts.app import Recorder
from services.alerts.models import Alert, Rider, Seen
from services.alerts.notifier import EXPIRED_LOG, Notifier, send_due
from services.alerts.rules import Limits
from services.alerts.sender import OutboxSender, SendError, SesSender, sender_factory
from services.common import db as dbmod
from services.common.config import Settings
from tests import harness
from tests.alerts.support import SENDER, Ses

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC)


def alert(ride_id: int, episode: int = 1, user_id: int = 9) -> Alert:
    seen = tuple(
        Seen(s, NOW - timedelta(seconds=5 - s), hr, "high")
        for s, hr in [(1, 201), (2, 202), (3, 203)]
    )
    who = Rider(user_id, "female", date(1980, 1, 1))
    return Alert(ride_id, episode, user_id, "SN0009", "high", seen[-1].recorded_at, seen,
                 Limits(52, 167), who)  # fmt: skip


def rider(
    conn: psycopg2.extensions.connection,
    user_id: int = 9,
    email: str | None = "dee@example.com",
    email_invalid: str | None = None,
) -> None:
    """The rider's row, as ingest writes it (the notifier reads the address there)."""
    with dbmod.transaction(conn) as cur:
        cur.execute(
            """INSERT INTO daily.riders (user_id, first_name, last_name, gender, date_of_birth,
                   email_address, email_invalid, details_at)
               VALUES (%s, 'Dee', 'Example', 'female', '1980-01-01', %s, %s, now())""",
            (user_id, email, email_invalid),
        )


@pytest.fixture
def pg_settings(database_url: str, moto_url: str, tmp_path: Path) -> Settings:
    """Settings with this test's database and moto as SES (no broker needed)."""
    return harness.test_settings(
        "127.0.0.1:9", database_url, tmp_path, ses_endpoint_url=moto_url, email_sender=SENDER
    )


@pytest.fixture
def conn(pg_settings: Settings) -> Iterator[psycopg2.extensions.connection]:
    """A connection to the test's database, which knows rider 9 (dee@example.com)."""
    c = dbmod.connect(pg_settings.require_database())
    rider(c)
    yield c
    c.close()


def insert(conn: psycopg2.extensions.connection, *alerts: Alert) -> list[bool]:
    with dbmod.transaction(conn):
        return [repository.insert_alert(conn, alert=a, observed_at=NOW) for a in alerts]


def rows(conn: psycopg2.extensions.connection) -> list[tuple[object, ...]]:
    with dbmod.transaction(conn) as cur:
        cur.execute(
            "SELECT ride_id, status, attempts, message_id IS NOT NULL, last_error"
            " FROM daily.alerts ORDER BY ride_id"
        )
        return cur.fetchall()


def ses_sender(settings: Settings) -> SesSender:
    sender = sender_factory(settings)()
    assert isinstance(sender, SesSender)
    return sender


def test_an_alert_is_recorded_once_per_ride_and_episode(
    conn: psycopg2.extensions.connection,
) -> None:
    assert insert(conn, alert(1), alert(1), alert(1, episode=2)) == [True, False, True]


def test_a_batch_of_alerts_is_recorded_in_one_statement_and_only_new_ones_reported(
    conn: psycopg2.extensions.connection,
) -> None:
    insert(conn, alert(2))
    received = NOW + timedelta(seconds=1)
    batch = [
        repository.NewAlert(alert(ride_id), NOW, received, status=status, last_error=error)
        for ride_id, status, error in [
            (1, "pending", None),
            (2, "pending", None),  # already recorded: kept as it was
            (3, "expired", "stale: not emailed"),
        ]
    ]
    with dbmod.transaction(conn):
        assert repository.insert_alerts(conn, rows=batch) == {(1, 1), (3, 1)}
        assert repository.insert_alerts(conn, rows=batch) == set()
        assert repository.insert_alerts(conn, rows=[]) == set()
    with dbmod.transaction(conn) as cur:
        cur.execute(
            "SELECT ride_id, status, heart_rates, observed_at, received_at, readings"
            " FROM daily.alerts ORDER BY ride_id"
        )
        got = cur.fetchall()
    assert [(r[0], r[1], r[2]) for r in got] == [
        (1, "pending", [201, 202, 203]),
        (2, "pending", [201, 202, 203]),
        (3, "expired", [201, 202, 203]),
    ]
    assert got[0][3:5] == (NOW, received) and got[1][4] is None  # the first insert's row
    assert [r["heart_rate"] for r in got[0][5]] == [201, 202, 203]


def test_pending_alert_is_emailed_once_and_marked_sent(
    conn: psycopg2.extensions.connection, pg_settings: Settings, ses: Ses
) -> None:
    insert(conn, alert(1))
    sender = ses_sender(pg_settings)
    assert send_due(conn, sender, pg_settings) == 1
    assert send_due(conn, sender, pg_settings) == 0
    sent = ses.sent()
    assert len(sent) == 1 and sent[0].message["To"] == "dee@example.com"
    assert "201 bpm" in sent[0].text and "203 bpm" in sent[0].html and "Dear Dee," in sent[0].text
    with dbmod.transaction(conn) as cur:
        cur.execute(
            "SELECT status, attempts, message_id, created_at, claimed_at, sent_at FROM daily.alerts"
        )
        status, attempts, message_id, created_at, claimed_at, sent_at = cur.fetchone() or ()
    assert (status, attempts, message_id) == ("sent", 1, sent[0].message_id)
    # The email's share of the latency splits into waiting for a sender and the send itself.
    assert created_at <= claimed_at <= sent_at


def test_a_sender_that_dies_between_claim_and_send_leaves_the_alert_to_another_once(
    conn: psycopg2.extensions.connection, pg_settings: Settings, ses: Ses
) -> None:
    insert(conn, alert(1), alert(2))
    dying = dbmod.connect(pg_settings.require_database())
    dying.autocommit = False
    claimed = repository.claim_pending(dying, limit=1)  # claimed, then the process dies
    assert [r.ride_id for r in claimed] == [1]
    sender = ses_sender(pg_settings)
    # While the claim holds, the other sender skips that row rather than waiting for it.
    assert send_due(conn, sender, pg_settings) == 1
    assert [m.message["X-Deloton-Alert"] for m in ses.sent()] == ["2/1"]
    dying.close()  # the connection drops: its claim is released, nothing was marked
    assert send_due(conn, sender, pg_settings) == 1
    assert send_due(conn, sender, pg_settings) == 0
    per_alert = Counter(m.message["X-Deloton-Alert"] for m in ses.sent())
    assert per_alert == {"1/1": 1, "2/1": 1}
    assert {r[0]: r[1:3] for r in rows(conn)} == {1: ("sent", 1), 2: ("sent", 1)}


def test_without_credentials_the_message_goes_to_the_outbox(
    conn: psycopg2.extensions.connection,
    pg_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = pg_settings.model_copy(
        update={"ses_endpoint_url": None, "email_override_recipient": "ops@deloton.example",
                "email_reply_to": "care@deloton.example"}
    )  # fmt: skip
    sender = sender_factory(settings)()
    assert isinstance(sender, OutboxSender)
    insert(conn, alert(1))
    assert send_due(conn, sender, settings) == 1
    [eml] = list(settings.email_outbox_dir.glob("*.eml"))
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["To"] == "ops@deloton.example" and msg["Reply-To"] == "care@deloton.example"
    assert "202 bpm" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert msg.get_body(("html",)) is not None
    assert rows(conn) == [(1, "sent", 1, True, None)]


def test_no_address_fails_the_alert(
    conn: psycopg2.extensions.connection, pg_settings: Settings, ses: Ses
) -> None:
    rider(conn, 10, email=None)
    insert(conn, alert(1, user_id=10))
    send_due(conn, ses_sender(pg_settings), pg_settings)
    assert rows(conn) == [(1, "failed", 0, False, "rider has no email address")]
    assert ses.sent() == []


def test_an_address_ingest_marked_invalid_fails_the_alert_unsent(
    conn: psycopg2.extensions.connection, pg_settings: Settings, ses: Ses
) -> None:
    rider(conn, 10, email="v@x.example, attacker@evil.example", email_invalid="several_addresses")
    insert(conn, alert(1, user_id=10), alert(2))
    send_due(conn, ses_sender(pg_settings), pg_settings)
    assert rows(conn) == [
        (1, "failed", 0, False, "invalid address: several_addresses"),
        (2, "sent", 1, True, None),
    ]
    assert [m.destinations for m in ses.sent()] == [["dee@example.com"]]


def test_the_address_is_read_when_sending_not_when_raised(
    conn: psycopg2.extensions.connection, pg_settings: Settings, ses: Ses
) -> None:
    insert(conn, alert(1, user_id=11))  # ingest has not committed rider 11 yet
    assert send_due(conn, ses_sender(pg_settings), pg_settings) == 1
    assert rows(conn) == [(1, "pending", 1, False, "rider not recorded yet")]
    rider(conn, 11, email="late@example.com")
    with dbmod.transaction(conn) as cur:
        cur.execute("UPDATE daily.alerts SET next_attempt_at = NULL")
        cur.execute("SELECT count(*) FROM daily.alerts WHERE recipient IS NOT NULL")
        assert cur.fetchone() == (0,)  # alert rows hold no address
    send_due(conn, ses_sender(pg_settings), pg_settings)
    assert [m.destinations for m in ses.sent()] == [["late@example.com"]]


class Flaky:
    """A sender that always fails transiently (SES throttling for longer than our retries)."""

    def send(self, msg: EmailMessage) -> str:
        raise SendError("Throttling: Maximum sending rate exceeded.", transient=True)


def test_transient_failures_are_retried_until_stale_then_expire(
    conn: psycopg2.extensions.connection,
    pg_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    insert(conn, alert(1))
    assert send_due(conn, Flaky(), pg_settings) == 1
    assert send_due(conn, Flaky(), pg_settings) == 0  # not due yet
    for attempts in range(1, 9):  # far more than the 5 attempts that used to give up
        assert rows(conn) == [(1, "pending", attempts, False, "Throttling: Maximum sending "
                               "rate exceeded.")]  # fmt: skip
        with dbmod.transaction(conn) as cur:
            cur.execute("SELECT next_attempt_at - now() FROM daily.alerts")
            (wait,) = cur.fetchone() or (None,)
            assert wait is not None and wait <= timedelta(seconds=pg_settings.alert_retry_max_s)
            cur.execute("UPDATE daily.alerts SET next_attempt_at = now() - interval '1 s'")
        send_due(conn, Flaky(), pg_settings)
    # The alert is now older than ALERT_STALE_AFTER_S: expired, loudly, never `failed`.
    with dbmod.transaction(conn) as cur:
        cur.execute(
            "UPDATE daily.alerts SET detected_at = now() - make_interval(secs => %s),"
            " next_attempt_at = NULL",
            (pg_settings.alert_stale_after_s + 1,),
        )
    before = REGISTRY.get_sample_value("deloton_alerts_expired_total", {"reason": "undelivered"})
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="services.alerts.notifier"):
        send_due(conn, Flaky(), pg_settings)
    [(_, status, attempts, _, error)] = rows(conn)
    assert (status, attempts) == ("expired", 9)
    assert error is not None and error.startswith("stale: not emailed in time (last error: Thr")
    after = REGISTRY.get_sample_value("deloton_alerts_expired_total", {"reason": "undelivered"})
    assert (after or 0) == (before or 0) + 1
    assert [r.message for r in caplog.records] == [EXPIRED_LOG]


def test_stale_alerts_are_recorded_but_not_emailed(
    conn: psycopg2.extensions.connection, pg_settings: Settings
) -> None:
    recorder = Recorder(pg_settings, stale_after_s=60)
    # Against the clock now, not the module's NOW: the suite may reach this test minutes after
    # importing it, and an alert made "now" at import would be stale by then.
    now = datetime.now(UTC)
    old = Alert(**{**alert(1).__dict__, "detected_at": now - timedelta(hours=2)})
    fresh = Alert(**{**alert(2).__dict__, "detected_at": now})
    try:
        assert asyncio.run(recorder.insert_alert(old, None)) is True
        assert asyncio.run(recorder.insert_alert(fresh, None)) is True
        assert asyncio.run(recorder.insert_alert(fresh, None)) is False
    finally:
        recorder.close()
    assert [r[:2] for r in rows(conn)] == [(1, "expired"), (2, "pending")]


def test_two_notifier_processes_never_send_an_alert_twice(
    conn: psycopg2.extensions.connection, pg_settings: Settings, ses: Ses
) -> None:
    n = 200
    insert(conn, *(alert(ride_id) for ride_id in range(1, n + 1)))
    notifiers = [
        Notifier(pg_settings, sender_factory(pg_settings, threads=4), workers=4, batch=5)
        for _ in range(2)
    ]
    for notifier in notifiers:
        notifier.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(r[1] == "pending" for r in rows(conn)):
            time.sleep(0.2)
    finally:
        for notifier in notifiers:
            notifier.stop()
    sent = ses.sent()
    per_alert = Counter(m.message["X-Deloton-Alert"] for m in sent)
    assert len(sent) == n and set(per_alert.values()) == {1}
    assert {r[1:3] for r in rows(conn)} == {("sent", 1)}


def test_a_bad_address_never_resends_the_other_alerts_of_its_batch(
    conn: psycopg2.extensions.connection, pg_settings: Settings, ses: Ses
) -> None:
    # One header-injecting address in a batch made the whole claim roll back: the good rider's
    # alert, already accepted by SES, went back to pending and was sent again on every poll.
    # A row written before ingest validated addresses.
    rider(conn, 10, email="bad@x.com\r\nBcc: y@z")
    insert(conn, alert(1), alert(2, user_id=10), alert(3))
    sender = ses_sender(pg_settings)
    for _ in range(5):
        send_due(conn, sender, pg_settings)
    per_alert = Counter(m.message["X-Deloton-Alert"] for m in ses.sent())
    assert per_alert == {"1/1": 1, "3/1": 1}
    statuses = {r[0]: r[1] for r in rows(conn)}
    assert statuses == {1: "sent", 2: "failed", 3: "sent"}
