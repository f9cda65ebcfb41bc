"""The hostile feed: good rides whose values must land exactly, mixed with hostile lines whose
fate (stored as what, or rejected for which reason) is decided here, from the documented
grammar and limits, never by asking the parser."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

MODEL = "mendoza v9"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HUGE = 900_000  # bytes of the oversized lines
# Readings of riders in danger: far above every rule's maximum, for three seconds and more.
DANGER_HR = 240


@dataclass(frozen=True)
class Line:
    """One message of the feed and what must become of it."""

    key: bytes | None
    value: bytes
    kind: str  # the category, for the summary table
    outcome: str  # "reading" (half a pair), "ride" (its SYSTEM line), "structure", "reject"
    reason: str | None = None  # the daily.rejects reason expected for a reject


@dataclass(frozen=True)
class RiderFacts:
    """What daily.riders must hold for a rider, and the strings that must never be logged."""

    user_id: int
    title: str | None
    first_name: str
    last_name: str
    gender: str
    address_line: str | None
    city: str | None
    postcode: str | None
    date_of_birth: date
    email_address: str | None
    email_invalid: str | None
    height_cm: int | None
    weight_kg: int | None


@dataclass
class Feed:
    """The lines in send order, and what the database must hold afterwards."""

    lines: list[Line] = field(default_factory=list)
    riders: dict[int, RiderFacts] = field(default_factory=dict)
    # (bike_serial, started_at) -> (user_id, announced_serial)
    rides: dict[tuple[str, str], tuple[int, str | None]] = field(default_factory=dict)
    # (bike_serial, started_at, elapsed_s, recorded_at, resistance, heart_rate, rpm, power)
    readings: set[tuple] = field(default_factory=set)
    danger: set[int] = field(default_factory=set)  # user_ids whose heart rate went too high
    personal: set[str] = field(default_factory=set)  # every personal string sent, rejected too


def stamp(at: datetime) -> str:
    """The feed's timestamp; four-digit years even for year 1 (strftime would write "1")."""
    return at.replace(tzinfo=None).isoformat(" ", "microseconds")


def value(line: str) -> bytes:
    """A Kafka value serialised like the real feed."""
    return json.dumps({"log": line}).encode()


def epoch_ms(d: date) -> int:
    return int((datetime(d.year, d.month, d.day, tzinfo=UTC) - _EPOCH).total_seconds() * 1000)


def system_line(at: datetime, data: dict) -> str:
    return f"{stamp(at)} {MODEL}: [SYSTEM] data = {json.dumps(data, separators=(',', ':'))}\n"


def ride_line(at: datetime, second: int, resistance: int) -> str:
    return f"{stamp(at)} {MODEL}: [INFO]: Ride - duration = {second}.0; resistance = {resistance}\n"


def telemetry_line(at: datetime, hrt: int, rpm: int, power: float) -> str:
    return f"{stamp(at)} {MODEL}: [INFO]: Telemetry - hrt = {hrt}; rpm = {rpm}; power = {power!r}\n"


# --- riders: hostile text that is stored, exactly --------------------------------------------

# (name as sent, title, first, last): injections are data, stored as sent.
_NAMES = [
    ("Robert'); DROP TABLE daily.riders;-- {tag}", None, "Robert');", "DROP TABLE daily.riders;-- {tag}"),
    ("<script>alert(document.cookie)</script> O'Brien{tag}", None, "<script>alert(document.cookie)</script>", "O'Brien{tag}"),
    ("Mr. Bobby Tables{tag}", "Mr", "Bobby", "Tables{tag}"),
    ("Zoë Ñúñez-Ünal{tag}", None, "Zoë", "Ñúñez-Ünal{tag}"),
    ("Ada {{{{7*7}}}} Lovelace{tag}", None, "Ada", "{{{{7*7}}}} Lovelace{tag}"),
    ("Dr Steven Pearce{tag}", "Dr", "Steven", "Pearce{tag}"),
]  # fmt: skip
# (address as sent, line, city, postcode) for street '{street}' and postcode '{pc}'.
_ADDRESSES = [
    ("{street}'; DELETE FROM daily.readings;--,Leeds,{pc}", "{street}'; DELETE FROM daily.readings;--", "Leeds", "{pc}"),
    ("Flat 4,<img src=x onerror=alert(1)>{street},Ryantown,{pc}", "Flat 4, <img src=x onerror=alert(1)>{street}", "Ryantown", "{pc}"),
    ("{street},São Paulo,{pc}", "{street}", "São Paulo", "{pc}"),
    ("{street}\u0000,Leeds,{pc}", None, None, None),  # NUL: the address is not kept
]  # fmt: skip
# (email as sent, as stored, why unusable)
_EMAILS = [
    ("{u}@mail.example", "{u}@mail.example", None),
    ("{u}@x.example\r\nBcc: victim{u}@evil.example", "{u}@x.example\r\nBcc: victim{u}@evil.example", "control_characters"),
    ("{u}@x.example\nSubject: pwned", "{u}@x.example\nSubject: pwned", "control_characters"),
    ("{u}@x.example, attacker{u}@evil.example", "{u}@x.example, attacker{u}@evil.example", "several_addresses"),
    ("Victim <{u}@x.example>", "Victim <{u}@x.example>", "display_name"),
    ("{u}\u0000@x.example", "{u}\\x00@x.example", "control_characters"),
]  # fmt: skip


