"""The live view: events and alerts from the real broker into memory, and the page callbacks."""

from __future__ import annotations

import time
from datetime import date, timedelta

import orjson
from confluent_kafka import Producer
from dash import Patch

from services.alerts.rules import Thresholds, limits_for
from services.common.ages import age_on
from services.common.config import Settings
from services.dashboard.app import Context
from services.dashboard.live import Feed
from services.dashboard.pages import leaderboard, ride
from tests.dashboard import events as ev
from tests.dashboard.conftest import events_applied, wait_for

BANNER, STATUS, CURSOR = (
    ("ride-banner", "children"),
    ("ride-status", "children"),
    ("ride-cursor", "data"),
)


def _ctx(settings: Settings, feed: Feed, at: float | None = None) -> Context:
    return Context(settings, feed.fleet, None, wall=(lambda: at) if at else time.time)


def _text(component: object) -> str:
    """All the text of a Dash component tree."""
    if component is None:
        return ""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


def test_feed_builds_the_ride_from_the_slim_events(
    kafka_settings: Settings, producer: Producer, feed: Feed
) -> None:
    s = kafka_settings
    docs = [ev.started(1, "SN0001", dob=date(1980, 3, 10))]
    powers = [100.0, 120.0, 80.0, 0.0, 150.5]
    hrs = [110, None, 130, 140, 150]
    for i, (p, h) in enumerate(zip(powers, hrs, strict=True), start=1):
        docs.append(ev.reading(1, "SN0001", i, power=p, hr=h, resistance=10 * i, rpm=60 + i))
    docs.append(ev.reading(1, "SN0001", 3, power=999.0, hr=200))  # a redelivered duplicate
    ev.send(producer, s.topic_events, docs)
    wait_for(events_applied(feed.fleet, len(docs)))

    today = date(2026, 3, 2)
    view = feed.fleet.view("SN0001", time.time(), today)
    assert view is not None and view.in_use
    assert (view.first_name, view.gender, view.age) == (
        "Ada",
        "female",
        age_on(date(1980, 3, 10), today),
    )
    assert view.limits == limits_for("female", date(1980, 3, 10), ev.T0.date(), Thresholds())
    assert view.points.elapsed_s == [1, 2, 3, 4, 5]
    assert view.points.heart_rate == [110, None, 130, 140, 150]
    assert view.energy_kj == sum(powers) / 1000
    assert view.avg_power == sum(powers) / 5
    assert view.avg_resistance == 30.0
    assert view.avg_heart_rate == (110 + 130 + 140 + 150) / 4
    assert (view.heart_rate, view.rpm, view.resistance) == (150, 65, 50)
    # Silence longer than DASHBOARD_IDLE_S: the bike is no longer in use.
    later = time.time() + s.dashboard_idle_s + 1
    assert not feed.fleet.view("SN0001", later, today).in_use  # type: ignore[union-attr]
    assert feed.fleet.riders(later, today) == []


def test_the_full_rider_of_older_events_is_read_too(
    kafka_settings: Settings, producer: Producer, feed: Feed
) -> None:
    ev.send(
        producer,
        kafka_settings.topic_events,
        [ev.started(2, "SN0002", slim=False, first_name="Bo", gender="x")],
    )
    wait_for(events_applied(feed.fleet, 1))
    view = feed.fleet.view("SN0002", time.time(), date(2026, 3, 2))
    assert view is not None and (view.first_name, view.gender) == ("Bo", "other")


def test_bad_events_are_counted_and_the_feed_goes_on(
    kafka_settings: Settings, producer: Producer, feed: Feed
) -> None:
    s = kafka_settings
    for raw in (b"not json", b"[1, 2]", orjson.dumps({"type": "reading", "ride_id": "x"})):
        producer.produce(s.topic_events, raw, key=b"SN0003")
    ev.send(producer, s.topic_events, [ev.started(3, "SN0003"), ev.reading(3, "SN0003", 1)])
    wait_for(lambda: feed.fleet.events >= 2 and feed.fleet.rejected >= 2)
    view = feed.fleet.view("SN0003", time.time(), date(2026, 3, 2))
    assert view is not None and view.readings == 1


