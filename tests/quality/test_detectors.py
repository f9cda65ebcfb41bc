"""Detectors: every simulator fault kind trips its detector; clean bikes are never flagged."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.config import Settings
from services.quality import detectors
from services.quality.detectors import LIMITS, Reading, clock_skews, judge
from services.quality.job import assess
from services.simulator import faults
from services.simulator.models import Message
from tests.quality.pipeline import START, fleet_by_bike, ingest, with_fault

DEFAULTS = Settings.model_construct()
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAULTY = "SN0001"
# Each fault kind, the rate that makes it show, and the detector it must trip.
CASES = [
    (faults.CONTACT_LOSS, 0.03, "no_contact"),
    (faults.GAP, 0.01, "gaps"),
    (faults.DUPLICATE, 0.02, "duplicates"),
    (faults.LATE, 0.02, "out_of_order"),
    (faults.STUCK_RPM, 0.005, "stuck"),
    (faults.STUCK_HR, 0.003, "stuck"),
    (faults.IMPLAUSIBLE, 0.02, "implausible"),
    (faults.CLOCK_SKEW, 0.5, "clock_skew"),
]


@pytest.fixture(scope="module")
def clean_fleet() -> dict[str, list[Message]]:
    """Five bikes, one 15-minute ride each (the default quality window)."""
    return fleet_by_bike(5, 900)


@pytest.mark.parametrize(("kind", "rate", "detector"), CASES, ids=[c[0] for c in CASES])
def test_each_fault_kind_trips_its_detector_and_only_that_bike(
    clean_fleet: dict[str, list],
    kind: str,
    rate: float,
    detector: str,
) -> None:
    streams = {**clean_fleet, FAULTY: with_fault(clean_fleet[FAULTY], kind, rate)}
    readings, rejects, lags = ingest(streams)
    judged = assess(readings.items(), rejects, lags, min_readings=DEFAULTS.quality_min_readings)
    bad = judged[FAULTY]
    assert detector in bad.problems, bad
    assert bad.measures[detector] >= LIMITS[detector]
    assert bad.score < DEFAULTS.quality_min_score
    for bike, quality in judged.items():
        if bike != FAULTY:
            assert quality.problems == [], (bike, quality)
            assert quality.score >= DEFAULTS.quality_recover_score, (bike, quality)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10**6), bikes=st.integers(3, 5), seconds=st.integers(60, 900))
def test_a_clean_fleet_is_never_flagged(seed: int, bikes: int, seconds: int) -> None:
    readings, rejects, lags = ingest(fleet_by_bike(bikes, seconds, seed))
    judged = assess(readings.items(), rejects, lags, min_readings=60)
    assert len(judged) == bikes
    for bike, quality in judged.items():
        assert quality.problems == [], (bike, quality)
        assert quality.score >= DEFAULTS.quality_recover_score, (bike, quality)


def rows(hr: Sequence[int | None], rpm: list[int] | None = None, start: int = 1) -> list[Reading]:
    """A ride's readings, one a second from `start`."""
    cadence = rpm or [60 + (i % 7) for i in range(len(hr))]
    return [
        Reading(1, start + i, START + timedelta(seconds=start + i), 50, h, c, 10.0 * c)
        for i, (h, c) in enumerate(zip(hr, cadence, strict=True))
    ]


@FAST
@given(
    hr=st.lists(st.one_of(st.none(), st.integers(30, 240)), min_size=1, max_size=400),
    rejects=st.dictionaries(st.sampled_from(["duplicate", "out_of_order", "bad_value"]),
                            st.integers(0, 1000)),
    skew=st.floats(-1e6, 1e6),
)  # fmt: skip
def test_the_score_is_between_0_and_1_and_names_every_measure_at_its_limit(
    hr: list[int | None], rejects: dict[str, int], skew: float
) -> None:
    quality = judge(rows(hr), rejects, skew)
    assert 0.0 <= quality.score <= 1.0
    assert set(quality.measures) == set(LIMITS)
    for name, value in quality.measures.items():
        if value >= LIMITS[name] * 1.0001:
            assert name in quality.problems
    if not quality.problems:
        assert quality.score > 1.0 - 0.5 * 0.5 * len(LIMITS)


@FAST
@given(
    n=st.integers(10, 600),
    dropped=st.sets(st.integers(1, 598)),
)
def test_gaps_are_the_share_of_missing_seconds(n: int, dropped: set[int]) -> None:
    full = rows([100] * n)
    kept = [r for i, r in enumerate(full) if i not in dropped or i in (0, n - 1)]
    missing = n - len(kept)
    assert detectors.gaps(kept) == pytest.approx(missing / n)


@FAST
@given(length=st.integers(1, 400), value=st.integers(40, 200))
def test_a_heart_rate_is_stuck_only_after_three_minutes_flat(length: int, value: int) -> None:
    varied = [value + (i % 3) for i in range(20)]  # moving before and after
    readings = rows([*varied, *([value + 10] * length), *varied])
    stuck = detectors.stuck_seconds(readings)
    assert stuck == (length if length >= detectors.FLAT_HEART_RATE_S else 0)


def test_rpm_flat_while_power_moves_is_stuck_and_a_steady_rider_is_not() -> None:
    hr = [100 + (i % 5) for i in range(200)]
    flat = rows(hr, [70] * 200)
    # The bike computes power from cadence and resistance: flat cadence, moving power.
    moving_power = [r._replace(power=100.0 + (r.elapsed_s % 4)) for r in flat]
    assert detectors.stuck_seconds(moving_power) == 200
    assert detectors.stuck_seconds(flat) == 0  # flat cadence and power: a steady rider
    resting = [r._replace(rpm=0, power=0.0) for r in moving_power]
    assert detectors.stuck_seconds(resting) == 0  # pedalling stopped


@FAST
@given(
    lags=st.dictionaries(
        st.integers(0, 99).map(str), st.floats(-1e5, 1e5), min_size=3, max_size=30
    ),
    shift=st.floats(-1e5, 1e5),
)
def test_clock_skew_ignores_a_lag_every_bike_shares(lags: dict[str, float], shift: float) -> None:
    shifted = clock_skews({b: lag + shift for b, lag in lags.items()})
    for bike, skew in clock_skews(lags).items():
        assert shifted[bike] == pytest.approx(skew, abs=1e-6 * (1 + abs(shift) + abs(skew)))


def test_two_bikes_are_no_fleet_to_judge_a_clock_against() -> None:
    assert clock_skews({"a": 0.0, "b": 500.0}) == {"a": 0.0, "b": 0.0}
