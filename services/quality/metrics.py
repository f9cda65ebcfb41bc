"""Prometheus metrics of the fleet health job."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RUN_SECONDS = Histogram(
    "deloton_quality_run_seconds",
    "Duration of one fleet health run",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
BIKES_JUDGED = Gauge("deloton_quality_bikes_judged", "Bikes judged by the latest run")
OPEN_INCIDENTS = Gauge("deloton_quality_open_incidents", "Bikes with an open incident")
INCIDENTS = Counter("deloton_quality_incidents", "Incidents opened and cleared", ["event"])
EMAILS = Counter(
    "deloton_quality_emails", "Incident emails by kind and outcome", ["kind", "outcome"]
)
