"""Ingest's memory and saved state stay bounded: idle bikes are forgotten, held readings capped."""

from __future__ import annotations

from datetime import timedelta

import psycopg2
from prometheus_client import REGISTRY

from services.common.config import Settings
from services.ingest.service import IngestService
from services.ingest.sessionizer import ride_id_for
from tests.ingest.helpers import produce
from tests.ingest.test_sessionizer import (
    T0,
    Run,
    announce,
    expected,
    pairs,
    ride,
    stamp,
    value,
)

# --- the sessioniser alone -------------------------------------------------------------------


def test_idle_bikes_with_closed_rides_are_evicted_and_recorded_in_the_batch() -> None:
    run = Run()
    run.feed(ride(T0, 5), b"SN0001")  # closed by silence below, then idle
    run.feed(ride(T0 + timedelta(minutes=9), 5), b"SN0002")  # closed, but recent
    run.feed(ride(T0 + timedelta(minutes=10), 5), b"SN0003")  # still open
    run.feed([value("--------- beginning of a new ride\n")], b"SN0005")  # a banner, nothing else
    # Silence is judged on when lines were read: SN0003 was read last, 100 s after the others.
    run.s.mark_seen({"SN0001", "SN0002", "SN0005"}, 0.0)
    run.s.mark_seen({"SN0003"}, 100.0)
    run.s.close_silent(run.batch, {0: 100.0}, 60)
    evicted = run.s.evict_idle(run.batch, run.s.partition_now, 300)
    assert evicted == 2
    assert set(run.s.bikes) == {"SN0002", "SN0003"}
    assert run.batch.evicted == {0: {"SN0001", "SN0005"}}
    # A batch of evictions (and of rides closed by silence) alone is flushed.
    assert len(run.batch) == run.batch.messages + 1 + len(run.batch.ride_ends)
    # A forgotten bike that comes back starts afresh and loses nothing of its new ride.
    back = T0 + timedelta(minutes=11)
    run.feed(ride(back, 3), b"SN0001")
    assert [r.elapsed for r in run.rows(ride_id_for("SN0001", stamp(back)))] == [1, 2, 3]


def test_eviction_measures_silence_on_the_bikes_partition() -> None:
    run = Run().feed(ride(T0, 5), b"SN0001").feed(ride(T0, 5), b"SN0002", partition=1)
    later = stamp(T0 + timedelta(minutes=20))
    run.s.mark_seen({"SN0001", "SN0002"}, 0.0)
    run.s.close_silent(run.batch, {1: 100.0}, 60)
    assert run.s.evict_idle(run.batch, {1: later}, 300) == 1
    assert set(run.s.bikes) == {"SN0001"}


def test_saved_state_holds_only_the_batchs_bikes() -> None:
    run = Run()
    for n in range(50):
        run.feed(ride(T0, 2, serial=f"SN{n:04d}"), f"SN{n:04d}".encode())
    assert set(run.s.dump_partition(0, {"SN0003", "SN0999"})) == {"SN0003"}
    assert len(run.s.dump_partition(0)) == 50


def test_held_readings_are_capped_per_bike() -> None:
    run = Run(split=True, max_held=10)
    run.feed(pairs(T0, 1, 25), topic="deloton.telemetry")
    assert len(run.s.bikes["SN0007"].held) == 10
    assert run.reasons() == {"orphan": 30}  # 15 readings that did not fit, both lines each
    # A bike with held readings is not idle: they wait for its SYSTEM line.
    later = {0: stamp(T0 + timedelta(hours=1))}
    assert run.s.evict_idle(run.batch, later, 300) == 0


def test_reject_detail_is_capped() -> None:
    start = stamp(T0)
    line = f'{start} mendoza v9: [SYSTEM] data = {{"user_id": "{"9" * 520_000}"}}\n'
    run = Run().feed([value(line)])
    (reject,) = run.batch.rejects
    assert reject.reason == "bad_value" and len(reject.detail) <= 500
    assert len(reject.raw) > 520_000  # the line itself is kept whole


def test_too_late_readings_are_rejected_and_the_rest_written() -> None:
    run = Run().feed(ride(T0, 3))
    ride_id = ride_id_for("SN0007", stamp(T0))
    run.s.reject_too_late({(ride_id, stamp(T0)[:13])})
    run.feed(pairs(T0, 4, 5))
    assert [r.elapsed for r in run.rows()] == [1, 2, 3]
    assert run.reasons() == {"too_late": 4}
    other = T0 + timedelta(hours=2)
    run.feed(ride(other, 2))
    assert [r.elapsed for r in run.rows(ride_id_for("SN0007", stamp(other)))] == [1, 2]
    assert expected(other, 2).ts == run.rows()[-1].ts


# --- real broker and PostgreSQL --------------------------------------------------------------


def _gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


def test_state_stays_bounded_over_many_bikes_that_come_and_go(
    settings: Settings, db: psycopg2.extensions.connection
) -> None:
    """300 bikes over an hour of feed, one short ride each: only the recent ones are kept."""
    # The hour is read in seconds: rides close after 1 s of read silence, as the 60 s of a
    # real-time feed would, and are then forgotten after 300 s of their partition's event time.
    settings = settings.model_copy(update={"ingest_evict_idle_s": 300, "ride_silence_s": 1})
    feed = []
    for n in range(300):
        key = f"SN{n:04d}"
        start = T0 + timedelta(seconds=12 * n)
        feed += [(key.encode(), v) for v in ride(start, 5, serial=key, user_id=n + 1)]
    # The first bike comes back at the end, long after it was forgotten.
    back = T0 + timedelta(seconds=12 * 300)
    feed += [(b"SN0000", v) for v in announce(back, serial="SN0000") + pairs(back, 1, 5)]
    produce(settings, settings.topic_raw, feed, partitions=1)
    service = IngestService(settings, track_state=True)
    stats = service.run(until_idle=5)
    assert stats.consumed == len(feed)
    with db.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT ride_id) FROM daily.readings")
        assert cur.fetchone() == (300 * 5 + 5, 301)
        cur.execute("SELECT count(*) FROM daily.rejects")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT s.state FROM daily.ingest_state s")
        (state,) = cur.fetchone()
    # Kept: bikes whose last reading is within 300 s (+ silence) of the feed's end; about 30.
    assert 20 <= len(state) <= 40
    assert "SN0000" in state and "SN0001" not in state
    assert _gauge("deloton_ingest_bikes_tracked") == len(state)
    assert (_gauge("deloton_ingest_bikes_evicted_total") or 0) >= 260
    assert stats.state_bytes and max(stats.state_bytes) > 0


def test_a_ride_closed_by_silence_alone_makes_a_batch_to_flush() -> None:
    """A quiet partition whose last ride closes by silence has nothing else to write: the
    close alone must reach the database (and its ride_ended event), or the ride stays open."""
    run = Run()
    run.feed(ride(T0, 5), b"SN0001")
    run.batch = type(run.batch)()  # the readings were flushed already
    run.s.mark_seen({"SN0001"}, 0.0)
    assert run.s.close_silent(run.batch, {0: 100.0}, 60) == 1
    assert run.batch.messages == 0 and len(run.batch) == 1
