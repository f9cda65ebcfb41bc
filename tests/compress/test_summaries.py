"""Summaries in historical.rides equal what pandas computes from the same readings."""

from __future__ import annotations

import pytest

from services.compress import run
from tests.compress.builders import NOW, add_alert, add_rider, at, write_ride, write_scenario
from tests.compress.expected import assert_summary, expected_summary, stored_summaries

pytestmark = pytest.mark.postgres


def test_summaries_match_pandas_including_heart_rate_gaps(conn, compress_settings):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        rides = [
            write_ride(cur, 11, 1, started_at=at("2026-11-20 09:00:00"), seconds=1800),
            # long stretches without heart-rate contact
            write_ride(
                cur, 12, 1, started_at=at("2026-11-20 09:40:00"), seconds=700, hr_missing=0.7
            ),
            # no contact at all: heart-rate figures are NULL, not zero
            write_ride(
                cur, 13, 1, started_at=at("2026-11-20 10:00:00"), seconds=90, hr_missing=1.0
            ),
            # across an hour boundary, so across two partitions
            write_ride(cur, 14, 1, started_at=at("2026-11-20 10:50:00"), seconds=1500),
        ]
        add_alert(cur, 11, 1, 1, detected_at=at("2026-11-20 09:10:00"))
        add_alert(cur, 11, 2, 1, detected_at=at("2026-11-20 09:20:00"), status="pending")

    result = run(conn, now=NOW, settings=compress_settings)

    assert result.rides_summarised == 4
    assert result.summary_batches == 2  # compress_batch_rides = 2
    with conn.cursor() as cur:
        stored = stored_summaries(cur)
    assert set(stored) == {11, 12, 13, 14}
    for ride in rides:
        assert_summary(
            stored[ride.ride_id], expected_summary(ride, alerts=2 if ride.ride_id == 11 else 0)
        )
    assert stored[13]["avg_heart_rate"] is None and stored[13]["heart_rate_readings"] == 0
    assert stored[11]["bike_serial"] == "SN0001" and stored[11]["model"] == "mendoza v9"


def test_ride_without_readings_gets_an_empty_summary(conn, compress_settings):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        cur.execute(
            """INSERT INTO daily.rides (ride_id, bike_serial, user_id, started_at, ended_at)
               VALUES (5, 'SN0009', 1, %s, %s)""",
            (at("2026-11-20 09:00:00"), at("2026-11-20 09:00:02")),
        )
    run(conn, now=NOW, settings=compress_settings)
    with conn.cursor() as cur:
        row = stored_summaries(cur)[5]
    assert row["readings_count"] == 0 and row["duration_s"] == 2
    assert row["avg_power"] is None and row["total_energy_kj"] is None


def test_scenario_summaries(conn, compress_settings):
    with conn, conn.cursor() as cur:
        rides = write_scenario(cur)

    result = run(conn, now=NOW, settings=compress_settings)

    with conn.cursor() as cur:
        stored = stored_summaries(cur)
    # in progress (last reading 35 s ago) and tombstoned rides are not summarised
    assert set(stored) == {101, 102, 104, 105, 106}
    assert result.rides_summarised == 5
    alerts = {101: 2, 106: 1}
    for name in ("old", "straddling", "old_shared", "recent", "silent"):
        ride = rides[name]
        assert_summary(
            stored[ride.ride_id], expected_summary(ride, alerts=alerts.get(ride.ride_id, 0))
        )
    # the silent ride (no ended_at, quiet for longer than ride_silence_s) ends at its last reading
    assert stored[105]["ended_at"] == at("2026-11-20 11:57:00")


def test_rider_details_latest_wins(conn, compress_settings):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"), first_name="Old", city="York")
        write_ride(cur, 21, 1, started_at=at("2026-11-20 09:00:00"), seconds=60)
    run(conn, now=NOW, settings=compress_settings)
    with conn, conn.cursor() as cur:
        # the rider rides again with new details
        add_rider(cur, 1, details_at=at("2026-11-20 10:00:00"), first_name="New", city="Hull")
        write_ride(cur, 22, 1, started_at=at("2026-11-20 10:00:00"), seconds=60)
        # and historical somehow already holds details newer than daily's for rider 2
        add_rider(cur, 2, details_at=at("2026-11-20 08:00:00"), first_name="Daily")
        cur.execute(
            """INSERT INTO historical.riders SELECT * FROM daily.riders WHERE user_id = 2;
               UPDATE historical.riders SET first_name = 'Newer', details_at = %s
               WHERE user_id = 2""",
            (at("2026-11-20 11:00:00"),),
        )
        write_ride(cur, 23, 2, started_at=at("2026-11-20 10:30:00"), seconds=60)
    run(conn, now=NOW, settings=compress_settings)
    with conn.cursor() as cur:
        cur.execute("SELECT user_id, first_name, city FROM historical.riders ORDER BY 1")
        assert cur.fetchall() == [(1, "New", "Hull"), (2, "Newer", "Leeds")]


def test_readings_after_ended_at_up_to_the_next_ride_count(conn, compress_settings):
    # Ingest may file a late reading under the previous ride after closing it; it still lies
    # before the next ride's start on the bike, which is as far as compress looks.
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        tail = write_ride(cur, 41, 1, started_at=at("2026-11-20 08:59:00"), seconds=1260)
        cur.execute(
            "UPDATE daily.rides SET ended_at = %s WHERE ride_id = 41", (at("2026-11-20 09:05:00"),)
        )
        nxt = write_ride(cur, 42, 1, started_at=at("2026-11-20 09:20:05"), seconds=30)
    run(conn, now=NOW, settings=compress_settings)
    with conn.cursor() as cur:
        stored = stored_summaries(cur)
    tail.ended_at = at("2026-11-20 09:05:00")
    assert stored[41]["readings_count"] == 1260
    assert_summary(stored[41], expected_summary(tail))
    assert_summary(stored[42], expected_summary(nxt))
