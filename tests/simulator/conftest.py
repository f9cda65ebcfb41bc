"""Helpers shared by the simulator tests (the broker fixtures come from tests/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.simulator.fleet import Fleet, FleetConfig
from services.simulator.models import Message

START = datetime(2022, 11, 3, 18, 42, tzinfo=UTC)


def fleet_messages(**overrides: object) -> tuple[Fleet, list[Message]]:
    """A small fleet (fixed start) and all of its messages."""
    params: dict[str, object] = {"bikes": 3, "rides": 2, "seconds": 40, "seed": 1, "start": START}
    params.update(overrides)
    fleet = Fleet(FleetConfig(**params))  # type: ignore[arg-type]
    return fleet, list(fleet.messages())


@pytest.fixture
def small_fleet() -> tuple[Fleet, list[Message]]:
    """Three bikes, two 40-second rides each, no faults."""
    return fleet_messages()
