"""Where live data comes from: the clean events and the alerts topics, into memory.

One consumer thread per dashboard process reads every partition of `TOPIC_EVENTS` and
`TOPIC_ALERTS` by `assign()` (no consumer group: nothing to join, rebalance or commit; each
process keeps its own in-memory view) and applies them to a `Fleet`. Callbacks then read the
fleet under its lock: a viewer's tick costs no broker or database work at all.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from services.alerts.rules import Thresholds
from services.common.config import ConfigError, Settings
from services.common.kafka import consumer_config, ensure_topics
from services.dashboard.state import Fleet

log = logging.getLogger(__name__)

BATCH = 5_000


def parse(value: bytes) -> dict[str, Any] | None:
    """A message value as a JSON object, or None when it is not one (counted, skipped)."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def make_fleet(settings: Settings) -> Fleet:
    """An empty fleet with the alerts' thresholds and the dashboard's idle time."""
    return Fleet(
        thresholds=Thresholds.from_settings(settings),
        recovery_readings=settings.alert_recovery_readings,
        idle_s=settings.dashboard_idle_s,
    )


class Feed:
    """The consumer thread that keeps a Fleet up to date."""

    def __init__(self, settings: Settings, fleet: Fleet) -> None:
        self.settings = settings
        self.fleet = fleet
        self.stop_event = threading.Event()
        self.caught_up = threading.Event()
        self.thread = threading.Thread(target=self._run, name="dashboard-feed", daemon=True)
        self.consumer: Consumer | None = None
        self._pending_eof: set[tuple[str, int]] = set()  # partitions not yet read to the end

    def start(self) -> None:
        """Assign every partition of both topics from the beginning and start consuming."""
        topics = [self.settings.topic_events, self.settings.topic_alerts]
        ensure_topics(self.settings, topics)
        consumer = Consumer(
            consumer_config(
                self.settings,
                f"dashboard-{uuid.uuid4().hex[:8]}",  # required by the client, never joined
                **{"enable.partition.eof": True},
            )
        )
        parts: list[TopicPartition] = []
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=15).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                consumer.close()
                raise ConfigError(f"topic {topic} is not available")
            parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
        consumer.assign(parts)
        self.consumer = consumer
        self._pending_eof = {(tp.topic, tp.partition) for tp in parts}
        self.thread.start()

    def stop(self) -> None:
        """Stop consuming and close the consumer."""
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)

    def _run(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        try:
            while not self.stop_event.is_set():
                msgs = consumer.consume(BATCH, 0.1)
                batch: list[tuple[bytes, float]] = []
                for msg in msgs:
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            self._eof(str(msg.topic()), int(msg.partition() or 0))
                        else:
                            log.warning("events consumer error", extra={"error": str(err)})
                        continue
                    value = msg.value()
                    if value:
                        batch.append((value, msg.timestamp()[1] / 1000.0))
                if batch:
                    self.fleet.apply_events(batch, parse)
        except Exception:
            log.exception("dashboard feed stopped")
            raise
        finally:
            consumer.close()

    def _eof(self, topic: str, partition: int) -> None:
        self._pending_eof.discard((topic, partition))
        if not self._pending_eof and not self.caught_up.is_set():
            self.caught_up.set()
            log.info("dashboard caught up with the events", extra={"events": self.fleet.events})
