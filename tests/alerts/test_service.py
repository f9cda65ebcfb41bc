"""End to end: events on the real broker -> `deloton alerts` -> Postgres -> SES (moto server)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import psycopg2.extensions
import pytest
from confluent_kafka import Producer

from services.alerts.rules import Thresholds, limits_for
from services.common import infra
from services.common.config import Settings
from tests import harness
from tests.alerts import synthetic
from tests.alerts.support import SENDER, Ses, Worker, running_moto
from tests.alerts.synthetic import register_riders

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

# Events are lz4-compressed (the project's producer config, as ingest publishes them); faust's
# aiokafka reads lz4 only with cramjam, which requirements.lock does not pin yet.
pytest.importorskip("cramjam", reason="cramjam (aiokafka[lz4]) is needed to read lz4 events")

HIGH = 200  # above every adult's maximum
NORMAL = 130


def alert_rows(db: psycopg2.extensions.connection) -> list[tuple[int, int, str, int]]:
    """(ride_id, episode, status, attempts) of every alert row."""
    with db.cursor() as cur:
        cur.execute("SELECT ride_id, episode, status, attempts FROM daily.alerts ORDER BY 1, 2")
        rows = cur.fetchall()
    db.commit()
    return rows


def pending(db: psycopg2.extensions.connection) -> int:
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM daily.alerts WHERE status = 'pending'")
        (n,) = cur.fetchone() or (0,)
    db.commit()
    return int(n)


def test_three_high_readings_send_exactly_one_email_with_the_readings(
    alerts_settings: Settings,
    producer: Producer,
    worker: Worker,
    ses: Ses,
    db: psycopg2.extensions.connection,
) -> None:
    ada = synthetic.rider(41, gender="female", email="ada@example.com", first_name="Ada")
    bob = synthetic.rider(42, email="bob@example.com")
    register_riders(db, ada, bob)
    events = synthetic.ride(1001, "SN0001", ada, [NORMAL, 0, 191, 196, None, 203, 199, NORMAL])
    # Two high readings then a normal one: no episode.
    events += synthetic.ride(1002, "SN0002", bob, [HIGH, HIGH, NORMAL, HIGH, HIGH, NORMAL])
    synthetic.produce(producer, alerts_settings.topic_events, events)

    worker.start()
    assert worker.wait_until(lambda: worker.events_seen() >= len(events)), worker.tail()
    assert worker.wait_until(lambda: pending(db) == 0), worker.tail()

    sent = ses.sent()
    assert len(sent) == 1
    mail = sent[0]
    assert mail.destinations == ["ada@example.com"]
    assert mail.message["To"] == "ada@example.com"
    assert mail.source == alerts_settings.email_sender
    assert "too high" in mail.subject
    limits = limits_for("female", date(1990, 5, 17), datetime.now(UTC).date(), Thresholds())
    for body in (mail.text, mail.html):
        assert "191 bpm" in body and "196 bpm" in body and "203 bpm" in body
        assert "199" not in body  # the episode was already raised
        assert "Ada" in body and "seek medical advice" in body
        assert f"{limits.low} to {limits.high} beats per minute" in body
    assert alert_rows(db) == [(1001, 1, "sent", 1)]
    with db.cursor() as cur:
        cur.execute("SELECT message_id, sent_at IS NOT NULL, heart_rates FROM daily.alerts")
        assert cur.fetchone() == (mail.message_id, True, [191, 196, 203])

    published = harness.consume_all(
        alerts_settings.require_kafka(), alerts_settings.topic_alerts, 1
    )
    payload = orjson.loads(published[0][1])
    assert published[0][0] == b"SN0001"
    assert (payload["ride_id"], payload["episode"], payload["kind"]) == (1001, 1, "high")
    assert payload["heart_rates"] == [191, 196, 203]
    assert worker.metrics()["deloton_alerts_sent_total"] == 1


def test_killed_mid_episode_and_after_sending_still_one_email(
    alerts_settings: Settings,
    producer: Producer,
    worker: Worker,
    ses: Ses,
    db: psycopg2.extensions.connection,
) -> None:
    who = synthetic.rider(7, email="cy@example.com")
    register_riders(db, who)
    ride = synthetic.ride(2001, "SN0007", who, [HIGH] * 6 + [NORMAL] * 4)
    topic = alerts_settings.topic_events

    # Two high readings reach the worker, then it dies without committing anything.
    synthetic.produce(producer, topic, ride[:3])
    worker.start()
    assert worker.wait_until(lambda: worker.events_seen() >= 3), worker.tail()
    worker.kill()

    # The episode completes while it is down; the restarted worker alerts once.
    synthetic.produce(producer, topic, ride[3:])
    worker.start()
    assert len(ses.wait_for(1)) == 1, worker.tail()

    # Killed again straight after the email: the redelivered events must not send again.
    worker.kill()
    worker.start()
    # A second ride on the same bike (same partition) proves everything before it was handled.
    sentinel = [synthetic.ride_ended(2001, "SN0007")]
    sentinel += synthetic.ride(2002, "SN0007", who, [HIGH] * 3)
    synthetic.produce(producer, topic, sentinel)
    assert len(ses.wait_for(2)) >= 2, worker.tail()
    assert worker.wait_until(lambda: pending(db) == 0), worker.tail()

    sent = ses.sent()
    rides = Counter(m.message["X-Deloton-Alert"] for m in sent)
    assert rides == {"2001/1": 1, "2002/1": 1}
    assert all(m.destinations == ["cy@example.com"] for m in sent)
    assert alert_rows(db) == [(2001, 1, "sent", 1), (2002, 1, "sent", 1)]


def test_burst_of_a_thousand_riders_in_danger_sends_a_thousand_emails(
    alerts_settings: Settings,
    producer: Producer,
    worker: Worker,
    ses: Ses,
    db: psycopg2.extensions.connection,
) -> None:
    n = 1000
    riders = [synthetic.rider(10_000 + i) for i in range(n)]
    register_riders(db, *riders)
    events = []
    for i, who in enumerate(riders):
        events += synthetic.ride(500_000 + i, f"SN{i:05d}", who, [HIGH, HIGH, HIGH])
    worker.start()
    synthetic.produce(producer, alerts_settings.topic_events, events)

    sent = ses.wait_for(n, timeout=150)
    assert worker.wait_until(lambda: worker.events_seen() >= len(events)), worker.tail()
    assert worker.wait_until(lambda: pending(db) == 0), worker.tail()
    sent = ses.sent()

    recipients = Counter(m.destinations[0] for m in sent)
    assert len(sent) == n
    assert set(recipients) == {who["email_address"] for who in riders}
    assert max(recipients.values()) == 1
    rows = alert_rows(db)
    assert len(rows) == n and {r[2] for r in rows} == {"sent"}
    published = harness.consume_all(
        alerts_settings.require_kafka(), alerts_settings.topic_alerts, n
    )
    assert (
        len({(orjson.loads(v)["ride_id"], orjson.loads(v)["episode"]) for _, v, _, _ in published})
        == n
    )


def test_an_ses_outage_of_two_minutes_mid_episode_still_delivers_the_alert_once(
    alerts_settings: Settings,
    producer: Producer,
    tmp_path: Path,
    db: psycopg2.extensions.connection,
) -> None:
    # An SES endpoint of this test's own, stopped and restarted on the same port.
    port = infra.free_port()
    log = tmp_path / "moto.log"
    settings = alerts_settings.model_copy(update={"ses_endpoint_url": f"http://127.0.0.1:{port}"})
    worker = Worker(settings, tmp_path / "worker")
    who = synthetic.rider(77, email="outage@example.com")
    register_riders(db, who)
    ride = synthetic.ride(7001, "SN0077", who, [HIGH] * 3 + [NORMAL] * 3)
    topic = settings.topic_events
    try:
        with running_moto(log, port) as url:
            Ses(url).verify(SENDER)
            worker.start()
            synthetic.produce(producer, topic, ride[:3])  # two high readings: no alert yet
            assert worker.wait_until(lambda: worker.events_seen() >= 3), worker.tail()
        # SES is gone; the third high reading confirms the episode during the outage.
        synthetic.produce(producer, topic, ride[3:])
        assert worker.wait_until(lambda: worker.events_seen() >= len(ride)), worker.tail()
        outage_ends = time.monotonic() + 120
        while time.monotonic() < outage_ends:
            assert worker.proc is not None and worker.proc.poll() is None, worker.tail()
            time.sleep(1)
        with running_moto(log, port) as url:
            ses = Ses(url)
            ses.verify(SENDER)
            assert worker.wait_until(lambda: alert_rows(db)[0][2] != "pending", 120), worker.tail()
            sent = ses.sent()
            assert [m.message["X-Deloton-Alert"] for m in sent] == ["7001/1"], worker.tail()
            assert sent[0].destinations == ["outage@example.com"]
            assert alert_rows(db)[0][:3] == (7001, 1, "sent")
    finally:
        worker.stop()


def test_a_bad_event_and_a_database_error_do_not_stop_the_next_alert(
    alerts_settings: Settings,
    producer: Producer,
    worker: Worker,
    ses: Ses,
    db: psycopg2.extensions.connection,
) -> None:
    # A database error this test injects: the alert of ride 3001 cannot be written.
    with db.cursor() as cur:
        cur.execute(
            """CREATE FUNCTION pg_temp_reject_3001() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF NEW.ride_id = 3001 THEN
                   RAISE EXCEPTION 'injected' USING ERRCODE = 'invalid_parameter_value';
                 END IF;
                 RETURN NEW;
               END $$;
               CREATE TRIGGER reject_3001 BEFORE INSERT ON daily.alerts
                 FOR EACH ROW EXECUTE FUNCTION pg_temp_reject_3001();"""
        )
    db.commit()
    who = synthetic.rider(31, email="next@example.com")
    register_riders(db, who)
    topic = alerts_settings.topic_events
    # Bad events: a timestamp past year 9999 once in UTC, and a key that is not UTF-8.
    bad = synthetic.reading(3000, "SN0031", 31, 1, HIGH)
    bad["recorded_at"] = "9999-12-31T23:59:59-01:00"
    producer.produce(
        topic, key=b"\xff\xfe", value=orjson.dumps(synthetic.reading(3000, "x", 31, 1, HIGH))
    )
    events = [bad]
    events += synthetic.ride(3001, "SN0031", who, [HIGH] * 3)
    events += [synthetic.ride_ended(3001, "SN0031")]
    events += synthetic.ride(3002, "SN0031", who, [HIGH] * 3)
    synthetic.produce(producer, topic, events)
    worker.start()

    sent = ses.wait_for(1, timeout=90)
    assert [m.message["X-Deloton-Alert"] for m in sent] == ["3002/1"], worker.tail()
    assert worker.wait_until(lambda: worker.events_seen() >= len(events) - 1), worker.tail()
    with db.cursor() as cur:
        cur.execute("SELECT reason, detail FROM daily.rejects")
        reasons = {reason: detail for reason, detail in cur.fetchall()}
    db.commit()
    assert set(reasons) == {"invalid_reading", "processing_error", "alert_not_recorded"}
    assert reasons["processing_error"].startswith("UnicodeDecodeError")
    assert "injected" in reasons["alert_not_recorded"]
    assert alert_rows(db) == [(3002, 1, "sent", 1)]
    # The refused alert is not announced either (read for a few seconds past the one expected).
    published = harness.consume_all(
        alerts_settings.require_kafka(), alerts_settings.topic_alerts, 2, timeout=5
    )
    assert [orjson.loads(v)["ride_id"] for _, v, _, _ in published] == [3002]


def test_the_email_override_against_real_ses_stops_the_service_at_start(
    alerts_settings: Settings, tmp_path: Path
) -> None:
    # AWS credentials and no endpoint: the real SES. A staging override left in place would
    # send every rider's alert to one mailbox.
    settings = alerts_settings.model_copy(
        update={"ses_endpoint_url": None, "email_override_recipient": "ops@deloton.example"}
    )
    worker = Worker(settings, tmp_path / "worker")
    worker.start()
    try:
        assert worker.proc is not None
        assert worker.proc.wait(60) == 2
        assert "ALERT_OVERRIDE_IN_PRODUCTION=true" in worker.log.read_text()
    finally:
        worker.stop()
