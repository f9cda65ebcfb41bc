"""Speeds and the pacer, on a fake clock."""

from __future__ import annotations

import math

import pytest

from services.simulator.pacing import MAX, REALTIME, Pacer, parse_speed


@pytest.mark.parametrize(
    ("text", "speed"),
    [("realtime", 1.0), ("max", math.inf), ("MAX", math.inf), ("10", 10.0), ("2.5x", 2.5)],
)
def test_parse_speed(text: str, speed: float) -> None:
    assert parse_speed(text) == speed


@pytest.mark.parametrize("text", ["fast", "0", "-2", "nan", ""])
def test_parse_speed_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_speed(text)


class FakeClock:
    """A clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("speed", "expected"), [(REALTIME, 2.0), (4.0, 0.5)])
def test_pacer_scales_simulated_time(speed: float, expected: float) -> None:
    clock = FakeClock()
    pacer = Pacer(speed, clock=clock, sleep=clock.sleep)
    pacer.wait(1000.0)
    pacer.wait(1002.0)
    assert clock.now - 100.0 == pytest.approx(expected)


def test_pacer_does_not_sleep_when_behind() -> None:
    clock = FakeClock()
    pacer = Pacer(REALTIME, clock=clock, sleep=clock.sleep)
    pacer.wait(0.0)
    clock.now += 5.0
    pacer.wait(1.0)
    assert clock.slept == []
    assert pacer.behind_s == pytest.approx(4.0)


def test_pacer_retries_a_sleep_that_returns_early() -> None:
    clock = FakeClock()
    pacer = Pacer(REALTIME, clock=clock, sleep=lambda s: clock.sleep(min(s, 0.1)))
    pacer.wait(0.0)
    pacer.wait(1.0)
    assert clock.now == pytest.approx(101.0)
    assert len(clock.slept) >= 10


def test_max_speed_never_sleeps() -> None:
    clock = FakeClock()
    pacer = Pacer(MAX, clock=clock, sleep=clock.sleep)
    for at in range(100):
        pacer.wait(float(at))
    assert clock.slept == []