def _tag(rng: random.Random, n: int = 6) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=n))


def _postcode(rng: random.Random) -> str:
    letters = string.ascii_uppercase
    return f"{rng.choice(letters)}{rng.choice(letters)}{rng.randint(1, 99)} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"


def make_rider(rng: random.Random, user_id: int, serial: str, n: int) -> tuple[dict, RiderFacts]:
    """A rider's SYSTEM data with hostile but storable details (the n-th name, address and
    email of the lists, so every one is used), and what must be stored."""
    tag = _tag(rng)
    sent, title, first, last = _NAMES[n % len(_NAMES)]
    street, pc = f"{rng.randint(1, 999)} Quarry {tag.title()} Road", _postcode(rng)
    address, line, city, postcode = _ADDRESSES[n % len(_ADDRESSES)]
    email, stored_email, problem = _EMAILS[n % len(_EMAILS)]
    u = f"rider.{tag}{user_id}"
    born = date(1960, 1, 1) + timedelta(days=rng.randint(0, 40 * 365))
    height: object = rng.choice([170, "tall", -5, 10**30, None])
    weight: object = rng.choice([70, 1.5, "heavy", 10**9])
    data = {
        "user_id": user_id,
        "name": sent.format(tag=tag.title()),
        "gender": rng.choice(["male", "female", "FEMALE ", 5]),
        "address": address.format(street=street, pc=pc),
        "date_of_birth": epoch_ms(born),
        "email_address": email.format(u=u),
        "height_cm": height,
        "weight_kg": weight,
        "account_create_date": rng.choice([1647993600000, "yesterday", None]),
        "bike_serial": serial,
        "original_source": "offline",
    }
    gender = data["gender"]
    facts = RiderFacts(
        user_id=user_id,
        title=title,
        first_name=first,
        last_name=last.format(tag=tag.title()),
        gender=gender.strip().lower() if isinstance(gender, str) else "other",
        address_line=line.format(street=street) if line else None,
        city=city,
        postcode=postcode.format(pc=pc) if postcode else None,
        date_of_birth=born,
        email_address=stored_email.format(u=u),
        email_invalid=problem,
        height_cm=height if type(height) is int and 50 <= height <= 272 else None,
        weight_kg=weight if type(weight) is int and 20 <= weight <= 650 else None,
    )
    return data, facts


def personal_strings(facts: RiderFacts, data: dict) -> set[str]:
    """The strings of a rider that no log may hold."""
    out = {data["name"], facts.last_name, born_iso(facts), str(data["date_of_birth"])}
    out |= {facts.address_line or "", facts.postcode or "", data["email_address"]}
    out.add(data["email_address"].split("@")[0])
    return {s for s in out if len(s) >= 6}


def born_iso(facts: RiderFacts) -> str:
    return facts.date_of_birth.isoformat()


# --- good rides ------------------------------------------------------------------------------


