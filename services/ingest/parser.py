"""Raw message bytes -> a typed record or a Reject. Pure: no I/O, never raises."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from services.ingest.models import (
    Announcement,
    Banner,
    Parsed,
    Reject,
    RideLine,
    Rider,
    SystemLine,
    TelemetryLine,
)

# ASCII digits only (re.ASCII below): `\d` would also accept e.g. Devanagari digits, which
# neither Python's datetime nor PostgreSQL read.
_TS = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?) (\w+ v\d+): "
_INT = r"(-?\d+)"
_NUM = r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|-?inf|nan)"
# Longer numbers are absurd values; checking the length first keeps int() away from its
# digit limit (4,300), where it raises instead of converting.
_MAX_DIGITS = 12
# Ride and Telemetry lines are 99.8% of the feed: one regex decides and splits both.
_READING_RE = re.compile(
    _TS
    + r"\[INFO\]: (?:Ride - duration = "
    + _NUM
    + r"; resistance = "
    + _INT
    + r"|Telemetry - hrt = "
    + _INT
    + r"; rpm = "
    + _INT
    + r"; power = "
    + _NUM
    + r")\n\Z",
    re.ASCII,
)
_SYSTEM_RE = re.compile(_TS + r"\[SYSTEM\] data = (\{.*\})\n\Z", re.S | re.ASCII)
_GETTING_RE = re.compile(_TS + r"Getting user data from server\.\.\n\Z", re.ASCII)
_BANNER_NEW_RIDE = "--------- beginning of a new ride\n"
_BANNER_MAIN = "--------- beginning of main\n"

TITLES = {"mr", "mrs", "miss", "ms", "mx", "dr", "prof", "sir", "dame", "rev"}
_MIN_DATE = datetime(1900, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Limits beyond which a value is a sensor fault, not an effort.
MAX_HEART_RATE = 250
MAX_RPM = 250
MAX_POWER_W = 3000.0
MAX_RESISTANCE = 500  # the real feed reaches 170
MAX_ELAPSED_S = 24 * 3600


class Parser:
    """Parses raw values; keeps a cache of validated timestamp seconds (hence a class)."""

    def __init__(self, max_future_s: float = 300.0, now: datetime | None = None) -> None:
        self.max_future = timedelta(seconds=max_future_s)
        self._fixed_now = now
        self._seconds_ok: dict[str, bool] = {}

    def _now(self) -> datetime:
        return self._fixed_now or datetime.now(UTC)

    def _valid_ts(self, ts: str) -> bool:
        # Most lines of a second share its first 19 characters: validate each second once.
        sec = ts[:19]
        if sec in self._seconds_ok:
            return True
        try:
            when = datetime.fromisoformat(sec).replace(tzinfo=UTC)
        except ValueError:
            return False
        if when < _MIN_DATE or when > self._now() + self.max_future:
            return False  # future seconds are not cached: they become valid later
        if len(self._seconds_ok) > 200_000:
            self._seconds_ok.clear()
        self._seconds_ok[sec] = True
        return True

    def parse(self, value: bytes | None) -> Parsed:
        """One Kafka message value (`{"log": "<line>\\n"}`) -> record or Reject."""
        if not value:
            return Reject("bad_json", "empty message")
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return Reject("bad_json", str(exc)[:200])
        if type(obj) is not dict:
            return Reject("bad_json", "value is not a JSON object")
        line = obj.get("log")
        if type(line) is not str:
            return Reject("bad_json", 'no string "log" field')
        return self.parse_line(line)

    def parse_line(self, line: str) -> Parsed:
        """One log line -> record or Reject."""
        m = _READING_RE.match(line)
        if m is not None:
            ts = m.group(1)
            if not self._valid_ts(ts):
                return Reject("bad_value", f"timestamp out of range: {ts}")
            if m.group(3) is not None:
                return _ride(ts, m.group(2), m.group(3), m.group(4))
            return _telemetry(ts, m.group(2), m.group(5), m.group(6), m.group(7))
        if not line.endswith("\n"):
            # Every line of the feed ends with a newline: without it the line was cut short,
            # and a cut Ride or Telemetry line could still look like a valid, wrong, value.
            return Reject("truncated", "line does not end with a newline")
        if line == _BANNER_NEW_RIDE:
            return Announcement(None, None)
        if line == _BANNER_MAIN:
            return Banner()
        m = _SYSTEM_RE.match(line)
        if m is not None:
            ts = m.group(1)
            if not self._valid_ts(ts):
                return Reject("bad_value", f"timestamp out of range: {ts}")
            rider = parse_rider(m.group(3), self._now())
            if isinstance(rider, Reject):
                return rider
            return SystemLine(ts, m.group(2), rider)
        m = _GETTING_RE.match(line)
        if m is not None:
            if not self._valid_ts(m.group(1)):
                return Reject("bad_value", f"timestamp out of range: {m.group(1)}")
            return Announcement(m.group(1), m.group(2))
        return Reject("bad_line", "not a line of the Deloton log grammar")


def _ride(ts: str, model: str, duration: str, resistance: str) -> RideLine | Reject:
    if len(duration) > 40 or len(resistance) > _MAX_DIGITS:
        return Reject("bad_value", f"duration {duration[:20]}; resistance {resistance[:20]}")
    d = float(duration)
    if not (0.0 <= d <= MAX_ELAPSED_S) or d != int(d):
        return Reject("bad_value", f"duration {duration}")
    r = int(resistance)
    if not 0 <= r <= MAX_RESISTANCE:
        return Reject("bad_value", f"resistance {resistance}")
    return RideLine(ts, model, int(d), r)


def _telemetry(ts: str, model: str, hrt: str, rpm: str, power: str) -> TelemetryLine | Reject:
    if max(len(hrt), len(rpm)) > _MAX_DIGITS or len(power) > 60:
        return Reject("bad_value", f"hrt {hrt[:20]}; rpm {rpm[:20]}; power {power[:20]}")
    h = int(hrt)
    if not 0 <= h <= MAX_HEART_RATE:
        return Reject("bad_value", f"heart rate {hrt}")
    r = int(rpm)
    if not 0 <= r <= MAX_RPM:
        return Reject("bad_value", f"rpm {rpm}")
    p = float(power)
    if not 0.0 <= p <= MAX_POWER_W or math.isnan(p):
        return Reject("bad_value", f"power {power}")
    return TelemetryLine(ts, model, h or None, r, p)


def split_name(full: str) -> tuple[str | None, str, str] | None:
    """'Dr. Jane Smith-Jones' -> ('Dr', 'Jane', 'Smith-Jones'); None when no first+last."""
    parts = full.split()
    title = None
    if len(parts) > 2 and parts[0].rstrip(".").lower() in TITLES:
        title = parts[0].rstrip(".")
        parts = parts[1:]
    if len(parts) < 2:
        return None
    return title, parts[0], " ".join(parts[1:])


def split_address(address: str) -> tuple[str | None, str | None, str | None]:
    """'line,city,postcode' or 'Flat N,street,city,postcode' -> (line, city, postcode)."""
    parts = [p.strip() for p in address.split(",")]
    if len(parts) >= 3 and all(parts):
        return ", ".join(parts[:-2]), parts[-2], parts[-1]
    return (address.strip() or None), None, None


def epoch_ms_to_datetime(value: Any) -> datetime | None:
    """Epoch milliseconds (negative before 1970) -> aware UTC datetime; None if not a number."""
    if type(value) not in (int, float) or not math.isfinite(value):
        return None
    try:
        return _EPOCH + timedelta(milliseconds=value)
    except OverflowError:
        return None


def _text(obj: dict[str, Any], key: str, limit: int = 200) -> str | None:
    value = obj.get(key)
    if type(value) is not str:
        return None
    value = value.strip()
    return value[:limit] if value and "\x00" not in value else None


def _bounded_int(obj: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = obj.get(key)
    if type(value) is int and low <= value <= high:
        return value
    return None


# A bare addr-spec, ASCII only: dot-atom local part, dotted host of letter/digit/hyphen labels.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL_RE = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@({_LABEL}(?:\.{_LABEL})+)\Z", re.ASCII)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def email_problem(address: str) -> str | None:
    """Why an address cannot be mailed (a key of EMAIL_PROBLEMS), or None when it is exactly
    one syntactically valid bare address. Nothing here may become a second recipient or a
    header: SES takes the recipients from the To header."""
    if _CONTROL_RE.search(address):
        return "control_characters"
    if "<" in address or ">" in address or '"' in address:
        return "display_name"
    if any(c in address for c in ",;: ") or address.count("@") > 1:
        return "several_addresses"
    found = _EMAIL_RE.match(address)
    if found is None or len(address) > 254 or len(found.group(1)) > 64:
        return "syntax"
    return None


def _email(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(address, why it is unusable): an unusable address is kept, marked, never mailed."""
    value = data.get("email_address")
    if type(value) is not str or not value.strip():
        return None, None
    value = value.strip()
    problem = email_problem(value)
    # PostgreSQL text cannot hold NUL; the kept copy shows where it was.
    return value.replace("\x00", "\\x00")[:320], problem


