"""Sessionizer: raw messages -> rides, readings, rejects and events, without broker or database."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pytest
from jsonschema import Draft202012Validator

from services.ingest.batch import Batch, RideRow
from services.ingest.models import REASONS, Rider
from services.ingest.parser import Parser
from services.ingest.sessionizer import Sessionizer, ride_id_for
from services.simulator.fleet import Fleet, FleetConfig

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "messages"
NOW = datetime(2024, 3, 2, tzinfo=UTC)  # the parser's clock: after every synthetic line
T0 = datetime(2024, 3, 1, 9, 0, 0, 250000, tzinfo=UTC)
MODEL = "mendoza v9"
BANNER_MAIN = "--------- beginning of main\n"
BANNER_RIDE = "--------- beginning of a new ride\n"
SAMPLE_START = "2022-11-03 18:42:00.922427"
SAMPLE_RIDE_ID = ride_id_for("SN0000", SAMPLE_START)
HALF = timedelta(seconds=0.5)


# --- building feeds ------------------------------------------------------------------------------


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def value(line: str) -> bytes:
    """A Kafka value serialised exactly like the real feed."""
    return json.dumps({"log": line}).encode()


def announce(
    start: datetime, user_id: int = 7, serial: str = "SN0007", model: str = MODEL
) -> list[bytes]:
    """The three lines that open a ride; its SYSTEM line is stamped `start`."""
    data = {
        "user_id": user_id,
        "name": "Mrs. Amelia Smith-Jones",
        "gender": "female",
        "address": "Flat 4,Harris mill,Ryantown,E8 5BR",
        "date_of_birth": -631152000000,
        "email_address": "amelia@example.com",
        "height_cm": 163,
        "weight_kg": 60,
        "account_create_date": 1647993600000,
        "bike_serial": serial,
        "original_source": "offline",
    }
    payload = json.dumps(data, separators=(",", ":"))
    return [
        value(BANNER_RIDE),
        value(f"{stamp(start - HALF)} {model}: Getting user data from server..\n"),
        value(f"{stamp(start)} {model}: [SYSTEM] data = {payload}\n"),
    ]


class Expected(NamedTuple):
    elapsed: int
    ts: str
    resistance: int
    heart_rate: int | None
    rpm: int
    power: float


def expected(start: datetime, second: int) -> Expected:
    """The values of second `second` of a synthetic ride started at `start`."""
    hrt = 0 if second % 7 == 0 else 90 + second % 60
    return Expected(
        second,
        stamp(start + timedelta(seconds=second)),
        second % 40,
        hrt or None,
        40 + second % 50,
        second / 10 + 0.2,  # float noise on purpose: 0.30000000000000004
    )


def pair(start: datetime, second: int, model: str = MODEL) -> list[bytes]:
    """The Ride and Telemetry lines of one second of a ride started at `start`."""
    e = expected(start, second)
    at = start + timedelta(seconds=second)
    return [
        value(
            f"{stamp(at - HALF)} {model}: [INFO]: Ride - duration = {second}.0; "
            f"resistance = {e.resistance}\n"
        ),
        value(
            f"{stamp(at)} {model}: [INFO]: Telemetry - hrt = {e.heart_rate or 0}; "
            f"rpm = {e.rpm}; power = {e.power!r}\n"
        ),
    ]


def pairs(start: datetime, first: int, last: int, model: str = MODEL) -> list[bytes]:
    return [v for s in range(first, last + 1) for v in pair(start, s, model)]


def ride(start: datetime, seconds: int, **who: Any) -> list[bytes]:
    """A whole ride: its announcement and `seconds` readings."""
    return announce(start, **who) + pairs(start, 1, seconds, who.get("model", MODEL))


class Row(NamedTuple):
    """One COPY line of daily.readings, decoded."""

    ride_id: int
    elapsed: int
    ts: str
    resistance: int
    heart_rate: int | None
    rpm: int
    power: float


def decode_row(line: str) -> Row:
    assert line.endswith("\n") and line.count("\n") == 1
    ride_id, elapsed, ts, resistance, hr, rpm, power = line[:-1].split("\t")
    assert ts.endswith("+00")
    assert repr(float(power)) == power  # the raw float repr, never rounded
    return Row(
        int(ride_id),
        int(elapsed),
        ts[:-3],
        int(resistance),
        None if hr == "\\N" else int(hr),
        int(rpm),
        float(power),
    )


class Run:
    """A Sessionizer, its Batch and per-partition offsets: feed it messages, read the rows."""

    def __init__(self, *, split: bool = False, **options: Any) -> None:
        self.s = Sessionizer(Parser(now=NOW), split_topics=split, **options)
        self.batch = Batch()
        self.offsets: Counter[tuple[str, int]] = Counter()

    def feed(
        self,
        values: Iterable[bytes],
        key: bytes | None = b"SN0007",
        *,
        topic: str = "deloton",
        partition: int = 0,
    ) -> Run:
        for v in values:
            offset = self.offsets[(topic, partition)]
            self.offsets[(topic, partition)] += 1
            self.s.process(self.batch, topic, partition, offset, key, v)
        return self

    def rows(self, ride_id: int | None = None) -> list[Row]:
        rows = [decode_row(line) for line in self.batch.readings]
        return [r for r in rows if ride_id is None or r.ride_id == ride_id]

    def reasons(self) -> Counter[str]:
        return Counter(r.reason for r in self.batch.rejects)

    def events(self) -> list[dict[str, Any]]:
        return check_events(self.batch.events)


def as_expected(rows: Sequence[Row]) -> list[Expected]:
    return [Expected(r.elapsed, r.ts, r.resistance, r.heart_rate, r.rpm, r.power) for r in rows]


def expected_ride(start: datetime, first: int, last: int) -> list[Expected]:
    return [expected(start, s) for s in range(first, last + 1)]


_VALIDATORS = {
    kind: Draft202012Validator(
        json.loads((SCHEMAS / f"{kind.replace('_', '-')}.schema.json").read_text()),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    for kind in ("reading", "ride_started", "ride_ended")
}


def check_events(events: Sequence[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    """Every event is strict JSON valid against its schema and keyed by its bike serial."""
    out = []
    for key, raw in events:
        event = orjson.loads(raw)  # strict: no NaN, valid UTF-8
        _VALIDATORS[event["type"]].validate(event)
        assert key == event["bike_serial"].encode()
        out.append(event)
    return out


# --- the real capture ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(real_sample: Path) -> list[bytes]:
    """The real capture's message values, byte for byte."""
    return real_sample.read_bytes().splitlines()


