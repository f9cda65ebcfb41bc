"""Number formats shared by the PDF and the email, so both say the same thing."""

from __future__ import annotations

EN_DASH = "\u2013"  # no base to compare with
MINUS = "\u2212"  # a typographic minus: a hyphen reads as a dash in a table


def number(value: float, unit: str = "", *, average: bool = False) -> str:
    """A headline figure: whole counts, one decimal for hours, kWh and averages."""
    if unit or average:
        text = f"{value:,.2f}" if 0 < abs(value) < 10 and unit == "kWh" else f"{value:,.1f}"
    else:
        text = f"{value:,.0f}"
    return f"{text} {unit}" if unit else text


def change(delta: float | None) -> str:
    """A relative change as a signed whole percentage; a dash when there is no base."""
    if delta is None:
        return EN_DASH
    return f"{delta:+.0%}".replace("-", MINUS) if round(delta * 100) else "0%"


def plural(n: int, word: str) -> str:
    """`1 ride`, `2 rides`, `1,204 rides`."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def hours_minutes(seconds: int) -> str:
    """Riding time as `1 h 05 min` (or `42 min`)."""
    h, m = divmod(round(seconds / 60), 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"
