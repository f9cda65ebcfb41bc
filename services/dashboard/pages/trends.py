"""Trends: hourly or daily aggregates of the whole fleet, a city or a bike, as charts.

Aggregates are kept by compress for summarised rides, so the latest hour fills in at the
next roll-up; the page says so rather than showing a drop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dash
from dash import Input, Output, dcc, html

from services.common.reads.stats import Bucket
from services.dashboard import charts, trends
from services.dashboard.app import Context
from services.dashboard.zones import plural

REFRESH_MS = 60_000
GRAPHS = ("trends-rides", "trends-time", "trends-hr", "trends-power", "trends-energy")
FLEET = "fleet:"
BLUE, GREEN, RED, VIOLET, ORANGE = "#1f6fb2", "#4caf7a", "#d9412b", "#6b4fbb", "#e08a1e"


def layout(ctx: Context, _search: str) -> html.Div:
    """The page."""
    graph: dict[str, Any] = {"config": charts.CONFIG, "className": "chart"}
    return html.Div(
        [
            html.H1("Trends"),
            html.Div(
                [
                    dcc.RadioItems(
                        id="trends-resolution",
                        options=[
                            {"label": "Hourly (48 hours)", "value": "hourly"},
                            {"label": "Daily (60 days)", "value": "daily"},
                        ],
                        value="hourly",
                        inline=True,
                        className="checks",
                    ),
                    dcc.Dropdown(
                        id="trends-scope",
                        options=_options(ctx),
                        value=FLEET,
                        clearable=False,
                        className="picker",
                    ),
                ],
                className="controls",
            ),
            html.P(id="trends-summary", className="hint"),
            html.Div(
                [
                    dcc.Graph(id=g, figure={"data": [], "layout": {"height": 260}}, **graph)
                    for g in GRAPHS
                ],
                className="charts two",
            ),
            dcc.Interval(id="trends-tick", interval=REFRESH_MS),
        ]
    )


def _options(ctx: Context) -> list[dict[str, str]]:
    options = [{"label": "Whole fleet", "value": FLEET}]
    if ctx.aggregates is None:
        return options
    pool = ctx.aggregates.pool
    ttl = ctx.settings.dashboard_cache_s
    cities, bikes = ctx.shared("trends-choices", ttl, None, lambda: trends.choices(pool))
    options += [{"label": f"City: {c or 'unknown'}", "value": f"city:{c}"} for c in cities]
    options += [{"label": f"Bike: {b}", "value": f"bike:{b}"} for b in bikes]
    return options


def register(app: dash.Dash, ctx: Context) -> None:
    """The page's callback."""

    @app.callback(
        Output("trends-summary", "children"),
        *[Output(g, "figure") for g in GRAPHS],
        Input("trends-tick", "n_intervals"),
        Input("trends-resolution", "value"),
        Input("trends-scope", "value"),
    )
    def tick(_n: int | None, resolution: str | None, choice: str | None) -> tuple:
        res = "daily" if resolution == "daily" else "hourly"
        scope, _, key = (choice or FLEET).partition(":")
        if scope not in ("fleet", "bike", "city"):
            scope, key = "fleet", ""
        ttl = ctx.settings.dashboard_cache_s
        return ctx.shared("trends", ttl, (res, scope, key), lambda: figures(ctx, res, scope, key))


