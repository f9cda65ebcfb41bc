"""Prometheus metrics of the ingest service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("deloton_ingest_consumed_messages", "Raw messages consumed")
READINGS = Counter("deloton_ingest_readings_written", "Reading rows committed to daily.readings")
RIDES = Counter("deloton_ingest_rides_started", "Rides opened by a SYSTEM line")
REJECTED = Counter("deloton_ingest_rejected_lines", "Lines rejected, by reason", ["reason"])
INVALID_EMAILS = Counter(
    "deloton_ingest_invalid_email_addresses",
    "Riders whose address is kept but marked unusable (never mailed), by reason",
    ["reason"],
)
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
PRODUCE_FAILED = Counter(
    "deloton_ingest_produce_failed",
    "Events or dead letters the producer could not deliver (rows are written all the same)",
    ["topic"],
)
DEAD_LETTERS_DROPPED = Counter(
    "deloton_ingest_dead_letters_dropped",
    "Rejects kept in daily.rejects only: their dead letter is too large for the topic",
    ["reason"],
)
BIKES_TRACKED = Gauge("deloton_ingest_bikes_tracked", "Bikes whose session state is in memory")
BIKES_EVICTED = Counter(
    "deloton_ingest_bikes_evicted", "Idle bikes forgotten (ride closed, silent INGEST_EVICT_IDLE_S)"
)
STATE_BYTES = Gauge(
    "deloton_ingest_state_bytes",
    "Stored size of the session state of a partition (daily.ingest_state), last batch",
    ["partition"],
)
STATE_WRITTEN_BYTES = Histogram(
    "deloton_ingest_state_written_bytes",
    "Bytes of session state written by one batch",
    buckets=(1_000, 10_000, 100_000, 1_000_000, 10_000_000),
)
UNKEYED = Counter(
    "deloton_ingest_unkeyed_messages",
    "Messages without a key read from a topic with more than one partition",
    ["topic"],
)
SERIAL_MISMATCHES = Counter(
    "deloton_ingest_serial_mismatches",
    "Rides whose SYSTEM line named another bike serial than the message key (the key wins)",
)
