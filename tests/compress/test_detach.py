"""Partitions go by DETACH CONCURRENTLY then DROP; a half-done detach is finished or undone."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from services.compress import job, repository, run
from tests.compress.builders import (
    NOW,
    add_ride,
    at,
    insert_readings,
    readings_frame,
    table_state,
    write_scenario,
)

pytestmark = pytest.mark.postgres

OLD = "readings_20261119h20"  # holds only ride 101, old and finished


@pytest.fixture
def clean_state(reference_conn, compress_settings):
    """The table state after one uninterrupted run over the scenario."""
    with reference_conn, reference_conn.cursor() as cur:
        write_scenario(cur)
    run(reference_conn, now=NOW, settings=compress_settings)
    with reference_conn, reference_conn.cursor() as cur:
        return table_state(cur)


def _state(conn):
    with conn, conn.cursor() as cur:
        return table_state(cur)


def _children(conn) -> set[str]:
    with conn, conn.cursor() as cur:
        cur.execute(
            """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'daily.readings'::regclass"""
        )
        return {name for (name,) in cur.fetchall()}


def _pending(conn) -> list[str]:
    with conn, conn.cursor() as cur:
        return [p.name for p in repository.pending_detaches(cur)]


def _leave_detach_pending(database_url: str, name: str) -> None:
    """Start DETACH ... CONCURRENTLY and have it time out between its two transactions.

    A transaction that has used daily.readings is open, so the detach's wait for it ends in
    lock_timeout: exactly the state a crash or a cancel at that point leaves.
    """
    reader = psycopg2.connect(database_url)
    detacher = psycopg2.connect(database_url)
    detacher.autocommit = True
    try:
        with reader.cursor() as rcur:
            rcur.execute("SELECT count(*) FROM daily.readings")
            with detacher.cursor() as dcur, pytest.raises(psycopg2.errors.LockNotAvailable):
                dcur.execute("SET lock_timeout = '300ms'")
                dcur.execute(
                    f"ALTER TABLE daily.readings DETACH PARTITION daily.{name} CONCURRENTLY"
                )
        reader.rollback()
    finally:
        reader.close()
        detacher.close()


def test_detach_left_pending_is_finalized_then_dropped(
    conn, compress_settings, clean_state, database_url
):
    with conn, conn.cursor() as cur:
        write_scenario(cur)
    _leave_detach_pending(database_url, OLD)
    assert _pending(conn) == [OLD]

    result = run(conn, now=NOW, settings=compress_settings)

    assert _pending(conn) == []
    assert result.partitions_repaired == 1
    assert _state(conn) == clean_state


def test_pending_detach_of_a_partition_with_uncounted_readings_is_put_back(
    conn, compress_settings, database_url
):
    # h22 holds readings of ride 103, still in progress: not one of them is summarised.
    with conn, conn.cursor() as cur:
        write_scenario(cur)
        cur.execute("SELECT count(*) FROM daily.readings_20261119h22 WHERE ride_id = 103")
        (before,) = cur.fetchone()
    _leave_detach_pending(database_url, "readings_20261119h22")

    result = run(conn, now=NOW, settings=compress_settings)

    assert result.partitions_reattached == 1 and _pending(conn) == []
    assert "readings_20261119h22" in _children(conn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM daily.readings WHERE recorded_at >= %s AND recorded_at < %s",
            (at("2026-11-19 22:00:00"), at("2026-11-19 23:00:00")),
        )
        assert cur.fetchone()[0] == before


def _late_ride_into(table: str, database_url: str) -> int:
    """Readings of a ride nobody summarised, written straight into `table` (what a backfill
    racing the check before the detach would have left in it); returns how many."""
    writer = psycopg2.connect(database_url)
    try:
        with writer, writer.cursor() as cur:
            add_ride(
                cur,
                110,
                1,
                started_at=at("2026-11-19 20:30:00"),
                ended_at=None,
                bike_serial="SN0010",
            )
            frame = readings_frame(110, at("2026-11-19 20:30:00"), 120, seed=110)
            insert_readings(cur, frame, table=table)
            return len(frame)
    finally:
        writer.close()


def test_uncounted_readings_found_after_the_detach_are_put_back(
    conn, compress_settings, database_url
):
    written = {}

    def race(step: str, _rows: int) -> None:
        if step == "detach_partition" and not written:
            written[OLD] = _late_ride_into(OLD, database_url)

    result = None
    with conn, conn.cursor() as cur:
        write_scenario(cur)
    result = run(conn, now=NOW, settings=compress_settings, on_batch=race)

    assert written and result.partitions_reattached == 1
    assert OLD in _children(conn)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM daily.readings WHERE ride_id = 110")
        assert cur.fetchone()[0] == written[OLD]
        # ride 101's readings, all summarised, were deleted row by row instead
        cur.execute("SELECT count(*) FROM daily.readings WHERE ride_id = 101")
        assert cur.fetchone()[0] == 0
        cur.execute(
            "UPDATE daily.rides SET ended_at = %s WHERE ride_id = 110", (at("2026-11-19 20:32:01"),)
        )
    later = run(conn, now=NOW, settings=compress_settings)
    assert later.rides_summarised == 1 and OLD not in _children(conn)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT readings_count FROM historical.rides WHERE ride_id = 110")
        assert cur.fetchone() == (written[OLD],)


def test_detached_table_whose_hour_was_created_again_is_copied_back(
    conn, compress_settings, database_url
):
    with conn, conn.cursor() as cur:
        write_scenario(cur)
    seen = {}

    def race(step: str, _rows: int) -> None:
        if step == "detach_partition" and not seen:
            seen["n"] = _late_ride_into(OLD, database_url)
            writer = psycopg2.connect(database_url)
            with writer, writer.cursor() as cur:  # the hour's partition, made again meanwhile
                cur.execute(
                    "CREATE TABLE daily.readings_again PARTITION OF daily.readings "
                    "FOR VALUES FROM (%s) TO (%s)",
                    (at("2026-11-19 20:00:00"), at("2026-11-19 21:00:00")),
                )
            writer.close()

    result = run(conn, now=NOW, settings=compress_settings, on_batch=race)

    assert result.partitions_reattached == 1
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('daily.readings_20261119h20')")
        assert cur.fetchone() == (None,)
        cur.execute("SELECT count(*) FROM daily.readings_again WHERE ride_id = 110")
        assert cur.fetchone()[0] == seen["n"]


def _wait_until_waiting(conn, pid: int) -> None:
    """Until the backend `pid` waits on a lock (tests bound it by their own timeout)."""
    while True:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))
            row = cur.fetchone()
        if row and row[0] == "Lock":
            return
        time.sleep(0.02)


@pytest.mark.timeout(120)
def test_ingest_writes_while_a_partition_is_being_removed(
    conn, compress_settings, database_url, monkeypatch
):
    # A DROP waits for ACCESS EXCLUSIVE on daily.readings behind ingest's open transaction,
    # and every later write waits behind the DROP; a concurrent detach blocks no write.
    monkeypatch.setattr(job, "DROP_LOCK_TIMEOUT_MS", 60_000)
    with conn, conn.cursor() as cur:
        write_scenario(cur)
    in_flight = psycopg2.connect(database_url)  # an ingest batch, not yet committed
    later = psycopg2.connect(database_url)  # the next batch
    compressor = psycopg2.connect(database_url, application_name="deloton-compress")
    outcome: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: outcome.update(result=run(compressor, now=NOW, settings=compress_settings))
    )
    try:
        with in_flight.cursor() as cur:
            cur.execute(
                "INSERT INTO daily.readings VALUES (106, 5000, %s, 10, 120, 80, 100.0)",
                (at("2026-11-20 11:20:00"),),
            )
        worker.start()
        _wait_until_waiting(conn, compressor.get_backend_pid())
        with later, later.cursor() as cur:
            cur.execute("SET LOCAL lock_timeout = '3s'")
            cur.execute(
                "INSERT INTO daily.readings VALUES (106, 5001, %s, 10, 120, 80, 100.0)",
                (at("2026-11-20 11:20:01"),),
            )
        in_flight.commit()
        worker.join(timeout=90)
    finally:
        in_flight.close()
        later.close()
        if worker.is_alive():
            worker.join(timeout=90)
        compressor.close()
    result = outcome["result"]
    assert result.partitions_dropped == 3 and result.partitions_busy == 0