_READING = re.compile(r"(\S+ \S+) mendoza v9: \[INFO\]: (Ride|Telemetry) - (.*)\n\Z")


def sample_copy_lines(values: Sequence[bytes]) -> list[str]:
    """The COPY lines the capture must give, worked out from the text alone."""
    out, ride_half = [], None
    for raw in values:
        found = _READING.match(json.loads(raw)["log"])
        if found is None:
            continue
        ts, kind, body = found.groups()
        fields = dict(part.split(" = ") for part in body.split("; "))
        if kind == "Ride":
            ride_half = (fields["duration"].removesuffix(".0"), fields["resistance"])
            continue
        assert ride_half is not None
        hr = "\\N" if fields["hrt"] == "0" else fields["hrt"]
        out.append(
            f"{SAMPLE_RIDE_ID}\t{ride_half[0]}\t{ts}+00\t{ride_half[1]}\t{hr}\t"
            f"{fields['rpm']}\t{fields['power']}\n"
        )
        ride_half = None
    return out


def test_real_sample_gives_one_ride_and_498_readings(sample: list[bytes]) -> None:
    run = Run().feed(sample, None)
    b = run.batch
    assert b.messages == len(b) == 1000
    assert b.offsets == {("deloton", 0): 1000}
    assert b.rejects == []
    assert b.rides == [RideRow(SAMPLE_RIDE_ID, "SN0000", 100, MODEL, SAMPLE_START)]
    assert b.ride_ids == {SAMPLE_RIDE_ID}
    assert b.ride_ends == {}  # nothing closed the ride yet
    assert b.hours == {"2022-11-03 18"}
    assert b.bikes == {"SN0000": (MODEL, SAMPLE_START, "2022-11-03 18:50:18.939396")}
    rider, seen_at = b.riders[100]
    assert list(b.riders) == [100]
    assert seen_at == SAMPLE_START
    assert rider == Rider(
        100, None, "Steven", "Pearce", "male", "0 Simpson locks", "Wilkinsonshire", "E68 8SH",
        datetime(1978, 9, 4).date(), "steven.p@gmail.com", 167, 83,
        datetime(2022, 3, 23, tzinfo=UTC), "direct", "SN0000",
    )  # fmt: skip
    rows = run.rows()
    assert len(rows) == 498
    assert [r.elapsed for r in rows] == list(range(1, 499))
    assert SAMPLE_RIDE_ID < 2**53


def test_real_sample_copy_lines_are_exact(sample: list[bytes]) -> None:
    """Each COPY line carries the capture's values verbatim, hrt 0 as NULL."""
    run = Run().feed(sample, None)
    assert run.batch.readings == sample_copy_lines(sample)
    assert sum(r.heart_rate is None for r in run.rows()) == 10
    assert run.batch.readings[0] == (
        f"{SAMPLE_RIDE_ID}\t1\t2022-11-03 18:42:01.922469+00\t0\t\\N\t0\t0.0\n"
    )
    assert run.batch.readings[-1] == (
        f"{SAMPLE_RIDE_ID}\t498\t2022-11-03 18:50:18.939396+00\t30\t117\t17\t2.30885038\n"
    )


def test_real_sample_events_match_the_schemas(sample: list[bytes]) -> None:
    run = Run().feed(sample, None)
    events = run.events()
    assert Counter(e["type"] for e in events) == {"ride_started": 1, "reading": 498}
    started = events[0]
    assert started == {
        "type": "ride_started",
        "ride_id": SAMPLE_RIDE_ID,
        "bike_serial": "SN0000",
        "model": MODEL,
        "started_at": "2022-11-03T18:42:00.922427Z",
        "rider": {
            "user_id": 100,
            "first_name": "Steven",
            "gender": "male",
            "date_of_birth": "1978-09-04",
        },
    }
    for event, row in zip(events[1:], run.rows(), strict=True):
        assert event == {
            "type": "reading",
            "ride_id": row.ride_id,
            "bike_serial": "SN0000",
            "user_id": 100,
            "recorded_at": row.ts.replace(" ", "T") + "Z",
            "elapsed_s": row.elapsed,
            "resistance": row.resistance,
            "heart_rate": row.heart_rate,
            "rpm": row.rpm,
            "power": row.power,
        }


def test_events_can_be_switched_off(sample: list[bytes]) -> None:
    run = Run(publish_events=False).feed(sample, None)
    assert run.batch.events == []
    assert run.batch.readings == sample_copy_lines(sample)


