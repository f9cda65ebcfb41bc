"""Feed shapes the real feed can send, through the real broker into real PostgreSQL."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from prometheus_client import REGISTRY

from services.common.config import Settings
from services.common.kafka import ensure_topics
from tests import harness
from tests.ingest.helpers import produce, run_ingest, sample_messages

DELOTON = Path(sys.executable).parent / "deloton"


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
