"""Plotly figures as plain dicts (cheap to build, and `Patch` extends their traces in place)."""

from __future__ import annotations

import math
from typing import Any

from services.alerts.rules import Limits
from services.dashboard.state import Points
from services.dashboard.zones import DANGER, zones

Figure = dict[str, Any]
CONFIG = {"displayModeBar": False, "responsive": True}
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13}


def _layout(title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.01, "font": {"size": 15}},
        "margin": {"l": 52, "r": 12, "t": 40, "b": 44},
        "height": 260,
        "font": FONT,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#fafbfc",
        "showlegend": False,
        "uirevision": "keep",  # zoom and pan survive the per-second updates
        "xaxis": {
            "title": {"text": "Ride time (min)"},
            "rangemode": "tozero",
            "gridcolor": "#e8ebef",
            # A ride's first seconds on a one-minute axis, not stretched over the whole width.
            "autorangeoptions": {"include": [0, 1]},
        },
        "yaxis": {"title": {"text": y_title}, "gridcolor": "#e8ebef", "rangemode": "tozero"},
        **extra,
    }


def minutes(points: Points) -> list[float]:
    """The x values: ride time in minutes."""
    return [round(s / 60.0, 4) for s in points.elapsed_s]


def heart_rate(points: Points, limits: Limits) -> Figure:
    """Heart rate over the ride, on the five zones, with the safe range drawn."""
    shapes: list[dict[str, Any]] = [
        {
            "type": "rect", "xref": "paper", "x0": 0, "x1": 1, "yref": "y",
            "y0": z.low, "y1": z.high, "fillcolor": z.colour, "opacity": 0.10,
            "line": {"width": 0}, "layer": "below",
        }
        for z in zones(limits)
    ]  # fmt: skip
    for y, _label in ((limits.high, "safe max"), (limits.low, "safe min")):
        shapes.append(
            {
                "type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": y, "y1": y,
                "line": {"color": DANGER, "width": 1.5, "dash": "dash"},
            }
        )  # fmt: skip
    annotations = [
        {
            "xref": "paper", "x": 1, "xanchor": "right", "yref": "y", "y": y, "yanchor": "bottom",
            "text": f"{label} {y} bpm", "showarrow": False,
            "font": {"color": DANGER, "size": 11},
        }
        for y, label in ((limits.high, "Safe max"), (limits.low, "Safe min"))
    ]  # fmt: skip
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Heart rate",
                "x": minutes(points),
                "y": list(points.heart_rate),
                "line": {"color": "#d9412b", "width": 2},
                "connectgaps": False,
                "hovertemplate": "%{y} bpm<extra></extra>",
            }
        ],
        "layout": _layout(
            "Heart rate",
            "bpm",
            shapes=shapes,
            annotations=annotations,
            yaxis={
                "title": {"text": "bpm"},
                "gridcolor": "#e8ebef",
                "autorange": True,
                "autorangeoptions": {"include": [max(0, limits.low - 15), limits.high + 15]},
            },
        ),
    }


def series(points: Points, which: str) -> Figure:
    """Power (W) or resistance (level) over the ride."""
    if which == "power":
        ys: list[float] = list(points.power)
        title, unit, colour = "Power", "W", "#1f6fb2"
        hover = "%{y:.0f} W<extra></extra>"
    else:
        ys = [float(v) for v in points.resistance]
        title, unit, colour = "Resistance", "level", "#6b4fbb"
        hover = "level %{y}<extra></extra>"
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": title,
                "x": minutes(points),
                "y": [round(v, 1) for v in ys],
                "line": {"color": colour, "width": 2},
                "hovertemplate": hover,
            }
        ],
        "layout": _layout(title, unit),
    }


def bars(title: str, labels: list[str], values: list[float], unit: str, colour: str) -> Figure:
    """A bar chart with the value and its unit on each bar (counts get whole-number ticks)."""
    counts = all(isinstance(v, int) for v in values)
    text = [_with_unit(v, unit) for v in values]
    yaxis: dict[str, Any] = {"title": {"text": unit}, "gridcolor": "#e8ebef", "rangemode": "tozero"}
    if counts:
        yaxis |= {"tickformat": ",d", "dtick": max(1, math.ceil(max(values, default=0) / 5))}
    return {
        "data": [
            {
                "type": "bar",
                "x": labels,
                "y": values,
                "text": text,
                "textposition": "auto",
                "marker": {"color": colour},
                "hovertemplate": "%{x}: %{text}<extra></extra>",
                "cliponaxis": False,
            }
        ],
        "layout": {
            **_layout(title, unit),
            "xaxis": {"type": "category", "title": {"text": ""}},
            "yaxis": yaxis,
        },
    }


def _with_unit(value: float, unit: str) -> str:
    if isinstance(value, int):
        return f"{value} {unit[:-1] if value == 1 and unit.endswith('s') else unit}"
    return f"{value:.1f} {unit}"


def timeline(
    title: str,
    xs: list[str],
    ys: list[float | None],
    unit: str,
    colour: str,
    x_range: tuple[str, str],
) -> Figure:
    """A value through the period (x: bucket start, UTC), over the whole window."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": xs,
                "y": ys,
                "line": {"color": colour, "width": 2},
                "connectgaps": False,
                "hovertemplate": "%{x|%H:%M} UTC: %{y:.0f} " + unit + "<extra></extra>",
            }
        ],
        "layout": {
            **_layout(title, unit),
            "xaxis": {
                "type": "date",
                "title": {"text": "Time (UTC)"},
                "gridcolor": "#e8ebef",
                "range": list(x_range),
            },
        },
    }
