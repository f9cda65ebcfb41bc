"""Feeds that used to stop ingest: absurd clocks, late data after retention, oversized lines."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg2
from prometheus_client import REGISTRY

from services.common import pool
from services.common.config import Settings
from services.common.reads import rides
from services.compress import job as compress
from services.ingest.service import IngestService
from services.ingest.sessionizer import ride_id_for
from tests.harness import consume_all
from tests.ingest.helpers import produce, run_ingest, sample_messages
from tests.ingest.test_sessionizer import announce, pairs, stamp, value


@contextlib.contextmanager
def running_ingest(settings: Settings) -> Iterator[tuple[IngestService, threading.Thread]]:
    """An ingest service consuming in a thread of this process until the block ends."""
    service = IngestService(settings)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            service.run()
        except BaseException as exc:  # kept for the assertion below, not swallowed
            errors.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    try:
        yield service, worker
    finally:
        service.stop.set()
        worker.join(60)
    assert not errors, f"ingest raised {errors[0]!r}"


def wait_until(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Poll `check` until it holds or `timeout` seconds pass; return its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def scalar(dsn: str, sql: str, *params: Any) -> Any:
    # A stalled ingest may hold locks a count waits on: give up rather than hang the test.
    conn = psycopg2.connect(dsn, options="-c lock_timeout=10000")
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def keyed(key: str, values: list[bytes]) -> list[tuple[bytes | None, bytes]]:
    return [(key.encode(), v) for v in values]


# --- item: absurd timestamps -----------------------------------------------------------------


def test_a_reset_clock_and_a_future_clock_do_not_stall_ingest(
    settings: Settings, real_sample: Path
) -> None:
    """A bike stamped 1900 beside live bikes and a 2022 backfill: partitions only where needed."""
    dsn = settings.require_database()
    settings.ingest_max_future_s = 60
    live = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    reset = datetime(1900, 1, 1, 0, 0, 5, tzinfo=UTC)
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    feed = (
        keyed("SN0001", announce(live, user_id=1, serial="SN0001") + pairs(live, 1, 20))
        + keyed("SN1900", announce(reset, user_id=2, serial="SN1900") + pairs(reset, 1, 20))
        + keyed("SN0009", announce(ahead, user_id=3, serial="SN0009") + pairs(ahead, 1, 5))
        + [(b"SN0000", v) for _, v in sample_messages(real_sample)]  # real 2022 capture
    )
    produce(settings, settings.topic_raw, feed, partitions=1)
    with running_ingest(settings):
        landed = wait_until(
            lambda: (
                scalar(dsn, "SELECT count(*) FROM daily.readings") == 20 + 20 + 498
                and scalar(dsn, "SELECT count(*) FROM daily.rejects") == 2 + 10
            ),
            timeout=60,
        )
    assert landed, "ingest stalled"
    hours = scalar(
        dsn,
        "SELECT count(DISTINCT date_trunc('hour', recorded_at)) FROM daily.readings",
    )
    partitions = scalar(
        dsn, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'daily.readings'::regclass"
    )
    assert partitions == hours <= 5  # one per hour that holds readings, not 1900..now
    # The bike whose clock runs ahead is rejected line by line as bad_value, with why.
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT reason, detail, bike_serial FROM daily.rejects")
        rejects = cur.fetchall()
    conn.close()
    assert {(r, s) for r, _, s in rejects} == {("bad_value", "SN0009")}
    assert all(d.startswith("timestamp out of range") for _, d, _ in rejects)
    assert scalar(dsn, "SELECT count(*) FROM daily.rides WHERE started_at < '1901-01-01'") == 1


# --- item: late readings after retention dropped their hour ----------------------------------


def test_a_reading_whose_hour_was_dropped_is_too_late_not_a_crash(settings: Settings) -> None:
    dsn = settings.require_database()
    old = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=20)
    new = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    ride_a = ride_id_for("SN0001", stamp(old))
    ride_b = ride_id_for("SN0001", stamp(new))
    first = announce(old, serial="SN0001") + pairs(old, 1, 30) + announce(new, serial="SN0001")
    produce(settings, settings.topic_raw, keyed("SN0001", first + pairs(new, 1, 10)), 1)
    with running_ingest(settings) as (service, _):
        assert wait_until(lambda: scalar(dsn, "SELECT count(*) FROM daily.readings") == 40)
        # Retention: ride A is summarised and its hour dropped while ingest keeps running.
        result = compress.run(settings, now=datetime.now(UTC))
        assert result.partitions_dropped >= 1
        assert scalar(dsn, "SELECT count(*) FROM historical.rides WHERE ride_id = %s", ride_a)
        # A late tail of ride A (its hour is gone) arrives between more readings of ride B.
        late = pairs(old, 31, 31) + pairs(new, 11, 20)
        produce(settings, settings.topic_raw, keyed("SN0001", late), 1)
        assert wait_until(
            lambda: (
                scalar(dsn, "SELECT count(*) FROM daily.readings WHERE ride_id = %s", ride_b) == 20
            )
        )
        assert service.stats.rejects == 2  # the batch was read again, minus the late pair
    assert scalar(dsn, "SELECT count(*) FROM daily.readings WHERE ride_id = %s", ride_a) == 0
    too_late = "SELECT count(*) FROM daily.rejects WHERE reason = 'too_late'"
    assert scalar(dsn, too_late) == 2

    # A fresh process has no cache of partitions; the next late reading is too late all the same.
    produce(settings, settings.topic_raw, keyed("SN0001", pairs(old, 32, 32)), 1)
    run_ingest(settings)
    assert scalar(dsn, too_late) == 4
    assert scalar(dsn, "SELECT count(*) FROM daily.readings WHERE ride_id = %s", ride_a) == 0
    assert scalar(dsn, "SELECT count(*) FROM daily.readings WHERE ride_id = %s", ride_b) == 20


# --- item: oversized lines -------------------------------------------------------------------


def _counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_oversized_lines_are_rejected_without_a_crash_loop(
    settings: Settings, real_sample: Path
) -> None:
    dsn = settings.require_database()
    live = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    # 520 KB SYSTEM line whose user_id is a long string: its repr used to go into the detail.
    system = announce(live)[2]
    big = json.loads(system)["log"].replace('"user_id":7', '"user_id":"' + "9" * 520_000 + '"')
    # 880 KB of quotes: every one is escaped again inside the dead letter, past 1 MB.
    huge = f"{stamp(live)} mendoza v9: [SYSTEM] data = " + '{"a": "' + '\\"' * 220_000 + '"}\n'
    messages = [
        (b"SN0001", value(big)),
        (b"SN0002", value(huge)),
        *[(b"SN0000", v) for _, v in sample_messages(real_sample)],
    ]
    assert 500_000 < len(messages[0][1]) < 1_000_000 and 850_000 < len(messages[1][1]) < 1_000_000
    dropped = _counter("deloton_ingest_dead_letters_dropped_total", reason="too_large")
    produce(settings, settings.topic_raw, messages, partitions=1)
    with running_ingest(settings):
        assert wait_until(lambda: scalar(dsn, "SELECT count(*) FROM daily.readings") == 498)
        assert wait_until(lambda: scalar(dsn, "SELECT count(*) FROM daily.rejects") == 2)
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT bike_serial, reason, length(detail), raw FROM daily.rejects")
        rows = {r[0]: r for r in cur.fetchall()}
    conn.close()
    assert rows["SN0001"][1] == "bad_value" and rows["SN0001"][2] <= 1000
    assert rows["SN0002"][1] == "bad_value" and rows["SN0002"][2] <= 1000
    assert bytes(rows["SN0001"][3]) == messages[0][1]  # the raw line is kept whole
    assert bytes(rows["SN0002"][3]) == messages[1][1]
    # The first dead letter fits once its detail is capped; the second goes to the table only.
    letters = consume_all(settings.kafka_bootstrap_servers or "", settings.topic_rejects, 1, 20)
    assert len(letters) == 1
    letter = orjson.loads(letters[0][1])
    assert letter["bike_serial"] == "SN0001" and len(letter["detail"]) <= 1000
    assert _counter("deloton_ingest_dead_letters_dropped_total", reason="too_large") == dropped + 1


def test_a_late_reading_for_an_hour_left_detached_waits_for_compress_not_a_crash(
    settings: Settings,
) -> None:
    """Compress detaches an expired hour and dies before dropping it: a late reading of that
    hour finds the hour's name taken but no partition. Ingest waits for compress to settle
    the hour (its next run repairs it) instead of crashing, then lands the batch."""
    dsn = settings.require_database()
    old = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=20)
    new = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    ride_a = ride_id_for("SN0001", stamp(old))
    ride_b = ride_id_for("SN0001", stamp(new))
    first = announce(old, serial="SN0001") + pairs(old, 1, 30) + announce(new, serial="SN0001")
    produce(settings, settings.topic_raw, keyed("SN0001", first + pairs(new, 1, 10)), 1)
    with running_ingest(settings) as (_, thread):
        assert wait_until(lambda: scalar(dsn, "SELECT count(*) FROM daily.readings") == 40)
        compress.run(settings, now=datetime.now(UTC))  # ride A summarised, its hour dropped
        assert scalar(dsn, "SELECT count(*) FROM historical.rides WHERE ride_id = %s", ride_a)
        # The hour comes back (a late reading), then a compress run detaches it and dies.
        hour = "readings_" + old.strftime("%Y%m%dh%H")
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT daily.ensure_readings_partitions(%s::timestamptz, %s::timestamptz)",
                (old, old),
            )
            cur.execute(f"ALTER TABLE daily.readings DETACH PARTITION daily.{hour}")
        late = pairs(old, 31, 31) + pairs(new, 11, 20)
        produce(settings, settings.topic_raw, keyed("SN0001", late), 1)
        time.sleep(3)  # ingest meets the leftover and has to wait
        assert thread.is_alive()
        compress.run(settings, now=datetime.now(UTC))  # the repair settles the detached hour
        conn.close()
        assert wait_until(
            lambda: (
                scalar(dsn, "SELECT count(*) FROM daily.readings WHERE ride_id = %s", ride_b) == 20
            )
        )
        assert thread.is_alive()
    assert scalar(dsn, "SELECT count(*) FROM daily.rejects WHERE reason = 'too_late'") == 2


# --- item: the longest city a rider's address can carry ----------------------------------------


def test_a_city_as_long_as_an_address_allows_is_kept_and_found(settings: Settings) -> None:
    # Ingest keeps 500 characters of an address; its city can take 496 of them, about 2 KB of
    # incompressible UTF-8. A city index entry over 2,704 bytes is refused by PostgreSQL, and
    # with it the rider's row: ingest could not store the batch (a crash loop) nor compress
    # the rider.
    dsn = settings.require_database()
    live = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    city = "".join(chr(0x20000 + (i * 7919) % 0xA6DF) for i in range(496))
    system = json.loads(announce(live)[2])["log"].replace(
        "Flat 4,Harris mill,Ryantown,E8 5BR", f"1,{city},E8"
    )
    first = announce(live)
    lines = [*first[:2], value(system), *pairs(live, 1, 20)]
    produce(settings, settings.topic_raw, keyed("SN0007", lines), 1)
    with running_ingest(settings):
        assert wait_until(lambda: scalar(dsn, "SELECT count(*) FROM daily.readings") == 20)
    assert scalar(dsn, "SELECT octet_length(city) FROM daily.riders WHERE user_id = 7") > 1900
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:  # the historical copy compress keeps of the rider
        cur.execute("INSERT INTO historical.riders SELECT * FROM daily.riders")
    conn.close()
    readers = pool.open_pool(dsn, max_size=1)
    try:
        with pool.read_only(readers) as c:
            found = rides.rides_in_city(c, city=city)
    finally:
        readers.close()
    assert [r.ride_id for r in found] == [ride_id_for("SN0007", stamp(live))]
