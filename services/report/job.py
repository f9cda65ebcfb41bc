"""The report job: read the day, draw the charts, lay out the PDF, store it, email it once.

`run` is run-once (the schedule lives in Terraform and the local runner). The email for a
date goes out once: the record of it is written in the same transaction that holds the
date's lock across the send, so two runs at once cannot both send, and a re-run sends only
when asked to resend.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from services.common.config import Settings
from services.common.db import connect, transaction
from services.common.pool import read_only_connection
from services.report import charts, data, delivery, document
from services.report import repository as repo

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class ReportResult:
    """What one run did; `as_dict` is the JSON the CLI prints and the Lambda logs."""

    status: str = "sent"  # sent | resent | already_sent | stored (no recipients)
    date: str = ""
    timezone: str = ""
    hours: int = 0
    rides: int = 0
    pdf_bytes: int = 0
    pdf_sha256: str = ""
    stored: list[str] = field(default_factory=list)
    recipients: int = 0
    transport: str | None = None
    message_id: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run(
    settings: Settings,
    *,
    day: date | None = None,
    recipients: list[str] | None = None,
    out: Path | None = None,
    resend: bool = False,
    now: datetime | None = None,
) -> ReportResult:
    """Make the report of `day` (default: yesterday in REPORT_TIMEZONE), store and email it."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    tz = data.zone(settings.report_timezone)
    day = day or data.yesterday(tz, now)
    dsn = settings.require_database()
    to = recipients if recipients else settings.report_recipient_list()
    result = ReportResult(date=day.isoformat(), timezone=settings.report_timezone)
    timed = _Timer(result)

    def read() -> data.DayReport:
        with read_only_connection(dsn, application_name="deloton-report") as conn:
            return data.load(
                conn, day=day, tz_name=settings.report_timezone, top=settings.report_top_riders
            )

    report = timed("queries", read)
    images = timed("charts", lambda: charts.for_report(report))
    pdf = timed("pdf", lambda: document.render(report, images))
    result.hours, result.rides = report.hours, len(report.rides)
    result.pdf_bytes, result.pdf_sha256 = len(pdf), hashlib.sha256(pdf).hexdigest()
    result.stored = timed("store", lambda: delivery.store(settings, day, pdf, out))
    if not to:
        result.status = "stored"
        log.warning("no report recipients (REPORT_RECIPIENTS or --to): the PDF was only stored")
    else:
        timed("send", lambda: _send_once(settings, report, pdf, to, resend, now, result))
    result.seconds["total"] = round(time.perf_counter() - started, 3)
    return result


class _Timer:
    def __init__(self, result: ReportResult) -> None:
        self.result = result

    def __call__(self, name: str, step: Callable[[], T]) -> T:
        t0 = time.perf_counter()
        value = step()
        self.result.seconds[name] = round(time.perf_counter() - t0, 3)
        return value


def _send_once(
    settings: Settings,
    report: data.DayReport,
    pdf: bytes,
    to: list[str],
    resend: bool,
    now: datetime,
    result: ReportResult,
) -> None:
    conn = connect(settings.require_database(), application_name="deloton-report")
    try:
        with transaction(conn) as cur:
            repo.lock_date(cur, day=report.day)
            before = repo.delivery(cur, day=report.day)
            if before is not None and not resend:
                result.status = "already_sent"
                result.transport, result.message_id = before.transport, before.message_id
                result.recipients = len(before.recipients)
                log.info(
                    "report for %s already sent at %s; --resend sends it again",
                    report.day,
                    before.last_sent_at.isoformat(),
                )
                return
            msg = delivery.build_message(
                report, pdf, sender=settings.report_sender, recipients=to, now=now
            )
            sent = delivery.send(settings, msg, to)
            repo.record_delivery(
                cur,
                day=report.day,
                sent_at=now,
                recipients=to,
                transport=sent.transport,
                message_id=sent.message_id,
                pdf_sha256=result.pdf_sha256,
            )
        result.status = "resent" if before is not None else "sent"
        result.transport, result.message_id, result.recipients = (
            sent.transport,
            sent.message_id,
            len(to),
        )
    finally:
        conn.close()
