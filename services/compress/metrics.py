"""Prometheus metrics of `compress --loop` (a Lambda run reports through CloudWatch instead)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RUN_SECONDS = Histogram(
    "deloton_compress_run_seconds",
    "Duration of one compress run (roll-up and retention)",
    buckets=(0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
RUNS = Counter("deloton_compress_runs", "Compress runs by outcome", ["status"])
