"""Producing messages to Kafka with confluent-kafka: batched, paced, and flushed at the end."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaError, Producer
from confluent_kafka import Message as DeliveredMessage

from services.common.config import Settings
from services.common.kafka import ensure_topics, make_producer
from services.simulator.models import BIKES, KINDS, TELEMETRY, Message
from services.simulator.pacing import MAX, Pacer

log = logging.getLogger(__name__)

POLL_EVERY = 1024  # serve delivery reports this often without blocking
FLUSH_TIMEOUT_S = 60.0


@dataclass
class ProduceStats:
    """What a produce run did."""

    messages: int = 0
    failed: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def rate(self) -> float:
        """Messages per second of wall time."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def topic_map(
    settings: Settings, *, split_topics: bool = False, topic: str | None = None
) -> dict[str, str]:
    """Where each kind of message goes: one topic, or announcements and readings apart."""
    if split_topics:
        return {BIKES: settings.topic_bikes, TELEMETRY: settings.topic_telemetry}
    single = topic or settings.topic_raw
    return dict.fromkeys(KINDS, single)


def produce(
    settings: Settings,
    messages: Iterable[Message],
    speed: float = MAX,
    *,
    topics: Mapping[str, str] | None = None,
    producer: Producer | None = None,
    unkeyed_partition: int | None = None,
) -> ProduceStats:
    """Produce every message to its kind's topic (created if missing), paced by `speed`.

    `unkeyed_partition`: where messages without a key go. By default the partitioner spreads
    them over every partition, which breaks a one-bike stream apart (see `deloton replay`).
    """
    topics = dict(topics or topic_map(settings))
    ensure_topics(settings, sorted(set(topics.values())))
    stats = ProduceStats()

    def on_error(err: KafkaError | None, _msg: DeliveredMessage) -> None:
        if err is not None:
            if not stats.failed:
                log.error("delivery failed: %s", err)
            stats.failed += 1

    producer = producer or make_producer(
        settings, **{"delivery.report.only.error": True, "on_delivery": on_error}
    )
    send, poll = producer.produce, producer.poll
    pacer = Pacer(speed, sleep=poll)
    sent = 0
    last_at = None
    started = time.perf_counter()
    try:
        for msg in messages:
            if msg.at != last_at:
                pacer.wait(msg.at)
                last_at = msg.at
            topic = topics[msg.kind]
            while True:
                try:
                    if msg.key is None and unkeyed_partition is not None:
                        send(topic, msg.value, None, partition=unkeyed_partition)
                    else:
                        send(topic, msg.value, msg.key)
                    break
                except BufferError:
                    # The local queue is full: let librdkafka deliver some before retrying.
                    poll(0.05)
            sent += 1
            if not sent % POLL_EVERY:
                poll(0)
    except KeyboardInterrupt:
        stats.interrupted = True
        log.info("interrupted: flushing %d messages already handed to the producer", len(producer))
    unsent = producer.flush(FLUSH_TIMEOUT_S)
    if unsent:
        log.error("%d messages still undelivered after %.0f s", unsent, FLUSH_TIMEOUT_S)
    stats.seconds = time.perf_counter() - started
    stats.messages = sent - stats.failed - unsent
    stats.failed += unsent
    if pacer.behind_s > 1.0:
        log.warning("production fell %.1f s behind the requested speed", pacer.behind_s)
    return stats