def good_ride(feed: Feed, rng: random.Random, n: int, start: datetime, seconds: int) -> list[Line]:
    """A ride whose every reading must land with exactly these values."""
    serial = f"HB{n:05d}"
    key = serial.encode()
    user_id = 1_000_000 + n
    data, facts = make_rider(rng, user_id, serial, n)
    feed.riders[user_id] = facts
    feed.personal |= personal_strings(facts, data)
    feed.rides[(serial, stamp(start))] = (user_id, None)
    danger = n % 10 == 4  # one rider in ten (usable addresses or not) goes far too high
    if danger:
        feed.danger.add(user_id)
    half = timedelta(milliseconds=500)
    out = [
        Line(key, value("--------- beginning of a new ride\n"), "good", "structure"),
        Line(key, value(f"{stamp(start - half)} {MODEL}: Getting user data from server..\n"), "good", "structure"),
        Line(key, value(system_line(start, data)), "good", "ride"),
    ]  # fmt: skip
    for s in range(1, seconds + 1):
        at = start + timedelta(seconds=s)
        resistance, rpm = s % 40, 40 + s % 50
        hrt = 0 if s % 7 == 0 else 95 + s % 30
        if danger and 10 <= s < 15:
            hrt = DANGER_HR
        power = s / 10 + 0.2  # float noise on purpose: 0.30000000000000004
        out.append(Line(key, value(ride_line(at - half, s, resistance)), "good", "reading"))
        out.append(Line(key, value(telemetry_line(at, hrt, rpm, power)), "good", "reading"))
        feed.readings.add((serial, stamp(start), s, stamp(at), resistance, hrt or None, rpm, power))
    return out


# --- hostile lines ---------------------------------------------------------------------------

Maker = Callable[[random.Random, datetime], tuple[bytes, str]]  # -> (value, reason)


def _reading(rng: random.Random, now: datetime) -> str:
    at = now - timedelta(seconds=rng.randint(60, 600))
    if rng.random() < 0.5:
        return ride_line(at, rng.randint(1, 500), rng.randint(0, 100))
    return telemetry_line(at, rng.randint(60, 180), rng.randint(0, 120), rng.random() * 300)


def truncated_json(rng: random.Random, now: datetime) -> tuple[bytes, str]:
    whole = value(_reading(rng, now))
    return whole[: rng.randrange(1, len(whole) - 1)], "bad_json"


def truncated_line(rng: random.Random, now: datetime) -> tuple[bytes, str]:
    line = _reading(rng, now)
    return value(line[: rng.randrange(20, len(line) - 1)]), "truncated"


def invalid_utf8(rng: random.Random, now: datetime) -> tuple[bytes, str]:
    # 0xFF is never UTF-8; the bytes after it are lead and continuation bytes out of place.
    junk = bytes([0xFF, *(rng.choice([0xFE, 0xC3, 0x80, 0xED, 0xA0]) for _ in range(3))])
    line = _reading(rng, now).encode()[:-1]
    cut = rng.randrange(10, len(line))
    return b'{"log": "' + line[:cut] + junk + line[cut:] + b'\\n"}', "bad_json"


def nul_bytes(rng: random.Random, now: datetime) -> tuple[bytes, str]:
    line = _reading(rng, now)
    cut = rng.randrange(5, len(line) - 1)
    choice = rng.randrange(3)
    if choice == 0:  # a raw NUL inside the JSON string: not JSON at all
        return b'{"log": "' + line[:cut].encode() + b"\x00" + b'"}', "bad_json"
    if choice == 1:  # an escaped NUL inside the line: not the grammar
        return value(line[:cut] + "\x00" + line[cut:]), "bad_line"
    data = _system_data(rng, name="Nul\x00 Person")  # a NUL in the name: no usable rider
    return value(system_line(now - timedelta(seconds=30), data)), "bad_value"


def huge_line(rng: random.Random, now: datetime) -> tuple[bytes, str]:
    choice = rng.randrange(3)
    if choice == 0:
        return value("A" * HUGE + "\n"), "bad_line"
    if choice == 1:
        data = _system_data(rng, user_id="9" * HUGE)
        return value(system_line(now - timedelta(seconds=30), data)), "bad_value"
    depth = HUGE // 2  # far past any JSON parser's nesting limit
    return b'{"log": ' + b"[" * depth + b"]" * depth + b"}", "bad_json"


def _system_data(rng: random.Random, **override: object) -> dict:
    tag = _tag(rng)
    data: dict = {
        "user_id": rng.randint(5_000_000, 9_000_000),
        "name": f"Rejected Person{tag}",
        "gender": "female",
        "address": f"{rng.randint(1, 99)} Reject Lane{tag},Leeds,{_postcode(rng)}",
        "date_of_birth": epoch_ms(date(1980, 1, 1)),
        "email_address": f"rejected.{tag}@mail.example",
        "height_cm": 170,
        "weight_kg": 70,
        "account_create_date": 1647993600000,
        "bike_serial": "SN9999",
        "original_source": "offline",
    }
    data.update(override)
    return data


