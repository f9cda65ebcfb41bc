"""Prometheus metrics of the alerts service (served on /metrics by the CLI)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "deloton_alerts_events_total",
    "Events read from the events topic, by what the state machine made of them.",
    ["outcome"],
)
REJECTED = Counter(
    "deloton_alerts_rejected_events_total", "Event messages that could not be read.", ["reason"]
)
RAISED = Counter(
    "deloton_alerts_raised_total", "Alerts recorded (once per ride episode).", ["kind"]
)
SENT = Counter("deloton_alerts_sent_total", "Alert emails accepted by SES (or the outbox).")
FAILED = Counter(
    "deloton_alerts_failed_total", "Alert emails given up on (a permanent error).", ["reason"]
)
EXPIRED = Counter(
    "deloton_alerts_expired_total",
    "Alerts never emailed because they went stale: undelivered (SES unavailable until then) "
    "or stale_on_arrival (recorded already older than ALERT_STALE_AFTER_S).",
    ["reason"],
)
UNRECORDED = Counter(
    "deloton_alerts_processing_errors_total",
    "Events whose handling failed (kept in daily.rejects with the reason), by reason.",
    ["reason"],
)
SEND_RETRIES = Counter(
    "deloton_alerts_send_retries_total", "SES calls retried within the call after throttling."
)
LATENCY = Histogram(
    "deloton_alert_latency_seconds",
    "From the produce time of the reading that confirmed an episode to SES accepting the email.",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
