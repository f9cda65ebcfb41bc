"""Per-bike data quality (pure): a window of readings and rejects in, measures and a score out.

Each detector yields one measure; `LIMITS` says at what value that measure alone makes the
bike's data bad. The score is 1 less half of the summed penalties (each measure over its limit,
capped at 1), floored at 0: one detector at its limit gives 0.5, below the default incident
threshold (0.7); half-way to a limit costs 0.25.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import NamedTuple


class Reading(NamedTuple):
    """One row of daily.readings (heart_rate None: no contact)."""

    ride_id: int
    elapsed_s: int
    recorded_at: datetime
    resistance: int
    heart_rate: int | None
    rpm: int
    power: float


# Runs of identical values this long are a stuck sensor, not a steady rider.
FLAT_CADENCE_S = 60  # rpm (with resistance) flat while power moves, or power flat while rpm moves
FLAT_HEART_RATE_S = 180
CONTACT_GRACE_S = 30
# A heart rate outside these is no body's (the parser already refuses > 250).
HEART_RATE_PLAUSIBLE = (30, 240)

LIMITS: dict[str, float] = {
    "no_contact": 0.3,  # share of readings without heart-rate contact
    "gaps": 0.05,  # share of a ride's seconds with no reading
    "duplicates": 0.02,  # duplicate lines per reading
    "out_of_order": 0.02,  # out-of-order lines per reading
    "stuck": 0.05,  # share of readings inside a stuck run
    "implausible": 0.01,  # implausible values (landed or rejected) per reading
    "clock_skew": 60.0,  # seconds between the bike's clock and the fleet's
}
DETECTORS = tuple(LIMITS)
PROBLEM_PENALTY = 0.5  # a measure at half its limit or more is named as a problem


@dataclass(frozen=True)
class Quality:
    """A bike's measures over a window, its score and the measures named as problems."""

    readings: int
    measures: dict[str, float]
    score: float
    problems: list[str] = field(default_factory=list)


def no_contact(readings: Sequence[Reading]) -> float:
    """Share of readings without heart-rate contact, past each ride's first CONTACT_GRACE_S
    (a rider takes a few seconds to grip the handles: the feed sends no contact until then)."""
    counted = [r for r in readings if r.elapsed_s > CONTACT_GRACE_S]
    return sum(r.heart_rate is None for r in counted) / len(counted) if counted else 0.0


def gaps(readings: Sequence[Reading]) -> float:
    """Share of seconds missing from each ride's one-a-second sequence (between the first and
    the last reading of the ride seen in the window)."""
    missing = expected = 0
    for ride in _by_ride(readings):
        seconds = sorted({r.elapsed_s for r in ride})
        span = seconds[-1] - seconds[0] + 1
        expected += span
        missing += span - len(seconds)
    return missing / expected if expected else 0.0


def stuck_seconds(readings: Sequence[Reading]) -> int:
    """Readings inside runs where a sensor is stuck: rpm and resistance flat while power
    moves, power flat (above 0) while rpm moves, each for FLAT_CADENCE_S; or a heart rate
    identical for FLAT_HEART_RATE_S."""
    stuck: set[tuple[int, int]] = set()
    for ride in _by_ride(readings):
        ride = sorted(ride, key=lambda r: r.elapsed_s)
        for run in _runs(ride, lambda r: (r.rpm, r.resistance) if r.rpm > 0 else None):
            if _span(run) >= FLAT_CADENCE_S and len({r.power for r in run}) >= 3:
                stuck.update((r.ride_id, r.elapsed_s) for r in run)
        for run in _runs(ride, lambda r: r.power if r.power > 0 else None):
            if _span(run) >= FLAT_CADENCE_S and len({r.rpm for r in run}) >= 3:
                stuck.update((r.ride_id, r.elapsed_s) for r in run)
        for run in _runs(ride, lambda r: r.heart_rate):
            if _span(run) >= FLAT_HEART_RATE_S:
                stuck.update((r.ride_id, r.elapsed_s) for r in run)
    return len(stuck)


def implausible(readings: Sequence[Reading]) -> int:
    """Readings that landed with a heart rate no body makes."""
    low, high = HEART_RATE_PLAUSIBLE
    return sum(r.heart_rate is not None and not low <= r.heart_rate <= high for r in readings)


def clock_skews(lags: Mapping[str, float]) -> dict[str, float]:
    """Each bike's clock against the fleet's: (its latest line's time - when it was written)
    less the median of that over the bikes written in the window. The median is ingest's own
    lag, which every bike shares; what remains is the bike's clock. Fewer than three bikes:
    no fleet to compare with, so no skew is judged."""
    if len(lags) < 3:
        return dict.fromkeys(lags, 0.0)
    middle = median(lags.values())
    return {bike: lag - middle for bike, lag in lags.items()}


def judge(
    readings: Sequence[Reading],
    rejects: Mapping[str, int],
    skew_s: float,
) -> Quality:
    """The quality of one bike's window: its readings, its rejects by reason, its clock skew."""
    n = len(readings)
    base = max(n, 1)
    measures = {
        "no_contact": no_contact(readings),
        "gaps": gaps(readings),
        "duplicates": rejects.get("duplicate", 0) / base,
        "out_of_order": rejects.get("out_of_order", 0) / base,
        "stuck": stuck_seconds(readings) / base,
        "implausible": (implausible(readings) + rejects.get("bad_value", 0)) / base,
        "clock_skew": abs(skew_s),
    }
    penalties = {name: min(1.0, measures[name] / LIMITS[name]) for name in DETECTORS}
    score = max(0.0, 1.0 - 0.5 * sum(penalties.values()))
    problems = [name for name in DETECTORS if penalties[name] >= PROBLEM_PENALTY]
    rounded = {name: round(value, 4) for name, value in measures.items()}
    return Quality(n, rounded, round(score, 4), problems)


def _by_ride(readings: Sequence[Reading]) -> list[list[Reading]]:
    rides: dict[int, list[Reading]] = {}
    for r in readings:
        rides.setdefault(r.ride_id, []).append(r)
    return list(rides.values())


def _runs(
    ride: Sequence[Reading], key: Callable[[Reading], Hashable | None]
) -> list[list[Reading]]:
    """Maximal runs of consecutive seconds with the same non-None key."""
    runs: list[list[Reading]] = []
    current: list[Reading] = []
    current_key: Hashable | None = None
    for r in ride:
        k = key(r)
        if k is not None and k == current_key and r.elapsed_s == current[-1].elapsed_s + 1:
            current.append(r)
            continue
        if current:
            runs.append(current)
        current, current_key = ([r], k) if k is not None else ([], None)
    if current:
        runs.append(current)
    return runs


def _span(run: Sequence[Reading]) -> int:
    return run[-1].elapsed_s - run[0].elapsed_s + 1
