"""Fleet now: bikes in use (memory), and today's riders, alerts and cities (cached reads)."""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html

from services.dashboard.app import Context
from services.dashboard.zones import plural

REFRESH_MS = 5_000


def layout(ctx: Context, _search: str) -> html.Div:
    """The page."""
    return html.Div(
        [
            html.H1("Fleet now"),
            html.Div(cards(ctx), id="fleet"),
            dcc.Interval(id="fleet-tick", interval=REFRESH_MS),
        ]
    )


def register(app: dash.Dash, ctx: Context) -> None:
    """The page's callback."""

    @app.callback(Output("fleet", "children"), Input("fleet-tick", "n_intervals"))
    def tick(_n: int | None) -> html.Div:
        return cards(ctx)


def _card(label: str, value: str, unit: str) -> html.Div:
    return html.Div(
        [
            html.Div(label, className="label"),
            html.Div([html.Span(value, className="value"), html.Span(unit, className="unit")]),
        ],
        className="stat big",
    )


def cards(ctx: Context) -> html.Div:
    """The fleet's numbers; today is the UTC day."""
    in_use, seen = ctx.fleet.counts(ctx.now())
    tiles = [_card("Bikes in use now", str(in_use), f"of {seen} {plural(seen, 'bike')}")]
    cities: html.Div | None = None
    if ctx.aggregates is not None:
        day = ctx.aggregates.fleet_day()
        tiles += [
            _card("Riders today", str(day.riders), plural(day.riders, "rider")),
            _card("Rides today", str(day.rides), plural(day.rides, "ride")),
            _card("Heart-rate alerts today", str(day.alerts), plural(day.alerts, "alert")),
        ]
        if day.cities:
            cities = html.Div(
                [
                    html.H2("Busiest cities today"),
                    html.Ol(
                        [
                            html.Li(
                                [
                                    html.Span(city),
                                    html.Span(f"{n} {plural(n, 'rider')}", className="hint"),
                                ]
                            )
                            for city, n in day.cities
                        ],
                        className="cities",
                    ),
                ],
                className="card",
            )
        else:
            cities = html.Div(
                [html.H2("Busiest cities today"), html.P("No rides yet today.")],
                className="card empty",
            )
    return html.Div([html.Div(tiles, className="tiles"), cities])
