"""Current ride: the rider, heart rate against their safe range, the numbers and the charts.

Each tick (`DASHBOARD_REFRESH_MS`) reads one bike from memory. The charts are sent whole
once per ride; after that only the readings past the browser's cursor travel, as a `Patch`
that extends the traces.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import dash
from dash import Input, Output, Patch, State, dcc, html

from services.dashboard import charts
from services.dashboard.app import Context
from services.dashboard.state import RideView
from services.dashboard.zones import clock, gender_label, zone_of, zones

OPTIONS_MS = 5_000  # the bike picker's list changes slowly; no need to resend it every second


STATS = (
    ("ride-elapsed", "Ride time", "min:s"),
    ("ride-rpm", "Cadence", "rpm"),
    ("ride-power-now", "Power", "W"),
    ("ride-resistance-now", "Resistance", "level"),
    ("ride-energy", "Energy", "kJ"),
    ("ride-avg-power", "Average power", "W"),
    ("ride-avg-resistance", "Average resistance", "level"),
    ("ride-avg-hr", "Average heart rate", "bpm"),
)
# What a tick may update, in the callback's order. Most are plain strings: a tick carries a
# few hundred bytes, not a component tree.
OUTPUTS: tuple[tuple[str, str], ...] = (
    ("ride-banner", "children"),
    ("ride-status", "children"),
    ("ride-live", "style"),
    ("ride-charts", "style"),
    ("ride-who", "children"),
    ("ride-bike-line", "children"),
    ("ride-safe-range", "children"),
    ("ride-zones", "children"),
    ("ride-zones", "className"),
    ("ride-hr-card", "style"),
    ("ride-hr-now", "children"),
    ("ride-zone-name", "children"),
    *((ident, "children") for ident, _label, _unit in STATS),
    ("ride-hr", "figure"),
    ("ride-power", "figure"),
    ("ride-resistance", "figure"),
    ("ride-cursor", "data"),
)
HIDDEN = {"display": "none"}


def layout(ctx: Context, search: str) -> html.Div:
    """The page; `?bike=SN0001` picks the bike, `?rider=123` the rider."""
    query = parse_qs(search.lstrip("?"))
    bike = (query.get("bike") or [""])[0] or None
    rider = (query.get("rider") or [""])[0] or None
    graph: dict[str, Any] = {"config": charts.CONFIG, "className": "chart"}
    return html.Div(
        [
            html.Div(
                [
                    dcc.Dropdown(
                        id="ride-bike",
                        options=_options(ctx, bike),
                        value=bike,
                        placeholder="Choose a bike in use…",
                        clearable=False,
                        className="picker",
                    ),
                    dcc.Input(
                        id="ride-rider",
                        type="text",
                        inputMode="numeric",
                        value=rider if rider and rider.isdigit() else None,
                        placeholder="…or type your rider number",
                        debounce=True,
                        className="rider-input",
                    ),
                    html.Span(id="ride-rider-msg", className="hint"),
                ],
                className="controls",
            ),
            html.Div(id="ride-banner"),
            html.Div(id="ride-status"),
            _skeleton(),
            html.Div(
                [
                    dcc.Graph(id="ride-hr", figure=_blank(), **graph),
                    dcc.Graph(id="ride-power", figure=_blank(), **graph),
                    dcc.Graph(id="ride-resistance", figure=_blank(), **graph),
                ],
                id="ride-charts",
                className="charts",
                style=HIDDEN,
            ),
            dcc.Store(id="ride-cursor", data={}),
            dcc.Interval(id="ride-tick", interval=ctx.settings.dashboard_refresh_ms),
            dcc.Interval(id="ride-options-tick", interval=OPTIONS_MS),
        ]
    )


def _skeleton() -> html.Div:
    """The live card; its texts are filled in by the tick."""
    stats = [
        html.Div(
            [
                html.Div(label, className="label"),
                html.Div(
                    [html.Span(id=ident, className="value"), html.Span(unit, className="unit")]
                ),
            ],
            className="stat",
        )
        for ident, label, unit in STATS
    ]
    hr_card = html.Div(
        [
            html.Div("Heart rate now", className="label"),
            html.Div(
                [
                    html.Span(id="ride-hr-now", className="hr-value"),
                    html.Span("bpm", className="unit"),
                ]
            ),
            html.Div(id="ride-zone-name", className="zone-name"),
            html.Div(id="ride-zones", className="zone-bar"),
            html.Div(id="ride-safe-range", className="hint"),
        ],
        id="ride-hr-card",
        className="hr-card",
    )
    return html.Div(
        [
            html.Div(
                [
                    html.H2(id="ride-who", className="rider"),
                    html.Div(id="ride-bike-line", className="hint"),
                ],
                className="ride-head",
            ),
            html.Div([hr_card, html.Div(stats, className="stats")], className="ride-grid"),
        ],
        id="ride-live",
        className="card",
        style=HIDDEN,
    )


def _blank() -> dict[str, Any]:
    return {"data": [], "layout": {"height": 260}}


def _in_use(ctx: Context) -> list[dict[str, str]]:
    riders = ctx.fleet.riders(ctx.now(), ctx.today())
    riders.sort(key=lambda r: r.bike_serial)
    return [
        {
            "label": f"{r.bike_serial} · {r.first_name}, {clock(r.elapsed_s)} ridden",
            "value": r.bike_serial,
        }
        for r in riders
    ]


def _options(ctx: Context, selected: str | None) -> list[dict[str, str]]:
    # The same list for every viewer: built once per refresh period, not once per viewer.
    ttl = OPTIONS_MS / 2000
    opts = list(ctx.shared("bike-options", ttl, None, lambda: _in_use(ctx)))
    if selected and all(o["value"] != selected for o in opts):
        opts.insert(0, {"label": f"{selected} · not in use", "value": selected})
    return opts


def register(app: dash.Dash, ctx: Context) -> None:
    """The page's callbacks."""

    @app.callback(
        Output("ride-bike", "options"),
        Input("ride-options-tick", "n_intervals"),
        State("ride-bike", "value"),
    )
    def options(_n: int | None, selected: str | None) -> list[dict[str, str]]:
        return _options(ctx, selected)

    @app.callback(
        Output("ride-bike", "value"),
        Output("ride-rider-msg", "children"),
        Input("ride-rider", "value"),
        prevent_initial_call=False,
    )
    def find_rider(typed: str | None) -> tuple[Any, str]:
        text = (typed or "").strip()
        if not text:
            return dash.no_update, ""
        if not text.isdigit():
            return dash.no_update, "A rider number has only digits."
        user_id = int(text)
        bike = ctx.fleet.bike_of_rider(user_id, ctx.now())
        if bike is None:
            return dash.no_update, f"Rider {user_id} is not on a bike right now."
        return bike, ""

    @app.callback(
        *[Output(ident, prop) for ident, prop in OUTPUTS],
        Input("ride-tick", "n_intervals"),
        Input("ride-bike", "value"),
        State("ride-cursor", "data"),
    )
    def tick(_n: int | None, bike: str | None, cursor: dict[str, Any] | None) -> tuple:
        out = refresh(ctx, bike, cursor or {})
        return tuple(out.get(key, dash.no_update) for key in OUTPUTS)


