"""Ages and the age brackets every reader reports by: pure functions, one copy for all."""

from __future__ import annotations

from datetime import date

# The product's age brackets (riders' dashboard, daily report, API without personal data).
AGE_BRACKETS: tuple[str, ...] = (
    "<18",
    "18-24",
    "25-34",
    "35-44",
    "45-54",
    "55-64",
    "65-74",
    "75+",
)
# Lower bound of each bracket after the first, in years.
_BRACKET_STARTS: tuple[int, ...] = (18, 25, 35, 45, 55, 65, 75)


def age_on(date_of_birth: date, day: date) -> int:
    """Whole years completed on `day` (the birthday itself counts)."""
    before_birthday = (day.month, day.day) < (date_of_birth.month, date_of_birth.day)
    return day.year - date_of_birth.year - int(before_birthday)


def age_bracket(age: int) -> str:
    """The bracket label for an age in whole years."""
    index = 0
    for start in _BRACKET_STARTS:
        if age < start:
            break
        index += 1
    return AGE_BRACKETS[index]
