"""The shared ride reads: the same ride before and after compress, deleted rides gone."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest

from services.common import pool
from services.common.reads import rides
from services.compress import run
from tests.compress.builders import NOW, add_alert, add_rider, at, write_ride

pytestmark = pytest.mark.postgres


def read(readers, fn, **kwargs):
    with pool.read_only(readers) as c:
        return fn(c, **kwargs)


def approx_summary(summary: rides.RideSummary) -> dict[str, object]:
    return {
        k: pytest.approx(v, rel=1e-12) if isinstance(v, float) else v
        for k, v in dataclasses.asdict(summary).items()
    }


def test_ride_reads_the_same_before_and_after_compress(conn, readers, compress_settings):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        write_ride(cur, 11, 1, started_at=at("2026-11-20 09:00:00"), seconds=1800)
        # closed by silence, not by a next ride: compress ends it at its last reading
        write_ride(cur, 12, 1, started_at=at("2026-11-20 10:00:00"), seconds=600, ended=False,
                   bike_serial="SN0002", hr_missing=0.7)  # fmt: skip
        add_alert(cur, 11, 1, 1, detected_at=at("2026-11-20 09:10:00"))
    before = {i: read(readers, rides.get_ride, ride_id=i) for i in (11, 12)}
    assert before[11] is not None and before[12] is not None
    assert not before[11].summarised and before[11].summary.alert_count == 1
    assert before[11].summary.readings_count == 1800
    assert before[12].ended_at is None and before[12].in_progress

    assert run(conn, now=NOW, settings=compress_settings).rides_summarised == 2
    for ride_id, old in before.items():
        new = read(readers, rides.get_ride, ride_id=ride_id)
        assert new is not None and new.summarised
        assert approx_summary(new.summary) == approx_summary(old.summary)
        assert new.duration_s == old.duration_s
        assert (new.started_at, new.user_id, new.bike_serial) == (
            old.started_at,
            old.user_id,
            old.bike_serial,
        )
    assert before[11].ended_at == read(readers, rides.get_ride, ride_id=11).ended_at
    # The silent ride: still open before the roll-up, ended at its last reading after it.
    assert read(readers, rides.get_ride, ride_id=12).ended_at == at("2026-11-20 10:10:00")


def test_in_progress_ride_has_no_end_and_a_running_duration(conn, readers):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        write_ride(cur, 21, 1, started_at=at("2026-11-20 11:50:00"), seconds=300, ended=False)
    ride = read(readers, rides.get_ride, ride_id=21)
    assert ride is not None and ride.ended_at is None
    assert ride.duration_s == 300  # up to the last reading, one per second from second 1
    assert read(readers, rides.get_ride, ride_id=999) is None


def tombstone(conn, ride_id: int) -> None:
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO historical.deleted_rides (ride_id) VALUES (%s)", (ride_id,))


def test_deleted_rides_are_gone_from_every_read(conn, readers, compress_settings):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        write_ride(cur, 31, 1, started_at=at("2026-11-20 09:00:00"), seconds=120)
        write_ride(cur, 32, 1, started_at=at("2026-11-20 09:10:00"), seconds=120)
        write_ride(cur, 33, 1, started_at=at("2026-11-20 09:20:00"), seconds=120)
    run(conn, now=NOW, settings=compress_settings)  # 31..33 now in both schemas
    with conn, conn.cursor() as cur:
        write_ride(cur, 34, 1, started_at=at("2026-11-20 11:58:00"), seconds=30, ended=False)
    tombstone(conn, 32)  # summarised
    tombstone(conn, 34)  # still only in daily
    day = date(2026, 11, 20)
    assert [r.ride_id for r in read(readers, rides.rides_of_rider, user_id=1)] == [33, 31]
    assert [r.ride_id for r in read(readers, rides.rides_of_day, day=day)] == [31, 33]
    assert [r.ride_id for r in read(readers, rides.rides_in_city, city="leeds")] == [33, 31]
    assert read(readers, rides.get_ride, ride_id=32) is None
    assert read(readers, rides.get_ride, ride_id=34) is None
    assert read(readers, rides.ride_readings, ride_id=34) == []
    assert len(read(readers, rides.ride_readings, ride_id=33)) == 120


def test_rides_of_a_day_include_those_crossing_midnight_from_both_schemas(
    conn, readers, compress_settings
):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-19 08:00:00"))
        add_rider(cur, 2, details_at=at("2026-11-19 08:00:00"))
        write_ride(cur, 41, 1, started_at=at("2026-11-19 23:50:00"), seconds=1200)  # across
        write_ride(cur, 42, 2, started_at=at("2026-11-19 12:00:00"), seconds=60)
    run(conn, now=NOW, settings=compress_settings)
    with conn, conn.cursor() as cur:  # the rider comes back, as ingest would write it
        add_rider(cur, 2, details_at=at("2026-11-20 10:59:00"))
        write_ride(cur, 43, 2, started_at=at("2026-11-20 11:00:00"), seconds=60, ended=False)
    on = {
        d: [r.ride_id for r in read(readers, rides.rides_of_day, day=date(2026, 11, d))]
        for d in (18, 19, 20)
    }
    assert on == {18: [], 19: [42, 41], 20: [41, 43]}
    page1 = read(readers, rides.rides_of_day, day=date(2026, 11, 20), limit=1)
    page2 = read(readers, rides.rides_of_day, day=date(2026, 11, 20), limit=1, offset=1)
    assert [r.ride_id for r in page1 + page2] == [41, 43]


def test_rides_of_a_rider_page_newest_first_without_duplicates(conn, readers, compress_settings):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        for i in range(5):
            write_ride(cur, 50 + i, 1, started_at=at("2026-11-20 09:00:00") + timedelta(minutes=10 * i),
                       seconds=60)  # fmt: skip
    run(conn, now=NOW, settings=compress_settings)
    with conn, conn.cursor() as cur:  # not summarised yet: only in daily
        write_ride(cur, 59, 1, started_at=at("2026-11-20 11:59:00"), seconds=20, ended=False)
    pages = [read(readers, rides.rides_of_rider, user_id=1, limit=2, offset=o) for o in (0, 2, 4)]
    ids = [r.ride_id for page in pages for r in page]
    assert ids == [59, 54, 53, 52, 51, 50]
    assert [r.summarised for r in pages[0]] == [False, True]


def test_city_match_ignores_case_and_accents_and_uses_current_details(conn, readers):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"), city="São Paulo")
        add_rider(cur, 2, details_at=at("2026-11-20 08:00:00"), city="Leeds")
        write_ride(cur, 61, 1, started_at=at("2026-11-20 09:00:00"), seconds=30)
        write_ride(cur, 62, 2, started_at=at("2026-11-20 09:10:00"), seconds=30)
        # rider 2 was in São Paulo once (historical row), but lives in Leeds now
        cur.execute("INSERT INTO historical.riders SELECT * FROM daily.riders WHERE user_id = 2")
        cur.execute("UPDATE historical.riders SET city = 'SAO PAULO' WHERE user_id = 2")
    for query in ("sao paulo", "SÃO PAULO", "São Paulo"):
        assert [r.ride_id for r in read(readers, rides.rides_in_city, city=query)] == [61]
    assert read(readers, rides.rides_in_city, city="'; DROP TABLE daily.rides; --") == []
    assert [r.ride_id for r in read(readers, rides.rides_in_city, city="LEEDS")] == [62]


def test_readings_page_by_elapsed_seconds(conn, readers):
    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"))
        # across an hour boundary: two partitions
        write_ride(cur, 71, 1, started_at=at("2026-11-20 09:59:00"), seconds=100, hr_missing=0.5)
    first = read(readers, rides.ride_readings, ride_id=71, limit=60)
    rest = read(readers, rides.ride_readings, ride_id=71, after_elapsed_s=first[-1].elapsed_s)
    elapsed = [r.elapsed_s for r in first + rest]
    assert elapsed == list(range(1, 101))
    assert any(r.heart_rate is None for r in first + rest)
    assert all(r.heart_rate != 0 for r in first + rest)


def test_city_page_reads_its_residents_rides_from_an_index_only(conn):
    # Each resident's rides cost a table page each when ride_id was not in the index on
    # (user_id, started_at): about 1,000 scattered pages for a city of 100 riders. Scans are
    # forced off so that the plan shows what the indexes allow at any table size.
    with conn, conn.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_bitmapscan = off")
        cur.execute(
            "EXPLAIN " + rides._CITY_PAGE, {"city": "Leeds", "window": 50, "limit": 50, "offset": 0}
        )
        plan = "\n".join(row[0] for row in cur.fetchall())
    scans = [line.strip() for line in plan.splitlines() if " on rides h " in line]
    assert scans and all(s.startswith("->  Index Only Scan") for s in scans), plan
