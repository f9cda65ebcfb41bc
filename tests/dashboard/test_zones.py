"""Heart-rate zones and display formats (pure)."""

from __future__ import annotations

from services.alerts.rules import Limits
from services.dashboard.zones import clock, plural, zone_of, zones

LIMITS = Limits(low=45, high=180)


def test_five_zones_split_the_safe_maximum_at_50_to_90_percent() -> None:
    zs = zones(LIMITS)
    assert [z.number for z in zs] == [1, 2, 3, 4, 5]
    assert [(z.low, z.high) for z in zs] == [
        (90, 108),
        (108, 126),
        (126, 144),
        (144, 162),
        (162, 180),
    ]
    assert len({z.colour for z in zs}) == 5


def test_a_reading_falls_in_its_zone_or_outside_the_safe_range() -> None:
    assert zone_of(100, LIMITS).number == 1
    assert zone_of(126, LIMITS).number == 3  # a zone includes its lower edge
    assert zone_of(180, LIMITS).number == 5  # the safe maximum itself is still safe
    assert zone_of(181, LIMITS).name == "Above your safe maximum"
    assert zone_of(44, LIMITS).name == "Below your safe minimum"
    assert zone_of(60, LIMITS).number == 1  # in range but under 50 %: the lowest zone


def test_formats() -> None:
    assert clock(0) == "0:00" and clock(65) == "1:05" and clock(3725) == "1:02:05"
    assert clock(-3) == "0:00"
    assert plural(1, "ride") == "ride" and plural(0, "ride") == "rides"
