"""Parser: every line kind of the real feed, its quirks, and every way a line is rejected."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.ingest.models import (
    REASONS,
    Announcement,
    Banner,
    Reject,
    RideLine,
    Rider,
    SystemLine,
    TelemetryLine,
)
from services.ingest.parser import (
    Parser,
    epoch_ms_to_datetime,
    parse_rider,
    split_address,
    split_name,
)

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
TS = "2024-03-01 09:15:07.123456"
PREFIX = f"{TS} mendoza v9: "
RIDE = PREFIX + "[INFO]: Ride - duration = 12.0; resistance = 30\n"
TELEMETRY = PREFIX + "[INFO]: Telemetry - hrt = 117; rpm = 45; power = 11.75724842\n"
GETTING = PREFIX + "Getting user data from server..\n"
STEVEN = {
    "user_id": 100,
    "name": "Steven Pearce",
    "gender": "male",
    "address": "0 Simpson locks,Wilkinsonshire,E68 8SH",
    "date_of_birth": 273715200000,
    "email_address": "steven.p@gmail.com",
    "height_cm": 167,
    "weight_kg": 83,
    "account_create_date": 1647993600000,
    "bike_serial": "SN0000",
    "original_source": "direct",
}


def value(line: str) -> bytes:
    """A Kafka value serialised exactly like the real feed."""
    return json.dumps({"log": line}).encode()


def system_line(data: Any, ts: str = TS) -> str:
    """A SYSTEM line carrying `data` (compact JSON, like the feed)."""
    return f"{ts} mendoza v9: [SYSTEM] data = {json.dumps(data, separators=(',', ':'))}\n"


def parse(line: str) -> Any:
    """Parse one log line wrapped in a feed message, with a fixed clock."""
    return Parser(now=NOW).parse(value(line))


def rider_of(**changes: Any) -> Rider | Reject:
    """Parse Steven's SYSTEM line with some fields changed (None: the field is absent)."""
    data = {k: v for k, v in {**STEVEN, **changes}.items() if v is not None}
    rec = parse(system_line(data))
    return rec.rider if isinstance(rec, SystemLine) else rec


def reject_reason(rec: Any) -> str:
    assert isinstance(rec, Reject), rec
    assert rec.reason in REASONS
    assert rec.detail
    return rec.reason


# --- the real capture --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_values(real_sample: Path) -> list[bytes]:
    return real_sample.read_bytes().splitlines()


def test_real_sample_parses_to_its_line_kinds(sample_values: list[bytes]) -> None:
    """All 1,000 captured messages parse; the kinds are the capture's own."""
    parser = Parser()
    records = [parser.parse(v) for v in sample_values]
    kinds = Counter(type(r).__name__ for r in records)
    assert kinds == {
        "Banner": 1,
        "Announcement": 2,
        "SystemLine": 1,
        "RideLine": 498,
        "TelemetryLine": 498,
    }
    assert records[0] == Banner()
    assert records[1] == Announcement(None, None)
    assert records[2] == Announcement("2022-11-03 18:42:00.422392", "mendoza v9")
    assert records[4] == RideLine("2022-11-03 18:42:01.422451", "mendoza v9", 1, 0)
    assert records[-2] == RideLine("2022-11-03 18:50:18.439382", "mendoza v9", 498, 30)
    assert records[-1] == TelemetryLine(
        "2022-11-03 18:50:18.939396", "mendoza v9", 117, 17, 2.30885038
    )


def test_real_sample_system_line_gives_the_rider(sample_values: list[bytes]) -> None:
    rec = Parser().parse(sample_values[3])
    assert rec == SystemLine(
        "2022-11-03 18:42:00.922427",
        "mendoza v9",
        Rider(
            user_id=100,
            title=None,
            first_name="Steven",
            last_name="Pearce",
            gender="male",
            address_line="0 Simpson locks",
            city="Wilkinsonshire",
            postcode="E68 8SH",
            date_of_birth=date(1978, 9, 4),
            email_address="steven.p@gmail.com",
            height_cm=167,
            weight_kg=83,
            account_created_at=datetime(2022, 3, 23, tzinfo=UTC),
            original_source="direct",
            bike_serial="SN0000",
        ),
    )


_READING_TEXT = re.compile(r"(\S+ \S+) (\w+ v\d+): \[INFO\]: (Ride|Telemetry) - (.*)\n\Z")


