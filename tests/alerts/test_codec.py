"""Events in, state and alerts out: the JSON shapes of schemas/messages."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest

from services.alerts.codec import (
    BadEvent,
    alert_payload,
    parse_event,
    state_from_dict,
    state_to_dict,
)
from services.alerts.episodes import EpisodeRules, apply
from services.alerts.models import Reading, RideEnded, RideStarted

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "messages"

RIDE_STARTED = {
    "type": "ride_started",
    "ride_id": 11,
    "bike_serial": "SN0042",
    "model": "mendoza v9",
    "started_at": "2022-11-03T10:00:00Z",
    "rider": {
        "user_id": 5,
        "title": "Dr",
        "first_name": "Ada",
        "last_name": "Lovelace-Byron",
        "gender": "female",
        "date_of_birth": "1990-02-03",
        "email_address": "ada@example.com",
        "height_cm": 170,
        "weight_kg": 60,
        "city": "London",
    },
}


def reading(elapsed_s: int, hr: int | None) -> dict[str, object]:
    return {
        "type": "reading", "ride_id": 11, "bike_serial": "SN0042", "user_id": 5,
        "recorded_at": f"2022-11-03T10:00:{elapsed_s:02d}.25Z", "elapsed_s": elapsed_s,
        "resistance": 30, "heart_rate": hr, "rpm": 50, "power": 11.5,
    }  # fmt: skip


def test_parses_the_three_event_types() -> None:
    started = parse_event(orjson.dumps(RIDE_STARTED))
    assert isinstance(started, RideStarted)
    assert started.rider.date_of_birth == date(1990, 2, 3)
    assert started.started_at == datetime(2022, 11, 3, 10, tzinfo=UTC)
    r = parse_event(orjson.dumps(reading(4, None)))
    assert isinstance(r, Reading) and r.heart_rate is None and r.elapsed_s == 4
    ended = {"type": "ride_ended", "ride_id": 11, "bike_serial": "SN0042",
             "ended_at": "2022-11-03T10:10:00Z", "reason": "silence"}  # fmt: skip
    assert isinstance(parse_event(orjson.dumps(ended)), RideEnded)


def test_unknown_gender_is_other() -> None:
    doc = json.loads(json.dumps(RIDE_STARTED))
    doc["rider"]["gender"] = "nonbinary"
    started = parse_event(orjson.dumps(doc))
    assert isinstance(started, RideStarted) and started.rider.gender == "other"


def test_other_event_types_are_ignored() -> None:
    assert parse_event(b'{"type": "something_new"}') is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'{"type": "reading", "ride_id": 1}', "invalid_reading"),
        (orjson.dumps({**RIDE_STARTED, "started_at": "yesterday"}), "invalid_ride_started"),
        (orjson.dumps(reading(1, 40_000)), "invalid_reading"),
        (orjson.dumps(reading(1, -5)), "invalid_reading"),
    ],
)
def test_bad_input_says_why(raw: bytes, reason: str) -> None:
    with pytest.raises(BadEvent, match=reason):
        parse_event(raw)


def test_state_round_trips_through_json_mid_episode() -> None:
    state = None
    events = [parse_event(orjson.dumps(RIDE_STARTED))]
    events += [parse_event(orjson.dumps(reading(s, 200))) for s in (1, 2)]
    for e in events:
        assert e is not None
        state = apply(state, e, EpisodeRules()).state
    assert state is not None and len(state.run) == 2
    assert state_from_dict(orjson.loads(orjson.dumps(state_to_dict(state)))) == state


def test_alert_payload_has_every_required_field() -> None:
    state = None
    alert = None
    for doc in [RIDE_STARTED, reading(1, 200), reading(2, 201), reading(3, 202)]:
        e = parse_event(orjson.dumps(doc))
        assert e is not None
        out = apply(state, e, EpisodeRules())
        state, alert = out.state, out.alert or alert
    assert alert is not None
    payload = orjson.loads(alert_payload(alert))
    schema = json.loads((SCHEMAS / "alert.schema.json").read_text())
    assert set(schema["required"]) <= set(payload)
    assert payload["detected_at"] == "2022-11-03T10:00:03.250000Z"
    assert payload["heart_rates"] == [200, 201, 202]
    assert (payload["limit_low"], payload["limit_high"]) == (45, 177)
