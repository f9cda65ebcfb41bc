"""The Dash app: a shell with navigation, a router, and each page's callbacks."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dash
from dash import Input, Output, dcc, html
from flask import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.config import Settings
from services.dashboard.cache import TtlCache
from services.dashboard.recent import Aggregates
from services.dashboard.state import Fleet

ASSETS = Path(__file__).resolve().parent / "assets"
NAV = (
    ("/", "Current ride"),
    ("/leaderboard", "Leaderboard"),
    ("/recent", "Recent rides"),
    ("/fleet", "Fleet now"),
    ("/fleet-health", "Fleet health"),
    ("/trends", "Trends"),
)


@dataclass
class Context:
    """What every page reads: settings, the live fleet, the cached aggregates, the clocks."""

    settings: Settings
    fleet: Fleet
    aggregates: Aggregates | None
    wall: Callable[[], float] = field(default=time.time)
    memo: dict[str, TtlCache] = field(default_factory=dict)
    feed_alive: Callable[[], bool] = field(default=lambda: True)

    def shared(self, name: str, ttl_s: float, key: Hashable, compute: Callable[[], Any]) -> Any:
        """A page's output computed once per `ttl_s` for every viewer asking the same thing."""
        cache = self.memo.get(name)
        if cache is None:
            cache = self.memo.setdefault(name, TtlCache(ttl_s))
        return cache.get(key, compute)

    def now(self) -> float:
        """Wall-clock seconds (broker timestamps are wall-clock too)."""
        return self.wall()

    def today(self) -> date:
        """Today's UTC date, for ages."""
        return datetime.fromtimestamp(self.wall(), UTC).date()


def create_app(ctx: Context) -> dash.Dash:
    """The Dash app with every page registered."""
    from services.dashboard.pages import fleet, leaderboard, recent, ride, trends
    from services.dashboard.pages import health as fleet_health

    app = dash.Dash(
        __name__,
        assets_folder=str(ASSETS),
        title="Deloton Live",
        update_title="",  # no "Updating..." flicker in the tab title every second
        suppress_callback_exceptions=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh=False),
            html.Header(
                [
                    html.A("Deloton Live", href="/", className="brand"),
                    html.Nav(
                        [dcc.Link(label, href=path, className="nav-link") for path, label in NAV]
                    ),
                ],
                className="topbar",
            ),
            html.Main(id="page", className="page"),
        ]
    )
    pages = {
        "/": ride.layout,
        "/ride": ride.layout,
        "/leaderboard": leaderboard.layout,
        "/recent": recent.layout,
        "/fleet": fleet.layout,
        "/fleet-health": fleet_health.layout,
        "/trends": trends.layout,
    }

    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("url", "search"))
    def route(pathname: str | None, search: str | None) -> object:
        page = pages.get((pathname or "/").rstrip("/") or "/")
        if page is None:
            return html.Div(
                [html.H1("Page not found"), dcc.Link("Back to your ride", href="/")],
                className="card empty",
            )
        return page(ctx, search or "")

    for module in (ride, leaderboard, recent, fleet, fleet_health, trends):
        module.register(app, ctx)

    @app.server.route("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    @app.server.route("/health")
    def health() -> Response:
        in_use, seen = ctx.fleet.counts(ctx.now())
        # A dead events feed means stale pages: say so, so an orchestrator restarts us.
        status, code = ("ok", 200) if ctx.feed_alive() else ("events feed stopped", 503)
        body = f'{{"status":"{status}","bikes_in_use":{in_use},"bikes_seen":{seen}}}'
        return Response(body, status=code, mimetype="application/json")

    return app