def test_alert_banner_from_the_alerts_topic_until_the_rider_recovers(
    kafka_settings: Settings, producer: Producer, feed: Feed
) -> None:
    s = kafka_settings
    ev.send(
        producer,
        s.topic_events,
        [ev.started(4, "SN0004")] + [ev.reading(4, "SN0004", i, hr=190) for i in (1, 2, 3)],
    )
    wait_for(events_applied(feed.fleet, 4))
    ctx = _ctx(s, feed)
    banner = ride.refresh(ctx, "SN0004", {})[BANNER]
    assert banner is None  # no alert published yet: the dashboard shows the alerts' verdict

    ev.send(producer, s.topic_alerts, [ev.alert(4, "SN0004", high=187)])
    wait_for(events_applied(feed.fleet, 5))
    banner = ride.refresh(ctx, "SN0004", {})[BANNER]
    assert "above your safe maximum of 187 bpm" in _text(banner)

    # Two readings back in range, one out again, then three in range: recovered.
    hrs = [150, 150, 191, 150, 150]
    ev.send(
        producer, s.topic_events, [ev.reading(4, "SN0004", 4 + i, hr=h) for i, h in enumerate(hrs)]
    )
    wait_for(events_applied(feed.fleet, 10))
    assert feed.fleet.view("SN0004", time.time(), date(2026, 3, 2)).alert is not None  # type: ignore[union-attr]
    ev.send(producer, s.topic_events, [ev.reading(4, "SN0004", 9, hr=150)])
    wait_for(events_applied(feed.fleet, 11))
    assert ride.refresh(ctx, "SN0004", {})[BANNER] is None
    assert feed.fleet.view("SN0004", time.time(), date(2026, 3, 2)).alerts == 1  # type: ignore[union-attr]


def test_an_alert_read_before_its_ride_is_kept_for_it(
    kafka_settings: Settings, producer: Producer, feed: Feed
) -> None:
    s = kafka_settings
    ev.send(producer, s.topic_alerts, [ev.alert(5, "SN0005")])
    wait_for(lambda: len(feed.fleet.early_alerts) == 1)
    ev.send(producer, s.topic_events, [ev.started(5, "SN0005"), ev.reading(5, "SN0005", 1, hr=195)])
    wait_for(events_applied(feed.fleet, 2))
    assert feed.fleet.view("SN0005", time.time(), date(2026, 3, 2)).alert is not None  # type: ignore[union-attr]


def test_the_charts_go_whole_once_then_only_new_points(
    kafka_settings: Settings, producer: Producer, feed: Feed
) -> None:
    s = kafka_settings
    ev.send(
        producer,
        s.topic_events,
        [ev.started(6, "SN0006")] + [ev.reading(6, "SN0006", i) for i in range(1, 11)],
    )
    wait_for(events_applied(feed.fleet, 11))
    ctx = _ctx(s, feed)
    out = ride.refresh(ctx, "SN0006", {})
    cursor = out[CURSOR]
    assert cursor == {"ride_id": 6, "n": 10, "mode": "live:6:0"}
    assert out[("ride-charts", "style")] == {"display": "grid"} and out[STATUS] is None
    hr = out[("ride-hr", "figure")]
    assert isinstance(hr, dict) and len(hr["data"][0]["y"]) == 10
    assert out[("ride-who", "children")].startswith("Ada, ")
    assert out[("ride-energy", "children")] == "1.0" and out[("ride-hr-now", "children")] == "120"

    ev.send(
        producer, s.topic_events, [ev.reading(6, "SN0006", i, hr=100 + i) for i in (11, 12, 13)]
    )
    wait_for(events_applied(feed.fleet, 14))
    out = ride.refresh(ctx, "SN0006", cursor)
    hr_patch, cursor = out[("ride-hr", "figure")], out[CURSOR]
    assert isinstance(hr_patch, Patch) and cursor == {"ride_id": 6, "n": 13, "mode": "live:6:0"}
    ops = hr_patch.to_plotly_json()["operations"]
    assert [op["operation"] for op in ops] == ["Extend", "Extend"]
    assert ops[1]["params"]["value"] == [111, 112, 113]  # only the three new readings
    # Nothing but this second's numbers and points: no banner, status or per-ride texts.
    assert BANNER not in out and STATUS not in out and ("ride-who", "children") not in out
    assert out[("ride-hr-now", "children")] == "113"

    # A new ride on the bike: the browser gets the whole (new) ride again.
    ev.send(
        producer,
        s.topic_events,
        [
            ev.started(7, "SN0006", at=ev.T0 + timedelta(hours=1)),
            ev.reading(7, "SN0006", 1, at=ev.T0 + timedelta(hours=1)),
        ],
    )
    wait_for(events_applied(feed.fleet, 16))
    out = ride.refresh(ctx, "SN0006", cursor)
    assert isinstance(out[("ride-hr", "figure")], dict)
    assert out[CURSOR] == {"ride_id": 7, "n": 1, "mode": "live:7:0"}