# --- pairing -------------------------------------------------------------------------------------

# In the capture, Ride line k is message 2k + 2 and its Telemetry line message 2k + 3.


def swapped(values: list[bytes], *indices: int) -> list[bytes]:
    out = list(values)
    for i in indices:
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


@pytest.mark.parametrize(
    "indices",
    [
        (2,),  # "Getting user data" after its own SYSTEM line: it announces nothing new
        (4,),  # Telemetry 1 before Ride 1, right after the SYSTEM line
        (202,),  # Telemetry 100 before Ride 100
        (998,),  # the last pair
        (203,),  # Ride 101 before Telemetry 100
        (10, 50, 103, 700, 903),  # several at once
    ],
)
def test_swapped_neighbours_still_pair(sample: list[bytes], indices: tuple[int, ...]) -> None:
    run = Run().feed(swapped(sample, *indices), None)
    assert run.batch.rejects == []
    assert sorted(run.batch.readings) == sorted(sample_copy_lines(sample))


@pytest.mark.parametrize(
    ("index", "what"),
    [
        (3, "SYSTEM"),
        (4, "Ride 1"),
        (5, "Telemetry 1"),
        (402, "Ride 200"),
        (403, "Telemetry 200"),
        (999, "last"),
    ],
)
def test_duplicated_message_is_rejected_once(sample: list[bytes], index: int, what: str) -> None:
    """The copy is one 'duplicate' reject carrying the copy's offset; the reading is written once."""
    fed = [*sample[: index + 1], sample[index], *sample[index + 1 :]]
    run = Run().feed(fed, None)
    assert [(r.reason, r.offset, r.raw) for r in run.batch.rejects] == [
        ("duplicate", index + 1, sample[index])
    ], what
    assert run.batch.readings == sample_copy_lines(sample)
    assert len(run.batch.rides) == 1


def test_duplicated_pair_is_rejected_and_written_once(sample: list[bytes]) -> None:
    """A pair delivered twice (a producer retry): both copies rejected, one reading."""
    fed = [*sample[:404], *sample[402:404], *sample[404:]]
    run = Run().feed(fed, None)
    assert run.reasons() == {"duplicate": 2}
    assert {r.offset for r in run.batch.rejects} == {404, 405}
    assert run.batch.readings == sample_copy_lines(sample)


def test_system_line_of_the_previous_ride_again_is_a_duplicate() -> None:
    a, b = T0, T0 + timedelta(seconds=20)
    system_a = announce(a)[2]
    run = Run().feed(ride(a, 5) + ride(b, 5, user_id=8))
    run.feed([system_a])
    assert len(run.batch.rides) == 2
    assert [(r.reason, r.raw) for r in run.batch.rejects] == [("duplicate", system_a)]


def test_pair_older_than_the_last_written_one_is_out_of_order(sample: list[bytes]) -> None:
    fed = [*sample[:402], *sample[404:406], *sample[402:404], *sample[406:]]  # 201 before 200
    run = Run().feed(fed, None)
    assert run.reasons() == {"out_of_order": 2}
    assert {r.raw for r in run.batch.rejects} == set(sample[402:404])
    assert [r.elapsed for r in run.rows()] == [e for e in range(1, 499) if e != 200]


def test_telemetry_without_its_ride_is_unpaired(sample: list[bytes]) -> None:
    """Ride 200 is lost: Telemetry 200 never makes a reading; the ride's end rejects it."""
    fed = sample[:402] + sample[403:]
    run = Run().feed(fed, None)
    assert run.batch.rejects == []  # still waiting for a Ride line that might be late
    assert [r.elapsed for r in run.rows()] == [e for e in range(1, 499) if e != 200]
    run.feed(ride(T0, 2), None)
    assert [(r.reason, r.raw, r.offset) for r in run.batch.rejects] == [
        ("unpaired", sample[403], 402)
    ]
    assert len(run.rows()) == 497 + 2


def test_ride_without_its_telemetry_is_unpaired_at_the_next_pair(sample: list[bytes]) -> None:
    fed = sample[:403] + sample[404:]  # Telemetry 200 lost
    run = Run().feed(fed[:406], None)
    assert [(r.reason, r.raw) for r in run.batch.rejects] == [("unpaired", sample[402])]
    run.feed(fed[406:], None)
    assert len(run.batch.rejects) == 1
    assert [r.elapsed for r in run.rows()] == [e for e in range(1, 499) if e != 200]


def test_silence_also_rejects_a_waiting_half_pair(sample: list[bytes]) -> None:
    run = Run().feed(sample[:402] + sample[403:], None)
    run.s.mark_seen(run.batch.dirty, 0.0)
    closed = run.s.close_silent(run.batch, {0: 61.0}, 60)
    assert closed == 1
    assert [(r.reason, r.raw) for r in run.batch.rejects] == [("unpaired", sample[403])]


# --- orphans -------------------------------------------------------------------------------------


def test_readings_before_any_system_line_are_orphans(sample: list[bytes]) -> None:
    """Joining mid-ride: both lines of every reading are orphans, then the next ride is normal."""
    run = Run().feed(sample[400:], None)
    assert run.reasons() == {"orphan": 600}
    assert [r.raw for r in run.batch.rejects] == sample[400:]
    assert all(r.bike_serial is None for r in run.batch.rejects)  # unkeyed
    assert run.batch.readings == [] and run.batch.rides == [] and run.batch.events == []
    start = datetime(2022, 11, 3, 18, 51, 30, tzinfo=UTC)
    run.feed(ride(start, 5, serial="SN0000"), None)
    new_id = ride_id_for("SN0000", stamp(start))
    assert [r.ride_id for r in run.batch.rides] == [new_id]
    assert as_expected(run.rows()) == expected_ride(start, 1, 5)
    assert {r.ride_id for r in run.rows()} == {new_id}
    assert len(run.batch.rejects) == 600


