"""Producing test feeds and running ingest to completion."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from services.common.config import Settings
from services.common.kafka import ensure_topics, make_producer
from services.ingest.service import IngestService, RunStats
from services.simulator.models import BIKES, TELEMETRY, Message


def produce(
    settings: Settings,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    partitions: int = 4,
    partition: int | None = None,
) -> int:
    """Produce (key, value) messages in order; return how many."""
    ensure_topics(settings, [topic], partitions=partitions)
    producer = make_producer(settings)
    n = 0
    for key, value in messages:
        while True:
            try:
                if partition is None:
                    producer.produce(topic, value, key)
                else:
                    producer.produce(topic, value, key, partition=partition)
                break
            except BufferError:
                producer.poll(0.1)
        n += 1
    assert producer.flush(30) == 0
    return n


def sample_messages(path: Path) -> list[tuple[bytes | None, bytes]]:
    """The real capture as unkeyed messages, each value byte for byte as captured."""
    return [(None, line.rstrip(b"\n")) for line in path.read_bytes().splitlines(keepends=True)]


def run_ingest(settings: Settings, until_idle: float = 1.5) -> RunStats:
    """One ingest process until caught up and idle."""
    return IngestService(settings).run(until_idle=until_idle)


def ingest_single_and_split(
    settings: Settings, messages: list[Message], second_database: str
) -> None:
    """The same feed on the single raw topic (ingested into settings' database) and on split
    topics (ingested by its own group into `second_database`)."""
    produce(settings, settings.topic_raw, ((m.key, m.value) for m in messages))
    produce(settings, settings.topic_bikes, ((m.key, m.value) for m in messages if m.kind == BIKES))
    produce(
        settings,
        settings.topic_telemetry,
        ((m.key, m.value) for m in messages if m.kind == TELEMETRY),
    )
    run_ingest(settings)
    split = settings.model_copy(
        update={"ingest_split_topics": True, "ingest_group": settings.ingest_group + "-split"}
    )
    split.database_url = type(settings.database_url)(second_database)  # type: ignore[misc]
    run_ingest(split)
