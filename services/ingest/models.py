"""Typed records the parser produces from raw log lines."""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple


class Rider(NamedTuple):
    """A rider as announced by a `[SYSTEM] data = {...}` line, cleaned."""

    user_id: int
    title: str | None
    first_name: str
    last_name: str
    gender: str  # male | female | other
    address_line: str | None
    city: str | None
    postcode: str | None
    date_of_birth: date
    email_address: str | None
    height_cm: int | None
    weight_kg: int | None
    account_created_at: datetime | None
    original_source: str | None
    bike_serial: str | None
    # Why email_address cannot be mailed (kept as data, never sent to); None when it is usable
    # or absent. One of EMAIL_PROBLEMS.
    email_invalid: str | None = None


class RideLine(NamedTuple):
    """`[INFO]: Ride - duration = 12.0; resistance = 30`: first half of a reading."""

    ts: str  # "YYYY-MM-DD HH:MM:SS[.ffffff]", UTC, validated
    model: str
    elapsed_s: int
    resistance: int


class TelemetryLine(NamedTuple):
    """`[INFO]: Telemetry - hrt = 117; rpm = 45; power = 11.7`: second half of a reading."""

    ts: str
    model: str
    heart_rate: int | None  # None: no heart-rate contact (hrt = 0)
    rpm: int
    power: float


class SystemLine(NamedTuple):
    """`[SYSTEM] data = {...}`: opens a ride for this rider."""

    ts: str
    model: str
    rider: Rider


class Announcement(NamedTuple):
    """A line that says a new ride is coming (`beginning of a new ride`, `Getting user data`)."""

    ts: str | None
    model: str | None


class Banner(NamedTuple):
    """`--------- beginning of main`: the log (re)started; carries no data."""


class Reject(NamedTuple):
    """Why a line could not be used."""

    reason: str  # one of REASONS
    detail: str


REASONS = {
    "bad_json": "the message is not a JSON object with a string `log`",
    "bad_line": "the line is not in the Deloton log grammar",
    "truncated": "the line was cut short (no trailing newline)",
    "bad_value": "a value out of range: timestamp, duration, heart rate, rpm, power, rider",
    "orphan": "a reading of no announced ride (e.g. the bike joined mid-ride)",
    "duplicate": "a line seen before",
    "out_of_order": "a reading older than one already written for its ride",
    "unpaired": "a Ride line without its Telemetry line, or the reverse",
    "ambiguous": "a reading of a key that carries two rides at once: no rider provable",
    "too_late": "a reading of a summarised ride, for an hour retention already dropped",
}


EMAIL_PROBLEMS = {
    "control_characters": "a control character (CR/LF could inject mail headers)",
    "several_addresses": "more than one address (a list or a group)",
    "display_name": "a display name or angle brackets, not a bare address",
    "syntax": "not a syntactically valid address",
}


Parsed = RideLine | TelemetryLine | SystemLine | Announcement | Banner | Reject
