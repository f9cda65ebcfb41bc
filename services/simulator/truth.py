"""What the fleet sent, as the simulator knows it: good readings, bad lines, alerts due.

The fleet tells a `Truth` each line as a bike produced it (`clean`), then what the fault
injector did with it: sent it (`sent`, values as sent: a stuck sensor or lost contact
changes them), sent it broken instead (`broken`), or sent another bad line beside it
(`extra`: garbage, a duplicate copy). From that alone, never from what a consumer made of
it, the truth file (JSON lines) says:

- `ride`: every announced ride (bike, SYSTEM timestamp, rider) with its good readings (both
  lines of the second sent intact) and the alerts due on them, computed with the alerts
  service's own pure episode rules over those readings in order;
- `bad`: every line that must not become a reading: broken lines and garbage, duplicate
  copies, the readings of a ride whose SYSTEM line was lost or never sent (a bike joining
  mid-ride: `orphan`), and the surviving half of a pair whose other line was broken
  (`unpaired`).

A repeated banner or "Getting user data" line carries no data and changes nothing, so it is
not a bad line.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import BinaryIO

import orjson

from services.alerts.episodes import EpisodeRules, apply
from services.alerts.models import Reading, Rider, RideStarted
from services.simulator import lines
from services.simulator.models import Message

_RIDE = re.compile(r"Ride - duration = (\d+)\.0; resistance = (\d+)")
_TELEMETRY = re.compile(r"Telemetry - hrt = (\d+); rpm = (\d+); power = (\S+)")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class _Part:
    """One line of a reading (Ride or Telemetry) as sent."""

    value: bytes = b""
    ok: bool = False
    ts: str = ""
    numbers: tuple[str, ...] = ()


@dataclass
class _Second:
    ride: _Part | None = None
    telemetry: _Part | None = None


@dataclass
class _Ride:
    started: str  # the SYSTEM line's timestamp: ingest's ride start
    announced: bool
    rider: dict[str, object] = field(default_factory=dict)
    seconds: dict[int, _Second] = field(default_factory=dict)


def _text(value: bytes) -> str:
    return str(json.loads(value)["log"])


def _stamp(line: str) -> str:
    return " ".join(line.split(" ", 2)[:2])


def parse_stamp(ts: str) -> datetime:
    """A feed timestamp ('2026-01-02 10:11:12[.123456]', UTC) as an aware datetime."""
    return datetime.fromisoformat(ts).replace(tzinfo=UTC)


class BikeTruth:
    """One bike's lines: the line being decided and the ride they belong to."""

    def __init__(self, truth: Truth, serial: str) -> None:
        self.truth = truth
        self.serial = serial
        self.ride: _Ride | None = None
        self.part: _Part | None = None
        self.system: _Part | None = None
        self.held: tuple[_Part, bool] | None = None
        self.overtaking = False
        self.last_second = 0

    def clean(self, msg: Message) -> None:
        """A line as the bike produced it, before any fault."""
        line = _text(msg.value)
        held, self.held = self.held, None
        self.part = None
        reading = bool(_RIDE.search(line) or _TELEMETRY.search(line))
        if held is not None and held[1] != reading:
            # The held line goes out after this one, across a ride's boundary: a reading
            # after the next ride's banner, or a ride's first reading before its SYSTEM line.
            # It is out of its ride's span when it arrives.
            if held[1]:
                self._out_of_span(held[0])
            else:
                self.overtaking = True
        if line.startswith("---------"):
            self.finish()
        elif lines.SYSTEM_PREFIX in line:
            self.finish()
            data = json.loads(line.split(lines.SYSTEM_PREFIX, 1)[1])
            born = _EPOCH + timedelta(milliseconds=data["date_of_birth"])
            rider = {"user_id": data["user_id"], "gender": data["gender"], "dob": born.date()}
            self.ride = _Ride(_stamp(line), announced=True, rider=rider)
            self.part = self.system = _Part()
        elif m := _RIDE.search(line):
            if self.ride is None:  # a bike that joined mid-ride: no SYSTEM line was sent
                self.ride = _Ride(_stamp(line), announced=False)
            self.last_second = int(m.group(1))
            second = self.ride.seconds.setdefault(self.last_second, _Second())
            second.ride = self.part = _Part()
        elif _TELEMETRY.search(line):
            if self.ride is None:
                self.ride = _Ride(_stamp(line), announced=False)
            second = self.ride.seconds.setdefault(self.last_second, _Second())
            second.telemetry = self.part = _Part()

    def sent(self, msg: Message, *, held: bool = False) -> None:
        """The line just given to `clean` was sent intact, with these values; `held`: only
        after the next line (swapped in transit)."""
        line = _text(msg.value)
        if self.part is None:
            return
        self.part.value, self.part.ok, self.part.ts = msg.value, True, _stamp(line)
        if m := _RIDE.search(line) or _TELEMETRY.search(line):
            self.part.numbers = m.groups()
        if held:
            self.held = (self.part, bool(self.part.numbers))
        if self.overtaking:
            self.overtaking = False
            self._out_of_span(self.part)

    def _out_of_span(self, part: _Part) -> None:
        """A line delivered outside its ride's span is bad, not half of a reading."""
        if part.ok:
            part.ok = False
            self.truth.bad(self.serial, part.value, "out_of_span")

    def broken(self, msg: Message, why: str) -> None:
        """The line just given to `clean` was sent broken (this value) instead."""
        if self.part is not None:
            self.part.ok = False
            if self.part is self.system and self.ride is not None:
                self.ride.announced = False  # a broken SYSTEM line announces nothing
        self.truth.bad(self.serial, msg.value, why)

    def extra(self, msg: Message, why: str) -> None:
        """Another bad line sent beside the line just given to `clean`."""
        if msg.value.startswith(b'{"log": "---------') or lines.GETTING_USER.encode() in msg.value:
            # A repeated banner or "Getting user data" line announces the same ride again:
            # it makes no row and changes nothing, so ingest need not reject it.
            return
        self.truth.bad(self.serial, msg.value, why)

    def finish(self) -> None:
        """The current ride is over: write its readings, alerts and leftover lines."""
        ride, self.ride = self.ride, None
        if ride is not None:
            self.truth.ride(self.serial, ride)


