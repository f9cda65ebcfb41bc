"""The grammar of the raw feed, written from the lines of the real capture.

Every regex here was derived from tests/fixtures/deloton_real_sample.jsonl; the real sample
must pass it as well as every simulated line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

TS = r"(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{6})?) (?P<model>\w+ v\d+): "
BANNER_MAIN = re.compile(r"--------- beginning of main\n")
BANNER_RIDE = re.compile(r"--------- beginning of a new ride\n")
GETTING = re.compile(TS + r"Getting user data from server\.\.\n")
SYSTEM = re.compile(TS + r"\[SYSTEM\] data = (?P<json>\{.*\})\n")
RIDE = re.compile(
    TS + r"\[INFO\]: Ride - duration = (?P<duration>\d+\.0); resistance = (?P<resistance>\d+)\n"
)
TELEMETRY = re.compile(
    TS + r"\[INFO\]: Telemetry - hrt = (?P<hrt>\d+); rpm = (?P<rpm>\d+); "
    r"power = (?P<power>\d+\.\d+)\n"
)
LINE_TYPES = {
    "main": BANNER_MAIN,
    "ride_banner": BANNER_RIDE,
    "getting": GETTING,
    "system": SYSTEM,
    "ride": RIDE,
    "telemetry": TELEMETRY,
}

SYSTEM_FIELDS = {
    "user_id": int,
    "name": str,
    "gender": str,
    "address": str,
    "date_of_birth": int,
    "email_address": str,
    "height_cm": int,
    "weight_kg": int,
    "account_create_date": int,
    "bike_serial": str,
    "original_source": str,
}
POSTCODE = r"[A-Z]{1,2}\d{1,2}[A-Z]? \d[A-Z]{2}"
ADDRESS = re.compile(rf"(?:\d+ [^,]+|(?:Flat|Studio) \d+,[^,]+),[^,]+,{POSTCODE}")
EMAIL = re.compile(r"[a-z0-9._'-]+@[a-z0-9.-]+\.[a-z]{2,}")
NAME = re.compile(
    r"(?:(?:Mr|Mrs|Miss|Ms|Mx|Dr|Prof)\.? )?[A-Z][a-z]+ [A-Z][A-Za-z']+(?:-[A-Z][A-Za-z']+)?"
)
SERIAL = re.compile(r"SN\d{4,}")


def parse_value(value: bytes) -> str:
    """The log line of a message value, checking it is serialised exactly like the real feed."""
    obj = json.loads(value)
    assert isinstance(obj, dict) and list(obj) == ["log"], value
    line = obj["log"]
    assert json.dumps({"log": line}).encode() == value, value
    return line


def classify(line: str) -> tuple[str, re.Match[str]]:
    """The line's type and match; fails for a line outside the grammar."""
    for name, pattern in LINE_TYPES.items():
        found = pattern.fullmatch(line)
        if found:
            return name, found
    raise AssertionError(f"line outside the grammar: {line!r}")


def check_system(text: str) -> dict[str, object]:
    """The SYSTEM payload, checked field by field, in the real feed's key order."""
    data = json.loads(text)
    assert list(data) == list(SYSTEM_FIELDS), list(data)
    for key, kind in SYSTEM_FIELDS.items():
        assert type(data[key]) is kind, (key, data[key])
    assert json.dumps(data, separators=(",", ":")) == text
    assert data["name"] and NAME.fullmatch(data["name"]), data["name"]
    assert ADDRESS.fullmatch(data["address"]), data["address"]
    assert EMAIL.fullmatch(data["email_address"]), data["email_address"]
    assert SERIAL.fullmatch(data["bike_serial"]), data["bike_serial"]
    assert data["gender"] and data["original_source"]
    assert 100 <= data["height_cm"] <= 230 and 30 <= data["weight_kg"] <= 250
    assert data["date_of_birth"] % 86_400_000 == 0 and data["account_create_date"] > 0
    return data


def timestamp(found: re.Match[str]) -> float:
    """Epoch seconds of a matched line's timestamp."""
    text = found["ts"]
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()


@dataclass
class BikeChecker:
    """Checks one bike's lines follow the feed's order: banners, user data, SYSTEM, readings."""

    state: str = "start"
    model: str | None = None
    duration: float = 0.0
    last_time: float | None = None
    last_precise: bool = True
    rides: list[int] = field(default_factory=list)  # readings per ride, in order
    systems: list[dict[str, object]] = field(default_factory=list)

    def feed(self, line: str) -> str:
        """Check the next line; returns its type."""
        kind, found = classify(line)
        allowed = {
            "start": {"main"},
            "main": {"ride_banner"},
            "ride_banner": {"getting"},
            "getting": {"system"},
            "system": {"ride"},
            "ride": {"telemetry"},
            "telemetry": {"ride", "ride_banner"},
        }[self.state]
        assert kind in allowed, f"{kind} after {self.state}: {line!r}"
        if kind in ("main", "ride_banner"):
            self.last_time = None
        else:
            self._check_time(found)
        if kind == "system":
            self.systems.append(check_system(found["json"]))
            self.duration = 0.0
            self.rides.append(0)
        elif kind == "ride":
            duration = float(found["duration"])
            assert duration == self.duration + 1.0, line
            self.duration = duration
            self.rides[-1] += 1
        self.state = kind
        return kind

    def _check_time(self, found: re.Match[str]) -> None:
        if self.model is None:
            self.model = found["model"]
        assert found["model"] == self.model, found.string
        now, precise = timestamp(found), "." in found["ts"]
        if self.last_time is not None:
            step = now - self.last_time
            if precise and self.last_precise:
                assert 0.49 <= step <= 0.51, (step, found.string)
            else:
                assert -0.5 < step <= 1.0, (step, found.string)
        self.last_time, self.last_precise = now, precise


def check_stream(values: Iterable[tuple[bytes | None, bytes]]) -> dict[bytes | None, BikeChecker]:
    """Check every (key, value) of a fault-free stream; returns the checker of each bike."""
    bikes: dict[bytes | None, BikeChecker] = {}
    for key, value in values:
        bikes.setdefault(key, BikeChecker()).feed(parse_value(value))
    return bikes
