"""Simulated bikes through the real parser and sessioniser, into the detectors' inputs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from random import Random

from services.ingest.batch import Batch
from services.ingest.parser import Parser
from services.ingest.sessionizer import Sessionizer
from services.quality.detectors import Reading
from services.simulator.faults import FaultInjector
from services.simulator.fleet import Fleet, FleetConfig
from services.simulator.models import Message

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NOW = START + timedelta(hours=3)


def fleet_by_bike(
    bikes: int, seconds: int, seed: int = 1, start: datetime = START
) -> dict[str, list[Message]]:
    """A clean fleet's messages, one list per bike (one ride each)."""
    fleet = Fleet(FleetConfig(bikes=bikes, rides=1, seconds=seconds, seed=seed, start=start))
    out: dict[str, list[Message]] = {}
    for msg in fleet.messages():
        assert msg.key is not None
        out.setdefault(msg.key.decode(), []).append(msg)
    return out


def with_fault(messages: Sequence[Message], kind: str, rate: float, seed: int = 7) -> list[Message]:
    """The bike's messages with one kind of fault injected."""
    counts: Counter[str] = Counter()
    out = FaultInjector(rate, Random(seed), counts, kinds=(kind,)).wrap(iter(messages))
    kept = [m for m in out if m is not None]
    assert counts[kind] > 0, f"no {kind} fault was injected"
    return kept


def ingest(
    streams: dict[str, list[Message]],
) -> tuple[dict[str, list[Reading]], dict[str, dict[str, int]], dict[str, float]]:
    """Each bike's landed readings, rejects by reason, and lag (arrival - line time of its
    last reading), as ingest would store them; one partition per bike."""
    readings: dict[str, list[Reading]] = {}
    rejects: dict[str, dict[str, int]] = {}
    lags: dict[str, float] = {}
    for partition, (serial, messages) in enumerate(sorted(streams.items())):
        sessions = Sessionizer(Parser(now=NOW))
        batch = Batch()
        last_at = 0.0
        for offset, msg in enumerate(messages):
            sessions.process(batch, "deloton", partition, offset, msg.key, msg.value)
            last_at = max(last_at, msg.at)
        rows = []
        for line in batch.readings:
            ride, elapsed, ts, resistance, hr, rpm, power = line.rstrip("\n").split("\t")
            rows.append(
                Reading(
                    int(ride),
                    int(elapsed),
                    datetime.fromisoformat(ts),
                    int(resistance),
                    None if hr == r"\N" else int(hr),
                    int(rpm),
                    float(power),
                )
            )
        readings[serial] = rows
        rejects[serial] = dict(Counter(r.reason for r in batch.rejects))
        last = max(r.recorded_at for r in rows)
        lags[serial] = last_at - last.timestamp()
    return readings, rejects, lags
