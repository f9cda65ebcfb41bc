"""The fleet health job: judge each bike's recent data, open and clear incidents, email ops.

One run reads the last QUALITY_WINDOW_S of readings and rejects, scores every bike with
enough readings (services.quality.detectors), stores the scores, opens an incident for a bike
below QUALITY_MIN_SCORE and clears it when the bike scores QUALITY_RECOVER_SCORE or more
(the gap between the two keeps a bike near the line from flapping). All of it in one
transaction under an advisory lock, so two runs never both open an incident. Then the
incident emails due are sent, each exactly once per incident opening and once per recovery:
claimed before SES is called and confirmed after, so a crash between SES accepting and the
confirmation never sends it twice (services.common.delivery); an SES outage leaves it due for
the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2.extensions

from services.alerts import message as alert_message
from services.alerts.sender import Sender, SendError, sender_factory
from services.common import db, delivery, runtime, runtime_store
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
    emails_unconfirmed: int = 0  # a run died between SES and its record: not sent again
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
    conn: psycopg2.extensions.connection,
    settings: Settings,
    result: RunResult,
    sender: Sender,
) -> None:
    """Send every incident email due (an opening before its recovery), each exactly once:
    claimed and committed before SES is called, confirmed with the incident's mark after
    (services.common.delivery). An email another run is sending is left to it."""
    recipients = settings.quality_recipient_list()
    elsewhere: set[tuple[int, str]] = set()
    while True:
        with db.transaction(conn) as cur:
            due = repo.due_emails(cur, limit=1, skip=sorted(elsewhere))
            if not due:
                return
            email = due[0]
            if not recipients:
                _record(cur, email, result, "failed", "QUALITY_RECIPIENTS is empty")
                continue
            claimed = delivery.claim(
                cur,
                key=f"incident/{email.incident_id}/{email.kind}",
                domain=alert_message.domain(settings.quality_sender),
                lease=timedelta(seconds=settings.quality_email_lease_s),
                sender=sender,
            )
            if claimed.state == "held":
                elsewhere.add((email.incident_id, email.kind))
                continue
            if claimed.state != "claimed":  # a claim that died: resolved without a send
                _record(cur, email, result, claimed.state, None)
                continue
        try:
            msg = message.build(
                email,
                sender=settings.quality_sender,
                recipients=recipients,
                message_id=claimed.message_id,
            )
        except Exception:
            with db.transaction(conn) as cur:
                delivery.release(cur, claimed)  # nothing was sent
            raise
        try:
            provider_id = sender.send(msg)
        except SendError as exc:
            with db.transaction(conn) as cur:
                delivery.release(cur, claimed)  # not accepted: a later run claims it anew
                if exc.transient and email.attempts + 1 < MAX_EMAIL_ATTEMPTS:
                    log.warning("incident email deferred", extra={"code": exc.code})
                    _record(cur, email, result, "pending", f"{exc.code}: transient")
                    return  # SES is away: the next run tries again
                _record(cur, email, result, "failed", exc.code)
            continue
        with db.transaction(conn) as cur:
            delivery.confirm(cur, claimed, provider_id=provider_id)
            _record(cur, email, result, "sent", None)


def _record(
    cur: psycopg2.extensions.cursor,
    email: repo.DueEmail,
    result: RunResult,
    status: str,
    error: str | None,
) -> None:
    """Mark the incident's email and count it."""
    repo.mark_email(cur, incident_id=email.incident_id, kind=email.kind, status=status, error=error)
    metrics.EMAILS.labels(email.kind, status).inc()
    if status == "sent":
        result.emails_sent += 1
    elif status == "failed":
        result.emails_failed += 1
    elif status == "unconfirmed":
        result.emails_unconfirmed += 1