def injection_lines(rng: random.Random, now: datetime) -> tuple[bytes, str]:
    at = stamp(now - timedelta(seconds=60))
    line = rng.choice([
        f"{at} {MODEL}: [INFO]: Telemetry - hrt = 1; DROP TABLE daily.readings;--; rpm = 1; power = 1.0\n",
        f"{at} <script>alert(1)</script> v1: [INFO]: Ride - duration = 1.0; resistance = 1\n",
        f"{at} {MODEL}: [INFO]: Ride - duration = 1.0; resistance = 1' OR '1'='1\n",
        f"{at} {MODEL}: [INFO]: Telemetry - hrt = 1; rpm = 1; power = 1.0\r\nX-Injected: 1\n",
    ])  # fmt: skip
    return value(line), "bad_line"


def wrong_types(rng: random.Random, now: datetime) -> tuple[bytes, str]:
    choice = rng.randrange(8)
    if choice < 4:
        return json.dumps(
            [{"log": 5}, ["log"], "log", {"log": {"a": 1}}][choice]
        ).encode(), "bad_json"
    field_, bad = [("user_id", "abc"), ("user_id", 1.5), ("name", 42), ("date_of_birth", "1980-01-01")][choice - 4]  # fmt: skip
    return value(
        system_line(now - timedelta(seconds=30), _system_data(rng, **{field_: bad}))
    ), "bad_value"


def huge_numbers(rng: random.Random, now: datetime) -> tuple[bytes, str]:
    at = now - timedelta(seconds=60)
    choice = rng.randrange(6)
    lines = [
        telemetry_line(at, 99999999999999999999, 60, 10.0),
        f"{stamp(at)} {MODEL}: [INFO]: Telemetry - hrt = 100; rpm = 60; power = 1e308\n",
        f"{stamp(at)} {MODEL}: [INFO]: Ride - duration = 1e400; resistance = 1\n",
        f"{stamp(at)} {MODEL}: [INFO]: Ride - duration = 1.0; resistance = {'9' * 5000}\n",
    ]
    if choice < 4:
        return value(lines[choice]), "bad_value"
    override = {"user_id": 2**63} if choice == 4 else {"date_of_birth": 10**20}
    return value(system_line(at, _system_data(rng, **override))), "bad_value"


def negative_numbers(rng: random.Random, now: datetime) -> tuple[bytes, str]:
    at = now - timedelta(seconds=60)
    choice = rng.randrange(6)
    lines = [
        telemetry_line(at, -1, 60, 10.0),
        telemetry_line(at, 100, -5, 10.0),
        telemetry_line(at, 100, 60, -0.5),
        f"{stamp(at)} {MODEL}: [INFO]: Ride - duration = -3.0; resistance = 1\n",
        ride_line(at, 3, -1),
    ]
    if choice < 5:
        return value(lines[choice]), "bad_value"
    return value(system_line(at, _system_data(rng, user_id=-7))), "bad_value"


def nan_inf(rng: random.Random, now: datetime) -> tuple[bytes, str]:
    at = stamp(now - timedelta(seconds=60))
    choice = rng.randrange(5)
    if choice < 4:
        tail = ["power = nan", "power = inf", "power = -inf", None][choice]
        line = (
            f"{at} {MODEL}: [INFO]: Telemetry - hrt = 100; rpm = 60; {tail}\n"
            if tail
            else f"{at} {MODEL}: [INFO]: Ride - duration = nan; resistance = 1\n"
        )
        return value(line), "bad_value"
    payload = json.dumps(_system_data(rng)).replace('"height_cm": 170', '"height_cm": NaN')
    return value(f"{at} {MODEL}: [SYSTEM] data = {payload}\n"), "bad_json"


def far_timestamps(rng: random.Random, now: datetime) -> tuple[bytes, str]:
    at = rng.choice([datetime(1, 1, 1, 0, 0, 5, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 58, tzinfo=UTC)])  # fmt: skip
    choice = rng.randrange(4)
    if choice == 0:
        return value(ride_line(at, 5, 10)), "bad_value"
    if choice == 1:
        return value(telemetry_line(at, 100, 60, 10.0)), "bad_value"
    if choice == 2:
        return value(f"{stamp(at)} {MODEL}: Getting user data from server..\n"), "bad_value"
    return value(system_line(at, _system_data(rng))), "bad_value"


