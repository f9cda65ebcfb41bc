"""Heart-rate zones against the rider's own safe range, and the display formats (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from services.alerts.rules import Limits


@dataclass(frozen=True)
class Zone:
    """A band of heart rate as a share of the rider's safe maximum."""

    number: int  # 1-5; 0 below the safe minimum, 6 above the safe maximum
    name: str
    colour: str
    low: float  # bpm, inclusive
    high: float  # bpm, exclusive


# Share of the safe maximum where each of the five zones starts (the usual 50/60/70/80/90 %).
ZONE_STARTS = (0.5, 0.6, 0.7, 0.8, 0.9)
ZONE_NAMES = ("Warm-up", "Easy", "Aerobic", "Threshold", "Maximum")
ZONE_COLOURS = ("#7aa6c2", "#4caf7a", "#e0b400", "#f08a24", "#d9412b")
DANGER = "#b00020"
LOW = "#5a4fcf"


def zones(limits: Limits) -> list[Zone]:
    """The five zones for this rider's safe maximum."""
    edges = [round(s * limits.high, 6) for s in ZONE_STARTS] + [float(limits.high)]
    return [Zone(i + 1, ZONE_NAMES[i], ZONE_COLOURS[i], edges[i], edges[i + 1]) for i in range(5)]


def zone_of(heart_rate: int, limits: Limits) -> Zone:
    """The zone a reading falls in; outside the safe range it is a zone of its own."""
    if heart_rate > limits.high:
        return Zone(6, "Above your safe maximum", DANGER, limits.high, float("inf"))
    if heart_rate < limits.low:
        return Zone(0, "Below your safe minimum", LOW, 0, limits.low)
    all_zones = zones(limits)
    for z in reversed(all_zones):
        if heart_rate >= z.low:
            return z
    return Zone(1, ZONE_NAMES[0], ZONE_COLOURS[0], limits.low, all_zones[0].high)


def clock(seconds: float) -> str:
    """Elapsed time as h:mm:ss or m:ss."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def gender_label(gender: str) -> str:
    """Male, Female or Other."""
    return gender.capitalize() if gender in ("male", "female") else "Other"


def plural(n: int, word: str) -> str:
    """'1 ride', '2 rides'."""
    return word if n == 1 else word + "s"