def test_unannounced_readings_after_a_ride_are_not_glued_onto_it() -> None:
    """The log restarts mid-ride after ride A: those readings are orphans, not A's."""
    run = Run().feed(ride(T0, 30))
    later = T0 + timedelta(seconds=60) - timedelta(seconds=100)  # elapsed 100.. at T0+60 s..
    run.feed([value(BANNER_MAIN), *pairs(later, 100, 110)])
    assert run.reasons() == {"orphan": 22}
    assert as_expected(run.rows()) == expected_ride(T0, 1, 30)
    assert run.batch.ride_ends == {}


def test_readings_between_announcement_and_system_line_are_orphans() -> None:
    a, b = T0, T0 + timedelta(seconds=20)
    a_id, b_id = ride_id_for("SN0007", stamp(a)), ride_id_for("SN0007", stamp(b))
    banner, getting, system = announce(b, user_id=8)
    run = Run().feed(ride(a, 10))
    run.feed([banner, *pairs(a, 11, 12), getting, *pairs(a, 13, 13), system, *pairs(b, 1, 5)])
    assert run.reasons() == {"orphan": 6}
    assert as_expected(run.rows(a_id)) == expected_ride(a, 1, 10)
    assert as_expected(run.rows(b_id)) == expected_ride(b, 1, 5)
    assert run.batch.ride_ends == {a_id: expected(a, 10).ts}  # orphans do not extend ride A


def test_readings_after_getting_user_data_alone_are_orphans() -> None:
    _, getting, system = announce(T0)
    run = Run().feed([getting, *pairs(T0, 1, 2), system, *pairs(T0, 3, 4)])
    assert run.reasons() == {"orphan": 4}
    assert [r.elapsed for r in run.rows()] == [3, 4]


# --- closing rides -------------------------------------------------------------------------------


def test_next_system_line_closes_the_previous_ride() -> None:
    a, b = T0, T0 + timedelta(seconds=40)
    a_id, b_id = ride_id_for("SN0007", stamp(a)), ride_id_for("SN0007", stamp(b))
    run = Run().feed(ride(a, 30) + ride(b, 3, user_id=9))
    assert run.batch.ride_ends == {a_id: expected(a, 30).ts}
    assert [(r.ride_id, r.user_id) for r in run.batch.rides] == [(a_id, 7), (b_id, 9)]
    events = run.events()
    assert [e["type"] for e in events] == ["ride_started"] + ["reading"] * 30 + [
        "ride_ended",
        "ride_started",
    ] + ["reading"] * 3
    assert events[31] == {
        "type": "ride_ended",
        "ride_id": a_id,
        "bike_serial": "SN0007",
        "ended_at": expected(a, 30).ts.replace(" ", "T") + "Z",
        "reason": "next_ride",
    }
    assert run.batch.rejects == []


def test_ride_without_readings_ends_when_it_started() -> None:
    a, b = T0, T0 + timedelta(hours=3)
    run = Run().feed(announce(a) + ride(b, 1))
    assert run.batch.ride_ends == {ride_id_for("SN0007", stamp(a)): stamp(a)}


def test_close_silent_closes_only_rides_silent_for_longer_than_the_setting() -> None:
    """Silence is counted on the service's clock from when each bike's lines were last read."""
    run = Run()
    run.feed(ride(T0, 10), b"SN0001")
    run.s.mark_seen(run.batch.dirty, 0.0)
    run.batch.dirty.clear()
    run.feed(ride(T0, 100), b"SN0002")
    run.feed(ride(T0, 100), b"SN0003", partition=1)
    run.s.mark_seen(run.batch.dirty, 90.0)
    quiet_id = ride_id_for("SN0001", stamp(T0))
    # SN0001 was last heard of 90 s before partition 0 was last read to its end.
    assert run.s.close_silent(run.batch, {0: 90.0, 1: 90.0}, 120) == 0
    assert run.s.close_silent(run.batch, {0: 90.0, 1: 90.0}, 60) == 1
    assert run.batch.ride_ends == {quiet_id: expected(T0, 10).ts}
    ended = [e for e in run.events() if e["type"] == "ride_ended"]
    assert ended == [
        {
            "type": "ride_ended",
            "ride_id": quiet_id,
            "bike_serial": "SN0001",
            "ended_at": expected(T0, 10).ts.replace(" ", "T") + "Z",
            "reason": "silence",
        }
    ]
    assert run.s.close_silent(run.batch, {0: 90.0, 1: 90.0}, 60) == 0  # closed once
    # Its next ride does not close it a second time.
    run.feed(ride(T0 + timedelta(seconds=200), 2), b"SN0001")
    assert sum(e["type"] == "ride_ended" for e in run.events()) == 1


def test_close_silent_uses_each_partitions_own_progress() -> None:
    """A partition not read to its end since a bike was last seen says nothing of its silence
    (ingest lagging or stalled)."""
    run = Run().feed(ride(T0, 5), b"SN0001").feed(ride(T0, 5), b"SN0002", partition=1)
    run.s.mark_seen(run.batch.dirty, 0.0)
    assert run.s.close_silent(run.batch, {1: 600.0}, 60) == 1
    assert list(run.batch.ride_ends) == [ride_id_for("SN0002", stamp(T0))]


