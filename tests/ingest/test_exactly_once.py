"""Crashes, restarts, several processes and split topics leave exactly the rows of a clean run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from services.common.config import Settings
from services.ingest.models import Announcement, Banner
from services.ingest.parser import Parser
from services.simulator.fleet import Fleet, FleetConfig
from tests import harness
from tests.ingest.helpers import ingest_single_and_split, produce, run_ingest

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
TABLES = {
    "readings": "SELECT * FROM daily.readings ORDER BY ride_id, elapsed_s",
    "rides": "SELECT * FROM daily.rides ORDER BY ride_id",
    "riders": "SELECT * FROM daily.riders ORDER BY user_id",
    # written_at is when a batch committed, not data: a replay writes it again.
    "bikes": "SELECT bike_serial, model, first_seen_at, last_seen_at FROM daily.bikes "
    "ORDER BY bike_serial",
    "rejects": "SELECT topic, kafka_partition, kafka_offset, message_key, raw, reason, detail, "
    "bike_serial FROM daily.rejects ORDER BY topic, kafka_partition, kafka_offset",
}


def snapshot(dsn: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row ingest writes, in a stable order."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            out = {}
            for name, sql in TABLES.items():
                cur.execute(sql)
                out[name] = [
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in cur.fetchall()
                ]
            return out
    finally:
        conn.close()


def count(dsn: str, sql: str) -> int:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
            return int(row[0]) if row else 0
    finally:
        conn.close()


@pytest.fixture
def second_database(pg_server: str, pg_template: str) -> Iterator[str]:
    """Another fresh database, for a reference run beside the test's own."""
    with harness.cloned_database(pg_server, pg_template) as dsn:
        yield dsn


def fleet_messages(bikes: int, rides: int, seconds: int, faults: float = 0.0, seed: int = 7):
    fleet = Fleet(
        FleetConfig(
            bikes=bikes, rides=rides, seconds=seconds, seed=seed, start=START, faults=faults
        )
    )
    return fleet, list(fleet.messages())


def reference_run(settings: Settings, dsn: str) -> None:
    """An undisturbed run of one in-process ingest, into another database and group."""
    reference = settings.model_copy(update={"ingest_group": settings.ingest_group + "-ref"})
    reference.database_url = type(settings.database_url)(dsn)  # type: ignore[misc]
    run_ingest(reference)


def ingest_process(settings: Settings, dsn: str, *extra: str) -> subprocess.Popen[bytes]:
    """`deloton ingest` as its own process, configured through the environment."""
    env = harness.service_env(settings, DATABASE_URL=dsn, INGEST_BATCH_SIZE="1000")
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "--log-level", "WARNING", "ingest", *extra],
        env=env,
        cwd=harness.ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_ok(proc: subprocess.Popen[bytes], timeout: float = 240) -> None:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()[-2000:]


def test_sigterm_then_sigkill_mid_batch_and_restart_leave_the_exact_rows(
    settings: Settings, database_url: str, second_database: str
) -> None:
    _, messages = fleet_messages(bikes=60, rides=2, seconds=100, faults=0.01)
    produce(settings, settings.topic_raw, ((m.key, m.value) for m in messages))
    reference_run(settings, second_database)
    expected = snapshot(second_database)
    assert len(expected["readings"]) > 10_000

    # Stopped twice mid-stream: gracefully (SIGTERM: finish the batch, commit, leave the
    # group, exit 0), then brutally (SIGKILL, possibly inside a transaction).
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = ingest_process(settings, database_url)
        written = count(database_url, "SELECT count(*) FROM daily.readings")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            now = count(database_url, "SELECT count(*) FROM daily.readings")
            if now > written + 2_000:
                break
            time.sleep(0.05)
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
        if sig == signal.SIGTERM:
            assert code == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else code
    assert count(database_url, "SELECT count(*) FROM daily.readings") < len(expected["readings"])
    wait_ok(ingest_process(settings, database_url, "--until-idle", "2"))
    assert snapshot(database_url) == expected


def test_two_processes_share_the_partitions_and_write_what_one_writes(
    settings: Settings, database_url: str, second_database: str
) -> None:
    _, messages = fleet_messages(bikes=40, rides=2, seconds=80)
    produce(settings, settings.topic_raw, ((m.key, m.value) for m in messages))
    reference_run(settings, second_database)
    first = ingest_process(settings, database_url, "--until-idle", "4")
    second = ingest_process(settings, database_url, "--until-idle", "4")
    wait_ok(first)
    wait_ok(second)
    assert snapshot(database_url) == snapshot(second_database)
    conn = psycopg2.connect(database_url)
    with conn.cursor() as cur:
        cur.execute("SELECT count(DISTINCT kafka_partition) FROM daily.ingest_offsets")
        assert cur.fetchone() == (4,)
    conn.close()