def test_finished_ride_shows_its_summary_and_empty_states(
    kafka_settings: Settings, producer: Producer, feed: Feed
) -> None:
    s = kafka_settings
    ctx = _ctx(s, feed)
    assert "Nobody is riding" in _text(ride.refresh(ctx, None, {})[STATUS])
    assert "Nobody is riding" in _text(leaderboard.board(ctx))
    docs = [
        ev.started(8, "SN0008"),
        *[ev.reading(8, "SN0008", i, power=200.0) for i in range(1, 6)],
    ]
    docs.append(ev.ended(8, "SN0008", ev.T0 + timedelta(seconds=6)))
    ev.send(producer, s.topic_events, docs)
    wait_for(events_applied(feed.fleet, len(docs)))
    out = ride.refresh(ctx, "SN0008", {})
    text = _text(out[STATUS])
    assert out[("ride-live", "style")] == {"display": "none"}
    assert "Ride finished" in text and "1.0 kJ" in text and "200 W" in text
    assert "not in use" in _text(ride.refresh(ctx, "SN9999", {})[STATUS])


def test_leaderboard_ranks_riders_by_energy_and_reorders(
    kafka_settings: Settings, producer: Producer, feed: Feed
) -> None:
    s = kafka_settings
    docs = [
        ev.started(10, "SN0010", user_id=1, first_name="Ann"),
        ev.started(11, "SN0011", user_id=2, first_name="Ben"),
        ev.reading(10, "SN0010", 1, power=300.0, user_id=1),
        ev.reading(11, "SN0011", 1, power=100.0, user_id=2),
    ]
    ev.send(producer, s.topic_events, docs)
    wait_for(events_applied(feed.fleet, 4))
    ctx = _ctx(s, feed)
    assert [r.first_name for r in feed.fleet.riders(time.time(), date(2026, 3, 2))] == [
        "Ann",
        "Ben",
    ]
    assert _text(leaderboard.board(ctx)).index("Ann") < _text(leaderboard.board(ctx)).index("Ben")
    ev.send(producer, s.topic_events, [ev.reading(11, "SN0011", 2, power=500.0, user_id=2)])
    wait_for(events_applied(feed.fleet, 5))
    assert [r.first_name for r in feed.fleet.riders(time.time(), date(2026, 3, 2))] == [
        "Ben",
        "Ann",
    ]
    assert feed.fleet.bike_of_rider(2, time.time()) == "SN0011"


def test_leaderboard_escapes_what_riders_typed(
    kafka_settings: Settings, producer: Producer, feed: Feed
) -> None:
    name = '<img src=x onerror="alert(1)">'
    docs = [ev.started(12, "SN0012", first_name=name), ev.reading(12, "SN0012", 1)]
    ev.send(producer, kafka_settings.topic_events, docs)
    wait_for(events_applied(feed.fleet, 2))
    board = _text(leaderboard.board(_ctx(kafka_settings, feed)))
    assert name not in board and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in board


def test_health_says_when_the_events_feed_has_stopped(
    kafka_settings: Settings, producer: Producer, feed: Feed
) -> None:
    from services.dashboard.app import create_app

    ctx = Context(kafka_settings, feed.fleet, None, feed_alive=feed.thread.is_alive)
    client = create_app(ctx).server.test_client()
    ok = client.get("/health")
    assert ok.status_code == 200 and ok.json == {"status": "ok", "bikes_in_use": 0, "bikes_seen": 0}
    assert b"deloton_dashboard_db_queries" in client.get("/metrics").data
    feed.stop()
    assert client.get("/health").status_code == 503
