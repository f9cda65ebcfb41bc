"""One ride second by second: resistance and cadence plan, power, and a heart that follows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from random import Random

from services.simulator.lines import power_text, power_watts
from services.simulator.riders import Rider, safe_max_hr

Reading = tuple[int, int, int, str]  # resistance, rpm, hrt (0 = no contact), power repr


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of the ride from second `start` at one resistance and target cadence."""

    start: int
    resistance: int
    cadence: float
    push: bool = False


def plan_ride(rider: Rider, seconds: int, rng: Random) -> list[Segment]:
    """Warm-up, efforts around the rider's preferred level, a push for risky riders, cool-down."""
    warmup = min(60, max(1, seconds // 10))
    cooldown_at = seconds - min(60, seconds // 10)
    preferred = 25 + 110 * rider.fitness
    base_cadence = 50 + 35 * rider.fitness
    segments = [Segment(0, rng.randrange(15, 40), base_cadence - 5)]
    push_at = max(warmup, int(seconds * 0.35)) if rider.pushes_past_max else seconds + 1
    push_len = min(90, max(30, int(seconds * 0.3)))
    t = warmup
    while t < cooldown_at:
        if push_at <= t < push_at + push_len:
            segments.append(Segment(t, rng.randrange(150, 220), base_cadence + 25, push=True))
            t = push_at + push_len
            continue
        resistance = min(max(int(preferred * rng.uniform(0.5, 1.5)), 10), 220)
        segments.append(Segment(t, resistance, base_cadence + rng.uniform(-12.0, 12.0)))
        t += rng.randrange(30, 150)
        if t > push_at and segments[-1].start < push_at:
            t = push_at
    if cooldown_at > warmup:
        segments.append(Segment(cooldown_at, rng.randrange(10, 35), base_cadence - 10))
    return segments


def readings(rider: Rider, age: float, seconds: int, rng: Random) -> Iterator[Reading]:
    """One reading per second of a ride of `seconds` seconds."""
    plan = plan_ride(rider, seconds, rng)
    safe_max = safe_max_hr(age, rider.gender)
    # Riders who are not flagged stay clear of their safe maximum.
    ceiling = safe_max + 30 if rider.pushes_past_max else safe_max - 8
    hrt_cap = 250 if rider.pushes_past_max else int(safe_max) - 2
    ftp = rider.weight_kg * (1.2 + 2.8 * rider.fitness) * max(0.55, 1 - max(0.0, age - 35) * 0.008)
    rest = rider.resting_hr
    reserve = safe_max - rest
    push_target = safe_max + rng.uniform(8.0, 20.0)
    hr = rest + rng.uniform(0.0, 10.0)
    contact_at = rng.choice((1, 1, 2, 3, 5, 7, 9, 12))
    resist_at = rng.randrange(2, 5)
    pedal_at = rng.randrange(resist_at, 8)
    rand = rng.random
    rpm_f = 0.0
    pause = dropout = 0
    index, next_start = 0, plan[1].start if len(plan) > 1 else seconds + 1
    for t in range(1, seconds + 1):
        while t >= next_start:
            index += 1
            next_start = plan[index + 1].start if index + 1 < len(plan) else seconds + 1
        seg = plan[index]
        resistance = 0 if t < resist_at else seg.resistance
        if pause:
            pause -= 1
        elif t >= pedal_at and rand() < 0.002:
            pause = 2 + int(rand() * 7)
        if t < pedal_at or pause:
            rpm_f = rpm_f * 0.4 if rpm_f > 5 else 0.0
        elif rpm_f == 0.0:
            rpm_f = seg.cadence * (0.7 + 0.3 * rand())
        else:
            rpm_f += (seg.cadence - rpm_f) * 0.35 + (rand() - 0.5) * 8.0
        rpm = max(int(rpm_f), 0)
        watts = power_watts(resistance, rpm)
        if seg.push:
            target, rate = push_target, 0.1
        else:
            effort = min(watts / ftp, 1.2)
            target = min(rest + reserve * (0.1 + 0.85 * effort), ceiling)
            rate = 0.06 if target > hr else 0.03
        hr += (target - hr) * rate + (rand() - 0.5) * 2.0
        if dropout:
            dropout -= 1
        elif rand() < 0.002:
            dropout = 1 + int(rand() * 4)
        hrt = 0 if t < contact_at or dropout else min(int(hr + 0.5), hrt_cap)
        yield resistance, rpm, hrt, power_text(resistance, rpm)
