"""One bike's stream: rides one after another, a line every half second while riding."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from random import Random

from services.simulator import lines
from services.simulator.models import BIKES, TELEMETRY, Bike, Message
from services.simulator.pool import RiderPool
from services.simulator.workout import readings

TICK_US = 500_000
# About one line in this many is stamped without microseconds, as the real feed sometimes is.
NO_MICROS_EVERY = 2_000
# Per-line jitter (µs) on top of the bike's fixed phase, like the real feed's small drift.
MAX_JITTER_US = 40


@dataclass(frozen=True, slots=True)
class Schedule:
    """When and how long a bike rides."""

    rides: int | None
    seconds: int
    first_tick: int
    join_at: int = 0  # > 0: the stream starts mid-way through the first ride, at this second
    last_start_tick: int | None = None  # no ride starts at or after this tick: the stream ends
    min_gap_ticks: int = 10
    max_gap_ticks: int = 120


def bike_stream(
    bike: Bike,
    schedule: Schedule,
    pool: RiderPool,
    seconds_text: lines.SecondsText,
    start_us: int,
    jitter_us: int,
    rng: Random,
) -> Iterator[Message | None]:
    """The bike's messages, with None after each half-second tick (idle ticks yield only None)."""
    key, model, phase = bike.key, bike.model, bike.phase_us
    rand = rng.random
    start_s = start_us / 1e6
    tick = 0

    def stamp() -> str:
        roll = rand()
        us = start_us + tick * TICK_US + phase + int(roll * jitter_us)
        second, micros = divmod(us, 1_000_000)
        # Dropping the microseconds moves the stamp back less than a tick: still in order.
        if roll * NO_MICROS_EVERY < 1.0 and micros < TICK_US - 2 * MAX_JITTER_US:
            return f"{seconds_text(second)} {model}: "
        return f"{seconds_text(second)}.{micros:06d} {model}: "

    for _ in range(schedule.first_tick):
        yield None
        tick += 1
    ride = 0
    while schedule.rides is None or ride < schedule.rides:
        if schedule.last_start_tick is not None and tick >= schedule.last_start_tick:
            return
        rider = pool.acquire()
        at = start_s + tick * 0.5
        age = rider.age_at(start_us // 1000 + tick * TICK_US // 1000)
        skip = schedule.join_at if ride == 0 else 0
        if not skip:
            if ride == 0:
                yield Message(BIKES, key, lines.log_value(lines.BANNER_MAIN), at)
            yield Message(BIKES, key, lines.log_value(lines.BANNER_RIDE), at)
            yield Message(BIKES, key, lines.log_value(stamp() + lines.GETTING_USER), at)
            yield None
            tick += 1
            system = lines.SYSTEM_PREFIX + rider.system_json(bike.serial)
            yield Message(BIKES, key, lines.log_value(stamp() + system), at + 0.5)
            yield None
            tick += 1
        for second, (resistance, rpm, hrt, power) in enumerate(
            readings(rider, age, schedule.seconds, rng), 1
        ):
            if second <= skip:
                continue
            at = start_s + tick * 0.5
            yield Message(TELEMETRY, key, lines.ride_value(stamp(), second, resistance), at)
            yield None
            tick += 1
            yield Message(TELEMETRY, key, lines.telemetry_value(stamp(), hrt, rpm, power), at + 0.5)
            yield None
            tick += 1
        pool.release(rider)
        ride += 1
        if schedule.rides is not None and ride >= schedule.rides:
            return
        for _ in range(rng.randrange(schedule.min_gap_ticks, schedule.max_gap_ticks)):
            yield None
            tick += 1
