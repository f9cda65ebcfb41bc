"""Faults a real fleet shows: sensor trouble, duplicated, reordered, cut and garbage messages."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from random import Random
from typing import TYPE_CHECKING

from services.simulator.models import Message

if TYPE_CHECKING:
    from services.simulator.truth import BikeTruth

CONTACT_LOSS = "contact_loss"
STUCK_SENSOR = "stuck_sensor"
DUPLICATE = "duplicate"
OUT_OF_ORDER = "out_of_order"
TRUNCATED = "truncated"
GARBAGE = "garbage"
MID_RIDE_JOIN = "mid_ride_join"
LINE_FAULTS = (CONTACT_LOSS, STUCK_SENSOR, DUPLICATE, OUT_OF_ORDER, TRUNCATED, GARBAGE)
ALL_FAULTS = (*LINE_FAULTS, MID_RIDE_JOIN)
# Joining mid-ride is decided once per bike, so it gets a larger share than a per-line fault.
JOIN_FACTOR = 5.0

_TELEMETRY = b"Telemetry - "
_HRT = re.compile(rb"hrt = \d+")
_READINGS_END = b'\\n"}'


class FaultInjector:
    """Injects faults into one bike's stream with probability `rate` per line."""

    def __init__(
        self,
        rate: float,
        rng: Random,
        counts: Counter[str],
        kinds: Sequence[str] = ALL_FAULTS,
    ) -> None:
        unknown = set(kinds) - set(ALL_FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {ALL_FAULTS}")
        self.rate = rate
        self.rng = rng
        self.counts = counts
        self.line_faults = tuple(k for k in LINE_FAULTS if k in kinds)
        self.join_rate = min(1.0, rate * JOIN_FACTOR) if MID_RIDE_JOIN in kinds else 0.0

    def joins_mid_ride(self) -> bool:
        """Whether this bike's stream starts in the middle of a ride (decided once per bike)."""
        joins = self.rng.random() < self.join_rate
        if joins:
            self.counts[MID_RIDE_JOIN] += 1
        return joins

    def wrap(
        self, stream: Iterator[Message | None], truth: BikeTruth | None = None
    ) -> Iterator[Message | None]:
        """The stream with faults injected; tick markers (None) pass through. `truth` hears
        what became of each line (sent, sent broken, another bad line beside it)."""
        rng, counts, line_faults = self.rng, self.counts, self.line_faults
        rate = self.rate if line_faults else 0.0
        held: Message | None = None
        contact_left = stuck_left = 0
        last_readings = stuck_readings = b""
        for msg in stream:
            if msg is None:
                yield None
                continue
            fault = rng.choice(line_faults) if rng.random() < rate else None
            if fault == CONTACT_LOSS:
                contact_left = rng.randrange(3, 20)
            elif fault == STUCK_SENSOR:
                stuck_left, stuck_readings = rng.randrange(5, 30), last_readings
            if fault in (CONTACT_LOSS, STUCK_SENSOR):
                counts[fault] += 1
            start = msg.value.find(_TELEMETRY)
            if start >= 0:
                start += len(_TELEMETRY)
                end = msg.value.rfind(_READINGS_END)
                if stuck_left:
                    stuck_left -= 1
                    if not stuck_readings:
                        stuck_readings = msg.value[start:end]
                    msg = msg._replace(value=msg.value[:start] + stuck_readings + msg.value[end:])
                if contact_left:
                    contact_left -= 1
                    msg = msg._replace(value=_HRT.sub(b"hrt = 0", msg.value, count=1))
                last_readings = msg.value[start : msg.value.rfind(_READINGS_END)]
            if fault == OUT_OF_ORDER and held is None:
                counts[fault] += 1
                held = msg
                if truth is not None:
                    truth.sent(msg, held=True)
                continue
            if fault == TRUNCATED:
                counts[fault] += 1
                msg = msg._replace(value=self._truncate(msg.value))
                if truth is not None:
                    truth.broken(msg, TRUNCATED)
            else:
                if fault == GARBAGE:
                    counts[fault] += 1
                    garbage = msg._replace(value=self._garbage(msg.value))
                    if truth is not None:
                        truth.extra(garbage, GARBAGE)
                    yield garbage
                if truth is not None:
                    truth.sent(msg)
            yield msg
            if fault == DUPLICATE:
                counts[fault] += 1
                if truth is not None:
                    truth.extra(msg, DUPLICATE)
                yield msg
            if held is not None:
                yield held
                held = None
        if held is not None:
            yield held

    def _truncate(self, value: bytes) -> bytes:
        """The message with its log line cut short (still valid JSON, no newline)."""
        line = json.loads(value)["log"]
        return json.dumps({"log": line[: self.rng.randrange(1, max(2, len(line) - 1))]}).encode()

    def _garbage(self, value: bytes) -> bytes:
        """Random bytes, broken JSON, or JSON without a "log" field."""
        rng = self.rng
        flavour = rng.randrange(3)
        if flavour == 0:
            return rng.randbytes(rng.randrange(1, 64))
        if flavour == 1:
            return value[: rng.randrange(1, len(value) - 1)]
        return json.dumps(
            rng.choice(({"msg": "heartbeat"}, {"level": "debug", "lg": "x"}, [], None, 42, "log"))
        ).encode()
