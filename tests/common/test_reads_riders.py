"""The shared rider reads: current details, totals across schemas, leaderboards."""

from __future__ import annotations

from datetime import date

import pytest

from services.common import pool
from services.common.reads import riders
from services.compress import run
from tests.compress.builders import NOW, add_rider, at, write_ride

pytestmark = pytest.mark.postgres


def read(readers, fn, **kwargs):
    with pool.read_only(readers) as c:
        return fn(c, **kwargs)


def heart_rates(ride) -> list[int]:
    return [int(h) for h in ride.readings.heart_rate.dropna()]


def test_stats_are_the_same_before_and_after_compress(conn, readers, compress_settings):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        a = write_ride(cur, 11, 1, started_at=at("2026-11-20 09:00:00"), seconds=600)
        b = write_ride(
            cur, 12, 1, started_at=at("2026-11-20 10:00:00"), seconds=300, hr_missing=0.6
        )
    hrs = heart_rates(a) + heart_rates(b)
    before = read(readers, riders.rider_stats, user_id=1)
    assert before.rides == 2 and before.total_duration_s == 601 + 301
    assert before.avg_heart_rate == pytest.approx(sum(hrs) / len(hrs))
    run(conn, now=NOW, settings=compress_settings)
    after = read(readers, riders.rider_stats, user_id=1)
    assert (after.rides, after.total_duration_s) == (before.rides, before.total_duration_s)
    assert after.avg_heart_rate == pytest.approx(before.avg_heart_rate, rel=1e-12)
    nobody = read(readers, riders.rider_stats, user_id=404)
    assert (nobody.rides, nobody.total_duration_s, nobody.avg_heart_rate) == (0, 0, None)


def test_rider_details_come_from_daily_first_then_historical(conn, readers, compress_settings):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-19 08:00:00"), first_name="Old", city="York")
        write_ride(cur, 11, 1, started_at=at("2026-11-19 09:00:00"), seconds=60)
    run(conn, now=NOW, settings=compress_settings)  # the ride is old: daily rider removed
    rider = read(readers, riders.get_rider, user_id=1)
    assert rider is not None and rider.first_name == "Old" and rider.city == "York"
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 11:00:00"), first_name="New", city="Hull")
    rider = read(readers, riders.get_rider, user_id=1)
    assert rider is not None and (rider.first_name, rider.city) == ("New", "Hull")
    assert rider.date_of_birth == date(1980, 5, 17)
    assert read(readers, riders.get_rider, user_id=2) is None


def test_leaderboard_all_time_and_since_with_ties_by_user_id(conn, readers, compress_settings):
    with conn, conn.cursor() as cur:
        for user in (1, 2, 3):
            add_rider(cur, user, details_at=at("2026-11-18 08:00:00"))
        write_ride(cur, 11, 1, started_at=at("2026-11-18 09:00:00"), seconds=900, bike_serial="A")
        write_ride(cur, 21, 2, started_at=at("2026-11-20 09:00:00"), seconds=100, bike_serial="B")
        write_ride(cur, 22, 2, started_at=at("2026-11-20 10:00:00"), seconds=100, bike_serial="B")
        write_ride(cur, 31, 3, started_at=at("2026-11-20 09:00:00"), seconds=200, bike_serial="C")
        write_ride(cur, 32, 3, started_at=at("2026-11-20 10:00:00"), seconds=300, bike_serial="C")
    run(conn, now=NOW, settings=compress_settings)

    def board(**kw):
        return [(e.user_id, e.value) for e in read(readers, riders.leaderboard, **kw)]

    assert board(by="rides") == [(2, 2.0), (3, 2.0), (1, 1.0)]
    assert board(by="duration") == [(1, 901.0), (3, 502.0), (2, 202.0)]
    assert board(by="longest_ride", limit=1) == [(1, 901.0)]
    assert board(by="rides", since=date(2026, 11, 19)) == [(2, 2.0), (3, 2.0)]
    assert [e.rank for e in read(readers, riders.leaderboard, by="energy")] == [1, 2, 3]

    # A summary of a deleted ride that a roll-up wrote after the DELETE (purged by the next
    # roll-up) does not count since a day.
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO historical.deleted_rides (ride_id) VALUES (31)")
    assert board(by="rides", since=date(2026, 11, 19)) == [(2, 2.0), (3, 1.0)]

    # Deleting a summarised ride updates the all-time totals (kept by triggers).
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO historical.deleted_rides (ride_id) VALUES (32)")
        cur.execute("DELETE FROM historical.rides WHERE ride_id = 32")
    assert board(by="rides") == [(2, 2.0), (1, 1.0), (3, 1.0)]
    assert board(by="longest_ride") == [(1, 901.0), (3, 201.0), (2, 101.0)]
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM historical.rides WHERE user_id = 1")
    assert [u for u, _ in board(by="rides")] == [2, 3]


@pytest.mark.parametrize("by", ["rides", "duration", "longest_ride", "max_power", "energy"])
def test_all_time_leaderboard_reads_the_first_entries_of_its_index(conn, by):
    # With its ORDER BY not matching the index, PostgreSQL sorted every rider on every call.
    with conn, conn.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + riders.all_time_query(by), {"limit": 10})
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "Index" in plan and "rider_totals" in plan and "Sort" not in plan, plan