def figures(ctx: Context, resolution: Any, scope: Any, key: str) -> tuple[Any, ...]:
    """The summary line and the five figures for one choice."""
    if ctx.aggregates is None:
        return ("The database is not configured.", *([dash.no_update] * len(GRAPHS)))
    now = datetime.fromtimestamp(ctx.now(), UTC)
    s = trends.series(ctx.aggregates.pool, resolution=resolution, scope=scope, key=key, now=now)
    b = s.buckets
    who = {"fleet": "the whole fleet", "city": f"riders of {key or 'unknown city'}"}.get(
        scope, f"bike {key}"
    )
    per = "hour" if resolution == "hourly" else "day"
    if resolution == "hourly":
        period = f"{s.start:%d %b %H:%M} to {s.end:%d %b %H:%M} UTC"
    else:
        period = f"{s.start:%d %b} to {s.end - trends.WIDTH['daily']:%d %b} (UTC days)"
    if b:
        rides = sum(x.rides for x in b)
        summary = (
            f"{len(b)} {plural(len(b), per)} with rides for {who}, {period}. A ride counts in "
            f"every {per} it has readings in ({rides} in all); rides join at their roll-up by "
            "compress."
        )
    else:
        summary = (
            f"No summarised rides for {who}, {period}, yet: rides appear here once compress "
            "has rolled them up."
        )
    xs = [x.bucket.isoformat() for x in b]
    axis = _Axis((s.start.isoformat(), s.end.isoformat()), trends.WIDTH[resolution], resolution)
    hours = [round(x.riding_s / 3600, 2) for x in b]
    return (
        summary,
        _chart(
            "Rides and riders",
            xs,
            axis,
            "count",
            [
                ("Rides", [x.rides for x in b], BLUE, "bar"),
                ("Riders", [x.riders for x in b], VIOLET, "bar"),
            ],
            counts=True,
        ),
        _chart("Riding time", xs, axis, "h", [("Riding time", hours, GREEN, "bar")]),
        _chart(
            "Heart rate",
            xs,
            axis,
            "bpm",
            [
                ("Average", _values(b, "avg_heart_rate"), RED, "line"),
                ("Maximum", _values(b, "max_heart_rate"), ORANGE, "line"),
            ],
        ),
        _chart(
            "Power",
            xs,
            axis,
            "W",
            [
                ("Average", _values(b, "avg_power"), BLUE, "line"),
                ("Maximum", _values(b, "max_power"), VIOLET, "line"),
            ],
        ),
        _chart("Energy", xs, axis, "kJ", [("Energy", _values(b, "energy_kj"), ORANGE, "bar")]),
    )


@dataclass(frozen=True)
class _Axis:
    span: tuple[str, str]
    width: timedelta
    resolution: str


def _values(buckets: list[Bucket], name: str) -> list[float | None]:
    values = [getattr(x, name) for x in buckets]
    return [None if v is None else round(float(v), 1) for v in values]


def _chart(
    title: str,
    xs: list[str],
    axis: _Axis,
    unit: str,
    traces: list[tuple[str, list[Any], str, str]],
    *,
    counts: bool = False,
) -> charts.Figure:
    """Bars or lines per bucket over the whole span, with a legend when there are two.

    A bar covers its bucket (x is the bucket's start), side by side with its neighbour when
    there are two: on a 60-day axis plotly would otherwise draw one day as a hairline.
    """
    bucket_ms = axis.width.total_seconds() * 1000
    bars = [t for t in traces if t[3] == "bar"]
    when = "%d %b %H:%M" if axis.resolution == "hourly" else "%d %b"
    data = []
    for name, ys, colour, kind in traces:
        trace: dict[str, Any] = {
            "name": name,
            "x": xs,
            "y": ys,
            "hovertemplate": f"%{{x|{when}}} UTC: %{{y}} {unit}<extra>{name}</extra>",
        }
        if kind == "bar":
            width = 0.8 / len(bars)
            trace |= {
                "type": "bar",
                "marker": {"color": colour},
                "width": bucket_ms * width,
                "offset": bucket_ms * (0.1 + width * bars.index((name, ys, colour, kind))),
            }
        else:
            trace |= {
                "type": "scatter",
                "mode": "lines+markers",
                "line": {"color": colour, "width": 2},
                "connectgaps": False,
            }
        data.append(trace)
    yaxis: dict[str, Any] = {"title": {"text": unit}, "gridcolor": "#e8ebef", "rangemode": "tozero"}
    if counts:  # whole numbers only: no "1.5 rides"
        top = max((max((v for v in t[1] if v is not None), default=0) for t in traces), default=0)
        yaxis |= {"tickformat": ",d", "dtick": max(1, math.ceil(top / 5))}
    return {
        "data": data,
        "layout": {
            "title": {"text": title, "x": 0.01, "font": {"size": 15}},
            "margin": {"l": 52, "r": 12, "t": 40, "b": 44},
            "height": 260,
            "font": charts.FONT,
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "#fafbfc",
            "showlegend": len(traces) > 1,
            "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.15},
            "barmode": "overlay",
            "uirevision": "keep",
            "xaxis": {"type": "date", "gridcolor": "#e8ebef", "range": list(axis.span)},
            "yaxis": yaxis,
        },
    }