class Truth:
    """Writes the truth file for a whole fleet (see the module docstring)."""

    def __init__(self, out: BinaryIO, rules: EpisodeRules | None = None) -> None:
        self.out = out
        self.rules = rules or EpisodeRules()
        self.bikes: dict[str, BikeTruth] = {}
        self.counts = {"rides": 0, "readings": 0, "bad": 0, "alerts": 0}

    def bike(self, serial: str) -> BikeTruth:
        """The recorder of one bike."""
        if serial not in self.bikes:
            self.bikes[serial] = BikeTruth(self, serial)
        return self.bikes[serial]

    def bad(self, serial: str, value: bytes, why: str) -> None:
        """A line that must be rejected (kept in daily.rejects), never a reading."""
        self.counts["bad"] += 1
        raw = base64.b64encode(value).decode()
        self._write({"t": "bad", "bike": serial, "why": why, "raw": raw})

    def ride(self, serial: str, ride: _Ride) -> None:
        """A finished ride: its good readings and alerts, or all its lines as orphans."""
        readings = []
        for n in sorted(ride.seconds):
            second = ride.seconds[n]
            parts = [p for p in (second.ride, second.telemetry) if p is not None]
            good = [p for p in parts if p.ok]
            if not ride.announced:
                for p in good:
                    self.bad(serial, p.value, "orphan")
            elif len(good) == 2 and second.ride and second.telemetry:
                _, resistance = second.ride.numbers
                hr, rpm, power = second.telemetry.numbers
                readings.append((n, second.telemetry.ts, int(resistance), int(hr), int(rpm), power))
            else:
                for p in good:
                    self.bad(serial, p.value, "unpaired")
        if not ride.announced:
            return
        alerts = self.alerts_due(serial, ride, readings)
        self.counts["rides"] += 1
        self.counts["readings"] += len(readings)
        self.counts["alerts"] += len(alerts)
        rider = ride.rider
        self._write(
            {
                "t": "ride",
                "bike": serial,
                "started": ride.started,
                "user_id": rider["user_id"],
                "gender": rider["gender"],
                "dob": rider["dob"],
                "readings": readings,
                "alerts": alerts,
            }
        )

    def alerts_due(
        self, serial: str, ride: _Ride, readings: list[tuple[int, str, int, int, int, str]]
    ) -> list[tuple[int, str, str]]:
        """(episode, kind, confirming reading's time) of every alert the rules raise."""
        rider = ride.rider
        dob = rider["dob"]
        assert isinstance(dob, date)
        who = Rider(int(str(rider["user_id"])), str(rider["gender"]), dob)
        state = apply(
            None, RideStarted(0, serial, parse_stamp(ride.started), who), self.rules
        ).state
        due = []
        for n, ts, _, hr, _, _ in readings:
            at = parse_stamp(ts)
            out = apply(state, Reading(0, serial, who.user_id, at, n, hr or None), self.rules)
            state = out.state
            if out.alert is not None:
                due.append((out.alert.episode, out.alert.kind, ts))
        return due

    def close(self) -> None:
        """Finish every open ride and flush."""
        for bike in self.bikes.values():
            bike.finish()
        self._write({"t": "end", **self.counts})
        self.out.flush()

    def _write(self, record: dict[str, object]) -> None:
        self.out.write(orjson.dumps(record) + b"\n")


def read(path: str) -> tuple[list[dict[str, object]], list[dict[str, object]], dict[str, int]]:
    """A truth file: (rides, bad lines with raw bytes decoded, closing counts)."""
    rides, bad, end = [], [], {}
    with open(path, "rb") as f:
        for row in f:
            record = orjson.loads(row)
            if record["t"] == "ride":
                rides.append(record)
            elif record["t"] == "bad":
                record["raw"] = base64.b64decode(record["raw"])
                bad.append(record)
            else:
                end = record
    return rides, bad, end


__all__ = ["BikeTruth", "Truth", "parse_stamp", "read"]
