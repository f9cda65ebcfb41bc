"""How far the consumers have got: each partition's end against what they committed."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from services.common.config import Settings
from services.common.kafka import make_consumer


def ends(settings: Settings, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """Each partition's high watermark, as fetch responses report it (the embedded broker
    answers "latest offset" queries wrongly, fetches rightly)."""
    probe = make_consumer(settings, "deloton-soak-probe")
    try:
        meta = probe.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            return {}
        parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
        probe.assign(parts)
        out: dict[int, int] = {}
        deadline = time.monotonic() + timeout_s
        while len(out) < len(parts) and time.monotonic() < deadline:
            probe.consume(num_messages=500, timeout=0.2)
            for tp in parts:
                _, high = probe.get_watermark_offsets(tp, cached=True)
                if high >= 0:
                    out[tp.partition] = high
        return out
    finally:
        probe.close()


def committed(settings: Settings, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """The offsets a consumer group committed (without joining it)."""
    reader = make_consumer(settings, group)
    try:
        got = reader.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in got}
    finally:
        reader.close()


def behind(settings: Settings, group: str, topic: str) -> int:
    """Messages of `topic` the group has not committed yet (-1 while unknown)."""
    end = ends(settings, topic)
    if not end:
        return -1
    done = committed(settings, group, topic, sorted(end))
    return sum(max(0, high - max(done.get(p, 0), 0)) for p, high in end.items())
