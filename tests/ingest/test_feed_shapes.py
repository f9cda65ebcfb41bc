"""Feed shapes the real feed can send, through the real broker into real PostgreSQL."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

import psycopg2
import pytest
from prometheus_client import REGISTRY

from services.common.config import Settings
from services.common.kafka import ensure_topics
from services.ingest.models import RideLine, TelemetryLine
from services.ingest.parser import Parser
from services.simulator.fleet import Fleet, FleetConfig
from services.simulator.models import TELEMETRY
from tests import harness
from tests.ingest.helpers import ingest_single_and_split, produce, run_ingest, sample_messages
from tests.ingest.test_attribution import as_sent
from tests.ingest.test_exactly_once import snapshot
from tests.ingest.test_sessionizer import expected, interleave, ride

DELOTON = Path(sys.executable).parent / "deloton"


@pytest.fixture
def second_database(pg_server: str, pg_template: str) -> Iterator[str]:
    """Another fresh database, for a second run beside the test's own."""
    with harness.cloned_database(pg_server, pg_template) as dsn:
        yield dsn


def _count(db: psycopg2.extensions.connection, sql: str) -> int:
    with db.cursor() as cur:
        cur.execute(sql)
        row = cur.fetchone()
    db.rollback()
    return int(row[0]) if row else 0