def test_split_topics_give_the_same_rows_as_the_single_stream(
    settings: Settings, database_url: str, second_database: str
) -> None:
    _, messages = fleet_messages(bikes=30, rides=2, seconds=60)
    ingest_single_and_split(settings, messages, second_database)
    single, joined = snapshot(database_url), snapshot(second_database)
    assert joined["readings"] == single["readings"]
    assert joined["rides"] == single["rides"]
    assert joined["riders"] == single["riders"]
    assert len(single["readings"]) == 30 * 2 * 60
    assert single["rejects"] == joined["rejects"] == []


def test_faulty_feed_every_good_line_lands_and_every_bad_one_is_kept(
    settings: Settings, db: psycopg2.extensions.connection
) -> None:
    fleet, messages = fleet_messages(bikes=40, rides=2, seconds=80, faults=0.02, seed=11)
    produce(settings, settings.topic_raw, ((m.key, m.value) for m in messages))
    stats = run_ingest(settings)
    assert stats.consumed == len(messages)
    parser = Parser()
    no_row_lines = sum(isinstance(parser.parse(m.value), Banner | Announcement) for m in messages)
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM daily.readings")
        (readings,) = cur.fetchone()
        cur.execute("SELECT count(*) FROM daily.rides")
        (rides,) = cur.fetchone()
        cur.execute("SELECT reason, count(*) FROM daily.rejects GROUP BY reason")
        rejects = dict(cur.fetchall())
        cur.execute(
            "SELECT coalesce(sum(jsonb_array_length(b.value->'pending_rides') "
            "+ jsonb_array_length(b.value->'pending_tels') + 2 * jsonb_array_length(b.value->'held')), 0) "
            "FROM daily.ingest_state s, jsonb_each(s.state) b"
        )
        (waiting,) = cur.fetchone()
        # Values written are values sent: every reading matches a Telemetry line of its bike.
        cur.execute(
            "SELECT r.bike_serial, to_char(x.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), "
            "x.heart_rate, x.rpm, x.power FROM daily.readings x JOIN daily.rides r USING (ride_id)"
        )
        written = cur.fetchall()
    # Every message is accounted for exactly once: in a row, a reject, or still awaiting its pair.
    assert 2 * readings + rides + no_row_lines + sum(rejects.values()) + waiting == len(messages)
    assert rejects.get("truncated", 0) == fleet.faults["truncated"]
    assert rejects.get("bad_json", 0) == fleet.faults["garbage"]
    assert rejects.get("duplicate", 0) >= 1 and rejects.get("orphan", 0) >= 1
    assert set(rejects) <= {
        "bad_json",
        "truncated",
        "duplicate",
        "orphan",
        "out_of_order",
        "unpaired",
        "bad_line",
    }
    sent = set()
    for m in messages:
        rec = parser.parse(m.value)
        if type(rec).__name__ == "TelemetryLine":
            ts = rec.ts if len(rec.ts) == 26 else (rec.ts + ".000000")[:26]  # type: ignore[union-attr]
            sent.add((m.key.decode() if m.key else None, ts, rec.heart_rate, rec.rpm, rec.power))  # type: ignore[union-attr]
    assert {tuple(w) for w in written} <= sent
    # Fault-free bikes lose nothing: all 2 x 80 readings of every ride are there.
    assert readings >= 0.8 * 40 * 2 * 80


def test_database_connections_killed_mid_run_are_reconnected_without_loss(
    settings: Settings, database_url: str, second_database: str
) -> None:
    _, messages = fleet_messages(bikes=60, rides=2, seconds=100)
    produce(settings, settings.topic_raw, ((m.key, m.value) for m in messages))
    reference_run(settings, second_database)

    proc = ingest_process(settings, database_url, "--until-idle", "3")
    killed = 0
    admin = psycopg2.connect(database_url)
    admin.autocommit = True
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and killed < 5 and time.monotonic() < deadline:
            with admin.cursor() as cur:
                cur.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'deloton-ingest' AND pid <> pg_backend_pid()"
                )
                row = cur.fetchone()
                killed += int(row[0]) if row else 0
            time.sleep(0.3)
    finally:
        admin.close()
    wait_ok(proc)
    assert killed >= 2
    assert snapshot(database_url) == snapshot(second_database)
