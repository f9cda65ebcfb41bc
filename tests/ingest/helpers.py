"""Producing test feeds and running ingest to completion."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from services.common.config import Settings
from services.common.kafka import ensure_topics, make_producer
from services.ingest.service import IngestService, RunStats


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
