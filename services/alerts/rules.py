"""A rider's safe heart-rate range: pure functions of sex, date of birth, day and thresholds.

Decisions where the published practice is silent:
- "other" (any gender but male/female) follows the women's column for both limits, as the
  published practice already groups "women and others" for the maximum.
- Under-18s use the youngest (18-39) minimum band and the same maximum formula as adults;
  the bands start at 18 and a teenager's floor is no lower than a young adult's.
- Age is counted in whole years on the UTC day of the reading; the birthday itself counts,
  and someone born on 29 February turns a year older on 1 March in common years.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from services.common.ages import age_on
from services.common.config import Settings

__all__ = ["Limits", "Thresholds", "age_on", "limits_for", "max_heart_rate", "min_heart_rate"]

# Ages at which the second and third minimum-heart-rate bands begin (18-39, 40-64, 65+).
DEFAULT_MIN_BAND_STARTS = (40, 65)


@dataclass(frozen=True)
class Thresholds:
    """The configurable numbers behind the rules (built from Settings)."""

    young_male_base: float = 220.0
    older_male_base: float = 208.0
    older_male_factor: float = 0.7
    other_base: float = 206.0
    other_factor: float = 0.88
    male_split_age: int = 40
    min_male: tuple[int, int, int] = (40, 47, 52)
    min_female: tuple[int, int, int] = (45, 52, 57)
    min_band_starts: tuple[int, int] = DEFAULT_MIN_BAND_STARTS

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        """The thresholds configured in Settings."""
        return cls(
            young_male_base=settings.alert_max_hr_young_male_base,
            older_male_base=settings.alert_max_hr_older_male_base,
            older_male_factor=settings.alert_max_hr_older_male_factor,
            other_base=settings.alert_max_hr_other_base,
            other_factor=settings.alert_max_hr_other_factor,
            male_split_age=settings.alert_male_split_age,
            min_male=settings.alert_min_hr_male,
            min_female=settings.alert_min_hr_female,
            min_band_starts=settings.alert_min_hr_band_starts,
        )


@dataclass(frozen=True)
class Limits:
    """Inclusive healthy range in whole beats per minute: low <= hr <= high."""

    low: int
    high: int

    def classify(self, heart_rate: int) -> str | None:
        """'high', 'low', or None when the reading is within the range."""
        if heart_rate > self.high:
            return "high"
        if heart_rate < self.low:
            return "low"
        return None


def max_heart_rate(gender: str, age: int, t: Thresholds) -> float:
    """Fox for men under the split age, Tanaka for older men, Gulati for women and others."""
    if gender == "male":
        if age < t.male_split_age:
            return t.young_male_base - age
        return t.older_male_base - t.older_male_factor * age
    return t.other_base - t.other_factor * age


def min_heart_rate(gender: str, age: int, t: Thresholds) -> int:
    """The floor for the rider's sex and age band (under-18s use the first band)."""
    bands = t.min_male if gender == "male" else t.min_female
    second, third = t.min_band_starts
    if age >= third:
        return bands[2]
    if age >= second:
        return bands[1]
    return bands[0]


def limits_for(gender: str, date_of_birth: date, day: date, t: Thresholds) -> Limits:
    """The rider's range on `day`. Readings are whole numbers, so `hr > floor(max)` is exactly
    `hr > max`; rounding first keeps 206 - 0.88 x 50 at 162, not 161.99999999999997."""
    age = age_on(date_of_birth, day)
    high = math.floor(round(max_heart_rate(gender, age, t), 6))
    return Limits(low=min_heart_rate(gender, age, t), high=high)
