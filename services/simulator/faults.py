"""Faults a real fleet shows: sensor trouble, duplicated, reordered, cut and garbage messages."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from random import Random
from typing import TYPE_CHECKING

from services.simulator.models import TELEMETRY as TELEMETRY_KIND
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
# Sensor faults the fleet health detectors look for; injected only when named (kinds=...), so
# the default mix, which ingest's tests rely on, is unchanged.
STUCK_RPM = "stuck_rpm"  # cadence frozen for minutes while power (and resistance) still move
STUCK_HR = "stuck_hr"  # heart rate frozen for minutes
GAP = "gap"  # seconds of readings lost
IMPLAUSIBLE = "implausible"  # a heart rate no body makes (some beyond the parser's limit)
CLOCK_SKEW = "clock_skew"  # the bike's clock minutes off (decided once per bike)
LATE = "late"  # a second's pair of lines delivered several seconds late (overtaken)
SENSOR_FAULTS = (STUCK_RPM, STUCK_HR, GAP, IMPLAUSIBLE, LATE)
QUALITY_FAULTS = (*SENSOR_FAULTS, CLOCK_SKEW)
KNOWN_FAULTS = (*ALL_FAULTS, *QUALITY_FAULTS)
# Joining mid-ride is decided once per bike, so it gets a larger share than a per-line fault.
JOIN_FACTOR = 5.0

_TELEMETRY = b"Telemetry - "
_RIDE = b"Ride - "
_HRT = re.compile(rb"hrt = \d+")
_RPM = re.compile(rb"rpm = \d+")
_STAMP = re.compile(rb'^\{"log": "(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)')
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
        unknown = set(kinds) - set(KNOWN_FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {KNOWN_FAULTS}")
        self.rate = rate
        self.rng = rng
        self.counts = counts
        self.line_faults = tuple(k for k in (*LINE_FAULTS, *SENSOR_FAULTS) if k in kinds)
        self.join_rate = min(1.0, rate * JOIN_FACTOR) if MID_RIDE_JOIN in kinds else 0.0
        self.skew_s = 0
        if CLOCK_SKEW in kinds and rng.random() < min(1.0, rate * JOIN_FACTOR):
            # Minutes off, within ingest's tolerance for the future (INGEST_MAX_FUTURE_S).
            self.skew_s = rng.choice((-1, 1)) * rng.randrange(90, 240)
            counts[CLOCK_SKEW] += 1

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
        contact_left = stuck_left = rpm_left = hr_left = gap_left = 0
        last_readings = stuck_readings = b""
        rpm_text = hr_text = b""
        late: list[Message] = []
        late_take = late_wait = 0
        for msg in stream:
            if msg is None:
                yield None
                continue
            if self.skew_s:
                msg = msg._replace(value=_shift(msg.value, self.skew_s))
            fault = rng.choice(line_faults) if rng.random() < rate else None
            if fault == CONTACT_LOSS:
                contact_left = rng.randrange(3, 20)
            elif fault == STUCK_SENSOR:
                stuck_left, stuck_readings = rng.randrange(5, 30), last_readings
            elif fault == STUCK_RPM and not rpm_left:
                rpm_left, rpm_text = rng.randrange(90, 150), b""
            elif fault == STUCK_HR and not hr_left:
                hr_left, hr_text = rng.randrange(240, 400), b""
            elif fault == GAP and not gap_left:
                gap_left = 2 * rng.randrange(5, 30)  # a Ride and a Telemetry line a second
            elif fault == LATE and not late and not late_take and msg.value.find(_RIDE) >= 0:
                late_take, late_wait = 2, 2 * rng.randrange(3, 8)
            if fault in (CONTACT_LOSS, STUCK_SENSOR, STUCK_RPM, STUCK_HR, GAP, LATE):
                counts[fault] += 1
            if gap_left and msg.kind == TELEMETRY_KIND:
                gap_left -= 1
                continue
            if late_take and msg.kind == TELEMETRY_KIND:
                late_take -= 1
                late.append(msg)
                continue
            if late and msg.kind == TELEMETRY_KIND:
                late_wait -= 1
                if late_wait <= 0:
                    yield msg
                    yield from late
                    late.clear()
                    continue
            start = msg.value.find(_TELEMETRY)
            if start >= 0 and (rpm_left or hr_left or fault == IMPLAUSIBLE):
                msg, rpm_left, rpm_text, hr_left, hr_text = self._sensor(
                    msg, fault, rpm_left, rpm_text, hr_left, hr_text
                )
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
        yield from late

    def _sensor(
        self,
        msg: Message,
        fault: str | None,
        rpm_left: int,
        rpm_text: bytes,
        hr_left: int,
        hr_text: bytes,
    ) -> tuple[Message, int, bytes, int, bytes]:
        """A Telemetry line with a frozen cadence or heart rate, or an implausible one."""
        value = msg.value
        if fault == IMPLAUSIBLE:
            self.counts[IMPLAUSIBLE] += 1
            value = _HRT.sub(b"hrt = %d" % self.rng.randrange(241, 400), value, count=1)
        if rpm_left:
            m = _RPM.search(value)
            # Frozen at the first moving value: a sensor stuck at rest would look like a pause.
            if m and not rpm_text and m.group() != b"rpm = 0":
                rpm_text = m.group()
            if rpm_text:
                rpm_left -= 1
                value = _RPM.sub(rpm_text, value, count=1)
        if hr_left:
            m = _HRT.search(value)
            if m and not hr_text and m.group() != b"hrt = 0":
                hr_text = m.group()
            if hr_text:
                hr_left -= 1
                value = _HRT.sub(hr_text, value, count=1)
        return msg._replace(value=value), rpm_left, rpm_text, hr_left, hr_text  # fmt: skip

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


def _shift(value: bytes, seconds: int) -> bytes:
    """The message with its line's timestamp moved by `seconds` (lines without one unchanged)."""
    m = _STAMP.match(value)
    if m is None:
        return value
    moved = datetime.fromisoformat(m.group(1).decode()) + timedelta(seconds=seconds)
    return value[: m.start(1)] + moved.strftime("%Y-%m-%d %H:%M:%S").encode() + value[m.end(1) :]
