"""The fleet health job: judge each bike's recent data, open and clear incidents, email ops.

One run reads the last QUALITY_WINDOW_S of readings and rejects, scores every bike with
enough readings (services.quality.detectors), stores the scores, opens an incident for a bike
below QUALITY_MIN_SCORE and clears it when the bike scores QUALITY_RECOVER_SCORE or more
(the gap between the two keeps a bike near the line from flapping). All of it in one
transaction under an advisory lock, so two runs never both open an incident. Then the
incident emails due are sent, each marked in its own transaction: an email is sent once per
incident opening and once per recovery; an SES outage leaves it due for the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2.extensions

from services.alerts.sender import Sender, SendError, sender_factory
from services.common import db, runtime, runtime_store
from services.common.config import Settings
from services.quality import message, metrics
from services.quality import repository as repo
from services.quality.detectors import Quality, Reading, clock_skews, judge

log = logging.getLogger(__name__)
MAX_EMAIL_ATTEMPTS = 20  # runs a transiently failing email is retried over, then `failed`


@dataclass
class RunResult:
    """What one run did."""

    status: str = "done"
    judged: int = 0
    opened: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    open_incidents: int = 0
    emails_sent: int = 0
    emails_failed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return asdict(self)


def assess(
    readings: Iterable[tuple[str, list[Reading]]],
    rejects: dict[str, dict[str, int]],
    lags: dict[str, float],
    *,
    min_readings: int,
) -> dict[str, Quality]:
    """Every bike with at least `min_readings` readings in the window, judged (pure)."""
    skews = clock_skews(lags)
    return {
        bike: judge(rows, rejects.get(bike, {}), skews.get(bike, 0.0))
        for bike, rows in readings
        if len(rows) >= min_readings
    }


def run(
    settings: Settings, *, now: datetime | None = None, sender: Sender | None = None
) -> RunResult:
    """One run against the database of `settings` (stored run-time settings applied)."""
    started = time.perf_counter()
    conn = db.connect(settings.require_database(), application_name="deloton-quality")
    try:
        with db.transaction(conn):
            settings = runtime.apply(settings, runtime_store.stored(conn))
        result = run_on(conn, settings, now=now or datetime.now(UTC))
        if result.status == "done":
            send_due(conn, settings, result, sender or sender_factory(settings, threads=1)())
    finally:
        conn.close()
    result.seconds = round(time.perf_counter() - started, 3)
    metrics.RUN_SECONDS.observe(result.seconds)
    return result


def run_on(conn: psycopg2.extensions.connection, settings: Settings, *, now: datetime) -> RunResult:
    """Judge the window ending at `now` and move incidents, in one transaction."""
    result = RunResult()
    since = now - timedelta(seconds=settings.quality_window_s)
    with db.transaction(conn) as cur:
        if not repo.try_lock(cur):
            result.status = "skipped"
            return result
        rejects = repo.window_rejects(cur, since=since, until=now)
        lags = repo.clock_lags(cur, since=since)
        judged = assess(
            repo.window_readings(conn, since=since, until=now),
            rejects,
            lags,
            min_readings=settings.quality_min_readings,
        )
        repo.save_quality(cur, computed_at=now, since=since, until=now, judged=judged)
        incidents = repo.open_incidents(cur)
        for bike, quality in sorted(judged.items()):
            incident = incidents.get(bike)
            if incident is None and quality.score < settings.quality_min_score:
                if repo.open_incident(cur, bike=bike, at=now, quality=quality):
                    result.opened.append(bike)
            elif incident is not None and quality.score >= settings.quality_recover_score:
                repo.clear_incident(cur, incident_id=incident.incident_id, at=now)
                result.cleared.append(bike)
            elif incident is not None and quality.score < incident.worst_score:
                repo.worsen(cur, incident_id=incident.incident_id, score=quality.score)
        result.judged = len(judged)
        result.open_incidents = len(incidents) + len(result.opened) - len(result.cleared)
    metrics.BIKES_JUDGED.set(result.judged)
    metrics.OPEN_INCIDENTS.set(result.open_incidents)
    metrics.INCIDENTS.labels("opened").inc(len(result.opened))
    metrics.INCIDENTS.labels("cleared").inc(len(result.cleared))
    for bike in result.opened:
        log.warning("fleet health incident opened", extra={"bike_serial": bike})
    for bike in result.cleared:
        log.info("fleet health incident cleared", extra={"bike_serial": bike})
    return result


def send_due(
    conn: psycopg2.extensions.connection, settings: Settings, result: RunResult, sender: Sender
) -> None:
    """Send every incident email due (an opening before its recovery), each marked at once."""
    recipients = settings.quality_recipient_list()
    while True:
        with db.transaction(conn) as cur:
            due = repo.due_emails(cur, limit=1)
            if not due:
                return
            email = due[0]
            status, error = _deliver(email, settings, recipients, sender)
            repo.mark_email(
                cur, incident_id=email.incident_id, kind=email.kind, status=status, error=error
            )
        metrics.EMAILS.labels(email.kind, status).inc()
        if status == "sent":
            result.emails_sent += 1
        elif status == "failed":
            result.emails_failed += 1
        else:
            return  # SES is away: the next run tries again


def _deliver(
    email: repo.DueEmail, settings: Settings, recipients: list[str], sender: Sender
) -> tuple[str, str | None]:
    if not recipients:
        return "failed", "QUALITY_RECIPIENTS is empty"
    try:
        sender.send(message.build(email, sender=settings.quality_sender, recipients=recipients))
    except SendError as exc:
        if exc.transient and email.attempts + 1 < MAX_EMAIL_ATTEMPTS:
            log.warning("incident email deferred", extra={"code": exc.code})
            return "pending", f"{exc.code}: transient"
        return "failed", exc.code
    return "sent", None
