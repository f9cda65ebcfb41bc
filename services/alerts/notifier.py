"""Emails the pending rows of daily.alerts: claim, send, mark, commit.

Sending is driven by the table, not by the stream, so an alert inserted just before a crash
is still emailed after the restart. Each claim holds row locks (FOR UPDATE SKIP LOCKED) until
the row is marked, so several senders (threads or processes) never email the same row; a
crash after SES accepted but before the commit is the one case that sends twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg2

from services.alerts import metrics, repository
from services.alerts.message import build_message
from services.alerts.sender import Sender, SendError, backoff
from services.common import db
from services.common.config import ConfigError, Settings

log = logging.getLogger(__name__)

Connection = psycopg2.extensions.connection


def send_due(
    conn: Connection,
    sender: Sender,
    settings: Settings,
    *,
    batch: int = 10,
    max_attempts: int = 5,
) -> int:
    """Claim up to `batch` due alerts, email each and record the outcome; return how many."""
    with db.transaction(conn):
        rows = repository.claim_pending(conn, limit=batch)
        for row in rows:
            _send_one(conn, sender, settings, row, max_attempts)
    return len(rows)


def _send_one(
    conn: Connection,
    sender: Sender,
    settings: Settings,
    row: repository.PendingAlert,
    max_attempts: int,
) -> None:
    recipient = settings.email_override_recipient or row.recipient
    if not recipient:
        repository.mark_failed(conn, alert_id=row.alert_id, error="rider has no email address")
        metrics.FAILED.labels("no_recipient").inc()
        return
    msg = build_message(
        row, sender=settings.email_sender, recipient=recipient, reply_to=settings.email_reply_to
    )
    try:
        message_id = sender.send(msg)
    except SendError as exc:
        attempts = row.attempts + 1
        if exc.transient and attempts < max_attempts:
            retry_at = datetime.now(UTC) + timedelta(seconds=backoff(attempts, 2.0, 300.0))
            repository.mark_retry(conn, alert_id=row.alert_id, error=str(exc), retry_at=retry_at)
            log.warning("alert email deferred", extra={"alert_id": row.alert_id, "error": str(exc)})
            return
        repository.mark_failed(conn, alert_id=row.alert_id, error=str(exc))
        metrics.FAILED.labels("transient" if exc.transient else "rejected").inc()
        log.error("alert email failed", extra={"alert_id": row.alert_id, "error": str(exc)})
        return
    sent_at = datetime.now(UTC)
    repository.mark_sent(conn, alert_id=row.alert_id, message_id=message_id, sent_at=sent_at)
    metrics.SENT.inc()
    origin = row.observed_at or row.detected_at
    metrics.LATENCY.observe(max(0.0, (sent_at - origin).total_seconds()))
    log.info(
        "alert email sent",
        extra={"alert_id": row.alert_id, "ride_id": row.ride_id, "episode": row.episode},
    )


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
                log.error("notifier database error", extra={"error": str(exc)})
                if conn is not None:
                    conn.close()
                conn = None
            except Exception:
                log.exception("notifier error")
            self._wake.wait(self.poll_s)
        if conn is not None:
            conn.close()