def test_real_sample_reading_values_match_the_text(sample_values: list[bytes]) -> None:
    """Every Ride and Telemetry value equals the text it came from; power keeps its repr."""
    parser = Parser()
    zero_heart_rates = checked = 0
    for raw in sample_values:
        line = json.loads(raw)["log"]
        found = _READING_TEXT.match(line)
        if found is None:
            continue
        ts, model, kind, body = found.groups()
        fields = dict(part.split(" = ") for part in body.split("; "))
        rec = parser.parse(raw)
        checked += 1
        assert (rec.ts, rec.model) == (ts, model)
        if kind == "Ride":
            assert isinstance(rec, RideLine)
            assert rec.elapsed_s == int(float(fields["duration"]))
            assert rec.resistance == int(fields["resistance"])
        else:
            assert isinstance(rec, TelemetryLine)
            assert rec.rpm == int(fields["rpm"])
            assert repr(rec.power) == fields["power"]
            if fields["hrt"] == "0":
                zero_heart_rates += 1
                assert rec.heart_rate is None
            else:
                assert rec.heart_rate == int(fields["hrt"])
    assert checked == 996
    assert zero_heart_rates == 10  # the capture has ten readings without heart-rate contact


# --- timestamps ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ts",
    ["2024-03-01 09:15:07", "2024-03-01 09:15:07.123456", "2024-03-01 09:15:07.000000"],
)
def test_timestamps_with_and_without_microseconds(ts: str) -> None:
    parser = Parser(now=NOW)
    assert parser.parse(
        value(f"{ts} mendoza v9: [INFO]: Ride - duration = 3.0; resistance = 0\n")
    ) == RideLine(ts, "mendoza v9", 3, 0)
    assert parser.parse(
        value(f"{ts} kessler v2: [INFO]: Telemetry - hrt = 90; rpm = 60; power = 0.0\n")
    ) == TelemetryLine(ts, "kessler v2", 90, 60, 0.0)
    assert parser.parse(value(f"{ts} sierra v4: Getting user data from server..\n")) == (
        Announcement(ts, "sierra v4")
    )
    rec = parser.parse(value(system_line(STEVEN, ts)))
    assert isinstance(rec, SystemLine)
    assert rec.ts == ts


@pytest.mark.parametrize(
    "ts",
    [
        "2024-13-01 09:15:07.123456",  # month 13
        "2024-02-30 09:15:07.123456",  # no such day
        "2024-03-01 24:15:07.123456",  # hour 24
        "2024-03-01 09:60:07.123456",  # minute 60
        "1899-12-31 23:59:59.999999",  # before the feed could exist
        "0001-01-01 00:00:00",
        "2024-03-01 13:00:00.000000",  # an hour in the future
        "2999-01-01 00:00:00",
    ],
)
@pytest.mark.parametrize(
    "body",
    [
        "[INFO]: Ride - duration = 3.0; resistance = 0",
        "[INFO]: Telemetry - hrt = 90; rpm = 60; power = 1.5",
        "Getting user data from server..",
        "[SYSTEM] data = " + json.dumps(STEVEN, separators=(",", ":")),
    ],
)
def test_timestamp_out_of_range_is_bad_value(ts: str, body: str) -> None:
    assert reject_reason(parse(f"{ts} mendoza v9: {body}\n")) == "bad_value"


