"""Retention: partitions dropped, boundary rows deleted, unsettled rides never lose data."""

from __future__ import annotations

from datetime import timedelta

import psycopg2
import pytest

from services.compress import job, run
from tests.compress.builders import (
    NOW,
    add_alert,
    add_rider,
    at,
    write_ride,
    write_scenario,
)
from tests.compress.expected import stored_summaries

pytestmark = pytest.mark.postgres


def _partitions(cur):
    cur.execute(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'daily.readings'::regclass ORDER BY 1"""
    )
    return [r[0] for r in cur.fetchall()]


def _readings(cur):
    cur.execute("SELECT ride_id, count(*) FROM daily.readings GROUP BY 1 ORDER BY 1")
    return dict(cur.fetchall())


def test_scenario_retention(conn, compress_settings):
    with conn, conn.cursor() as cur:
        rides = write_scenario(cur)
        cur.execute("ANALYZE daily.readings")  # what autovacuum does to hour-old partitions

    result = run(conn, now=NOW, settings=compress_settings)

    cutoff = NOW - timedelta(hours=12)
    with conn.cursor() as cur:
        # h20 (old), h21 (tombstoned_old), h23 (straddling's start) go whole; h22 also holds the
        # start of the ride in progress, so it stays; h00 straddles the cutoff.
        assert _partitions(cur) == [
            "readings_20261119h22",
            "readings_20261120h00",
            "readings_20261120h10",
            "readings_20261120h11",
        ]
        readings = _readings(cur)
        # the ride in progress keeps every reading, however old
        assert readings[103] == len(rides["in_progress"].readings)
        # the straddling ride keeps exactly its readings from the cutoff on
        straddling = rides["straddling"].readings
        assert readings[102] == int((straddling.recorded_at >= cutoff).sum())
        cur.execute("SELECT min(recorded_at) FROM daily.readings WHERE ride_id = 102")
        assert cur.fetchone()[0] >= cutoff
        # old rides' readings are gone; recent ones (tombstoned or not) untouched
        assert 101 not in readings and 104 not in readings and 107 not in readings
        assert readings[106] == 600 and readings[105] == 420 and readings[108] == 300
        cur.execute("SELECT ride_id FROM daily.rides ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == [102, 103, 105, 106, 108]
        cur.execute("SELECT ride_id, episode FROM daily.alerts ORDER BY 1, 2")
        assert cur.fetchall() == [(106, 1)]
        # rider 1 (rides 101, 104) and 6 (tombstoned 107) have no daily rides left
        cur.execute("SELECT user_id FROM daily.riders ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == [2, 3, 4, 5, 7]
        cur.execute("SELECT user_id FROM historical.riders ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == [1, 2, 4, 5, 6]
        # summaries survive their daily data
        assert stored_summaries(cur)[101]["alert_count"] == 2

    assert result.partitions_dropped == 3
    assert result.partitions_kept_unsettled == 1
    assert result.bytes_dropped > 0
    assert result.readings_dropped_estimate == 600 + 300 + int(
        (straddling.recorded_at < at("2026-11-20 00:00:00")).sum()
    )
    # 104's 300 in the kept partition, and the straddling ride's first 30 s of h00
    assert result.readings_deleted == 300 + 30
    assert result.rides_removed == 3 and result.alerts_removed == 2
    assert result.riders_removed == 2


def test_ride_in_progress_then_finished_is_cleaned_later(conn, compress_settings):
    with conn, conn.cursor() as cur:
        write_scenario(cur)
    run(conn, now=NOW, settings=compress_settings)
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE daily.rides SET ended_at = %s WHERE ride_id = 103", (NOW,))

    result = run(conn, now=NOW, settings=compress_settings)

    assert result.rides_summarised == 1
    assert result.partitions_dropped == 1  # h22 can go now
    with conn.cursor() as cur:
        assert "readings_20261119h22" not in _partitions(cur)
        cur.execute("SELECT min(recorded_at) FROM daily.readings WHERE ride_id = 103")
        assert cur.fetchone()[0] >= NOW - timedelta(hours=12)
        assert stored_summaries(cur)[103]["readings_count"] == 685


def test_pending_alert_keeps_the_ride_until_sent_and_updates_alert_count(conn, compress_settings):
    with conn, conn.cursor() as cur:
        add_rider(cur, 2, details_at=at("2026-11-19 11:00:00"))
        write_ride(cur, 32, 2, started_at=at("2026-11-19 11:00:00"), seconds=120)
    # summarised while still inside a (longer) retention window...
    run(conn, now=NOW, settings=compress_settings.model_copy(update={"retention_hours": 100}))
    with conn, conn.cursor() as cur:
        assert stored_summaries(cur)[32]["alert_count"] == 0
        # ...then a lagging alert service confirms an episode; its email is not sent yet
        add_alert(cur, 32, 1, 2, detected_at=at("2026-11-19 11:01:00"), status="pending")

    result = run(conn, now=NOW, settings=compress_settings)

    assert result.partitions_dropped == 1 and result.rides_removed == 0
    with conn.cursor() as cur:
        cur.execute("SELECT ride_id FROM daily.rides")
        assert cur.fetchall() == [(32,)]
        cur.execute("SELECT user_id FROM daily.riders")
        assert cur.fetchall() == [(2,)]

    with conn, conn.cursor() as cur:
        cur.execute("UPDATE daily.alerts SET status = 'sent'")
    result = run(conn, now=NOW, settings=compress_settings)

    assert result.rides_removed == 1 and result.alerts_removed == 1
    assert result.alert_counts_updated == 1 and result.riders_removed == 1
    with conn.cursor() as cur:
        assert stored_summaries(cur)[32]["alert_count"] == 1
        cur.execute("SELECT count(*) FROM daily.alerts")
        assert cur.fetchone()[0] == 0


def test_tombstoned_ride_stays_deleted(conn, compress_settings):
    with conn, conn.cursor() as cur:
        write_scenario(cur)
    run(conn, now=NOW, settings=compress_settings)
    with conn, conn.cursor() as cur:
        # an analyst deletes a ride that was already summarised (the API's own job is to
        # delete the row; a roll-up racing it could have written it back)
        cur.execute("INSERT INTO historical.deleted_rides (ride_id) VALUES (106)")

    result = run(conn, now=NOW, settings=compress_settings)

    assert result.tombstoned_summaries_purged == 1
    with conn.cursor() as cur:
        stored = stored_summaries(cur)
        assert 106 not in stored and 107 not in stored and 108 not in stored
    later = run(conn, now=NOW + timedelta(hours=24), settings=compress_settings)
    with conn.cursor() as cur:
        stored = stored_summaries(cur)
        assert 106 not in stored and 107 not in stored and 108 not in stored
        cur.execute("SELECT count(*) FROM daily.readings WHERE ride_id IN (106, 107, 108)")
        assert cur.fetchone()[0] == 0
    assert later.rides_summarised == 1  # only the ride in progress, closed by silence


def test_rider_with_recent_details_and_no_rides_is_kept(conn, compress_settings):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=NOW - timedelta(minutes=1))  # its ride row is coming
        add_rider(cur, 2, details_at=at("2026-11-18 00:00:00"))
    result = run(conn, now=NOW, settings=compress_settings)
    assert result.riders_removed == 1
    with conn.cursor() as cur:
        cur.execute("SELECT user_id FROM daily.riders")
        assert cur.fetchall() == [(1,)]
        cur.execute("SELECT user_id FROM historical.riders")
        assert cur.fetchall() == [(2,)]


def test_busy_partition_is_left_for_the_next_run(
    conn, compress_settings, database_url, monkeypatch
):
    monkeypatch.setattr(job, "DROP_LOCK_TIMEOUT_MS", 100)
    with conn, conn.cursor() as cur:
        write_scenario(cur)
    reader = psycopg2.connect(database_url)
    try:
        with reader.cursor() as rcur:
            # a long report reading the oldest partition
            rcur.execute("SELECT count(*) FROM daily.readings_20261119h20")
            result = run(conn, now=NOW, settings=compress_settings)
        assert result.partitions_busy >= 1
        with conn.cursor() as cur:
            assert _readings(cur).get(101) == 600  # not deleted row by row either
    finally:
        reader.close()
    result = run(conn, now=NOW, settings=compress_settings)
    assert result.partitions_busy == 0
    with conn.cursor() as cur:
        assert 101 not in _readings(cur)
        assert "readings_20261119h20" not in _partitions(cur)
