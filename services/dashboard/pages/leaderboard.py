"""Live leaderboard: riders in a ride now, ranked by energy so far, from memory each second."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, dcc, html

from services.dashboard.app import Context
from services.dashboard.state import Rider
from services.dashboard.zones import clock, gender_label

TOP = 50


def layout(ctx: Context, _search: str) -> html.Div:
    """The page."""
    return html.Div(
        [
            html.H1("Live leaderboard"),
            html.P("Riders on a bike now, by energy so far.", className="hint"),
            html.Div(board(ctx), id="leaderboard"),
            dcc.Interval(id="leaderboard-tick", interval=ctx.settings.dashboard_refresh_ms),
        ]
    )


def register(app: dash.Dash, ctx: Context) -> None:
    """The page's callback."""

    @app.callback(Output("leaderboard", "children"), Input("leaderboard-tick", "n_intervals"))
    def tick(_n: int | None) -> html.Div:
        # Every viewer sees the same board: build it once per half refresh, not per viewer.
        ttl = ctx.settings.dashboard_refresh_ms / 2000
        return ctx.shared("leaderboard", ttl, None, lambda: board(ctx))


def board(ctx: Context) -> html.Div:
    """The ranked table, or the empty state."""
    riders = ctx.fleet.riders(ctx.now(), ctx.today())
    if not riders:
        return html.Div(
            [
                html.H2("Nobody is riding right now"),
                html.P("The board fills in by itself as soon as a ride starts."),
            ],
            className="card empty",
        )
    head = html.Thead(
        html.Tr(
            [
                html.Th("#"),
                html.Th("Rider"),
                html.Th("Energy", className="num"),
                html.Th("Ride time", className="num"),
                html.Th("Avg power", className="num hide-narrow"),
                html.Th("Heart rate", className="num hide-narrow"),
            ]
        )
    )
    rows = [_row(i + 1, r) for i, r in enumerate(riders[:TOP])]
    more = len(riders) - TOP
    return html.Div(
        [
            html.Div(html.Table([head, html.Tbody(rows)], className="board"), className="scroll"),
            html.P(f"…and {more} more riding now.", className="hint") if more > 0 else None,
        ],
        className="card",
    )


def _row(rank: int, r: Rider) -> html.Tr:
    who = html.Div(
        [
            dcc.Link(r.first_name, href=f"/ride?bike={r.bike_serial}", className="rider-name"),
            html.Span(
                f"{r.age} years, {gender_label(r.gender).lower()} · bike {r.bike_serial}",
                className="hint",
            ),
        ]
    )
    hr = "--" if r.heart_rate is None else str(r.heart_rate)
    extra: dict[str, Any] = {"data-bike": r.bike_serial}
    return html.Tr(
        [
            html.Td(str(rank), className="rank"),
            html.Td(who),
            html.Td([html.Strong(f"{r.energy_kj:.1f}"), " kJ"], className="num"),
            html.Td([clock(r.elapsed_s), html.Span("min:s", className="unit")], className="num"),
            html.Td(
                "--" if r.avg_power is None else f"{r.avg_power:.0f} W", className="num hide-narrow"
            ),
            html.Td(f"{hr} bpm" + (" ⚠" if r.in_alert else ""), className="num hide-narrow"),
        ],
        className="alerting" if r.in_alert else None,
        **extra,
    )
