"""A ride is finished by ingest's progress, and readings that come after its summary join it."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import psycopg2
import pytest

from services.compress import run
from tests.compress.builders import (
    NOW,
    Ride,
    add_alert,
    add_feed,
    add_ride,
    add_rider,
    at,
    insert_readings,
    readings_frame,
    set_progress,
    write_ride,
)
from tests.compress.expected import assert_summary, expected_summary, stored_summaries

pytestmark = pytest.mark.postgres


def _open_ride(cur, ride_id: int, start: datetime, seconds: int, partition: int = 0) -> Ride:
    """A ride ingest has not closed, fed by partition `partition` of group 'ingest'."""
    add_ride(cur, ride_id, 1, started_at=start, ended_at=None, bike_serial=f"SN{ride_id:04d}")
    add_feed(cur, ride_id, partition=partition)
    frame = readings_frame(ride_id, start, seconds, seed=ride_id)
    insert_readings(cur, frame)
    return Ride(ride_id, 1, start, None, frame)


def _summarised(conn) -> set[int]:
    with conn, conn.cursor() as cur:
        return set(stored_summaries(cur))


def test_silence_is_judged_on_ingest_progress_not_the_clock(conn, compress_settings):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        # Last readings at 10:05:00 for each; NOW is two hours later.
        rides = {p: _open_ride(cur, 200 + p, at("2026-11-20 10:00:00"), 300, p) for p in range(5)}
        set_progress(cur, at("2026-11-20 10:05:30"), partition=0)  # only 30 s read past it
        # partition 1: nothing committed yet
        set_progress(cur, at("2026-11-20 10:06:01"), partition=2)  # 61 s past it
        # split topics: the bike topic's row lags, the telemetry topic's has moved on
        set_progress(cur, at("2026-11-20 10:00:00"), topic="bikes", partition=3)
        set_progress(cur, at("2026-11-20 10:07:00"), topic="telemetry", partition=3)
        # another group's progress on the same partition number says nothing about this feed
        set_progress(cur, at("2026-11-20 11:00:00"), group="other", partition=4)

    result = run(conn, now=NOW, settings=compress_settings)

    assert result.rides_summarised == 2
    with conn, conn.cursor() as cur:
        stored = stored_summaries(cur)
    assert set(stored) == {202, 203}
    for p in (2, 3):
        assert_summary(stored[200 + p], expected_summary(rides[p]))  # ends at its last reading

    # The run's clock still holds back a partition one fast bike pushed ahead.
    with conn, conn.cursor() as cur:
        set_progress(cur, at("2026-11-20 11:00:00"), partition=0)
    run(conn, now=at("2026-11-20 10:05:30"), settings=compress_settings)
    assert _summarised(conn) == {202, 203}
    run(conn, now=NOW, settings=compress_settings)
    assert _summarised(conn) == {200, 202, 203}


def test_readings_after_the_summary_are_added_to_it(conn, compress_settings):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        # closed by ingest too early (ended_at set), then its tail arrives
        early = write_ride(cur, 31, 1, started_at=at("2026-11-20 10:00:00"), seconds=300)
        # closed on ingest's progress, then more readings arrive (ingest lagged on this bike)
        quiet = _open_ride(cur, 32, at("2026-11-20 10:00:00"), 200, partition=1)
        set_progress(cur, at("2026-11-20 10:05:00"), partition=1)
    run(conn, now=NOW, settings=compress_settings)
    with conn, conn.cursor() as cur:
        stored = stored_summaries(cur)
        assert stored[31]["readings_count"] == 300 and stored[32]["readings_count"] == 200
        tail = readings_frame(31, early.started_at, 100, seed=310, first_reading_s=301)
        more = readings_frame(32, quiet.started_at, 50, seed=320, first_reading_s=201)
        insert_readings(cur, tail)
        insert_readings(cur, more)
        cur.execute(
            "UPDATE daily.rides SET ended_at = %s WHERE ride_id = 31",
            (at("2026-11-20 10:06:41"),),
        )

    result = run(conn, now=NOW, settings=compress_settings)

    assert result.summaries_updated == 2 and result.rides_summarised == 0
    early.readings = pd.concat([early.readings, tail], ignore_index=True)
    early.ended_at = at("2026-11-20 10:06:41")
    quiet.readings = pd.concat([quiet.readings, more], ignore_index=True)
    with conn, conn.cursor() as cur:
        stored = stored_summaries(cur)
    assert_summary(stored[31], expected_summary(early))
    assert_summary(stored[32], expected_summary(quiet))
    assert run(conn, now=NOW, settings=compress_settings).summaries_updated == 0


def test_alerts_raised_after_the_summary_are_counted_in_it(conn, compress_settings):
    """The alerts worker may confirm an episode after compress summarised the ride (it lags,
    or restarts); the summary the API and report read must count it without waiting for
    retention."""
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        ride = write_ride(cur, 41, 1, started_at=at("2026-11-20 10:00:00"), seconds=300)
        add_alert(cur, 41, 1, 1, detected_at=at("2026-11-20 10:01:00"))
    run(conn, now=NOW, settings=compress_settings)
    with conn, conn.cursor() as cur:
        assert stored_summaries(cur)[41]["alert_count"] == 1
        add_alert(cur, 41, 2, 1, detected_at=at("2026-11-20 10:03:00"), status="pending")

    run(conn, now=NOW, settings=compress_settings)

    with conn, conn.cursor() as cur:
        stored = stored_summaries(cur)
        assert_summary(stored[41], expected_summary(ride, alerts=2))
        assert stored[41]["alerts_sent"] == 1
        cur.execute("UPDATE daily.alerts SET status = 'sent' WHERE ride_id = 41")
    run(conn, now=NOW, settings=compress_settings)
    with conn, conn.cursor() as cur:
        assert stored_summaries(cur)[41]["alerts_sent"] == 2


def _count_readings(conn, ride_id: int) -> int:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM daily.readings WHERE ride_id = %s", (ride_id,))
        return int(cur.fetchone()[0])


def test_retention_never_drops_a_reading_no_summary_counts(conn, compress_settings, database_url):
    # Retention cuts at 2026-11-20 00:00:30. Ride 41 lies in partition h22, wholly expired;
    # ride 42 straddles the cutoff. Both were summarised; readings keep arriving for them,
    # some between the refresh of a run and its retention steps.
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-19 20:00:00"))
        old = write_ride(cur, 41, 1, started_at=at("2026-11-19 22:00:00"), seconds=600)
        straddling = write_ride(
            cur, 42, 1, started_at=at("2026-11-19 23:50:00"), seconds=600, bike_serial="SN0002"
        )
        cur.execute("UPDATE daily.rides SET ended_at = NULL")
        old.ended_at = straddling.ended_at = None
    run(conn, now=at("2026-11-19 23:59:00"), settings=compress_settings)  # summarised, kept
    assert _summarised(conn) == {41}

    late = {
        41: readings_frame(41, old.started_at, 60, seed=411, first_reading_s=601),
        42: readings_frame(42, straddling.started_at, 100, seed=421, first_reading_s=601),
    }

    def arrive(step: str, _rows: int) -> None:
        if step != "summarise" and late:  # after the summaries were brought up to date
            writer = psycopg2.connect(database_url)
            with writer, writer.cursor() as cur:
                for frame in late.values():
                    insert_readings(cur, frame)
            writer.close()
            old.readings = pd.concat([old.readings, late.pop(41)], ignore_index=True)
            straddling.readings = pd.concat([straddling.readings, late.pop(42)], ignore_index=True)

    first = run(conn, now=NOW, settings=compress_settings, on_batch=arrive)

    assert not late, "the late readings went in during the run"
    assert first.partitions_kept_unsettled >= 1  # h22 holds readings of 41 no summary counts
    with conn, conn.cursor() as cur:
        stored = stored_summaries(cur)
    # what was dropped was counted; what was not counted is still there
    assert stored[41]["readings_count"] + _count_readings(conn, 41) == 660
    assert stored[42]["readings_count"] + _count_readings(conn, 42) == 700

    second = run(conn, now=NOW, settings=compress_settings)

    assert second.summaries_updated == 2
    with conn, conn.cursor() as cur:
        stored = stored_summaries(cur)
    assert_summary(stored[41], expected_summary(old))
    assert_summary(stored[42], expected_summary(straddling))
    assert _count_readings(conn, 41) == 0  # h22 went once everything in it was counted
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), min(recorded_at) FROM daily.readings WHERE ride_id = 42",
        )
        left, first_left = cur.fetchone()
    assert left == 71 and first_left == at("2026-11-20 00:00:30")  # elapsed 630..700
