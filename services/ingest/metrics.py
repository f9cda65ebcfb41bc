"""Prometheus metrics of the ingest service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("deloton_ingest_consumed_messages", "Raw messages consumed")
READINGS = Counter("deloton_ingest_readings_written", "Reading rows committed to daily.readings")
RIDES = Counter("deloton_ingest_rides_started", "Rides opened by a SYSTEM line")
REJECTED = Counter("deloton_ingest_rejected_lines", "Lines rejected, by reason", ["reason"])
EVENTS = Counter("deloton_ingest_events_published", "Clean events published")
BATCH_SIZE = Histogram(
    "deloton_ingest_batch_messages",
    "Messages per committed batch",
    buckets=(10, 100, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000),
)
BATCH_SECONDS = Histogram(
    "deloton_ingest_batch_write_seconds",
    "Time to publish events and commit one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LAG = Gauge(
    "deloton_ingest_lag_messages",
    "Messages behind the high watermark seen in fetch responses",
    ["topic", "partition"],
)
FENCED = Counter("deloton_ingest_fenced_batches", "Batches dropped because a partition moved")
DB_RETRIES = Counter("deloton_ingest_db_retries", "Batch writes retried after a database error")
UNKEYED = Counter(
    "deloton_ingest_unkeyed_messages",
    "Messages without a key read from a topic with more than one partition",
    ["topic"],
)
SERIAL_MISMATCHES = Counter(
    "deloton_ingest_serial_mismatches",
    "Rides whose SYSTEM line named another bike serial than the message key (the key wins)",
)