def parse_rider(payload: str, now: datetime) -> Rider | Reject:
    """The JSON of a SYSTEM line -> Rider, or why it is unusable."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return Reject("bad_json", f"SYSTEM data: {str(exc)[:160]}")
    if type(data) is not dict:
        return Reject("bad_json", "SYSTEM data is not an object")
    user_id = data.get("user_id")
    if type(user_id) is not int or not 0 < user_id < 2**63:
        return Reject("bad_value", f"user_id {user_id!r:.100}")
    name = _text(data, "name")
    names = split_name(name) if name else None
    if names is None:
        return Reject("bad_value", f"name {data.get('name')!r:.100}")
    born = epoch_ms_to_datetime(data.get("date_of_birth"))
    if born is None or not _MIN_DATE <= born <= now:
        return Reject("bad_value", f"date_of_birth {data.get('date_of_birth')!r:.100}")
    created = epoch_ms_to_datetime(data.get("account_create_date"))
    if created is not None and not _MIN_DATE <= created <= now + timedelta(days=1):
        created = None
    gender = data.get("gender")
    gender = gender.strip().lower() if type(gender) is str else ""
    address = _text(data, "address", 500)
    line, city, postcode = split_address(address) if address else (None, None, None)
    email, email_invalid = _email(data)
    return Rider(
        user_id=user_id,
        title=names[0],
        first_name=names[1],
        last_name=names[2],
        gender=gender if gender in ("male", "female") else "other",
        address_line=line,
        city=city,
        postcode=postcode,
        date_of_birth=date(born.year, born.month, born.day),
        email_address=email,
        height_cm=_bounded_int(data, "height_cm", 50, 272),
        weight_kg=_bounded_int(data, "weight_kg", 20, 650),
        account_created_at=created,
        original_source=_text(data, "original_source", 100),
        bike_serial=_text(data, "bike_serial", 100),
        email_invalid=email_invalid,
    )
