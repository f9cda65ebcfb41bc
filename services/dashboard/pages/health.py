"""Fleet health: every bike's data-quality score, flagged bikes first, and recent incidents.

Read through the shared read layer (services.common.reads.fleet), once per DASHBOARD_CACHE_S
for every viewer; the fleet health job writes what is shown (`deloton quality`).
"""

from __future__ import annotations

from datetime import UTC, datetime

import dash
from dash import Input, Output, dcc, html

from services.common import runtime_store
from services.common.config import Settings
from services.common.pool import read_only
from services.common.reads import fleet as reads
from services.common.runtime import apply
from services.dashboard.app import Context
from services.dashboard.recent import QUERIES
from services.dashboard.zones import plural

REFRESH_MS = 10_000
LABELS = {
    "no_contact": "no heart-rate contact",
    "gaps": "missing seconds",
    "duplicates": "duplicated lines",
    "out_of_order": "lines out of order",
    "stuck": "stuck sensor",
    "implausible": "implausible values",
    "clock_skew": "clock off",
}


def layout(ctx: Context, _search: str) -> html.Div:
    """The page."""
    return html.Div(
        [
            html.H1("Fleet health"),
            html.P(
                "Data quality of each bike over the last "
                f"{ctx.settings.quality_window_s // 60} minutes: 1.00 is clean. A bike below "
                "the threshold is flagged and operations are emailed until it recovers.",
                className="hint",
            ),
            html.Div(content(ctx), id="health"),
            dcc.Interval(id="health-tick", interval=REFRESH_MS),
        ]
    )


def register(app: dash.Dash, ctx: Context) -> None:
    """The page's callback."""

    @app.callback(Output("health", "children"), Input("health-tick", "n_intervals"))
    def tick(_n: int | None) -> html.Div:
        return content(ctx)


def _read(ctx: Context) -> tuple[list[reads.BikeHealth], list[reads.Incident], Settings]:
    assert ctx.aggregates is not None
    with read_only(ctx.aggregates.pool) as conn:
        QUERIES.labels("fleet_health").inc()
        # The thresholds in force, which an admin may have changed at run time.
        current = apply(ctx.settings, runtime_store.stored(conn))
        return reads.fleet_health(conn), reads.recent_incidents(conn, limit=10), current


def _clock(at: datetime | None) -> str:
    """'16:12 UTC' today, '29 Nov 16:12 UTC' before (short enough for a phone)."""
    if at is None:
        return "-"
    today = datetime.now(UTC).date()
    return f"{at:%H:%M} UTC" if at.astimezone(UTC).date() == today else f"{at:%d %b %H:%M} UTC"


def _score(score: float, current: Settings) -> html.Td:
    level = (
        "bad"
        if score < current.quality_min_score
        else "fair"
        if score < current.quality_recover_score
        else "good"
    )
    return html.Td(html.Span(f"{score:.2f}", className=f"score {level}"), className="num")


def _problems(names: list[str]) -> str:
    return ", ".join(LABELS.get(n, n) for n in names) or "-"


def content(ctx: Context) -> html.Div:
    """Tiles, the bikes table and recent incidents."""
    if ctx.aggregates is None:
        return html.Div(
            [html.H2("No database"), html.P("Fleet health needs DATABASE_URL.")],
            className="card empty",
        )
    bikes, incidents, current = ctx.shared(
        "fleet-health", ctx.settings.dashboard_cache_s, "all", lambda: _read(ctx)
    )
    if not bikes:
        return html.Div(
            [html.H2("No bike measured yet"),
             html.P("Scores appear once `deloton quality` has run on recent readings.")],
            className="card empty",
        )  # fmt: skip
    flagged = [b for b in bikes if b.incident is not None]
    scores = sorted(b.score for b in bikes)
    tiles = html.Div(
        [
            _tile("Bikes measured", str(len(bikes)), plural(len(bikes), "bike")),
            _tile("Flagged now", str(len(flagged)), plural(len(flagged), "bike")),
            _tile("Median score", f"{scores[len(scores) // 2]:.2f}", "of 1.00"),
        ],
        className="tiles",
    )
    rows = [
        html.Tr(
            [
                html.Td(html.Span(b.bike_serial, className="rider-name")),
                _score(b.score, current),
                html.Td(_problems(b.problems)),
                html.Td(
                    [
                        html.Span(f"flagged since {_clock(b.incident.opened_at)}"),
                        html.Span(f" for {_problems(b.incident.problems)}", className="hint"),
                    ]
                    if b.incident
                    else "ok",
                    className="status flagged" if b.incident else "status",
                ),
                html.Td(f"{b.readings}", className="num hide-narrow"),
                html.Td(_clock(b.last_seen_at), className="hide-narrow"),
            ],
            className="alerting" if b.incident else "",
        )
        for b in bikes
    ]
    table = html.Div(
        html.Table(
            [
                html.Thead(
                    html.Tr(
                        [
                            html.Th("Bike"),
                            html.Th("Score", className="num"),
                            html.Th("Problems"),
                            html.Th("Status"),
                            html.Th("Readings", className="num hide-narrow"),
                            html.Th("Last seen", className="hide-narrow"),
                        ]
                    )
                ),
                html.Tbody(rows),
            ],
            className="board",
        ),
        className="card scroll",
    )
    history = html.Div(
        [
            html.H2("Recent incidents"),
            html.Ul(
                [
                    html.Li(
                        [
                            html.Strong(i.bike_serial),
                            html.Span(
                                f" {_problems(i.problems)}; worst {i.worst_score:.2f}; "
                                f"opened {_clock(i.opened_at)}"
                                + (
                                    f", recovered {_clock(i.cleared_at)}"
                                    if i.cleared_at
                                    else ", open"
                                ),
                                className="hint",
                            ),
                        ]
                    )
                    for i in incidents
                ],
                className="cities",
            )
            if incidents
            else html.P("None so far.", className="hint"),
        ],
        className="card",
    )
    return html.Div([tiles, table, history])


def _tile(label: str, value: str, unit: str) -> html.Div:
    return html.Div(
        [
            html.Div(label, className="label"),
            html.Div([html.Span(value, className="value"), html.Span(unit, className="unit")]),
        ],
        className="stat big",
    )