def test_small_clock_skew_into_the_future_is_accepted() -> None:
    """A bike clock a minute ahead is skew, not a fault (the default tolerance is 5 min)."""
    ahead = (NOW + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    rec = parse(f"{ahead} mendoza v9: [INFO]: Ride - duration = 3.0; resistance = 0\n")
    assert rec == RideLine(ahead, "mendoza v9", 3, 0)


def test_future_second_is_not_remembered_as_valid() -> None:
    """A rejected future second stays rejected when it comes again (only valid seconds are cached)."""
    parser = Parser(now=NOW)
    line = value(
        "2024-03-01 18:00:00.1 mendoza v9: [INFO]: Ride - duration = 3.0; resistance = 0\n"
    )
    assert reject_reason(parser.parse(line)) == "bad_value"
    assert reject_reason(parser.parse(line)) == "bad_value"


def test_non_ascii_digits_in_the_fraction_are_rejected() -> None:
    rec = parse(
        "2024-03-01 09:15:07.१२३४५६ mendoza v9: [INFO]: Ride - duration = 3.0; resistance = 0\n"
    )
    assert isinstance(rec, Reject)


# --- message envelope and grammar ---------------------------------------------------------------


@pytest.mark.parametrize("line", [RIDE, TELEMETRY, GETTING, system_line(STEVEN)])
def test_line_without_trailing_newline_is_truncated(line: str) -> None:
    assert reject_reason(parse(line.rstrip("\n"))) == "truncated"


@pytest.mark.parametrize(
    "line",
    [
        "--------- beginning of main",
        "--------- beginning of a new ride",
        PREFIX + "[INFO]: Telemetry - hrt = 117; rpm = 45; power = 11.7",  # cut in the number
        PREFIX + "[INFO]: Ride - duration = 12.0; resistance = 3",
        PREFIX + "[SYSTEM] data = {",
        "2024-03-01 09:15",
        "",
    ],
)
def test_cut_lines_are_truncated_even_when_they_look_valid(line: str) -> None:
    assert reject_reason(parse(line)) == "truncated"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"not json",
        b'{"log": "2024-03-01',  # cut inside the JSON
        b"\xff\xfe\x00garbage",
        b"[1, 2]",
        b'"log"',
        b"null",
        b"42",
        b"{}",
        b'{"msg": "heartbeat"}',
        b'{"Log": "--------- beginning of main\\n"}',
        b'{"log": 5}',
        b'{"log": null}',
        b'{"log": ["--------- beginning of main\\n"]}',
        b'{"log": {"line": "x"}}',
    ],
)
def test_not_a_json_object_with_a_string_log_is_bad_json(raw: bytes) -> None:
    assert reject_reason(Parser(now=NOW).parse(raw)) == "bad_json"


def test_none_value_is_bad_json() -> None:
    """A tombstone (no value) is not a log line."""
    assert reject_reason(Parser(now=NOW).parse(None)) == "bad_json"


def test_extra_json_keys_are_ignored() -> None:
    raw = json.dumps({"log": RIDE, "host": "bike-7"}).encode()
    assert Parser(now=NOW).parse(raw) == RideLine(TS, "mendoza v9", 12, 30)


@pytest.mark.parametrize(
    "line",
    [
        "hello\n",
        "\n",
        "--------- beginning of something else\n",
        "--------- beginning of main\n\n",
        PREFIX + "[INFO]: Ride - duration = 12.0\n",
        PREFIX + "[INFO]: Ride - resistance = 30; duration = 12.0\n",
        PREFIX + "[INFO]: Telemetry - hrt = 117; rpm = 45\n",
        PREFIX + "[INFO]: Telemetry - hrt = 1.5; rpm = 45; power = 1.0\n",
        PREFIX + "[INFO]: Telemetry - hrt = abc; rpm = 45; power = 1.0\n",
        PREFIX + "[WARN]: Ride - duration = 12.0; resistance = 30\n",
        PREFIX + "[INFO]: Ride - duration = 12.0; resistance = 30 \n",
        PREFIX + "[SYSTEM] data = [1, 2]\n",
        PREFIX + "[SYSTEM] data = \n",
        PREFIX + "Getting user data from server.\n",
        f"{TS} mendoza: [INFO]: Ride - duration = 12.0; resistance = 30\n",  # no model version
        f"{TS}mendoza v9: [INFO]: Ride - duration = 12.0; resistance = 30\n",
        "2024-03-01T09:15:07.123456 mendoza v9: [INFO]: Ride - duration = 12.0; resistance = 30\n",
        "2024-03-01 09:15:07.1234567 mendoza v9: [INFO]: Ride - duration = 12.0; resistance = 30\n",
        "[INFO]: Ride - duration = 12.0; resistance = 30\n",
    ],
)
def test_lines_outside_the_grammar_are_bad_line(line: str) -> None:
    assert reject_reason(parse(line)) == "bad_line"


# --- reading values ------------------------------------------------------------------------------


def ride(duration: str, resistance: str = "30") -> str:
    return PREFIX + f"[INFO]: Ride - duration = {duration}; resistance = {resistance}\n"


