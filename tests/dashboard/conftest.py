"""Fixtures: the dashboard's feed on the test's own topics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Producer

from services.common.config import Settings
from services.common.kafka import ensure_topics, make_producer
from services.dashboard.live import Feed, make_fleet
from services.dashboard.state import Fleet


@pytest.fixture
def producer(kafka_settings: Settings) -> Iterator[Producer]:
    ensure_topics(kafka_settings, [kafka_settings.topic_events, kafka_settings.topic_alerts])
    p = make_producer(kafka_settings)
    yield p
    p.flush(10)


@pytest.fixture
def feed(kafka_settings: Settings, producer: Producer) -> Iterator[Feed]:
    """A running feed over this test's events and alerts topics."""
    f = Feed(kafka_settings, make_fleet(kafka_settings))
    f.start()
    yield f
    f.stop()


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll until `check()` holds (a deadline, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def events_applied(fleet: Fleet, n: int) -> Callable[[], bool]:
    return lambda: fleet.events >= n
