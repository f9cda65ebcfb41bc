"""Compress against real ingest: a ride still being written is never summarised for good.

Ingest is paused mid-ride (here: the rest of the feed is not produced yet, so ingest has
nothing more to write) while compress runs every 10 s of the feed's clock for 5 minutes;
then the feed resumes. The clock is passed to `compress.run(now=...)` rather than slept.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg2
import pytest

from services.common.config import Settings
from services.compress import run
from services.simulator.fleet import Fleet, FleetConfig
from tests.compress.builders import READING_COLUMNS, Ride
from tests.compress.expected import assert_summary, expected_summary, stored_summaries
from tests.ingest.helpers import produce, run_ingest

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
PAUSE_S = 300
EVERY_S = 10


def _readings(conn: psycopg2.extensions.connection) -> pd.DataFrame:
    with conn, conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(READING_COLUMNS)} FROM daily.readings")
        frame = pd.DataFrame(cur.fetchall(), columns=READING_COLUMNS)
    frame["heart_rate"] = pd.array(frame.heart_rate, dtype="Int64")
    return frame


def _rides(conn: psycopg2.extensions.connection, frame: pd.DataFrame) -> dict[int, Ride]:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT ride_id, user_id, started_at, ended_at FROM daily.rides")
        rows = cur.fetchall()
    by_ride = dict(tuple(frame.groupby("ride_id")))
    return {
        rid: Ride(rid, uid, start, end, by_ride.get(rid, frame.iloc[0:0]))
        for rid, uid, start, end in rows
    }


def test_ingest_paused_mid_ride_while_compress_runs_every_10s(
    settings: Settings, db: psycopg2.extensions.connection
) -> None:
    cfg = settings.model_copy(
        update={"compress_batch_rides": 3, "retention_hours": 12, "ride_silence_s": 60}
    )
    fleet = Fleet(FleetConfig(bikes=8, rides=2, seconds=240, seed=3, start=START))
    messages = list(fleet.messages())
    pause_at = START.timestamp() + 130  # every bike is in the middle of its first ride
    before = [(m.key, m.value) for m in messages if m.at < pause_at]
    after = [(m.key, m.value) for m in messages if m.at >= pause_at]
    assert before and after

    produce(settings, settings.topic_raw, before)
    run_ingest(settings)
    # Ingest stored, with each partition's offset, the latest reading time it committed there.
    with db, db.cursor() as cur:
        cur.execute(
            """SELECT o.kafka_partition, o.event_time,
                      (SELECT max(r.recorded_at) FROM daily.readings r
                       JOIN daily.ride_feeds f USING (ride_id)
                       WHERE f.kafka_partition = o.kafka_partition)
               FROM daily.ingest_offsets o"""
        )
        progress = cur.fetchall()
    assert progress and all(stored == latest for _, stored, latest in progress), progress
    paused = datetime.fromtimestamp(pause_at, UTC)
    for k in range(PAUSE_S // EVERY_S + 1):
        result = run(db, now=paused + timedelta(seconds=k * EVERY_S), settings=cfg)
        assert result.rides_summarised == 0  # every ride is still being written
    produce(settings, settings.topic_raw, after)
    run_ingest(settings)
    end = datetime.fromtimestamp(messages[-1].at, UTC)
    run(db, now=end + timedelta(seconds=EVERY_S), settings=cfg)

    everything = _readings(db)
    assert len(everything) == 8 * 2 * 240  # ingest itself lost nothing
    rides = _rides(db, everything)
    with db, db.cursor() as cur:
        stored = stored_summaries(cur)
    # The first ride of each bike was closed by its second ride, and summarised whole.
    closed = {rid for rid, ride in rides.items() if ride.ended_at is not None}
    assert len(closed) >= 8
    assert closed <= set(stored)
    for rid in stored:
        assert_summary(stored[rid], expected_summary(rides[rid]))

    # Retention long after: only readings counted in a summary may go.
    run(db, now=end + timedelta(hours=13), settings=cfg)
    left = _readings(db)
    with db, db.cursor() as cur:
        stored = stored_summaries(cur)
    for rid, ride in rides.items():
        kept = int((left.ride_id == rid).sum())
        summarised = stored[rid]["readings_count"] if rid in stored else 0
        assert summarised + kept == len(ride.readings), rid
        if rid in stored:
            assert_summary(stored[rid], expected_summary(ride))
    with db, db.cursor() as cur:  # a removed ride's feed row went with it
        cur.execute(
            "SELECT count(*) FROM daily.ride_feeds f LEFT JOIN daily.rides d "
            "USING (ride_id) WHERE d.ride_id IS NULL"
        )
        assert cur.fetchone() == (0,)