def test_a_bike_clock_running_ahead_closes_no_other_bikes_ride() -> None:
    """Event time is each bike's own: B's clock 90 s ahead says nothing about A's silence."""
    run = Run()
    a = [(b"SN0001", v) for v in ride(T0, 60, serial="SN0001")]
    b = [(b"SN0002", v) for v in ride(T0 + timedelta(seconds=90), 60, serial="SN0002")]
    for second, (key, v) in enumerate(interleave(a, b)):
        run.feed([v], key)
        run.s.mark_seen(run.batch.dirty, second / 4)
        run.batch.dirty.clear()
        assert run.s.close_silent(run.batch, {0: second / 4}, 60) == 0
    assert run.batch.ride_ends == {}
    assert len(run.rows()) == 120


def test_silent_ride_without_readings_ends_at_its_start() -> None:
    run = Run().feed(announce(T0))
    run.s.mark_seen(run.batch.dirty, 0.0)
    assert run.s.close_silent(run.batch, {0: 61.0}, 60) == 1
    assert run.batch.ride_ends == {ride_id_for("SN0007", stamp(T0)): stamp(T0)}


def test_silence_of_exactly_the_setting_keeps_the_ride_open() -> None:
    run = Run().feed(ride(T0, 2))
    run.s.mark_seen(run.batch.dirty, 0.0)
    assert run.s.close_silent(run.batch, {0: 60.0}, 60) == 0


def test_a_restored_bike_counts_its_silence_from_the_restart() -> None:
    """Saved state does not say when a bike was last heard of: it is counted from then."""
    before = Run().feed(ride(T0, 2))
    after = Run()
    after.s.load_partition(0, orjson.loads(orjson.dumps(before.s.dump_partition(0))))
    assert after.s.close_silent(after.batch, {0: 1000.0}, 60) == 0
    assert after.s.close_silent(after.batch, {0: 1060.0}, 60) == 0
    assert after.s.close_silent(after.batch, {0: 1060.5}, 60) == 1


# --- bikes ---------------------------------------------------------------------------------------


def interleave(*streams: Sequence[Any]) -> list[Any]:
    out = []
    for i in range(max(len(s) for s in streams)):
        out.extend(s[i] for s in streams if i < len(s))
    return out


def test_bikes_interleaved_by_key_stay_separate(sample: list[bytes]) -> None:
    """Two bikes sending the same capture at the same instants: two rides, 498 readings each."""
    run = Run()
    for key, v in interleave([(b"SN0000", v) for v in sample], [(b"SN0001", v) for v in sample]):
        run.feed([v], key)
    ids = {serial: ride_id_for(serial, SAMPLE_START) for serial in ("SN0000", "SN0001")}
    assert len(set(ids.values())) == 2
    assert [(r.ride_id, r.bike_serial) for r in run.batch.rides] == [
        (ids["SN0000"], "SN0000"),
        (ids["SN0001"], "SN0001"),
    ]
    assert run.batch.rejects == []
    lines = sample_copy_lines(sample)
    for serial, ride_id in ids.items():
        rows = [r.replace(str(SAMPLE_RIDE_ID), str(ride_id), 1) for r in lines]
        assert [r for r in run.batch.readings if r.startswith(f"{ride_id}\t")] == rows, serial
    events = run.events()
    assert Counter(e["bike_serial"] for e in events) == {"SN0000": 499, "SN0001": 499}


def test_one_bikes_system_line_does_not_close_another_bikes_ride() -> None:
    a_start, b_start = T0, T0 + timedelta(seconds=5.2)
    a = [(b"SN0001", v) for v in ride(a_start, 20, serial="SN0001")]
    b = [(b"SN0002", v) for v in ride(b_start, 10, user_id=8, serial="SN0002")]
    run = Run()
    for key, v in sorted(a + b, key=lambda kv: json.loads(kv[1])["log"][:26]):
        run.feed([v], key)
    assert run.batch.ride_ends == {}
    assert run.batch.rejects == []
    a_id, b_id = ride_id_for("SN0001", stamp(a_start)), ride_id_for("SN0002", stamp(b_start))
    assert as_expected(run.rows(a_id)) == expected_ride(a_start, 1, 20)
    assert as_expected(run.rows(b_id)) == expected_ride(b_start, 1, 10)


def test_simulated_fleet_gives_every_bike_its_own_rides() -> None:
    fleet = Fleet(FleetConfig(bikes=5, rides=2, seconds=30, seed=11, start=T0))
    run = Run()
    for m in fleet.messages():
        run.feed([m.value], m.key, partition=int(m.key[2:]) % 2)
    assert run.batch.rejects == []
    assert len(run.batch.rides) == 10
    assert Counter(r.bike_serial for r in run.batch.rides) == {f"SN{i:04d}": 2 for i in range(5)}
    per_ride = Counter(r.ride_id for r in run.rows())
    assert per_ride == {r.ride_id: 30 for r in run.batch.rides}
    assert len(run.batch.ride_ends) == 5  # each bike's second ride closed its first


