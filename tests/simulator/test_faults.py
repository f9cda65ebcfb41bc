"""Fault injection: each kind does what it says, is counted, and the rest of the stream is intact."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from random import Random

import pytest

from services.simulator import faults
from services.simulator.faults import FaultInjector
from services.simulator.models import Message
from tests.simulator import grammar
from tests.simulator.conftest import fleet_messages


@pytest.fixture(scope="module")
def one_bike() -> list[Message]:
    """A single bike's fault-free stream: two rides of two minutes."""
    return fleet_messages(bikes=1, rides=2, seconds=120)[1]


def inject(messages: list[Message], kind: str, rate: float = 0.05) -> tuple[list[Message], int]:
    counts: Counter[str] = Counter()
    out = FaultInjector(rate, Random(9), counts, kinds=(kind,)).wrap(iter(messages))
    result = [m for m in out if m is not None]
    assert set(counts) == {kind}
    return result, counts[kind]


def _log(msg: Message) -> str | None:
    try:
        obj = json.loads(msg.value)
    except ValueError:
        return None
    return obj.get("log") if isinstance(obj, dict) else None


def test_contact_loss_zeroes_heart_rate_runs(one_bike: list[Message]) -> None:
    out, count = inject(one_bike, faults.CONTACT_LOSS)
    assert count > 0 and len(out) == len(one_bike)
    changed = [(a, b) for a, b in zip(one_bike, out, strict=True) if a != b]
    assert len(changed) >= count
    for before, after in changed:
        assert b"hrt = 0;" in after.value
        assert re.sub(rb"hrt = \d+", b"hrt = 0", before.value) == after.value


def test_stuck_sensor_repeats_the_previous_readings(one_bike: list[Message]) -> None:
    out, count = inject(one_bike, faults.STUCK_SENSOR)
    assert count > 0 and len(out) == len(one_bike)
    readings = [(i, grammar.TELEMETRY.fullmatch(_log(m) or "")) for i, m in enumerate(out)]
    telemetry = [(i, f.group("hrt", "rpm", "power")) for i, f in readings if f]
    changed = {i for i, (a, b) in enumerate(zip(one_bike, out, strict=True)) if a != b}
    assert changed
    for (_, previous), (i, current) in itertools.pairwise(telemetry):
        if i in changed:
            assert current == previous


def test_duplicates_repeat_a_message_at_once(one_bike: list[Message]) -> None:
    out, count = inject(one_bike, faults.DUPLICATE)
    assert count > 0 and len(out) == len(one_bike) + count
    repeats = sum(1 for a, b in itertools.pairwise(out) if a == b)
    assert repeats == count
    assert [m for i, m in enumerate(out) if i == 0 or out[i - 1] != m] == one_bike


def test_out_of_order_swaps_neighbours(one_bike: list[Message]) -> None:
    out, count = inject(one_bike, faults.OUT_OF_ORDER)
    assert count > 0 and sorted(out) == sorted(one_bike)
    moved = [i for i, (a, b) in enumerate(zip(one_bike, out, strict=True)) if a != b]
    assert len(moved) == 2 * count
    for i in moved[::2]:
        assert (out[i], out[i + 1]) == (one_bike[i + 1], one_bike[i])


def test_truncated_lines_are_cut_short(one_bike: list[Message]) -> None:
    out, count = inject(one_bike, faults.TRUNCATED)
    assert count > 0 and len(out) == len(one_bike)
    changed = [(a, b) for a, b in zip(one_bike, out, strict=True) if a != b]
    assert len(changed) == count
    for before, after in changed:
        line, original = _log(after), _log(before)
        assert line and original and original.startswith(line) and len(line) < len(original)
        assert not line.endswith("\n")


def test_garbage_is_inserted_and_is_not_a_log_line(one_bike: list[Message]) -> None:
    out, count = inject(one_bike, faults.GARBAGE, rate=0.2)
    assert count > 0 and len(out) == len(one_bike) + count
    garbage = [m for m in out if _log(m) is None]
    assert len(garbage) == count
    assert [m for m in out if _log(m) is not None] == one_bike
    flavours = set()
    for msg in garbage:
        try:
            flavours.add(type(json.loads(msg.value)).__name__)
        except ValueError:
            flavours.add("invalid")
    assert "invalid" in flavours and len(flavours) >= 2


def test_bikes_join_mid_ride() -> None:
    fleet, messages = fleet_messages(
        bikes=40, rides=2, seconds=30, faults=0.1, fault_kinds=(faults.MID_RIDE_JOIN,)
    )
    joined = fleet.faults[faults.MID_RIDE_JOIN]
    assert 0 < joined < 40
    first: dict[bytes | None, str] = {}
    for msg in messages:
        first.setdefault(msg.key, grammar.classify(grammar.parse_value(msg.value))[0])
    assert sum(1 for kind in first.values() if kind == "ride") == joined
    assert sum(1 for kind in first.values() if kind == "main") == 40 - joined
    for key, kind in first.items():
        lines = [grammar.parse_value(m.value) for m in messages if m.key == key]
        if kind == "ride":
            assert not any("beginning of main" in line for line in lines)
            assert sum("beginning of a new ride" in line for line in lines) == 1


def test_every_fault_kind_is_injected_and_counted() -> None:
    fleet, messages = fleet_messages(bikes=20, rides=2, seconds=120, faults=0.03)
    assert set(fleet.faults) == set(faults.ALL_FAULTS)
    _, clean = fleet_messages(bikes=20, rides=2, seconds=120)
    assert len(messages) != len(clean)


def test_no_faults_at_zero_rate() -> None:
    fleet, messages = fleet_messages(bikes=10, rides=1, seconds=60, faults=0.0)
    assert not fleet.faults
    grammar.check_stream((m.key, m.value) for m in messages)


def test_unknown_fault_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        FaultInjector(0.1, Random(0), Counter(), kinds=("gremlins",))