def test_readme_replay_of_the_real_capture_into_a_fresh_topic_lands_every_reading(
    settings: Settings, db: psycopg2.extensions.connection
) -> None:
    """`deloton replay tests/fixtures/deloton_real_sample.jsonl`, exactly as the README says,
    into a topic that does not exist yet (so it gets the default 4 partitions)."""
    assert settings.kafka_topic_partitions == 4
    done = subprocess.run(
        [str(DELOTON), "replay", "tests/fixtures/deloton_real_sample.jsonl"],
        env=harness.service_env(settings),
        cwd=harness.ROOT,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert "1,000 messages" in done.stdout.decode()
    stats = run_ingest(settings)
    assert stats.consumed == 1000
    assert _count(db, "SELECT count(*) FROM daily.readings") == 498
    assert _count(db, "SELECT count(*) FROM daily.rides") == 1
    assert _count(db, "SELECT count(*) FROM daily.rejects") == 0


def _unkeyed_metric(topic: str) -> float:
    return REGISTRY.get_sample_value("deloton_ingest_unkeyed_messages_total", {"topic": topic}) or 0


def test_unkeyed_messages_on_a_topic_with_several_partitions_are_reported(
    settings: Settings, real_sample: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Spread over 4 partitions without a key, a stream loses its order: ingest says so."""
    before = _unkeyed_metric(settings.topic_raw)
    produce(settings, settings.topic_raw, sample_messages(real_sample)[:40], partitions=4)
    with caplog.at_level(logging.WARNING, logger="services.ingest.service"):
        run_ingest(settings)
    assert _unkeyed_metric(settings.topic_raw) - before == 40
    warnings = [r for r in caplog.records if "unkeyed" in r.getMessage()]
    assert warnings and settings.topic_raw in warnings[0].getMessage()


def test_unkeyed_messages_on_a_single_partition_topic_are_the_historical_stream(
    settings: Settings, real_sample: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = _unkeyed_metric(settings.topic_raw)
    ensure_topics(settings, [settings.topic_raw], partitions=1)
    produce(settings, settings.topic_raw, sample_messages(real_sample)[:40], partitions=1)
    with caplog.at_level(logging.WARNING, logger="services.ingest.service"):
        run_ingest(settings)
    assert _unkeyed_metric(settings.topic_raw) == before
    assert not [r for r in caplog.records if "unkeyed" in r.getMessage()]


# --- clocks with whole seconds -------------------------------------------------------------------

_FRACTION = re.compile(rb"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.\d{1,6}")
READINGS_SQL = (
    "SELECT r.bike_serial, x.elapsed_s, to_char(x.recorded_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD HH24:MI:SS'), x.resistance, x.heart_rate, x.rpm, x.power "
    "FROM daily.readings x JOIN daily.rides r USING (ride_id)"
)


def sent_readings(messages: list[tuple[bytes | None, bytes]]) -> Counter[tuple[object, ...]]:
    """The readings a clean feed carries: each bike's Ride line with the Telemetry line after it."""
    parser = Parser()
    half: dict[bytes | None, RideLine] = {}
    out: Counter[tuple[object, ...]] = Counter()
    for key, value in messages:
        rec = parser.parse(value)
        if isinstance(rec, RideLine):
            half[key] = rec
        elif isinstance(rec, TelemetryLine):
            r = half.pop(key)
            serial = key.decode() if key else None
            out[
                (serial, r.elapsed_s, rec.ts[:19], r.resistance, rec.heart_rate, rec.rpm, rec.power)
            ] += 1
    return out


def test_fleet_with_whole_second_clocks_lands_exactly(
    settings: Settings, db: psycopg2.extensions.connection
) -> None:
    """Every line stamped without a fraction, so a bike's Ride and Telemetry lines often
    carry the same second: every reading lands with its own values."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    fleet = Fleet(FleetConfig(bikes=40, rides=2, seconds=60, seed=5, start=start))
    messages = [(m.key, _FRACTION.sub(rb"\1", m.value)) for m in fleet.messages()]
    produce(settings, settings.topic_raw, messages)
    run_ingest(settings)
    with db.cursor() as cur:
        cur.execute(READINGS_SQL)
        written = Counter(cur.fetchall())
    db.rollback()
    assert _count(db, "SELECT count(*) FROM daily.rejects") == 0
    assert written == sent_readings(messages)
    assert sum(written.values()) == 40 * 2 * 60


# --- the SYSTEM line's serial against the message key --------------------------------------------


def test_system_serial_other_than_the_key_is_kept_and_counted(
    settings: Settings, db: psycopg2.extensions.connection, real_sample: Path
) -> None:
    before = REGISTRY.get_sample_value("deloton_ingest_serial_mismatches_total") or 0
    messages = [(b"SN0042", v) for _, v in sample_messages(real_sample)]
    produce(settings, settings.topic_raw, messages)
    run_ingest(settings)
    with db.cursor() as cur:
        cur.execute("SELECT bike_serial, announced_serial FROM daily.rides")
        assert cur.fetchall() == [("SN0042", "SN0000")]
    db.rollback()
    assert _count(db, "SELECT count(*) FROM daily.readings") == 498
    after = REGISTRY.get_sample_value("deloton_ingest_serial_mismatches_total") or 0
    assert after - before == 1


# --- silence is judged per bike ------------------------------------------------------------------


def test_a_bike_whose_clock_runs_ahead_closes_no_other_bikes_ride(
    settings: Settings, db: psycopg2.extensions.connection
) -> None:
    """Two bikes on one partition, riding at the same time; B's clock is 90 s ahead. A's ride
    stays open while A keeps sending, whatever B's clock says."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    skew = timedelta(seconds=90)
    a = [(b"SN0001", v) for v in ride(start, 40, serial="SN0001")]
    b = [(b"SN0002", v) for v in ride(start + skew, 40, user_id=8, serial="SN0002")]
    # Arrival order: the two bikes' lines in turn, as they are sent (B's stamps read 90 s ahead).
    feed = interleave(a, b)
    produce(settings, settings.topic_raw, feed, partitions=1)
    run_ingest(settings)
    with db.cursor() as cur:
        cur.execute("SELECT bike_serial, ended_at FROM daily.rides ORDER BY bike_serial")
        assert cur.fetchall() == [("SN0001", None), ("SN0002", None)]
    db.rollback()
    assert _count(db, "SELECT count(*) FROM daily.readings") == 80
    events = harness.consume_all(settings.kafka_bootstrap_servers or "", settings.topic_events, 82)
    assert Counter(json.loads(v)["type"] for _, v, _, _ in events) == {
        "ride_started": 2,
        "reading": 80,
    }


# --- split topics: a line delivered twice --------------------------------------------------------


def test_split_topics_treat_duplicated_telemetry_lines_like_the_single_topic(
    settings: Settings, database_url: str, second_database: str
) -> None:
    """40 bikes, two 120 s rides each, about 1% of Telemetry lines delivered twice (an
    at-least-once producer): the single topic and split topics land the same rows, and
    those of the feed without the copies."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    fleet = Fleet(FleetConfig(bikes=40, rides=2, seconds=120, seed=7, start=start))
    rng = Random(17)
    clean = list(fleet.messages())
    messages = []
    for m in clean:
        messages.append(m)
        if m.kind == TELEMETRY and rng.random() < 0.01:
            messages.append(m)
    copies = len(messages) - 40 * 2 * (2 * 120 + 3) - 40
    assert copies > 50
    ingest_single_and_split(settings, messages, second_database)
    single, joined = snapshot(database_url), snapshot(second_database)
    assert len(single["readings"]) == 40 * 2 * 120
    assert joined["readings"] == single["readings"]
    assert joined["rides"] == single["rides"]
    sent = sent_readings([(m.key, m.value) for m in clean])
    with psycopg2.connect(second_database) as conn, conn.cursor() as cur:
        cur.execute(READINGS_SQL)
        assert Counter(cur.fetchall()) == sent
    conn.close()
    for rows in (single["rejects"], joined["rejects"]):
        assert Counter(r[5] for r in rows) == {"duplicate": copies}


# --- two rides interleaved on one key ------------------------------------------------------------


def test_two_rides_interleaved_on_one_key_never_mix_riders(
    settings: Settings, db: psycopg2.extensions.connection
) -> None:
    """Two bikes behind one gateway key: ride A from 0 to 120 s, ride B from 60 to 180 s.
    No reading is written to a rider it cannot be proven to belong to; what cannot be
    attributed is rejected as `ambiguous`; A's first minute and B's last minute land."""
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    a_start, b_start = t0, t0 + timedelta(seconds=60.3)
    a = ride(a_start, 120, user_id=7, serial="SN0001")
    b = ride(b_start, 120, user_id=8, serial="SN0002")
    feed = as_sent(a, b)
    produce(settings, settings.topic_raw, [(b"GW01", v) for v in feed], partitions=1)
    run_ingest(settings)
    sent = {
        (user, *e)
        for user, start in ((7, a_start), (8, b_start))
        for e in (expected(start, s) for s in range(1, 121))
    }
    with db.cursor() as cur:
        cur.execute(
            "SELECT r.user_id, x.elapsed_s, to_char(x.recorded_at AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD HH24:MI:SS.US'), x.resistance, x.heart_rate, x.rpm, x.power "
            "FROM daily.readings x JOIN daily.rides r USING (ride_id)"
        )
        written = cur.fetchall()
        cur.execute("SELECT reason, count(*) FROM daily.rejects GROUP BY reason")
        reasons = dict(cur.fetchall())
    db.rollback()
    wrong = [w for w in written if w not in sent]
    assert wrong == []
    assert reasons.get("ambiguous", 0) > 0
    per_user = Counter(w[0] for w in written)
    assert per_user[7] >= 59  # A alone for its first minute
    assert per_user[8] >= 45  # B alone once A has stopped (less the clock tolerance)
