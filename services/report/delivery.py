"""Getting the report out: the email (SES send_raw_email, or an .eml outbox without AWS
credentials), a copy in `reports/` and, when a bucket is configured, one in S3."""

from __future__ import annotations

import html
import logging
import os
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from services.common.config import Settings
from services.report.data import DayReport
from services.report.text import change, number, plural

log = logging.getLogger(__name__)


def filename(day: date) -> str:
    return f"deloton-report-{day.isoformat()}.pdf"


def subject(report: DayReport) -> str:
    rides = report.metric("rides").value
    return (
        f"Deloton daily report, {report.day.strftime('%a %-d %b %Y')}: {plural(int(rides), 'ride')}"
    )


def summary_text(report: DayReport) -> str:
    """The headline numbers as plain text (the email's text part)."""
    lines = [f"Deloton daily report for {report.day.strftime('%A %-d %B %Y')} ({report.timezone})"]
    if report.empty:
        lines.append("No rides were recorded on this day.")
    for m in report.headline:
        lines.append(
            f"{m.label}: {number(m.value, m.unit)} "
            f"(previous day {number(m.previous, m.unit)}, {change(m.change(m.previous))}; "
            f"7-day average {number(m.week_avg, m.unit, average=True)}, "
            f"{change(m.change(m.week_avg))})"
        )
    lines.append(f"Alert emails delivered: {report.alerts_sent:,} of {report.alerts_raised:,}")
    lines.append(f"Lines rejected: {report.rejected:,}")
    lines.append("The full report is attached as a PDF.")
    return "\n".join(lines) + "\n"


def summary_html(report: DayReport) -> str:
    """The headline numbers as a small HTML table, readable before the PDF is opened."""
    cell = 'style="padding:6px 10px;border-bottom:1px solid #e3e8eb;text-align:right"'
    first = 'style="padding:6px 10px;border-bottom:1px solid #e3e8eb;text-align:left"'
    rows = "".join(
        f"<tr><td {first}>{html.escape(m.label)}</td>"
        f"<td {cell}><b>{number(m.value, m.unit)}</b></td>"
        f"<td {cell}>{number(m.previous, m.unit)} ({change(m.change(m.previous))})</td>"
        f"<td {cell}>{number(m.week_avg, m.unit, average=True)} "
        f"({change(m.change(m.week_avg))})</td></tr>"
        for m in report.headline
    )
    empty = "<p><b>No rides were recorded on this day.</b></p>" if report.empty else ""
    day = html.escape(report.day.strftime("%A %-d %B %Y"))
    return (
        '<html><body style="font-family:Helvetica,Arial,sans-serif;color:#212529">'
        f'<h2 style="color:#0B5563;margin-bottom:4px">Deloton daily report</h2>'
        f'<p style="margin-top:0">{day} ({html.escape(report.timezone)})</p>{empty}'
        '<table style="border-collapse:collapse;font-size:15px">'
        f"<tr><th {first}></th><th {cell}>Day</th><th {cell}>Previous day</th>"
        f"<th {cell}>7-day average</th></tr>{rows}</table>"
        f"<p>Heart-rate alert emails delivered: {report.alerts_sent:,} of "
        f"{report.alerts_raised:,}. Lines rejected: {report.rejected:,}.</p>"
        "<p>The full report, with charts, is attached as a PDF.</p></body></html>"
    )


def build_message(
    report: DayReport, pdf: bytes, *, sender: str, recipients: list[str], now: datetime
) -> EmailMessage:
    """The email: text and HTML summaries, the PDF attached."""
    msg = EmailMessage()
    msg["Subject"] = subject(report)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(idstring=f"report-{report.day.isoformat()}", domain="deloton")
    msg.set_content(summary_text(report))
    msg.add_alternative(summary_html(report), subtype="html")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=filename(report.day))
    return msg


@dataclass(frozen=True)
class Sent:
    """How the email went out."""

    transport: str  # ses | outbox
    message_id: str


def _client(settings: Settings, service: str, endpoint: str | None) -> Any | None:
    """A boto3 client, or None without credentials and without a local endpoint."""
    import boto3

    session = boto3.session.Session()
    key_id = secret = None
    if session.get_credentials() is None:
        if not endpoint:
            return None
        key_id = secret = "local"  # a local endpoint (moto) accepts any signature
    return session.client(  # type: ignore[call-overload]
        service,
        region_name=settings.aws_region,
        endpoint_url=endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def send(settings: Settings, msg: EmailMessage, recipients: list[str]) -> Sent:
    """Send through SES send_raw_email, or write `<Message-ID>.eml` into the outbox."""
    client = _client(settings, "ses", settings.ses_endpoint_url)
    if client is None:
        directory = settings.email_outbox_dir
        directory.mkdir(parents=True, exist_ok=True)
        message_id = str(msg["Message-ID"]).strip("<>")
        path = directory / f"{message_id}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(msg.as_bytes())
        os.replace(tmp, path)
        return Sent("outbox", message_id)
    response = client.send_raw_email(
        Source=str(msg["From"]),
        Destinations=recipients,
        RawMessage={"Data": msg.as_bytes()},
    )
    return Sent("ses", str(response["MessageId"]))


def store(settings: Settings, day: date, pdf: bytes, out: Path | None = None) -> list[str]:
    """Keep the PDF in the reports directory (or at `out`) and in S3 when a bucket is set."""
    path = out if out is not None else settings.report_dir / filename(day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(pdf)
    os.replace(tmp, path)
    places = [str(path)]
    if settings.report_bucket:
        client = _client(settings, "s3", settings.report_s3_endpoint_url)
        if client is None:
            log.warning("REPORT_BUCKET is set but there are no AWS credentials; S3 copy skipped")
        else:
            key = f"reports/{day.year}/{filename(day)}"
            client.put_object(
                Bucket=settings.report_bucket, Key=key, Body=pdf, ContentType="application/pdf"
            )
            places.append(f"s3://{settings.report_bucket}/{key}")
    return places
