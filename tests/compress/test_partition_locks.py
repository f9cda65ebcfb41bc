"""Partitions locked for a moment (autovacuum) still go in the same run; pauses follow ingest.

Autovacuum vacuums and analyses every partition once its rows are in, taking SHARE UPDATE
EXCLUSIVE on it for a second or so, partition after partition in the order compress drops
them. A run that met one of those locks used to leave the partition for the next run, with
all its readings and their rides kept in daily meanwhile (19 of 51 partitions in the
benchmark). The locks here are taken by another session in that same mode.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from pydantic import SecretStr

from bench.compress import RETENTION_HOURS, Workload, generate
from services.common.config import Settings
from services.compress import job, repository, run
from tests.compress.builders import NOW, write_scenario

pytestmark = pytest.mark.postgres

OLD = "readings_20261119h20"  # holds only ride 101, old and finished


def _hold(database_url: str, names: list[str]) -> psycopg2.extensions.connection:
    """A session holding the lock autovacuum's VACUUM and ANALYZE take, on these partitions."""
    holder = psycopg2.connect(database_url, application_name="vacuum-like")
    with holder.cursor() as cur:
        for name in names:
            cur.execute(f"LOCK TABLE daily.{name} IN SHARE UPDATE EXCLUSIVE MODE")
    return holder


def _release_on_first_drop(holder: psycopg2.extensions.connection):
    def hook(step: str, _rows: int) -> None:
        if step == "drop_partition" and not holder.closed:
            holder.rollback()  # the vacuum is done with it
            holder.close()

    return hook


def _left(cur, table: str) -> int:
    cur.execute(f"SELECT count(*) FROM daily.{table}")
    row = cur.fetchone()
    return int(row[0]) if row else 0


def test_partition_locked_for_a_moment_is_dropped_in_the_same_run(conn, compress_settings):
    with conn, conn.cursor() as cur:
        write_scenario(cur)
    holder = _hold(compress_settings.require_database(), [OLD])
    try:
        result = run(
            conn, now=NOW, settings=compress_settings, on_batch=_release_on_first_drop(holder)
        )
    finally:
        holder.close()
    assert result.partitions_busy == 0
    assert result.partitions_retried == 1
    with conn, conn.cursor() as cur:
        assert OLD not in {p.name for p in repository.partitions_older_than(cur, cutoff=NOW)}
        cur.execute("SELECT count(*) FROM daily.readings WHERE ride_id = 101")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT count(*) FROM daily.rides WHERE ride_id = 101")
        assert cur.fetchone() == (0,)


def test_benchmark_shape_every_expired_partition_is_dropped_not_emptied_row_by_row(
    database_url,
):
    workload = Workload(rides=240, readings_per_ride=20, hours=6, riders=40, bikes=20)
    now = datetime.now(UTC).replace(microsecond=0)
    generate(database_url, workload, now=now)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=SecretStr(database_url),
        retention_hours=RETENTION_HOURS,
        compress_batch_rides=50,
    )
    cutoff = now - timedelta(hours=RETENTION_HOURS)
    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            expired = [p.name for p in repository.partitions_older_than(cur, cutoff=cutoff)]
        assert len(expired) >= 6
        # vacuums still at work on every other partition when the drops begin
        holder = _hold(database_url, expired[::2])
        try:
            result = run(conn, now=now, settings=settings, on_batch=_release_on_first_drop(holder))
        finally:
            holder.close()
        assert result.rides_summarised == workload.rides
        assert result.partitions_dropped == len(expired)
        assert result.partitions_busy == 0 and result.partitions_kept_unsettled == 0
        assert result.readings_deleted == 0  # nothing went row by row
        assert result.rides_removed == workload.rides
        with conn, conn.cursor() as cur:
            assert repository.partitions_older_than(cur, cutoff=cutoff) == []
            # only the rides in progress are left
            assert _left(cur, "readings") == workload.in_progress * 295
    finally:
        conn.close()


def test_reader_holding_a_partition_to_the_end_leaves_it_for_the_next_run(
    conn, compress_settings, monkeypatch
):
    monkeypatch.setattr(job, "BUSY_RETRY_S", 0.5)
    with conn, conn.cursor() as cur:
        write_scenario(cur)
    reader = psycopg2.connect(compress_settings.require_database())
    try:
        with reader.cursor() as rcur:
            rcur.execute(f"SELECT count(*) FROM daily.{OLD}")  # a long report
            result = run(conn, now=NOW, settings=compress_settings)
        assert result.partitions_busy == 1 and result.partitions_retried == 0
        with conn, conn.cursor() as cur:
            assert _left(cur, OLD) == 600  # kept whole for the next run's drop
    finally:
        reader.close()


def _store_offset(database_url: str, offset: int) -> None:
    """What ingest writes with each batch it commits."""
    with psycopg2.connect(database_url) as c, c.cursor() as cur:
        cur.execute(
            """INSERT INTO daily.ingest_offsets (consumer_group, topic, kafka_partition,
                   next_offset) VALUES ('deloton-ingest', 'telemetry', 0, %s)
               ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE
               SET next_offset = EXCLUDED.next_offset, updated_at = now()""",
            (offset,),
        )
    c.close()


def test_no_pause_while_ingest_is_idle(conn, compress_settings):
    with conn, conn.cursor() as cur:
        write_scenario(cur)
    result = run(conn, now=NOW, settings=compress_settings)
    assert result.pauses == 0 and result.pauses_skipped > 0
    assert "paused" not in result.seconds and result.paused == {}


def test_pauses_while_ingest_commits(conn, compress_settings):
    with conn, conn.cursor() as cur:
        write_scenario(cur)
    url = compress_settings.require_database()
    offsets = iter(range(1, 10_000))
    result = run(
        conn,
        now=NOW,
        settings=compress_settings,
        on_batch=lambda _step, _rows: _store_offset(url, next(offsets)),
    )
    assert result.pauses > 0 and result.pauses_skipped == 0
    assert result.seconds["paused"] == pytest.approx(sum(result.paused.values()), abs=0.01)
    assert set(result.paused) <= {"summarise", "refresh", "drop_partitions", "delete_rows"}
    assert "summarise" in result.paused
