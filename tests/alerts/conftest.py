"""Fixtures: a real SES endpoint (moto server) and `deloton alerts` as a real process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from services.common.config import Settings
from services.common.kafka import ensure_topics, make_producer
from tests.alerts.support import SENDER, Ses, Worker


@pytest.fixture
def ses(moto_url: str) -> Ses:
    """The SES endpoint, emptied, with the alerts sender verified."""
    endpoint = Ses(moto_url)
    endpoint.reset()
    endpoint.verify(SENDER)
    return endpoint


@pytest.fixture
def alerts_settings(settings: Settings, moto_url: str) -> Settings:
    """The test's settings, sending through moto, with its topics created."""
    s = settings.model_copy(update={"ses_endpoint_url": moto_url, "email_sender": SENDER})
    ensure_topics(s, [s.topic_events, s.topic_alerts])
    return s


@pytest.fixture
def producer(alerts_settings: Settings) -> Iterator[Producer]:
    p = make_producer(alerts_settings)
    yield p
    p.flush(10)


@pytest.fixture
def worker(alerts_settings: Settings, tmp_path: Path) -> Iterator[Worker]:
    """A `deloton alerts` process for this test's settings (not started yet)."""
    w = Worker(alerts_settings, tmp_path / "worker")
    yield w
    with contextlib.suppress(Exception):
        w.stop()