def test_unkeyed_messages_use_the_partition_as_the_bike(sample: list[bytes]) -> None:
    """Without a key the partition is the bike; the ride's bike is the SYSTEM line's serial."""
    other = T0
    run = Run()
    for p, v in interleave(
        [(3, v) for v in sample], [(4, v) for v in ride(other, 498, serial="SN0042")]
    ):
        run.feed([v], None, partition=p)
    assert run.batch.rejects == []
    assert {(r.ride_id, r.bike_serial) for r in run.batch.rides} == {
        (SAMPLE_RIDE_ID, "SN0000"),
        (ride_id_for("SN0042", stamp(other)), "SN0042"),
    }
    assert Counter(r.ride_id for r in run.rows()) == {
        SAMPLE_RIDE_ID: 498,
        ride_id_for("SN0042", stamp(other)): 498,
    }


@pytest.mark.parametrize("key", [None, b"", b"\x00\x01", b"SN\n01", b"S" * 101])
def test_unusable_keys_fall_back_to_the_partition(sample: list[bytes], key: bytes | None) -> None:
    run = Run().feed([*sample[:10], b"garbage"], key)
    assert [r.bike_serial for r in run.batch.rides] == ["SN0000"]
    assert [(r.reason, r.bike_serial, r.key) for r in run.batch.rejects] == [
        ("bad_json", None, key)
    ]


def test_the_key_names_the_bike_not_the_line(sample: list[bytes]) -> None:
    """A keyed bike keeps its key as serial, whatever its SYSTEM line says."""
    run = Run().feed([*sample[:10], b"garbage"], b"SN0042")
    assert [r.bike_serial for r in run.batch.rides] == ["SN0042"]
    assert [r.ride_id for r in run.batch.rides] == [ride_id_for("SN0042", SAMPLE_START)]
    assert [(r.bike_serial, r.key, r.raw) for r in run.batch.rejects] == [
        ("SN0042", b"SN0042", b"garbage")
    ]


def test_distinct_non_utf8_keys_are_distinct_bikes(sample: list[bytes]) -> None:
    run = Run()
    for key, v in interleave([(b"SN\xff1", v) for v in sample], [(b"SN\xfe1", v) for v in sample]):
        run.feed([v], key)
    assert run.batch.rejects == []
    assert len(run.batch.rides) == 2


# --- ride ids ------------------------------------------------------------------------------------


def test_ride_id_is_stable_and_fits_in_a_javascript_number(sample: list[bytes]) -> None:
    first = Run().feed(sample, None)
    second = Run().feed(sample, None, partition=7)
    assert first.batch.readings == second.batch.readings
    assert ride_id_for("SN0000", SAMPLE_START) == SAMPLE_RIDE_ID
    ids = {
        ride_id_for(f"SN{i:04d}", stamp(T0 + timedelta(seconds=j)))
        for i in range(50)
        for j in range(50)
    }
    assert len(ids) == 2500
    assert all(0 <= i < 2**53 for i in ids)
    assert ride_id_for("SN0001", SAMPLE_START) != SAMPLE_RIDE_ID
    assert ride_id_for("SN0000", "2022-11-03 18:42:00.922428") != SAMPLE_RIDE_ID


def test_ride_id_of_a_timestamp_without_microseconds() -> None:
    assert ride_id_for("SN1", "2024-03-01 09:00:00") == ride_id_for(
        "SN1", "2024-03-01 09:00:00.000000"
    )


def test_ride_id_of_a_short_fraction_is_that_of_the_same_instant() -> None:
    assert ride_id_for("SN1", "2024-03-01 09:00:00.5") == ride_id_for(
        "SN1", "2024-03-01 09:00:00.500000"
    )


# --- state across restarts -----------------------------------------------------------------------


def outputs(batches: Sequence[Batch]) -> dict[str, Any]:
    """Everything the batches would write or publish, merged in order."""
    out: dict[str, Any] = {
        "readings": [],
        "rides": [],
        "rejects": [],
        "events": [],
        "ride_ends": {},
    }
    riders: dict[int, Any] = {}
    bikes: dict[str, tuple[str, str, str]] = {}
    for b in batches:
        out["readings"] += b.readings
        out["rides"] += b.rides
        out["rejects"] += b.rejects
        out["events"] += b.events
        out["ride_ends"].update(b.ride_ends)
        for uid, seen in b.riders.items():
            if uid not in riders or riders[uid][1] <= seen[1]:
                riders[uid] = seen
        for serial, (model, first, last) in b.bikes.items():
            old = bikes.get(serial)
            if old is None:
                bikes[serial] = (model, first, last)
            elif last > old[2]:
                bikes[serial] = (model, old[1], last)
    out["riders"], out["bikes"] = riders, bikes
    out["messages"] = sum(b.messages for b in batches)
    return out


Message = tuple[str, int, bytes | None, bytes]  # topic, partition, key, value


def process(s: Sessionizer, batch: Batch, messages: Sequence[Message], first_offset: int) -> None:
    for i, (topic, partition, key, v) in enumerate(messages, first_offset):
        s.process(batch, topic, partition, i, key, v)


def restart_at(
    messages: Sequence[Message], cut: int, split: bool
) -> tuple[dict[str, Any], dict[int, Any], dict[int, Any]]:
    """Run to `cut`, dump every partition through JSON, load into a new Sessionizer, go on.

    Returns the merged output, the state carried across and the final state."""
    before = Sessionizer(Parser(now=NOW), split_topics=split)
    first = Batch()
    process(before, first, messages[:cut], 0)
    partitions = {p for _, p, _, _ in messages}
    carried = {p: orjson.loads(orjson.dumps(before.dump_partition(p))) for p in partitions}
    after = Sessionizer(Parser(now=NOW), split_topics=split)
    for p, data in carried.items():
        after.load_partition(p, data)
    second = Batch()
    process(after, second, messages[cut:], cut)
    final = {p: orjson.loads(orjson.dumps(after.dump_partition(p))) for p in partitions}
    return outputs([first, second]), carried, final


