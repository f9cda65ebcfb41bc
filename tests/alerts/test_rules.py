"""The rider's safe range: ages, formulas, bands and the configurable thresholds."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.rules import (
    Limits,
    Thresholds,
    age_on,
    limits_for,
    max_heart_rate,
    min_heart_rate,
)
from services.common.config import Settings

T = Thresholds()
DAY = date(2024, 6, 15)


def born(age: int) -> date:
    """A date of birth that makes the rider exactly `age` on DAY (birthday today)."""
    return date(DAY.year - age, DAY.month, DAY.day)


class TestAge:
    def test_birthday_on_the_reading_day_counts(self) -> None:
        assert age_on(date(1984, 6, 15), date(2024, 6, 15)) == 40

    def test_day_before_birthday(self) -> None:
        assert age_on(date(1984, 6, 15), date(2024, 6, 14)) == 39

    def test_leap_day_birthday_turns_on_first_of_march(self) -> None:
        assert age_on(date(2000, 2, 29), date(2023, 2, 28)) == 22
        assert age_on(date(2000, 2, 29), date(2023, 3, 1)) == 23
        assert age_on(date(2000, 2, 29), date(2024, 2, 29)) == 24

    @given(st.dates(max_value=date(2020, 1, 1)), st.dates(min_value=date(2020, 1, 2)))
    def test_never_decreases_and_changes_once_a_year(self, dob: date, day: date) -> None:
        assert age_on(dob, day) >= 0
        assert age_on(dob, day) <= day.year - dob.year


class TestMaximum:
    def test_men_under_40_use_fox(self) -> None:
        assert max_heart_rate("male", 39, T) == 181

    def test_men_40_and_over_use_tanaka(self) -> None:
        assert max_heart_rate("male", 40, T) == pytest.approx(180.0)

    def test_women_and_others_use_gulati(self) -> None:
        assert max_heart_rate("female", 30, T) == pytest.approx(206 - 26.4)
        assert max_heart_rate("other", 30, T) == max_heart_rate("female", 30, T)

    def test_fractional_limit_rounds_to_the_same_alerts(self) -> None:
        # 208 - 0.7 x 45 = 176.5: 176 is fine, 177 is above.
        limits = limits_for("male", born(45), DAY, T)
        assert limits.high == 176
        assert limits.classify(176) is None and limits.classify(177) == "high"

    def test_float_error_does_not_lower_the_limit(self) -> None:
        # 0.88 x 50 is 44.00000000000001 in binary floating point.
        assert limits_for("female", born(50), DAY, T).high == 162


class TestMinimum:
    @pytest.mark.parametrize(
        ("gender", "age", "expected"),
        [
            ("male", 18, 40), ("male", 39, 40), ("male", 40, 47), ("male", 64, 47),
            ("male", 65, 52), ("female", 18, 45), ("female", 39, 45), ("female", 40, 52),
            ("female", 64, 52), ("female", 65, 57), ("other", 30, 45), ("other", 70, 57),
        ],
    )  # fmt: skip
    def test_bands(self, gender: str, age: int, expected: int) -> None:
        assert min_heart_rate(gender, age, T) == expected

    def test_under_18_uses_the_youngest_band(self) -> None:
        assert min_heart_rate("male", 17, T) == 40
        assert min_heart_rate("female", 12, T) == 45


class TestLimitsAtAgeBoundaries:
    """The day someone turns 18, 40 or 65 their range changes; the day before it does not."""

    @pytest.mark.parametrize(
        ("gender", "age", "low", "high"),
        [
            ("male", 17, 40, 203), ("male", 18, 40, 202),
            ("male", 39, 40, 181), ("male", 40, 47, 180),
            ("male", 64, 47, 163), ("male", 65, 52, 162),
            ("female", 17, 45, 191), ("female", 18, 45, 190),
            ("female", 39, 45, 171), ("female", 40, 52, 170),
            ("female", 64, 52, 149), ("female", 65, 57, 148),
            ("other", 39, 45, 171), ("other", 40, 52, 170),
        ],
    )  # fmt: skip
    def test_on_the_birthday(self, gender: str, age: int, low: int, high: int) -> None:
        assert limits_for(gender, born(age), DAY, T) == Limits(low, high)

    def test_day_before_the_40th_birthday_is_still_39(self) -> None:
        dob = date(1984, 6, 16)
        assert limits_for("male", dob, DAY, T) == Limits(40, 181)
        assert limits_for("male", dob, date(2024, 6, 16), T) == Limits(47, 180)


class TestConfiguration:
    def test_thresholds_come_from_settings(self) -> None:
        s = Settings(
            _env_file=None,  # type: ignore[call-arg]
            alert_max_hr_young_male_base=200,
            alert_min_hr_male=(50, 55, 60),
            alert_max_hr_other_factor=1.0,
        )
        t = Thresholds.from_settings(s)
        assert limits_for("male", born(30), DAY, t) == Limits(50, 170)
        assert limits_for("female", born(30), DAY, t).high == 176

    def test_defaults_match_settings_defaults(self) -> None:
        assert Thresholds.from_settings(Settings(_env_file=None)) == T  # type: ignore[call-arg]