def telemetry(hrt: str = "117", rpm: str = "45", power: str = "11.75724842") -> str:
    return PREFIX + f"[INFO]: Telemetry - hrt = {hrt}; rpm = {rpm}; power = {power}\n"


@pytest.mark.parametrize(
    "line",
    [
        ride("12.5"),  # a reading a second: durations are whole
        ride("-1.0"),
        ride("-12.0"),
        ride("1e9"),  # more than a day
        ride("100000.0"),
        ride("inf"),
        ride("nan"),
        ride("12.0", "-1"),
        ride("12.0", "100000"),
        telemetry(hrt="-1"),
        telemetry(hrt="400"),
        telemetry(hrt="99999"),
        telemetry(rpm="-5"),
        telemetry(rpm="1000"),
        telemetry(power="-0.5"),
        telemetry(power="-1e-9"),
        telemetry(power="1e9"),
        telemetry(power="50000.0"),
        telemetry(power="nan"),
        telemetry(power="inf"),
        telemetry(power="-inf"),
    ],
)
def test_out_of_range_values_are_bad_value(line: str) -> None:
    assert reject_reason(parse(line)) == "bad_value"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (ride("0.0", "0"), RideLine(TS, "mendoza v9", 0, 0)),
        (ride("1.0", "0"), RideLine(TS, "mendoza v9", 1, 0)),
        (ride("3600.0", "170"), RideLine(TS, "mendoza v9", 3600, 170)),
        (telemetry("0", "0", "0.0"), TelemetryLine(TS, "mendoza v9", None, 0, 0.0)),
        (telemetry("1", "45", "0.0"), TelemetryLine(TS, "mendoza v9", 1, 45, 0.0)),
        (telemetry("200", "140", "1234.5"), TelemetryLine(TS, "mendoza v9", 200, 140, 1234.5)),
        (
            telemetry("117", "40", "9.737739856000001"),
            TelemetryLine(TS, "mendoza v9", 117, 40, 9.737739856000001),
        ),
    ],
)
def test_plausible_values_are_accepted(line: str, expected: object) -> None:
    assert parse(line) == expected


def test_zero_heart_rate_means_no_contact() -> None:
    rec = parse(telemetry(hrt="0"))
    assert isinstance(rec, TelemetryLine)
    assert rec.heart_rate is None
    assert rec.rpm == 45


@pytest.mark.parametrize(
    "power", ["9.737739856000001", "0.0", "11.75724842", "2.30885038", "0.30000000000000004"]
)
def test_power_keeps_its_raw_float_repr(power: str) -> None:
    rec = parse(telemetry(power=power))
    assert isinstance(rec, TelemetryLine)
    assert type(rec.power) is float
    assert repr(rec.power) == power


@pytest.mark.parametrize(
    "line", [telemetry(hrt="9" * 5000), telemetry(rpm="9" * 5000), ride("1.0", "9" * 5000)]
)
def test_enormous_integer_fields_are_rejected_not_raised(line: str) -> None:
    assert reject_reason(parse(line)) == "bad_value"


def test_enormous_float_fields_are_rejected() -> None:
    """float() has no digit limit: these stay on the normal bad_value path."""
    assert reject_reason(parse(telemetry(power="9" * 5000 + ".0"))) == "bad_value"
    assert reject_reason(parse(ride("9" * 5000 + ".0"))) == "bad_value"


# --- riders ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Steven Pearce", (None, "Steven", "Pearce")),
        ("Mr Steven Pearce", ("Mr", "Steven", "Pearce")),
        ("Mr. Steven Pearce", ("Mr", "Steven", "Pearce")),
        ("Mrs Amelia Smith-Jones", ("Mrs", "Amelia", "Smith-Jones")),
        ("Mrs. Amelia Smith-Jones", ("Mrs", "Amelia", "Smith-Jones")),
        ("Miss Holly Wright", ("Miss", "Holly", "Wright")),
        ("Ms Priya Patel", ("Ms", "Priya", "Patel")),
        ("Ms. Priya Patel", ("Ms", "Priya", "Patel")),
        ("Mx Sam Taylor", ("Mx", "Sam", "Taylor")),
        ("Mx. Sam Taylor", ("Mx", "Sam", "Taylor")),
        ("Dr Aisha Khan", ("Dr", "Aisha", "Khan")),
        ("Dr. Aisha Khan", ("Dr", "Aisha", "Khan")),
        ("Prof Ian Hughes-Lloyd", ("Prof", "Ian", "Hughes-Lloyd")),
        ("Prof. Ian Hughes-Lloyd", ("Prof", "Ian", "Hughes-Lloyd")),
        ("Connor O'Brien-Murphy", (None, "Connor", "O'Brien-Murphy")),
        ("Jean Claude Van Damme", (None, "Jean", "Claude Van Damme")),
    ],
)
def test_split_name_drops_the_title_and_keeps_hyphenated_surnames(
    name: str, expected: tuple[str | None, str, str]
) -> None:
    assert split_name(name) == expected
    rider = rider_of(name=name)
    assert isinstance(rider, Rider)
    assert (rider.title, rider.first_name, rider.last_name) == expected