def uninterrupted(messages: Sequence[Message], split: bool) -> tuple[dict[str, Any], Any]:
    s = Sessionizer(Parser(now=NOW), split_topics=split)
    batch = Batch()
    process(s, batch, messages, 0)
    partitions = {p for _, p, _, _ in messages}
    return outputs([batch]), {
        p: orjson.loads(orjson.dumps(s.dump_partition(p))) for p in partitions
    }


def eventful(sample: list[bytes]) -> list[Message]:
    """The capture with trouble in it (swaps, a duplicate, a lost line, out of order), then
    orphans between an announcement and the next ride; and a second bike joining mid-ride."""
    values = swapped(sample, 100, 301)
    values = [*values[:200], values[200], *values[200:402], *values[403:]]  # dup; Ride 200 lost
    values = values[:600] + values[602:604] + values[600:602] + values[604:]
    start = datetime(2022, 11, 3, 18, 51, tzinfo=UTC)
    banner, getting, system = announce(start, serial="SN0000")
    tail = [
        banner,
        *pairs(start - timedelta(seconds=20), 1, 3),
        getting,
        system,
        *pairs(start, 1, 30),
    ]
    unkeyed = [("deloton", 0, None, v) for v in values + tail]
    keyed = [("deloton", 1, b"SN0009", v) for v in sample[800:] + ride(start, 20, serial="SN0009")]
    return interleave(unkeyed, keyed)


def test_state_round_trip_gives_the_same_output_as_an_uninterrupted_run(
    sample: list[bytes],
) -> None:
    """Restart (dump, JSON, load into a new Sessionizer) every 50 messages and around the
    moments with state in flight: the output is exactly that of one uninterrupted run."""
    messages = eventful(sample)
    whole, whole_state = uninterrupted(messages, split=False)
    assert Counter(r.reason for r in whole["rejects"]) == {
        "duplicate": 1,
        "unpaired": 1,
        "out_of_order": 2,
        "orphan": 6 + 200,
    }
    assert len(whole["rides"]) == 3
    assert len(whole["readings"]) == 498 - 2 + 30 + 20
    banner = value(BANNER_RIDE)
    tail_at = max(i for i, m in enumerate(messages) if m[1] == 0 and m[3] == banner)
    swap_at = messages.index(("deloton", 0, None, sample[101]))  # Telemetry 49, waiting
    cuts = {*range(0, len(messages), 50), len(messages)}
    cuts |= {*range(swap_at - 1, swap_at + 3), *range(tail_at - 1, tail_at + 12)}
    carried_states = []
    for cut in sorted(cuts):
        got, carried, final = restart_at(messages, cut, split=False)
        assert got == whole, f"restarted at message {cut}"
        assert final == whole_state, f"restarted at message {cut}"
        carried_states += carried[0].values()  # partition 0 is one unkeyed bike
    # The restarts did carry half-pairs and an announced-but-unopened ride across.
    assert any(state.get("pending_tels") for state in carried_states)
    assert any(state.get("announced") for state in carried_states)


def test_dump_partition_selects_partition_and_keys(sample: list[bytes]) -> None:
    run = (
        Run()
        .feed(sample[:10], b"SN0001")
        .feed(sample[:10], b"SN0002")
        .feed(sample[:10], None, partition=1)
    )
    assert set(run.s.dump_partition(0)) == {"SN0001", "SN0002"}
    assert set(run.s.dump_partition(0, {"SN0002"})) == {"SN0002"}
    assert len(run.s.dump_partition(1)) == 1
    run.s.drop_partition(0)
    assert run.s.dump_partition(0) == {}
    assert len(run.s.dump_partition(1)) == 1


# --- split topics: announcements and readings on different topics -------------------------------

BIKES_TOPIC, TELEMETRY_TOPIC = "deloton.bikes", "deloton.telemetry"


def split_run() -> Run:
    return Run(split=True)


def test_split_system_line_after_some_readings_attaches_them() -> None:
    """The bikes topic lags: the first readings are held until their SYSTEM line comes."""
    run = split_run()
    run.feed(pairs(T0, 1, 5), topic=TELEMETRY_TOPIC)
    assert run.batch.readings == [] and run.batch.rejects == []
    run.feed([value(BANNER_MAIN), *announce(T0)], topic=BIKES_TOPIC)
    run.feed(pairs(T0, 6, 8), topic=TELEMETRY_TOPIC)
    ride_id = ride_id_for("SN0007", stamp(T0))
    assert run.batch.rejects == []
    assert as_expected(run.rows(ride_id)) == expected_ride(T0, 1, 8)
    assert [e["type"] for e in run.events()] == ["ride_started"] + ["reading"] * 8
    assert run.batch.offsets == {(TELEMETRY_TOPIC, 0): 16, (BIKES_TOPIC, 0): 4}


def test_split_announcements_do_not_orphan_readings() -> None:
    """Across topics the order of an announcement and a reading means nothing."""
    run = split_run()
    run.feed(announce(T0)[2:], topic=BIKES_TOPIC)
    run.feed(pairs(T0, 1, 3), topic=TELEMETRY_TOPIC)
    run.feed(announce(T0 + timedelta(seconds=30))[:2], topic=BIKES_TOPIC)
    run.feed(pairs(T0, 4, 6), topic=TELEMETRY_TOPIC)
    assert run.batch.rejects == []
    assert as_expected(run.rows()) == expected_ride(T0, 1, 6)


