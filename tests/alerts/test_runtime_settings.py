"""A run-time change through the API reaches a running `deloton alerts` without a restart."""

from __future__ import annotations

import psycopg2.extensions
import pytest
from confluent_kafka import Producer

from services.common.config import Settings
from tests.alerts import synthetic
from tests.alerts.support import Ses, Worker
from tests.alerts.synthetic import register_riders
from tests.api.conftest import api_settings, make_key, serving

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
pytest.importorskip("cramjam", reason="cramjam (aiokafka[lz4]) is needed to read lz4 events")

HIGH = 200


def alerts(db: psycopg2.extensions.connection) -> list[tuple[int, list[int], str]]:
    with db, db.cursor() as cur:
        cur.execute("SELECT ride_id, heart_rates, status FROM daily.alerts ORDER BY ride_id")
        return cur.fetchall()


def test_a_longer_episode_set_through_the_api_governs_the_next_alert(
    alerts_settings: Settings,
    producer: Producer,
    worker: Worker,
    ses: Ses,
    db: psycopg2.extensions.connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNTIME_SETTINGS_REFRESH_S", "1")  # read by the worker's environment
    ada = synthetic.rider(41, email="ada@example.com")
    register_riders(db, ada)
    worker.start()
    # The default episode: three readings over the limit raise an alert.
    synthetic.produce(producer, alerts_settings.topic_events,
                      synthetic.ride(2001, "SN0001", ada, [HIGH, HIGH, HIGH]))  # fmt: skip
    assert worker.wait_until(lambda: len(alerts(db)) == 1), worker.tail()

    database_url = alerts_settings.require_database()
    token = make_key(database_url, "ops", "read,admin")
    with serving(api_settings(database_url)) as url:
        import httpx

        answer = httpx.patch(
            f"{url}/settings",
            json={"alert_episode_readings": 5},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text
    # The worker says when it follows the change (it reads the database every second here).
    assert worker.wait_until(lambda: "run-time settings changed" in worker.tail(), timeout=30)

    events = synthetic.ride(2002, "SN0002", ada, [HIGH, HIGH, HIGH, HIGH, 130])
    events += synthetic.ride(2003, "SN0003", ada, [HIGH] * 5)
    synthetic.produce(producer, alerts_settings.topic_events, events)
    assert worker.wait_until(lambda: len(alerts(db)) == 2), worker.tail()
    assert worker.wait_until(lambda: all(a[2] == "sent" for a in alerts(db))), worker.tail()
    assert [(ride, len(rates)) for ride, rates, _ in alerts(db)] == [(2001, 3), (2003, 5)]
    assert len(ses.sent()) == 2
