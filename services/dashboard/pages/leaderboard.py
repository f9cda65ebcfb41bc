"""Live leaderboard: riders in a ride now, ranked by energy so far, from memory each second."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

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
    more = len(riders) - TOP
    rows = "".join(_row(i + 1, r) for i, r in enumerate(riders[:TOP]))
    table = (
        '<div class="scroll"><table class="board"><thead><tr><th>#</th><th>Rider</th>'
        '<th class="num">Energy</th><th class="num">Ride time</th>'
        '<th class="num hide-narrow">Avg power</th><th class="num hide-narrow">Heart rate</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
    )
    if more > 0:
        table += f'<p class="hint">…and {more} more riding now.</p>'
    # One HTML string, not a tree of ~500 components: the board is the same for every viewer
    # and a string costs next to nothing to send (every value in it is escaped).
    return html.Div(
        dcc.Markdown(table, dangerously_allow_html=True, className="board-html"),
        className="card",
    )


def _row(rank: int, r: Rider) -> str:
    """One table row as HTML; names are data, so everything shown is escaped."""
    bike = escape(r.bike_serial)
    who = escape(f"{r.age} years, {gender_label(r.gender).lower()} · bike {r.bike_serial}")
    hr = "--" if r.heart_rate is None else str(r.heart_rate)
    power = "--" if r.avg_power is None else f"{r.avg_power:.0f} W"
    alert = " ⚠" if r.in_alert else ""
    row_class = ' class="alerting"' if r.in_alert else ""
    return (
        f'<tr data-bike="{bike}"{row_class}>'
        f'<td class="rank">{rank}</td>'
        f'<td><a class="rider-name" href="/ride?bike={quote(r.bike_serial)}">{escape(r.first_name)}</a>'
        f'<span class="hint">{who}</span></td>'
        f'<td class="num"><strong>{r.energy_kj:.1f}</strong> kJ</td>'
        f'<td class="num">{clock(r.elapsed_s)}<span class="unit">min:s</span></td>'
        f'<td class="num hide-narrow">{power}</td>'
        f'<td class="num hide-narrow">{hr} bpm{alert}</td></tr>'
    )
