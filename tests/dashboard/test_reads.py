"""The recent-rides and fleet reads against a real PostgreSQL, and their shared cache."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg2.extensions
import pytest
from psycopg_pool import ConnectionPool

from services.common.ages import age_bracket, age_on
from services.common.pool import Connection, open_pool, read_only
from services.common.reads import recent as reads
from services.dashboard.recent import QUERIES, Aggregates
from tests.compress.builders import add_alert, add_ride, add_rider, insert_readings, readings_frame

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool[Connection]]:
    p = open_pool(database_url, max_size=2)
    yield p
    p.close()


@pytest.fixture
def data(db: psycopg2.extensions.connection) -> dict[int, pd.DataFrame]:
    """Riders and rides around NOW; returns the readings written, by ride."""
    frames: dict[int, pd.DataFrame] = {}
    with db, db.cursor() as cur:
        add_rider(cur, 1, details_at=NOW - timedelta(days=1), city="Leeds")
        add_rider(cur, 2, details_at=NOW - timedelta(days=1), first_name="Bob", city="York")
        cur.execute(
            "UPDATE daily.riders SET gender = 'male', date_of_birth = '2005-06-01' WHERE user_id = 2"
        )
        add_ride(
            cur,
            101,
            1,
            started_at=NOW - timedelta(hours=2),
            ended_at=NOW - timedelta(hours=2) + timedelta(minutes=10),
        )
        add_ride(
            cur, 102, 2, started_at=NOW - timedelta(minutes=5), ended_at=None, bike_serial="SN0002"
        )
        add_ride(
            cur,
            103,
            1,
            started_at=NOW - timedelta(hours=13),
            ended_at=NOW - timedelta(hours=12, minutes=50),
        )
        add_ride(
            cur,
            105,
            1,
            started_at=NOW - timedelta(hours=4),
            ended_at=NOW - timedelta(hours=4) + timedelta(minutes=1),
        )
        add_ride(
            cur, 106, 1, started_at=NOW - timedelta(hours=1), ended_at=NOW - timedelta(minutes=55)
        )
        cur.execute("INSERT INTO historical.deleted_rides (ride_id) VALUES (106)")
        # Rider 3 and ride 104 only in historical; ride 105 in both (counted once).
        cur.execute("INSERT INTO historical.riders SELECT * FROM daily.riders WHERE user_id = 1")
        cur.execute(
            "UPDATE historical.riders SET user_id = 3, city = 'Hull', gender = 'other' WHERE user_id = 1"
        )
        cur.execute("INSERT INTO historical.riders SELECT * FROM daily.riders WHERE user_id = 1")
        for ride_id, user, start in (
            (104, 3, NOW - timedelta(hours=3)),
            (105, 1, NOW - timedelta(hours=4)),
        ):
            cur.execute(
                """INSERT INTO historical.rides (ride_id, user_id, bike_serial, started_at, ended_at,
                       duration_s, readings_count, heart_rate_readings)
                   VALUES (%s, %s, 'SN0003', %s, %s, 1200, 1200, 1200)""",
                (ride_id, user, start, start + timedelta(minutes=20)),
            )
        for ride_id, start, secs in (
            (101, NOW - timedelta(hours=2), 600),
            (102, NOW - timedelta(minutes=5), 290),
        ):
            frames[ride_id] = readings_frame(ride_id, start, secs, seed=ride_id)
            insert_readings(cur, frames[ride_id])
        add_alert(cur, 101, 1, 1, detected_at=NOW - timedelta(hours=2) + timedelta(minutes=3))
        add_alert(cur, 103, 1, 1, detected_at=NOW - timedelta(hours=13))
    return frames


def test_recent_rides_takes_each_ride_once_and_leaves_tombstones_out(
    pool: ConnectionPool[Connection], data: dict[int, pd.DataFrame]
) -> None:
    with read_only(pool) as conn:
        rides = reads.recent_rides(conn, since=NOW - timedelta(hours=12), until=NOW)
    assert sorted(r.ride_id for r in rides) == [101, 102, 104, 105]
    by_id = {r.ride_id: r for r in rides}
    assert by_id[102].ended_at is None and by_id[102].gender == "male"
    assert by_id[104].gender == "other"


def test_buckets_add_up_to_the_readings(
    pool: ConnectionPool[Connection], data: dict[int, pd.DataFrame]
) -> None:
    with read_only(pool) as conn:
        rows = reads.ride_buckets(conn, since=NOW - timedelta(hours=12), until=NOW, bucket_s=900)
    for ride_id, frame in data.items():
        mine = [r for r in rows if r.ride_id == ride_id]
        assert sum(r.power_n for r in mine) == len(frame)
        assert sum(r.power_sum for r in mine) == pytest.approx(frame.power.sum())
        assert sum(r.heart_rate_n for r in mine) == frame.heart_rate.notna().sum()
        assert sum(r.heart_rate_sum for r in mine) == pytest.approx(float(frame.heart_rate.sum()))
        assert all(r.bucket.timestamp() % 900 == 0 for r in mine)


def test_aggregates_filter_in_memory_and_query_once_per_ttl(
    pool: ConnectionPool[Connection], data: dict[int, pd.DataFrame]
) -> None:
    agg = Aggregates(pool, window_h=12, bucket_min=15, ttl_s=3600, now=lambda: NOW)
    before = QUERIES.labels("recent")._value.get()
    everyone = agg.recent((), ())
    assert everyone.rides == 4
    assert everyone.rides_by_gender == {"female": 2, "male": 1, "other": 1}
    assert everyone.hours_by_gender["male"] == pytest.approx(5 / 60)
    assert everyone.hours_by_gender["female"] == pytest.approx(11 / 60)
    bob = age_bracket(age_on(datetime(2005, 6, 1).date(), NOW.date()))
    assert everyone.rides_by_bracket[bob] == 1
    men = agg.recent(("male",), ())
    assert men.rides == 1 and men.rides_by_gender["female"] == 0
    frame = data[102]
    expected = frame.power.sum() / len(frame)
    weighted = [p for p in men.avg_power if p is not None]
    assert len(weighted) == 1 and weighted[0] == pytest.approx(expected)
    assert agg.recent((), (bob,)).rides == 1
    for _ in range(50):  # fifty viewers, any filters: no more queries within the ttl
        agg.recent(("female",), ())
    assert QUERIES.labels("recent")._value.get() - before == 1


def test_settled_buckets_are_not_read_again(
    pool: ConnectionPool[Connection],
    data: dict[int, pd.DataFrame],
    db: psycopg2.extensions.connection,
) -> None:
    agg = Aggregates(pool, window_h=12, bucket_min=15, ttl_s=0, now=lambda: NOW)
    first = agg.recent((), ())
    # A reading late into a bucket two hours old is not looked for; one in the live bucket is.
    with db, db.cursor() as cur:
        insert_readings(
            cur, readings_frame(101, NOW - timedelta(hours=2), 1, seed=1, first_reading_s=900)
        )
        insert_readings(
            cur, readings_frame(102, NOW - timedelta(minutes=5), 1, seed=2, first_reading_s=295)
        )
    second = agg.recent((), ())
    assert agg.buckets.frontier is not None and agg.buckets.frontier > NOW - timedelta(minutes=20)
    old = first.buckets.index(min(first.buckets))
    assert second.avg_power[old] == first.avg_power[old]
    assert second.avg_power[-1] != first.avg_power[-1]


def test_fleet_day(pool: ConnectionPool[Connection], data: dict[int, pd.DataFrame]) -> None:
    day = NOW.replace(hour=0)
    with read_only(pool) as conn:
        fleet = reads.fleet_day(conn, day_start=day, until=NOW)
    assert (fleet.rides, fleet.riders, fleet.alerts) == (4, 3, 1)
    assert fleet.cities == [("Hull", 1), ("Leeds", 1), ("York", 1)]
