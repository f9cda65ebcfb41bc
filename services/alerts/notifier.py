"""Emails the pending rows of daily.alerts: claim one, send, mark, commit; then the next.

Sending is driven by the table, not by the stream, so an alert inserted just before a crash
is still emailed after the restart. Each row is claimed (FOR UPDATE SKIP LOCKED), sent and
marked in a transaction of its own, so several senders (threads or processes) never email the
same row, one row's error never touches another, and no transaction spans two rows' SES calls.
A crash after SES accepted but before the commit is the one case that sends twice.

Outcomes: `sent`; `failed` for a permanent error (no address, an address ingest marked
invalid, SES rejecting the message, any error building it); `expired` when transient errors
(throttling, 5xx, timeouts, no connection) lasted until the alert was older than
ALERT_STALE_AFTER_S: retried until then with capped exponential backoff.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg2

from services.alerts import metrics, repository
from services.alerts.message import build_message
from services.alerts.sender import Sender, SendError
from services.common import db
from services.common.config import ConfigError, Settings

log = logging.getLogger(__name__)

Connection = psycopg2.extensions.connection

RETRY_BASE_S = 2.0
# Ingest publishes a ride's events before its rows commit: the rider's row is moments away.
RIDER_WAIT_S = 1.0
# The log message an operator's alarm matches.
EXPIRED_LOG = "alert expired undelivered"


def retry_delay(attempts: int, cap: float) -> float:
    """Capped exponential backoff with jitter in its upper half, for the attempts-th retry."""
    delay = min(cap, RETRY_BASE_S * 2 ** min(attempts - 1, 30))
    return delay / 2 + random.uniform(0, delay / 2)


def send_due(conn: Connection, sender: Sender, settings: Settings, *, batch: int = 10) -> int:
    """Send up to `batch` due alerts, each claimed, sent and marked in its own transaction;
    return how many were handled."""
    handled = 0
    while handled < batch:
        with db.transaction(conn):
            rows = repository.claim_pending(conn, limit=1)
            if not rows:
                break
            _send_one(conn, sender, settings, rows[0])
        handled += 1
    return handled


def _send_one(
    conn: Connection, sender: Sender, settings: Settings, row: repository.PendingAlert
) -> None:
    now = datetime.now(UTC)
    if now - row.detected_at > timedelta(seconds=settings.alert_stale_after_s):
        _expire(conn, row, row_error(row))
        return
    override = settings.email_override_recipient
    if not override:
        if not row.rider_known:
            retry_at = now + timedelta(seconds=RIDER_WAIT_S)
            error = "rider not recorded yet"
            repository.mark_retry(conn, alert_id=row.alert_id, error=error, retry_at=retry_at)
            return
        if row.email_invalid:
            _fail(conn, row, f"invalid address: {row.email_invalid}", "invalid_address", False)
            return
        if not row.recipient:
            _fail(conn, row, "rider has no email address", "no_recipient", False)
            return
    try:
        msg = build_message(
            row,
            sender=settings.email_sender,
            recipient=override or str(row.recipient),
            reply_to=settings.email_reply_to,
        )
        message_id = sender.send(msg)
    except SendError as exc:
        if not exc.transient:
            _fail(conn, row, str(exc), "rejected", True, code=exc.code)
            return
        retry_at = now + timedelta(
            seconds=retry_delay(row.attempts + 1, settings.alert_retry_max_s)
        )
        repository.mark_retry(conn, alert_id=row.alert_id, error=str(exc), retry_at=retry_at)
        log.warning(
            "alert email deferred",
            extra={"alert_id": row.alert_id, "code": exc.code, "attempts": row.attempts + 1},
        )
        return
    except Exception as exc:  # e.g. an address the email library refuses: this row only
        _fail(conn, row, f"{type(exc).__name__}: {exc}", "error", True, code=type(exc).__name__)
        return
    sent_at = datetime.now(UTC)
    repository.mark_sent(
        conn, alert_id=row.alert_id, message_id=message_id, sent_at=sent_at, claimed_at=now
    )
    metrics.SENT.inc()
    origin = row.observed_at or row.detected_at
    metrics.LATENCY.observe(max(0.0, (sent_at - origin).total_seconds()))
    log.info(
        "alert email sent",
        extra={"alert_id": row.alert_id, "ride_id": row.ride_id, "episode": row.episode},
    )


def row_error(row: repository.PendingAlert) -> str:
    """Why an alert expires: its last transient error, if it had one."""
    return "stale: not emailed in time" + (
        f" (last error: {row.last_error})" if row.last_error else ""
    )


def _fail(
    conn: Connection,
    row: repository.PendingAlert,
    error: str,
    reason: str,
    attempted: bool,
    *,
    code: str = "",
) -> None:
    repository.mark_failed(conn, alert_id=row.alert_id, error=error, attempted=attempted)
    metrics.FAILED.labels(reason).inc()
    # The error text may quote the address: only its code is logged.
    log.error(
        "alert email failed",
        extra={"alert_id": row.alert_id, "reason": reason, "code": code or None},
    )


def _expire(conn: Connection, row: repository.PendingAlert, error: str) -> None:
    repository.mark_expired(conn, alert_id=row.alert_id, error=error)
    metrics.EXPIRED.labels("undelivered").inc()
    log.error(
        EXPIRED_LOG,
        extra={
            "alert_id": row.alert_id, "ride_id": row.ride_id, "episode": row.episode,
            "attempts": row.attempts, "detected_at": row.detected_at.isoformat(),
        },
    )  # fmt: skip


class Notifier:
    """Background sender threads: each drains due alerts, then waits for a wake-up or a poll."""

    def __init__(
        self,
        settings: Settings,
        sender_factory: Callable[[], Sender],
        *,
        workers: int = 4,
        batch: int = 10,
        poll_s: float = 2.0,
    ) -> None:
        self.settings = settings
        self.sender_factory = sender_factory
        self.workers = workers
        self.batch = batch
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the sender threads."""
        for i in range(self.workers):
            t = threading.Thread(target=self._run, name=f"alerts-notifier-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def wake(self) -> None:
        """A new alert is pending: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the threads to finish their current batch and exit."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)

    def _run(self) -> None:
        sender = self.sender_factory()
        conn: Connection | None = None
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = db.connect(self.settings.require_database(), application_name="alerts")
                self._wake.clear()
                while not self._stop.is_set():
                    if send_due(conn, sender, self.settings, batch=self.batch) < self.batch:
                        break
            except (psycopg2.Error, ConfigError) as exc:
                log.error("notifier database error", extra={"error": db.error_line(exc)})
                if conn is not None:
                    conn.close()
                conn = None
            except Exception:
                log.exception("notifier error")
            self._wake.wait(self.poll_s)
        if conn is not None:
            conn.close()