@pytest.mark.parametrize("name", ["Cher", "", "   ", "Dr."])
def test_split_name_needs_a_first_and_a_last_name(name: str) -> None:
    assert split_name(name) is None


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (
            "0 Simpson locks,Wilkinsonshire,E68 8SH",
            ("0 Simpson locks", "Wilkinsonshire", "E68 8SH"),
        ),
        ("Flat 4,Harris mill,Ryantown,E8 5BR", ("Flat 4, Harris mill", "Ryantown", "E8 5BR")),
        ("Studio 12,Ward lane,London,SW1 2AB", ("Studio 12, Ward lane", "London", "SW1 2AB")),
        ("12 High street, Leeds, LS1 4DY", ("12 High street", "Leeds", "LS1 4DY")),
        ("somewhere", ("somewhere", None, None)),
        ("Leeds,LS1 4DY", ("Leeds,LS1 4DY", None, None)),
        ("a,,LS1 4DY", ("a,,LS1 4DY", None, None)),
        ("", (None, None, None)),
    ],
)
def test_split_address_both_shapes(
    address: str, expected: tuple[str | None, str | None, str | None]
) -> None:
    assert split_address(address) == expected


def test_rider_address_in_both_shapes() -> None:
    plain = rider_of(address="0 Simpson locks,Wilkinsonshire,E68 8SH")
    flat = rider_of(address="Flat 4,Harris mill,Ryantown,E8 5BR")
    assert isinstance(plain, Rider) and isinstance(flat, Rider)
    assert (plain.address_line, plain.city, plain.postcode) == (
        "0 Simpson locks",
        "Wilkinsonshire",
        "E68 8SH",
    )
    assert (flat.address_line, flat.city, flat.postcode) == (
        "Flat 4, Harris mill",
        "Ryantown",
        "E8 5BR",
    )


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (273715200000, datetime(1978, 9, 4, tzinfo=UTC)),
        (-1, datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
        (-631152000000, datetime(1950, 1, 1, tzinfo=UTC)),
        (-2208988800000, datetime(1900, 1, 1, tzinfo=UTC)),
        (1647993600000.0, datetime(2022, 3, 23, tzinfo=UTC)),
    ],
)
def test_epoch_ms_to_datetime(ms: float, expected: datetime) -> None:
    assert epoch_ms_to_datetime(ms) == expected


@pytest.mark.parametrize(
    "bad", ["273715200000", None, True, False, float("nan"), float("inf"), 1e300, -(10**30), [1]]
)
def test_epoch_ms_to_datetime_not_a_usable_number(bad: Any) -> None:
    assert epoch_ms_to_datetime(bad) is None


@pytest.mark.parametrize(
    ("ms", "born"),
    [
        (-1, date(1969, 12, 31)),  # a millisecond before the epoch is still 31 December
        (-86400000, date(1969, 12, 31)),
        (-86400001, date(1969, 12, 30)),
        (-631152000000, date(1950, 1, 1)),
        (-631151999999, date(1950, 1, 1)),
        (-2208988800000, date(1900, 1, 1)),
        (273715200000, date(1978, 9, 4)),
    ],
)
def test_date_of_birth_before_1970_is_the_right_utc_date(ms: int, born: date) -> None:
    rider = rider_of(date_of_birth=ms)
    assert isinstance(rider, Rider)
    assert rider.date_of_birth == born