def test_split_late_tail_goes_to_the_previous_ride() -> None:
    a, b = T0, T0 + timedelta(seconds=15)
    a_id, b_id = ride_id_for("SN0007", stamp(a)), ride_id_for("SN0007", stamp(b))
    run = split_run()
    run.feed(announce(a), topic=BIKES_TOPIC)
    run.feed(pairs(a, 1, 8), topic=TELEMETRY_TOPIC)
    run.feed(announce(b, user_id=8), topic=BIKES_TOPIC)  # B's SYSTEM line overtakes A's tail
    run.feed(pairs(a, 9, 10) + pairs(b, 1, 3), topic=TELEMETRY_TOPIC)
    assert run.batch.rejects == []
    assert as_expected(run.rows(a_id)) == expected_ride(a, 1, 10)
    assert as_expected(run.rows(b_id)) == expected_ride(b, 1, 3)
    assert a_id in run.batch.ride_ends


def test_split_late_tail_moves_the_end_of_the_previous_ride() -> None:
    a, b = T0, T0 + timedelta(seconds=15)
    run = split_run()
    run.feed(announce(a), topic=BIKES_TOPIC)
    run.feed(pairs(a, 1, 8), topic=TELEMETRY_TOPIC)
    run.feed(announce(b, user_id=8), topic=BIKES_TOPIC)
    run.feed(pairs(a, 9, 10), topic=TELEMETRY_TOPIC)
    assert run.batch.ride_ends[ride_id_for("SN0007", stamp(a))] == expected(a, 10).ts


def test_split_held_readings_without_a_system_line_expire_as_orphans() -> None:
    run = split_run()
    run.feed(pairs(T0, 1, 10), topic=TELEMETRY_TOPIC)
    assert run.batch.rejects == []
    # Not yet: the hold time (30 s) has not passed for any of them (the first is at T0 + 1 s).
    run.s.expire_held(run.batch, {0: stamp(T0 + timedelta(seconds=30.5))})
    assert run.batch.rejects == []
    # At T0 + 35.5 s readings stamped before T0 + 5.5 s (seconds 1 to 5) have waited too long.
    run.s.expire_held(run.batch, {0: stamp(T0 + timedelta(seconds=35.5))})
    assert run.reasons() == {"orphan": 10}
    assert [r.raw for r in run.batch.rejects] == pairs(T0, 1, 5)
    run.s.expire_held(run.batch, {0: stamp(T0 + timedelta(seconds=100))})
    assert [r.raw for r in run.batch.rejects] == pairs(T0, 1, 10)
    # Their ride's SYSTEM line, much too late, finds nothing left to attach.
    run.feed(announce(T0), topic=BIKES_TOPIC)
    assert run.batch.readings == []


def test_split_expire_held_ignores_other_partitions() -> None:
    run = split_run()
    run.feed(pairs(T0, 1, 3), topic=TELEMETRY_TOPIC)
    run.s.expire_held(run.batch, {1: stamp(T0 + timedelta(hours=1))})
    assert run.batch.rejects == []


def test_split_held_readings_expire_with_the_sessionizers_own_clock() -> None:
    run = split_run()
    run.feed(pairs(T0, 1, 60), topic=TELEMETRY_TOPIC)
    run.s.expire_held(run.batch, run.s.partition_now)
    orphaned = {r.raw for r in run.batch.rejects}
    assert set(pairs(T0, 1, 5)) <= orphaned


def test_split_state_round_trip_with_held_readings() -> None:
    """Held readings and pending halves survive a restart at any message."""
    a, b = T0, T0 + timedelta(seconds=15)

    def on(topic: str, values: list[bytes]) -> list[Message]:
        return [(topic, 0, b"SN0007", v) for v in values]

    messages = [
        *on(TELEMETRY_TOPIC, pairs(a, 1, 4)),
        *on(TELEMETRY_TOPIC, swapped(pairs(a, 5, 6), 0)),
        *on(BIKES_TOPIC, announce(a)),
        *on(TELEMETRY_TOPIC, pairs(a, 7, 8)),
        *on(BIKES_TOPIC, announce(b, user_id=8)),
        *on(TELEMETRY_TOPIC, pairs(a, 9, 10) + pairs(b, 1, 4)),
    ]
    whole, whole_state = uninterrupted(messages, split=True)
    assert whole["rejects"] == []
    assert len(whole["readings"]) == 14
    held = 0
    for cut in range(len(messages) + 1):
        got, carried, final = restart_at(messages, cut, split=True)
        assert got == whole, f"restarted at message {cut}"
        assert final == whole_state, f"restarted at message {cut}"
        held += bool(carried[0].get("SN0007", {}).get("held"))
    assert held >= 8  # most early restarts carried held readings


# --- robustness ----------------------------------------------------------------------------------


def test_non_ascii_digits_in_a_timestamp_never_make_process_raise() -> None:
    line = f"{stamp(T0 + timedelta(seconds=5))[:20]}९२२४५१ {MODEL}: [INFO]: Telemetry - hrt = 1; rpm = 1; power = 1.0\n"
    run = Run().feed([*ride(T0, 2), pair(T0, 5)[0], value(line)])
    assert all(r.reason in REASONS for r in run.batch.rejects)