def refresh(ctx: Context, bike: str | None, cursor: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """What changed on the page for one bike since the browser's cursor (plain function: tested).

    The cursor holds the ride the browser shows, how many of its readings it has, and the
    page's mode (empty, live, alert, finished); parts that did not change are left out."""
    out: dict[tuple[str, str], Any] = {}
    if not bike:
        in_use, _ = ctx.fleet.counts(ctx.now())
        mode = f"empty:{in_use}"
        if cursor.get("mode") != mode:
            out |= _frame(None, _empty(in_use), live=False, show_charts=False)
        out[("ride-cursor", "data")] = {"mode": mode}
        return out
    view = ctx.fleet.view(
        bike, ctx.now(), ctx.today(), since=int(cursor.get("n") or 0), ride_id=cursor.get("ride_id")
    )
    if view is None:
        mode = f"unknown:{bike}"
        if cursor.get("mode") != mode:
            status = html.Div(
                [html.H2(f"Bike {bike} is not in use"), html.P("No ride has been seen on it yet.")],
                className="card empty",
            )
            out |= _frame(None, status, live=False, show_charts=False)
        out[("ride-cursor", "data")] = {"mode": mode}
        return out
    new_ride = cursor.get("ride_id") != view.ride_id
    if view.in_use:
        mode = f"live:{view.ride_id}:{view.alert.number if view.alert else 0}"
    else:
        mode = f"finished:{view.ride_id}:{view.ended}:{view.readings}"
    if cursor.get("mode") != mode:
        if view.in_use:
            out |= _frame(_banner(view), None, live=True, show_charts=True)
        else:
            out |= _frame(None, _finished(view), live=False, show_charts=True)
    if new_ride:
        out |= _per_ride(view)
    if view.in_use:
        out |= _numbers(view)
    hr, power, resistance = _figures(view, cursor)
    out[("ride-hr", "figure")] = hr
    out[("ride-power", "figure")] = power
    out[("ride-resistance", "figure")] = resistance
    out[("ride-cursor", "data")] = {"ride_id": view.ride_id, "n": view.readings, "mode": mode}
    return out


def _frame(
    banner: Any, status: Any, *, live: bool, show_charts: bool
) -> dict[tuple[str, str], Any]:
    return {
        ("ride-banner", "children"): banner,
        ("ride-status", "children"): status,
        ("ride-live", "style"): {} if live else HIDDEN,
        ("ride-charts", "style"): {"display": "grid"} if show_charts else HIDDEN,
    }


def _per_ride(view: RideView) -> dict[tuple[str, str], Any]:
    """What stays the same for the whole ride."""
    lim = view.limits
    segments = [
        html.Div(
            f"Z{z.number}",
            className="zone-seg",
            style={"background": z.colour},
            title=f"Zone {z.number} {z.name}: {z.low:.0f}-{z.high:.0f} bpm",
        )
        for z in zones(lim)
    ]
    return {
        ("ride-who", "children"): _who(view),
        ("ride-bike-line", "children"): f"Bike {view.bike_serial}"
        + (f" ({view.model})" if view.model else ""),
        ("ride-safe-range", "children"): f"Your safe range: {lim.low}-{lim.high} bpm",
        ("ride-zones", "children"): segments,
    }


def _numbers(view: RideView) -> dict[tuple[str, str], Any]:
    """The numbers of this second, as strings."""
    hr = view.heart_rate
    if hr is None:
        colour, zone_class = "#8a939c", "zone-bar"
        zone_name = "No heart-rate contact: hold the grips or check your strap"
    else:
        zone = zone_of(hr, view.limits)
        colour, zone_class = zone.colour, f"zone-bar z{zone.number}"
        zone_name = f"Zone {zone.number}: {zone.name}" if 1 <= zone.number <= 5 else zone.name
    values = (
        clock(view.elapsed_s),
        str(view.rpm),
        f"{view.power:.0f}",
        str(view.resistance),
        f"{view.energy_kj:.1f}",
        _num(view.avg_power),
        _num(view.avg_resistance, 1),
        _num(view.avg_heart_rate),
    )
    out: dict[tuple[str, str], Any] = {
        ("ride-hr-card", "style"): {"borderColor": colour, "color": colour},
        ("ride-hr-now", "children"): "--" if hr is None else str(hr),
        ("ride-zone-name", "children"): zone_name,
        ("ride-zones", "className"): zone_class,
    }
    for (ident, _label, _unit), value in zip(STATS, values, strict=True):
        out[(ident, "children")] = value
    return out


def _figures(view: RideView, cursor: dict[str, Any]) -> tuple[Any, Any, Any]:
    pts = view.points
    if cursor.get("ride_id") != view.ride_id or pts.start == 0:
        return (
            charts.heart_rate(pts, view.limits),
            charts.series(pts, "power"),
            charts.series(pts, "resistance"),
        )
    if not pts.elapsed_s:
        return dash.no_update, dash.no_update, dash.no_update
    xs = charts.minutes(pts)
    out = []
    for ys in (pts.heart_rate, [round(p, 1) for p in pts.power], pts.resistance):
        patch = Patch()
        patch["data"][0]["x"].extend(xs)
        patch["data"][0]["y"].extend(list(ys))
        out.append(patch)
    return out[0], out[1], out[2]


def _empty(in_use: int) -> html.Div:
    if in_use:
        text = f"{in_use} {'bike is' if in_use == 1 else 'bikes are'} in use: choose one above."
    else:
        text = "Nobody is riding right now. This page updates by itself when a ride starts."
    return html.Div([html.H2("Pick your bike"), html.P(text)], className="card empty")


def _who(view: RideView) -> str:
    return f"{view.first_name}, {view.age} years, {gender_label(view.gender).lower()}"


def _banner(view: RideView) -> html.Div | None:
    ep = view.alert
    if ep is None:
        return None
    if ep.kind == "high":
        what = f"Your heart rate is above your safe maximum of {ep.limit_high} bpm."
    else:
        what = f"Your heart rate is below your safe minimum of {ep.limit_low} bpm."
    return html.Div(
        [
            html.Strong("Heart-rate alert. "),
            html.Span(what + " Ease off now and rest; if you feel unwell, stop and get help."),
        ],
        className="banner",
        id="alert-banner",
        role="alert",
    )


def _finished(view: RideView) -> html.Div:
    title = "Ride finished" if view.ended else "Bike not in use"
    note = (
        "Your ride has ended. Here is your summary."
        if view.ended
        else "Nothing has come from this bike for a while. Here is the last ride."
    )
    rows = [
        ("Rider", _who(view)),
        ("Started", view.started_at.strftime("%H:%M UTC, %d %b")),
        ("Ride time", f"{clock(view.elapsed_s)} min:s"),
        ("Energy", f"{view.energy_kj:.1f} kJ"),
        ("Average power", f"{_num(view.avg_power)} W"),
        ("Average resistance", f"{_num(view.avg_resistance, 1)} level"),
        ("Average heart rate", f"{_num(view.avg_heart_rate)} bpm"),
        ("Highest heart rate", f"{view.max_heart_rate or '--'} bpm"),
        ("Heart-rate alerts", f"{view.alerts}"),
    ]
    return html.Div(
        [
            html.H2(f"{title}: bike {view.bike_serial}", id="ride-not-in-use"),
            html.P(note),
            html.Dl(
                [part for k, v in rows for part in (html.Dt(k), html.Dd(v))], className="summary"
            ),
        ],
        className="card finished",
    )


def _num(value: float | None, digits: int = 0) -> str:
    return "--" if value is None else f"{value:.{digits}f}"
