"""The fleet: deterministic, interleaved in time, riders who come back, hearts that follow."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from services.simulator.fleet import Fleet, FleetConfig
from services.simulator.models import Message
from services.simulator.riders import safe_max_hr
from tests.simulator import grammar
from tests.simulator.conftest import START, fleet_messages


def test_same_seed_and_start_give_identical_output() -> None:
    _, first = fleet_messages(bikes=6, faults=0.05)
    _, second = fleet_messages(bikes=6, faults=0.05)
    assert first == second


def test_another_seed_or_start_changes_the_output() -> None:
    _, base = fleet_messages()
    _, other_seed = fleet_messages(seed=2)
    _, other_start = fleet_messages(start=START + timedelta(hours=1))
    assert base != other_seed
    assert base != other_start


def test_keys_are_the_bike_serials() -> None:
    _, messages = fleet_messages(bikes=12, first_serial=40)
    assert {m.key for m in messages} == {f"SN{n:04d}".encode() for n in range(40, 52)}


def test_message_count_of_finite_rides() -> None:
    bikes, rides, seconds = 5, 3, 20
    _, messages = fleet_messages(bikes=bikes, rides=rides, seconds=seconds)
    # Per ride: banner, Getting, SYSTEM and two lines a second; plus one main banner per bike.
    assert len(messages) == bikes * (rides * (3 + 2 * seconds) + 1)


def _times(messages: list[Message]) -> list[tuple[float, bool]]:
    out = []
    for msg in messages:
        _, found = grammar.classify(grammar.parse_value(msg.value))
        if "ts" in found.groupdict():
            out.append((grammar.timestamp(found), "." in found["ts"]))
    return out


def test_bikes_are_interleaved_in_time_order() -> None:
    _, messages = fleet_messages(bikes=40, rides=2, seconds=30)
    times = _times(messages)
    seconds = [int(t) for t, _ in times]
    assert seconds == sorted(seconds)
    precise = [t for t, has_micros in times if has_micros]
    assert precise == sorted(precise)
    assert times[0][0] >= START.timestamp()
    # Several bikes share each second rather than one bike after another.
    assert len({m.key for m in messages[:200]}) > 10


def test_default_start_is_now_in_utc() -> None:
    fleet = Fleet(FleetConfig(bikes=1, seconds=2))
    assert abs(fleet.start - datetime.now(UTC)) < timedelta(seconds=5)


def test_some_lines_have_no_microseconds() -> None:
    _, messages = fleet_messages(bikes=50, rides=1, seconds=100)
    times = _times(messages)
    without = sum(1 for _, has_micros in times if not has_micros)
    assert 0 < without < len(times) / 200


@pytest.mark.parametrize("bad", [{"bikes": 0}, {"seconds": 0}, {"rides": 0}, {"faults": 1.5}])
def test_config_is_validated(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FleetConfig(**bad)  # type: ignore[arg-type]


def _rides(messages: list[Message]) -> list[tuple[bytes, dict[str, object], list[tuple[int, ...]]]]:
    """(bike, SYSTEM data, [(resistance, hrt, rpm), ...]) for every ride."""
    rides: list[tuple[bytes, dict[str, object], list[tuple[int, ...]]]] = []
    current: dict[bytes, tuple[bytes, dict[str, object], list[tuple[int, ...]]]] = {}
    resistance: dict[bytes, int] = {}
    for msg in messages:
        assert msg.key is not None
        kind, found = grammar.classify(grammar.parse_value(msg.value))
        if kind == "system":
            current[msg.key] = (msg.key, json.loads(found["json"]), [])
            rides.append(current[msg.key])
        elif kind == "ride":
            resistance[msg.key] = int(found["resistance"])
        elif kind == "telemetry":
            row = (resistance[msg.key], int(found["hrt"]), int(found["rpm"]))
            current[msg.key][2].append(row)
    return rides


def test_riders_come_back_but_never_ride_two_bikes_at_once() -> None:
    _, messages = fleet_messages(bikes=8, rides=6, seconds=30)
    rides = _rides(messages)
    users = [int(data["user_id"]) for _, data, _ in rides]  # type: ignore[call-overload]
    assert len(rides) == 48
    assert len(set(users)) < len(users) / 2
    on_bike: dict[int, bytes] = {}
    for msg in messages:
        line = grammar.parse_value(msg.value)
        if "[SYSTEM]" in line:
            user = json.loads(line.split("data = ", 1)[1])["user_id"]
            assert user not in on_bike, "a rider is on two bikes at once"
            on_bike[user] = msg.key  # type: ignore[assignment]
        elif "duration = 30.0" in line:
            on_bike = {u: k for u, k in on_bike.items() if k != msg.key}


def test_same_rider_keeps_the_same_details() -> None:
    _, messages = fleet_messages(bikes=6, rides=5, seconds=10)
    seen: dict[object, dict[str, object]] = {}
    for _, data, _ in _rides(messages):
        details = {k: v for k, v in data.items() if k != "bike_serial"}
        assert seen.setdefault(data["user_id"], details) == details


def test_rides_start_without_resistance_or_pedalling() -> None:
    _, messages = fleet_messages(bikes=10, rides=2, seconds=60)
    rides = _rides(messages)
    assert all(readings[0][0] == 0 and readings[0][2] == 0 for _, _, readings in rides)
    assert all(any(r[0] > 0 for r in readings) for _, _, readings in rides)
    # No heart-rate contact at the start of most rides, as in the real capture.
    assert sum(readings[0][1] == 0 for _, _, readings in rides) > len(rides) / 2


def _longest_run_above_max(data: dict[str, object], readings: list[tuple[int, ...]]) -> int:
    age = (START.timestamp() * 1000 - data["date_of_birth"]) / 86_400_000 / 365.2425  # type: ignore[operator]
    limit = safe_max_hr(age, str(data["gender"]))
    run = best = 0
    for _, hrt, _ in readings:
        if hrt > limit:
            run += 1
            best = max(best, run)
        elif hrt:
            run = 0
    return best


def test_a_few_riders_exceed_their_safe_maximum_for_several_seconds() -> None:
    fleet, messages = fleet_messages(bikes=60, rides=2, seconds=300, seed=7)
    risky = {r.user_id for r in fleet.pool.riders if r.pushes_past_max}
    assert 0 < len(risky) <= 0.1 * len(fleet.pool.riders)
    runs: dict[int, int] = defaultdict(int)
    for _, data, readings in _rides(messages):
        user = int(data["user_id"])  # type: ignore[call-overload]
        runs[user] = max(runs[user], _longest_run_above_max(data, readings))
    exceeded = {user for user, run in runs.items() if run >= 3}
    assert exceeded, "nobody went past their safe maximum"
    assert exceeded <= risky
    assert max(runs.values()) >= 10


def test_heart_rate_follows_effort() -> None:
    _, messages = fleet_messages(bikes=30, rides=1, seconds=400, seed=3)
    low: list[int] = []
    high: list[int] = []
    for _, _, readings in _rides(messages):
        for resistance, hrt, rpm in readings[60:]:
            if hrt and rpm:
                (high if resistance * rpm > 6000 else low).append(hrt)
    assert low and high
    assert sum(high) / len(high) > sum(low) / len(low) + 5