@pytest.mark.parametrize(
    ("gender", "expected"),
    [
        ("male", "male"),
        ("female", "female"),
        ("Male", "male"),
        (" FEMALE ", "female"),
        ("other", "other"),
        ("non-binary", "other"),
        ("prefer not to say", "other"),
        ("", "other"),
        (7, "other"),
        (None, "other"),  # absent
    ],
)
def test_gender_is_male_female_or_other(gender: Any, expected: str) -> None:
    rider = rider_of(gender=gender)
    assert isinstance(rider, Rider)
    assert rider.gender == expected


_ABSENT = object()


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("user_id", _ABSENT),
        ("user_id", "100"),
        ("user_id", 100.0),
        ("user_id", True),
        ("user_id", 0),
        ("user_id", -3),
        ("user_id", 2**63),
        ("name", _ABSENT),
        ("name", 5),
        ("name", ""),
        ("name", "   "),
        ("name", "Cher"),
        ("name", "Steven\u0000 Pearce"),
        ("date_of_birth", _ABSENT),
        ("date_of_birth", "1978-09-04"),
        ("date_of_birth", True),
        ("date_of_birth", -2208988800001),  # before 1900
        ("date_of_birth", 1893456000000),  # 2030: not born yet
    ],
)
def test_missing_or_wrong_required_rider_field_is_rejected(field: str, bad: Any) -> None:
    data = {k: v for k, v in STEVEN.items() if k != field}
    if bad is not _ABSENT:
        data[field] = bad
    assert reject_reason(parse(system_line(data))) == "bad_value"


@pytest.mark.parametrize("payload", ["{nope}", '{"user_id": 1,}', '{"a": 1} {"b": 2}'])
def test_system_payload_that_is_not_json_is_bad_json(payload: str) -> None:
    assert reject_reason(parse(f"{PREFIX}[SYSTEM] data = {payload}\n")) == "bad_json"


@pytest.mark.parametrize(
    ("field", "attribute"),
    [
        ("email_address", "email_address"),
        ("height_cm", "height_cm"),
        ("weight_kg", "weight_kg"),
        ("account_create_date", "account_created_at"),
        ("original_source", "original_source"),
        ("bike_serial", "bike_serial"),
        ("address", "address_line"),
    ],
)
@pytest.mark.parametrize("bad", [_ABSENT, None, "", ["x"], {"x": 1}, True])
def test_optional_rider_field_missing_or_wrong_is_none(
    field: str, attribute: str, bad: Any
) -> None:
    data = {k: v for k, v in STEVEN.items() if k != field}
    if bad is not _ABSENT:
        data[field] = bad
    rec = parse(system_line(data))
    assert isinstance(rec, SystemLine), rec
    assert getattr(rec.rider, attribute) is None
    assert rec.rider.user_id == 100
    if field == "address":
        assert (rec.rider.city, rec.rider.postcode) == (None, None)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("height_cm", -5),
        ("height_cm", 1000),
        ("height_cm", 167.5),
        ("height_cm", "167"),
        ("weight_kg", 0),
        ("weight_kg", 5000),
        ("account_create_date", 1e300),
        ("account_create_date", 4102444800000),  # 2100
        ("account_create_date", -2208988800001),  # before 1900
    ],
)
def test_optional_rider_field_out_of_range_is_none(field: str, bad: Any) -> None:
    rider = rider_of(**{field: bad})
    assert isinstance(rider, Rider)
    assert getattr(rider, "account_created_at" if field == "account_create_date" else field) is None


def test_text_fields_are_trimmed() -> None:
    rider = rider_of(email_address="  steven.p@gmail.com ", original_source=" google ads ")
    assert isinstance(rider, Rider)
    assert rider.email_address == "steven.p@gmail.com"
    assert rider.original_source == "google ads"


def test_parse_rider_directly() -> None:
    """parse_rider takes the payload text and the clock used for 'not born yet'."""
    payload = orjson.dumps({**STEVEN, "date_of_birth": 1704067200000}).decode()  # 2024-01-01
    assert isinstance(parse_rider(payload, datetime(2024, 6, 1, tzinfo=UTC)), Rider)
    assert reject_reason(parse_rider(payload, datetime(2023, 6, 1, tzinfo=UTC))) == "bad_value"
    assert reject_reason(parse_rider("[]", NOW)) == "bad_json"
    assert reject_reason(parse_rider("nope", NOW)) == "bad_json"