def _sent_details(body: bytes) -> set[str]:
    """The personal strings of a rejected SYSTEM line: rejected or not, never to be logged."""
    if b"[SYSTEM]" not in body or len(body) > 100_000:
        return set()
    try:
        log = json.loads(body)["log"]
        data = json.loads(log.partition("[SYSTEM] data = ")[2])
    except (ValueError, KeyError, TypeError):
        return set()
    found = {data.get(k) for k in ("name", "address", "email_address")}
    return {s for s in found if isinstance(s, str) and len(s) >= 6}


# Lines that fail on their own: sent on good bikes' keys too, since they must not disturb them.
PARSE_REJECTS: dict[str, Maker] = {
    "truncated JSON": truncated_json,
    "cut line (no newline)": truncated_line,
    "invalid UTF-8": invalid_utf8,
    "NUL bytes": nul_bytes,
    "SQL/script injection in lines": injection_lines,
    "wrong types": wrong_types,
    "huge numbers": huge_numbers,
    "negative numbers": negative_numbers,
    "NaN / inf": nan_inf,
    "year 1 / year 9999": far_timestamps,
}
HOSTILE_KEYS = [b"\xff\xfe\xfa", b"\x00SN0001", b"K" * 10_000, b"SN0001\r\nX: 1", None]


def build(lines: int, *, seed: int = 14, now: datetime | None = None) -> Feed:
    """About `lines` messages: 40% good rides, the rest hostile, shuffled together while each
    bike's own lines keep their order."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC).replace(microsecond=0)
    feed = Feed()
    seconds = 100 if lines >= 20_000 else 30
    rides = max(4, int(lines * 0.4) // (2 * seconds + 3))
    good: list[Line] = []
    for n in range(rides):
        start = now - timedelta(seconds=600) + timedelta(seconds=n % 300, milliseconds=n % 7)
        good += good_ride(feed, rng, n, start, seconds)
    hostile: list[list[Line]] = []  # groups of lines that are sent one after the other
    huge_left = max(3, lines // 2000)
    # SYSTEM lines of bikes nobody has seen (the key names another serial): a ride, no readings.
    for n in range(max(3, lines // 200)):
        key, user_id = f"GHOST{n:05d}", 2_000_000 + n
        data, facts = make_rider(rng, user_id, f"SN-UNKNOWN-{n}", n)
        at = now - timedelta(seconds=rng.randint(60, 500))
        feed.riders[user_id] = facts
        feed.personal |= personal_strings(facts, data)
        feed.rides[(key, stamp(at))] = (user_id, f"SN-UNKNOWN-{n}")
        hostile.append([Line(key.encode(), value(system_line(at, data)), "SYSTEM of unknown bikes", "ride")])  # fmt: skip
    # Readings of the good rides sent on the keys of bikes with no ride: orphans, never moved.
    good_pairs = [ln for ln in good if ln.outcome == "reading"]
    picked = rng.sample(
        range(0, len(good_pairs), 2), min(len(good_pairs) // 2, max(2, lines // 100))
    )
    for n, i in enumerate(picked):  # each pair once: a repeat on one key is a `duplicate`
        key = f"STRAY{n % 50:03d}".encode()
        hostile.append(
            [
                Line(key, half.value, "other bikes' readings", "reject", "orphan")
                for half in good_pairs[i : i + 2]
            ]
        )
    count = len(good) + sum(len(g) for g in hostile)
    while count < lines:
        count += 1
        kind = rng.choice(list(PARSE_REJECTS))
        body, reason = PARSE_REJECTS[kind](rng, now)
        if rng.random() < 0.002 and huge_left > 0:
            kind, (body, reason) = "900 KB lines", huge_line(rng, now)
            huge_left -= 1
        # A line that fails on its own must not disturb the bike whose key it comes under.
        key = rng.choice(good).key if rng.random() < 0.6 else rng.choice(HOSTILE_KEYS)
        hostile.append([Line(key, body, kind, "reject", reason)])
        feed.personal |= _sent_details(body)
    for _ in range(huge_left):  # at least a few, however short the run
        body, reason = huge_line(rng, now)
        hostile.append([Line(None, body, "900 KB lines", "reject", reason)])
        feed.personal |= _sent_details(body)
    # Interleave: good lines keep their relative order, hostile ones land anywhere, the two
    # halves of a stray reading together.
    positions = [(i / len(good), 0, ln) for i, ln in enumerate(good)]
    seq = len(positions)
    for group in hostile:
        where = rng.random()
        for ln in group:
            seq += 1
            positions.append((where, seq, ln))
    positions.sort(key=lambda p: (p[0], p[1]))
    feed.lines = [p[2] for p in positions]
    return feed
