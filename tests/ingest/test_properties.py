"""Properties: the parser never raises, simulated lines round-trip, every message is accounted for."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.batch import Batch
from services.ingest.models import (
    REASONS,
    Announcement,
    Banner,
    Parsed,
    Reject,
    RideLine,
    SystemLine,
    TelemetryLine,
)
from services.ingest.parser import Parser
from services.ingest.sessionizer import Sessionizer, _bike_key
from services.simulator.fleet import Fleet, FleetConfig
from services.simulator.models import BIKES, Message

NOW = datetime(2024, 6, 1, tzinfo=UTC)
START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = "2099-01-01 00:00:00.000000"
BANNER_MAIN = "--------- beginning of main\n"
BANNER_RIDE = "--------- beginning of a new ride\n"
RECORDS = (RideLine, TelemetryLine, SystemLine, Announcement, Banner, Reject)
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_record(rec: Parsed) -> None:
    assert type(rec) in RECORDS
    if isinstance(rec, Reject):
        assert rec.reason in REASONS
        assert isinstance(rec.detail, str)


# --- the parser never raises ---------------------------------------------------------------------


@FAST
@given(st.binary(max_size=400))
def test_parse_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    check_record(Parser(now=NOW).parse(raw))
    check_record(Parser().parse(raw))


@FAST
@given(st.binary(max_size=200))
def test_parse_never_raises_on_arbitrary_bytes_after_a_valid_prefix(tail: bytes) -> None:
    """Bytes glued onto the start of a real message: the envelope or the line breaks, not us."""
    check_record(Parser(now=NOW).parse(b'{"log": "2024-05-01 08:00:01.250000 mendoza v9: ' + tail))


_DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=40)
# Numbers as a broken or hostile bike might print them. Runs of digits stay below CPython's
# 4,300-digit int() limit: that case has a test of its own in test_parser.py.
NUMBERS = st.one_of(
    st.integers(-(10**15), 10**15).map(str),
    st.integers(0, 400).map(lambda n: f"{n}.0"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    _DIGITS,
    st.sampled_from(["nan", "inf", "-inf", "1e999", "-0.0", "0", "00", "1.", ".5", "1e5", "-", ""]),
    st.text(alphabet="0123456789.-+eE", max_size=25),
)
TIMESTAMPS = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
    ).map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f")),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ).map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    st.builds(
        lambda y, mo, d, h, mi, s, frac: f"{y}-{mo}-{d} {h}:{mi}:{s}{frac}",
        *[st.text(alphabet="0123456789", min_size=n, max_size=n) for n in (4, 2, 2, 2, 2, 2)],
        st.sampled_from(["", ".", ".1", ".123456", ".1234567"]),
    ),
    st.sampled_from(["", "2024-05-01", "2024-05-01T08:00:00.000000", "٢٠٢٤-05-01 08:00:00"]),
)
MODELS = st.one_of(
    st.sampled_from(["mendoza v9", "kessler v2", "sierra v4", "mendoza", "v9", " v9", "x v", ""]),
    st.from_regex(r"\A\w{1,8} v\d{1,3}\Z"),
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
RIDER_KEYS = [
    "user_id",
    "name",
    "gender",
    "address",
    "date_of_birth",
    "email_address",
    "height_cm",
    "weight_kg",
    "account_create_date",
    "bike_serial",
    "original_source",
]
PLAUSIBLE_RIDER = {
    "user_id": st.integers(-5, 2**64),
    "name": st.sampled_from(["Steven Pearce", "Dr. Ann Lee-Wright", "Cher", "", "Mx  Sam  Kit"]),
    "gender": st.sampled_from(["male", "female", "other", "MALE", ""]),
    "address": st.sampled_from(
        ["0 Simpson locks,Wilkinsonshire,E68 8SH", "Flat 4,Harris mill,Ryantown,E8 5BR", ",,", "x"]
    ),
    "date_of_birth": st.one_of(st.integers(-(10**15), 10**15), st.floats()),
    "account_create_date": st.one_of(st.integers(-(10**15), 10**15), st.floats()),
    "height_cm": st.integers(-10, 1000),
    "weight_kg": st.integers(-10, 1000),
}


@st.composite
def system_payloads(draw: st.DrawFn) -> str:
    """A SYSTEM payload: the real keys with plausible or arbitrary values, sometimes not JSON."""
    data = {}
    for key in RIDER_KEYS:
        if draw(st.integers(0, 9)) == 0:
            continue  # the key is missing
        plausible = PLAUSIBLE_RIDER.get(key, st.text(max_size=20))
        data[key] = draw(st.one_of(plausible, JSON_VALUES))
    text = json.dumps(data, separators=(",", ":"))
    if draw(st.integers(0, 9)) == 0:
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "}", "{", '"', "\\"]))
    return text


@st.composite
def log_lines(draw: st.DrawFn) -> str:
    """A log line assembled from fragments of the grammar, each of which may be wrong."""
    prefix = f"{draw(TIMESTAMPS)} {draw(MODELS)}: "
    body = draw(
        st.one_of(
            st.builds("[INFO]: Ride - duration = {}; resistance = {}".format, NUMBERS, NUMBERS),
            st.builds(
                "[INFO]: Telemetry - hrt = {}; rpm = {}; power = {}".format,
                NUMBERS,
                NUMBERS,
                NUMBERS,
            ),
            system_payloads().map(lambda p: "[SYSTEM] data = " + p),
            st.just("Getting user data from server.."),
            st.text(max_size=60),
        )
    )
    line = draw(
        st.one_of(
            st.just(prefix + body),
            st.sampled_from([BANNER_MAIN[:-1], BANNER_RIDE[:-1]]),
            st.just(body),
        )
    )
    if draw(st.booleans()):  # a cut line
        line = line[: draw(st.integers(0, len(line)))]
    return line + draw(st.sampled_from(["\n", "\n", "\n", "", "\n\n", " \n", "\r\n", "\x00\n"]))


@settings(FAST, max_examples=250)
@given(
    log_lines(), st.dictionaries(st.sampled_from(["host", "level", "Log"]), JSON_VALUES, max_size=2)
)
def test_parse_never_raises_on_grammar_like_lines(line: str, extra: dict[str, Any]) -> None:
    raw = json.dumps({**extra, "log": line}).encode()
    rec = Parser(now=NOW).parse(raw)
    check_record(rec)
    if not line.endswith("\n"):
        assert isinstance(rec, Reject)
        assert rec.reason == "truncated"
    if isinstance(rec, RideLine | TelemetryLine | SystemLine) or (
        isinstance(rec, Announcement) and rec.ts is not None
    ):
        assert line.startswith(f"{rec.ts} {rec.model}: ")


# --- simulated fleets round-trip -----------------------------------------------------------------


def fleet(seed: int, bikes: int, rides: int, seconds: int, faults: float = 0.0) -> Fleet:
    start = START + timedelta(minutes=seed % 10_000)
    return Fleet(
        FleetConfig(
            bikes=bikes, rides=rides, seconds=seconds, seed=seed, start=start, faults=faults
        )
    )


def reformat(rec: Parsed, line: str) -> str:
    """The log line a record says it came from (checking the rider against the payload)."""
    if isinstance(rec, RideLine):
        body = f"[INFO]: Ride - duration = {rec.elapsed_s}.0; resistance = {rec.resistance}"
    elif isinstance(rec, TelemetryLine):
        hrt = 0 if rec.heart_rate is None else rec.heart_rate
        assert hrt != 0 or rec.heart_rate is None
        body = f"[INFO]: Telemetry - hrt = {hrt}; rpm = {rec.rpm}; power = {rec.power!r}"
    elif isinstance(rec, SystemLine):
        payload = line.split("[SYSTEM] data = ", 1)[1].rstrip("\n")
        check_rider(rec, json.loads(payload))
        body = f"[SYSTEM] data = {payload}"
    elif isinstance(rec, Announcement):
        if rec.ts is None:
            return BANNER_RIDE
        body = "Getting user data from server.."
    else:
        assert isinstance(rec, Banner)
        return BANNER_MAIN
    return f"{rec.ts} {rec.model}: {body}\n"


def check_rider(rec: SystemLine, data: dict[str, Any]) -> None:
    r = rec.rider
    assert r.user_id == data["user_id"]
    name = f"{r.first_name} {r.last_name}"
    if r.title is None:
        assert name == data["name"]
    else:
        assert data["name"] in (f"{r.title} {name}", f"{r.title}. {name}")
        assert r.title in ("Mr", "Mrs", "Miss", "Ms", "Mx", "Dr", "Prof")
    assert r.gender == (data["gender"] if data["gender"] in ("male", "female") else "other")
    assert r.city is not None and r.postcode is not None and r.address_line is not None
    assert f"{r.address_line.replace(', ', ',')},{r.city},{r.postcode}" == data["address"]
    assert (r.date_of_birth - date(1970, 1, 1)).days * 86_400_000 == data["date_of_birth"]
    assert r.account_created_at is not None
    assert (r.account_created_at - EPOCH) // timedelta(milliseconds=1) == data[
        "account_create_date"
    ]
    assert (r.email_address, r.height_cm, r.weight_kg) == (
        data["email_address"],
        data["height_cm"],
        data["weight_kg"],
    )
    assert (r.original_source, r.bike_serial) == (data["original_source"], data["bike_serial"])


@settings(FAST, max_examples=15)
@given(
    seed=st.integers(0, 10**6),
    bikes=st.integers(1, 4),
    rides=st.integers(1, 3),
    seconds=st.integers(2, 40),
)
def test_every_simulated_line_parses_and_round_trips(
    seed: int, bikes: int, rides: int, seconds: int
) -> None:
    parser = Parser(now=NOW)
    kinds: Counter[str] = Counter()
    for msg in fleet(seed, bikes, rides, seconds).messages():
        line = json.loads(msg.value)["log"]
        rec = parser.parse(msg.value)
        assert not isinstance(rec, Reject), (line, rec)
        assert reformat(rec, line) == line
        kinds[type(rec).__name__] += 1
    assert kinds == {
        "Banner": bikes,
        "Announcement": 2 * bikes * rides,
        "SystemLine": bikes * rides,
        "RideLine": bikes * rides * seconds,
        "TelemetryLine": bikes * rides * seconds,
    }


def test_simulated_lines_without_microseconds_round_trip() -> None:
    """The simulator stamps about one line in 2,000 without microseconds, like the feed."""
    parser = Parser(now=NOW)
    short = 0
    for msg in fleet(7, 10, 1, 300).messages():
        line = json.loads(msg.value)["log"]
        rec = parser.parse(msg.value)
        if isinstance(rec, RideLine | TelemetryLine) and len(rec.ts) == 19:
            short += 1
            assert reformat(rec, line) == line
    assert short > 0


@settings(FAST, max_examples=10)
@given(seed=st.integers(0, 10**6), bikes=st.integers(1, 4), seconds=st.integers(2, 40))
def test_fault_free_fleet_loses_nothing(seed: int, bikes: int, seconds: int) -> None:
    s = Sessionizer(Parser(now=NOW))
    batch = Batch()
    for i, msg in enumerate(fleet(seed, bikes, 2, seconds).messages()):
        s.process(batch, "deloton", 0, i, msg.key, msg.value)
    assert batch.rejects == []
    assert len(batch.rides) == 2 * bikes
    assert len(batch.readings) == 2 * bikes * seconds
    assert len(batch.ride_ends) == bikes


# --- faults: never raises, every message accounted for -------------------------------------------


Routed = tuple[str, int, bytes | None, bytes]  # topic, partition, key, value


def route(messages: Iterable[Message], mode: str, partitions: int, lag: int) -> Iterator[Routed]:
    """Where each message lands: keyed, unkeyed (a partition per bike), or split topics with
    the bikes topic read `lag` messages behind the telemetry topic."""
    waiting: list[Routed] = []
    for msg in messages:
        assert msg.key is not None
        number = int(msg.key[2:])
        if mode == "unkeyed":
            yield ("deloton", number, None, msg.value)
        elif mode == "keyed":
            yield ("deloton", number % partitions, msg.key, msg.value)
        elif msg.kind == BIKES:
            waiting.append(("deloton.bikes", number % partitions, msg.key, msg.value))
        else:
            yield ("deloton.telemetry", number % partitions, msg.key, msg.value)
            if len(waiting) > lag:
                yield waiting.pop(0)
    yield from waiting


def pending(s: Sessionizer) -> int:
    """Lines the sessioniser still holds in its state, neither written nor rejected."""
    return sum(
        len(b.pending_rides) + len(b.pending_tels) + 2 * len(b.held) for b in s.bikes.values()
    )


def check_accounting(s: Sessionizer, batch: Batch, banners: int) -> None:
    assert batch.messages == (
        2 * len(batch.readings) + len(batch.rides) + banners + len(batch.rejects) + pending(s)
    )


def run_faulty_fleet(sim: Fleet, mode: str, partitions: int, lag: int) -> None:
    """Feed a faulty fleet through a sessioniser, checking that every message is accounted for:
    2 x readings + SYSTEM lines that opened rides + banners/announcements + rejects
    + lines still waiting in the state == messages processed, at every point."""
    s = Sessionizer(Parser(now=NOW), split_topics=mode == "split")
    classify = Parser(now=NOW)
    batch = Batch()
    offsets: Counter[tuple[str, int]] = Counter()
    banners = 0
    for n, (topic, partition, key, raw) in enumerate(route(sim.messages(), mode, partitions, lag)):
        s.process(batch, topic, partition, offsets[(topic, partition)], key, raw)
        offsets[(topic, partition)] += 1
        banners += isinstance(classify.parse(raw), Banner | Announcement)
        if n % 97 == 0:
            check_accounting(s, batch, banners)
    check_accounting(s, batch, banners)
    # The end of the stream: silence closes every ride, the hold time runs out.
    ends = {p: FAR_FUTURE for p in range(max(partitions, sim.config.bikes))}
    s.mark_seen(s.bikes, 0.0)
    s.close_silent(batch, dict.fromkeys(ends, 61.0), 60)
    s.expire_held(batch, ends)
    check_accounting(s, batch, banners)
    assert all(b.ride is None and not b.held for b in s.bikes.values())

    reasons = Counter(r.reason for r in batch.rejects)
    assert set(reasons) <= set(REASONS)
    assert reasons["truncated"] == sim.faults["truncated"]
    assert reasons["bad_json"] == sim.faults["garbage"]
    ride_ids = {r.ride_id for r in batch.rides}
    assert len(ride_ids) == len(batch.rides)
    assert set(batch.ride_ends) == ride_ids  # every ride was closed, once
    last: dict[int, int] = {}
    for line in batch.readings:
        ride_id, elapsed = (int(x) for x in line.split("\t", 2)[:2])
        assert ride_id in ride_ids
        assert elapsed > last.get(ride_id, 0)  # never the same second twice, never backwards
        last[ride_id] = elapsed
    for _, event in batch.events:
        assert orjson.loads(event)["type"] in ("reading", "ride_started", "ride_ended")


@settings(FAST, max_examples=40)
@given(
    seed=st.integers(0, 10**6),
    bikes=st.integers(1, 4),
    rides=st.integers(1, 3),
    seconds=st.integers(2, 60),
    faults=st.floats(0.01, 0.4),
    mode=st.sampled_from(["keyed", "unkeyed", "split"]),
    partitions=st.integers(1, 3),
    lag=st.integers(0, 30),
)
def test_faulty_fleet_never_raises_and_accounts_for_every_message(
    seed: int,
    bikes: int,
    rides: int,
    seconds: int,
    faults: float,
    mode: str,
    partitions: int,
    lag: int,
) -> None:
    run_faulty_fleet(fleet(seed, bikes, rides, seconds, faults), mode, partitions, lag)


@pytest.mark.parametrize("mode", ["keyed", "unkeyed", "split"])
@pytest.mark.parametrize("seed", [1, 2])
def test_large_faulty_fleet_accounts_for_every_message(mode: str, seed: int) -> None:
    """A bigger fleet than the property draws: 8 bikes, 3 rides of 2 minutes, 5% faults."""
    sim = fleet(seed, 8, 3, 120, 0.05)
    run_faulty_fleet(sim, mode, 3, 40)
    assert sum(sim.faults.values()) > 50
    assert set(sim.faults) >= {"duplicate", "out_of_order", "truncated", "garbage"}


# --- hostile sequences through the sessioniser ---------------------------------------------------


@st.composite
def bike_lines(draw: st.DrawFn) -> tuple[bytes | None, bytes]:
    """One message of two bikes whose lines come in any order, with any times and seconds."""
    key = draw(st.sampled_from([b"SN0001", b"SN0002", None]))
    at = START + timedelta(milliseconds=draw(st.integers(0, 120_000)))
    ts = at.strftime("%Y-%m-%d %H:%M:%S.%f")
    if draw(st.integers(0, 20)) == 0:
        ts = ts[:19]
    elapsed = draw(st.integers(0, 130))
    kind = draw(st.integers(0, 5))
    if kind == 0:
        data = {"user_id": draw(st.integers(1, 3)), "name": "Ann Lee", "date_of_birth": 0}
        data["bike_serial"] = draw(st.sampled_from(["SN0001", "SN0002"]))
        body = f"[SYSTEM] data = {json.dumps(data)}"
    elif kind == 1:
        body = draw(
            st.sampled_from(["Getting user data from server..", BANNER_RIDE[:-1], BANNER_MAIN[:-1]])
        )
    elif kind in (2, 3):
        body = f"[INFO]: Ride - duration = {elapsed}.0; resistance = {elapsed % 7}"
    else:
        body = f"[INFO]: Telemetry - hrt = {elapsed % 3}; rpm = 50; power = {elapsed / 3!r}"
    line = body + "\n" if body.startswith("-") else f"{ts} mendoza v9: {body}\n"
    return key, json.dumps({"log": line}).encode()


@settings(FAST, max_examples=150)
@given(st.lists(bike_lines(), max_size=120), st.booleans(), st.integers(1, 120))
def test_sessionizer_never_raises_on_shuffled_lines(
    messages: list[tuple[bytes | None, bytes]], split: bool, silence_s: int
) -> None:
    """Lines of two bikes in any order, times and seconds: no exception, and every message is
    written, rejected, still waiting, or (a known bug) a SYSTEM line older than the open ride."""
    s = Sessionizer(Parser(now=NOW), split_topics=split)
    classify = Parser(now=NOW)
    batch = Batch()
    banners = dropped = 0
    for i, (key, raw) in enumerate(messages):
        rec = classify.parse(raw)
        bike = s.bikes.get(_bike_key(key, 0))
        open_ride = bike.ride if bike is not None else None
        before = (len(batch.rides), len(batch.rejects))
        s.process(batch, "deloton", 0, i, key, raw)
        banners += isinstance(rec, Banner | Announcement)
        if isinstance(rec, SystemLine):
            # Every SYSTEM line opens a ride or is rejected with a reason: none vanishes.
            assert (len(batch.rides), len(batch.rejects)) != before, open_ride
        s.mark_seen(batch.dirty, i)  # one message a second
        batch.dirty.clear()
        if i % 10 == 0:
            s.close_silent(batch, {0: float(i)}, silence_s)
            s.expire_held(batch, s.partition_now)
        check_accounting(s, batch, banners + dropped)
    state = orjson.loads(orjson.dumps(s.dump_partition(0)))
    restored = Sessionizer(Parser(now=NOW), split_topics=split)
    restored.load_partition(0, state)
    assert orjson.loads(orjson.dumps(restored.dump_partition(0))) == state
