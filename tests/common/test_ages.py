"""Age brackets: every age falls in exactly one bracket, with the boundaries the product shows."""

from datetime import date

import pytest

from services.common.ages import AGE_BRACKETS, age_bracket, age_on


@pytest.mark.parametrize(
    ("age", "bracket"),
    [
        (0, "<18"),
        (17, "<18"),
        (18, "18-24"),
        (24, "18-24"),
        (25, "25-34"),
        (34, "25-34"),
        (35, "35-44"),
        (44, "35-44"),
        (45, "45-54"),
        (54, "45-54"),
        (55, "55-64"),
        (64, "55-64"),
        (65, "65-74"),
        (74, "65-74"),
        (75, "75+"),
        (120, "75+"),
    ],
)
def test_bracket_boundaries(age: int, bracket: str) -> None:
    assert age_bracket(age) == bracket


def test_every_bracket_is_reachable() -> None:
    assert {age_bracket(a) for a in range(0, 130)} == set(AGE_BRACKETS)


def test_age_on_birthday_counts() -> None:
    assert age_on(date(1984, 6, 15), date(2024, 6, 15)) == 40
    assert age_on(date(1984, 6, 15), date(2024, 6, 14)) == 39
