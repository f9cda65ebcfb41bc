"""The ops emails of a fleet health incident: opened, and recovered."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

from services.quality.detectors import LIMITS
from services.quality.repository import DueEmail

EXPLAIN = {
    "no_contact": "many seconds without heart-rate contact",
    "gaps": "seconds missing from the one-reading-a-second sequence",
    "duplicates": "duplicated lines",
    "out_of_order": "lines out of order",
    "stuck": "a stuck sensor (cadence, power or heart rate frozen)",
    "implausible": "implausible values",
    "clock_skew": "the bike's clock is off",
}


def subject(email: DueEmail) -> str:
    """One line an operator can triage from."""
    if email.kind == "opened":
        what = ", ".join(email.problems) or "low score"
        return f"[fleet health] {email.bike_serial}: data quality {email.score:.2f} ({what})"
    return f"[fleet health] {email.bike_serial} recovered"


def body(email: DueEmail) -> str:
    """The plain-text body."""
    lines = [f"Bike {email.bike_serial}"]
    if email.kind == "opened":
        lines.append(
            f"Its data quality fell to {email.score:.2f} at {email.opened_at:%Y-%m-%d %H:%M} UTC."
        )
        for name in email.problems:
            lines.append(f"- {EXPLAIN.get(name, name)} (limit {LIMITS.get(name, 0):g})")
        lines.append("It stays flagged in GET /fleet/health and the dashboard until it recovers.")
    else:
        cleared = f"{email.cleared_at:%Y-%m-%d %H:%M}" if email.cleared_at else "now"
        lines.append(
            f"Its data quality recovered at {cleared} UTC (incident {email.incident_id}, "
            f"opened {email.opened_at:%Y-%m-%d %H:%M} UTC, worst score {email.worst_score:.2f})."
        )
    return "\n".join(lines) + "\n"


def build(email: DueEmail, *, sender: str, recipients: list[str], message_id: str) -> EmailMessage:
    """The MIME message (no personal data: bikes and figures only); `message_id` is the one
    its delivery claim recorded (services.common.delivery)."""
    msg = EmailMessage()
    msg["Subject"] = subject(email)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id
    msg["X-Deloton-Incident"] = f"{email.incident_id}/{email.kind}"
    msg.set_content(body(email))
    return msg
