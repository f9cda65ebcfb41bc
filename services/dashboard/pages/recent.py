"""Recent rides (last `DASHBOARD_RECENT_HOURS`): by gender and age bracket, effort through
the period; filters by gender and age bracket. Numbers come from the cached aggregates."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, dcc, html

from services.common.ages import AGE_BRACKETS
from services.dashboard import charts
from services.dashboard.app import Context
from services.dashboard.recent import GENDERS

REFRESH_MS = 10_000
GRAPHS = ("recent-gender", "recent-hours", "recent-brackets", "recent-power", "recent-hr")


def layout(ctx: Context, _search: str) -> html.Div:
    """The page."""
    hours = ctx.settings.dashboard_recent_hours
    graph: dict[str, Any] = {"config": charts.CONFIG, "className": "chart"}
    return html.Div(
        [
            html.H1(f"Recent rides: last {hours:g} hours"),
            html.Div(
                [
                    dcc.Checklist(
                        id="recent-genders",
                        options=[{"label": g.capitalize(), "value": g} for g in GENDERS],
                        value=[],
                        inline=True,
                        className="checks",
                    ),
                    dcc.Dropdown(
                        id="recent-brackets-filter",
                        options=[{"label": f"Age {b}", "value": b} for b in AGE_BRACKETS],
                        value=[],
                        multi=True,
                        placeholder="All ages",
                        className="picker",
                    ),
                ],
                className="controls",
            ),
            html.P(id="recent-summary", className="hint"),
            html.Div(
                [
                    dcc.Graph(id=g, figure={"data": [], "layout": {"height": 260}}, **graph)
                    for g in GRAPHS
                ],
                className="charts two",
            ),
            dcc.Interval(id="recent-tick", interval=REFRESH_MS),
        ]
    )


def register(app: dash.Dash, ctx: Context) -> None:
    """The page's callback."""

    @app.callback(
        Output("recent-summary", "children"),
        *[Output(g, "figure") for g in GRAPHS],
        Input("recent-tick", "n_intervals"),
        Input("recent-genders", "value"),
        Input("recent-brackets-filter", "value"),
    )
    def tick(_n: int | None, genders: list[str] | None, brackets: list[str] | None) -> tuple:
        key = (tuple(sorted(genders or [])), tuple(sorted(brackets or [])))
        ttl = ctx.settings.dashboard_cache_s
        return ctx.shared("recent", ttl, key, lambda: figures(ctx, list(key[0]), list(key[1])))


def figures(ctx: Context, genders: list[str], brackets: list[str]) -> tuple[Any, ...]:
    """The summary line and the five figures for one filter."""
    if ctx.aggregates is None:
        return ("The database is not configured.", *([dash.no_update] * len(GRAPHS)))
    r = ctx.aggregates.recent(tuple(sorted(genders)), tuple(sorted(brackets)))
    hours = sum(r.hours_by_gender.values())
    if r.rides:
        summary = (
            f"{r.rides} {'ride' if r.rides == 1 else 'rides'}, "
            f"{f'{hours:.1f} hours' if hours >= 2 else f'{hours * 60:.0f} minutes'} of riding between "
            f"{r.since:%H:%M} and {r.until:%H:%M} UTC."
        )
    else:
        summary = "No rides in this window for this filter yet: the charts fill in as people ride."
    labels = [g.capitalize() for g in GENDERS]
    xs = [b.isoformat() for b in r.buckets]
    window = (r.since.isoformat(), r.until.isoformat())
    # Riding time in hours once there is a lot of it, in minutes before (0.1 h reads as nothing).
    in_hours = max(r.hours_by_gender.values(), default=0.0) >= 2
    scale, unit = (1.0, "h") if in_hours else (60.0, "min")
    return (
        summary,
        charts.bars(
            "Rides by gender", labels, [r.rides_by_gender[g] for g in GENDERS], "rides", "#1f6fb2"
        ),
        charts.bars(
            "Riding time by gender",
            labels,
            [round(r.hours_by_gender[g] * scale, 1) for g in GENDERS],
            unit,
            "#4caf7a",
        ),
        charts.bars(
            "Rides by age bracket",
            list(AGE_BRACKETS),
            [r.rides_by_bracket[b] for b in AGE_BRACKETS],
            "rides",
            "#6b4fbb",
        ),
        charts.timeline("Average power", xs, _round(r.avg_power), "W", "#1f6fb2", window),
        charts.timeline(
            "Average heart rate", xs, _round(r.avg_heart_rate), "bpm", "#d9412b", window
        ),
    )


def _round(values: list[float | None]) -> list[float | None]:
    return [None if v is None else round(v, 1) for v in values]
