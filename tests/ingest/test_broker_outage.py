"""Ingest survives its broker going away and coming back."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import psycopg2

from services.common import infra
from services.common.config import Settings
from services.common.kafka import ensure_topics
from services.ingest.service import IngestService
from tests.ingest.helpers import produce, sample_messages


def test_ingest_rides_out_a_broker_outage(
    settings: Settings, db: psycopg2.extensions.connection, real_sample: Path, tmp_path: Path
) -> None:
    # A broker of this test's own: stopping the session's broker would lose other tests' topics.
    port = infra.free_port()
    logs = Path(tempfile.mkdtemp(prefix="outage-"))
    broker = infra.start_broker(port, logs / "broker.log")
    settings.kafka_bootstrap_servers = f"127.0.0.1:{port}"
    service = IngestService(settings)
    worker = threading.Thread(target=service.run, daemon=True)
    try:
        ensure_topics(settings, [settings.topic_raw], partitions=1)
        worker.start()
        deadline = time.monotonic() + 30
        while not service.positions and time.monotonic() < deadline:
            time.sleep(0.1)
        assert service.positions, "ingest never joined its group"

        infra.stop_pid(broker.pid, "tansu")  # the broker goes away ...
        time.sleep(5)
        assert worker.is_alive()  # ... and ingest waits for it instead of dying

        # It comes back (empty: this broker keeps messages in memory only) and data flows.
        broker = infra.start_broker(port, logs / "broker.log")
        produce(
            settings, settings.topic_raw, sample_messages(real_sample), partitions=1, partition=0
        )
        deadline = time.monotonic() + 90
        readings = 0
        while readings < 498 and time.monotonic() < deadline:
            time.sleep(0.5)
            with db.cursor() as cur:
                cur.execute("SELECT count(*) FROM daily.readings")
                readings = cur.fetchone()[0]  # type: ignore[index]
            db.rollback()
        assert readings == 498
        assert worker.is_alive()
    finally:
        service.stop.set()
        worker.join(30)
        infra.stop_pid(broker.pid, "tansu")
        shutil.rmtree(logs, ignore_errors=True)
    assert not worker.is_alive()
