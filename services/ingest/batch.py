"""What one micro-batch will write: rows for the daily schema, rejects, events and offsets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from services.ingest.models import Rider


class RideRow(NamedTuple):
    ride_id: int
    bike_serial: str
    user_id: int
    model: str
    started_at: str  # "YYYY-MM-DD HH:MM:SS[.ffffff]" UTC
    partition: int = 0  # Kafka partition of the bike's stream (compress reads its progress)
    announced_serial: str | None = None  # the SYSTEM line's serial, when not the key's


class RejectRow(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes
    reason: str
    detail: str
    bike_serial: str | None


@dataclass
class Batch:
    """Accumulates the output of the sessioniser until the sink flushes it."""

    readings: list[str] = field(default_factory=list)  # COPY text lines of daily.readings
    ride_ids: set[int] = field(default_factory=set)  # rides that got readings
    hours: set[str] = field(default_factory=set)  # "YYYY-MM-DD HH" of readings (partitions)
    riders: dict[int, tuple[Rider, str]] = field(default_factory=dict)  # latest details + ts
    bikes: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # model, first, last
    rides: list[RideRow] = field(default_factory=list)
    ride_ends: dict[int, str] = field(default_factory=dict)  # ride_id -> ended_at
    rejects: list[RejectRow] = field(default_factory=list)
    events: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value) to publish
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)  # next offset to read
    dirty: set[str] = field(default_factory=set)  # bikes whose state changed
    evicted: dict[int, set[str]] = field(default_factory=dict)  # partition -> bikes forgotten
    unkeyed: dict[str, int] = field(default_factory=dict)  # messages without a key, by topic
    created_ms: list[int] = field(default_factory=list)  # produce times, when latency is tracked
    messages: int = 0

    def __len__(self) -> int:
        """Messages, plus evictions and ride ends: a batch of those alone (a quiet partition
        whose last ride closed by silence) still has rows and state to save."""
        return self.messages + len(self.evicted) + len(self.ride_ends)

    def add_rider(self, rider: Rider, ts: str) -> None:
        """Keep the latest details of each rider seen in this batch."""
        seen = self.riders.get(rider.user_id)
        if seen is None or seen[1] <= ts:
            self.riders[rider.user_id] = (rider, ts)

    def touch_bike(self, serial: str, model: str, ts: str) -> None:
        """Record that a bike was seen (first and last event time in this batch)."""
        seen = self.bikes.get(serial)
        if seen is None:
            self.bikes[serial] = (model, ts, ts)
        elif ts > seen[2]:
            self.bikes[serial] = (model or seen[0], seen[1], ts)
