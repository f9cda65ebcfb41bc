"""Topics the project creates, against the real broker."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from services.common.config import Settings
from services.common.kafka import ensure_topics

pytestmark = pytest.mark.kafka

DAY_MS = 86_400_000


def retention_ms(settings: Settings, topic: str) -> int:
    admin = AdminClient({"bootstrap.servers": settings.require_kafka()})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(15)
    return int(configs["retention.ms"].value)


def test_the_dead_letter_topic_keeps_raw_lines_only_for_their_retention(
    kafka_settings: Settings,
) -> None:
    settings = kafka_settings.model_copy(update={"rejects_retention_days": 2.0})
    ensure_topics(settings, [settings.topic_rejects, settings.topic_events])
    assert retention_ms(settings, settings.topic_rejects) == 2 * DAY_MS
    assert retention_ms(settings, settings.topic_events) == 7 * DAY_MS
