"""Every simulated line follows the grammar of the real feed, and so does the real capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.simulator.models import BIKES, TELEMETRY
from tests.simulator import grammar
from tests.simulator.conftest import fleet_messages


def test_real_sample_passes_the_grammar(real_sample: Path) -> None:
    values = [(None, raw.rstrip(b"\n")) for raw in real_sample.read_bytes().splitlines()]
    bikes = grammar.check_stream(values)
    checker = bikes[None]
    assert len(values) == 1000
    assert checker.rides == [498]
    assert checker.systems[0]["user_id"] == 100
    assert checker.model == "mendoza v9"


@pytest.mark.parametrize(
    ("seed", "bikes", "rides", "seconds"),
    [(0, 1, 1, 500), (1, 7, 3, 60), (2, 25, 2, 30), (3, 60, 1, 12), (4, 4, 12, 5), (5, 2, 2, 1)],
)
def test_every_simulated_line_passes_the_grammar(
    seed: int, bikes: int, rides: int, seconds: int
) -> None:
    _, messages = fleet_messages(seed=seed, bikes=bikes, rides=rides, seconds=seconds)
    checkers = grammar.check_stream((m.key, m.value) for m in messages)
    assert len(checkers) == bikes
    for key, checker in checkers.items():
        assert checker.rides == [seconds] * rides, key
        assert all(str(s["bike_serial"]).encode() == key for s in checker.systems)
        assert checker.state == "telemetry"


def test_messages_are_routed_by_kind() -> None:
    _, messages = fleet_messages(bikes=5)
    for msg in messages:
        kind, _ = grammar.classify(grammar.parse_value(msg.value))
        expected = TELEMETRY if kind in ("ride", "telemetry") else BIKES
        assert msg.kind == expected, (kind, msg)


def test_each_bike_has_one_main_banner_then_a_banner_per_ride() -> None:
    _, messages = fleet_messages(bikes=4, rides=3)
    for key in {m.key for m in messages}:
        lines = [grammar.parse_value(m.value) for m in messages if m.key == key]
        assert lines[0] == "--------- beginning of main\n"
        assert lines.count("--------- beginning of main\n") == 1
        assert lines.count("--------- beginning of a new ride\n") == 3
