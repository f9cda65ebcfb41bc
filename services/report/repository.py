"""The record of which report dates were emailed (historical.report_deliveries)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import psycopg2.extensions

Cursor = psycopg2.extensions.cursor

# Transaction-level lock key for "a report for this date is being sent" ("delorept").
REPORT_LOCK_KEY = 0x6465_6C6F_7265_7074 & 0x7FFF_FFFF


@dataclass(frozen=True)
class Delivery:
    """When a date's report went out and to whom."""

    report_date: date
    first_sent_at: datetime
    last_sent_at: datetime
    sends: int
    recipients: list[str]
    transport: str
    message_id: str


def lock_date(cur: Cursor, *, day: date) -> None:
    """Serialise runs for the same date until the caller's transaction ends."""
    cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (REPORT_LOCK_KEY, day.toordinal()))


def delivery(cur: Cursor, *, day: date) -> Delivery | None:
    """The record of the date's email, if it was sent."""
    cur.execute(
        """SELECT report_date, first_sent_at, last_sent_at, sends, recipients, transport,
                  message_id
           FROM historical.report_deliveries WHERE report_date = %s""",
        (day,),
    )
    row = cur.fetchone()
    return Delivery(*row) if row else None


def record_delivery(
    cur: Cursor,
    *,
    day: date,
    sent_at: datetime,
    recipients: list[str],
    transport: str,
    message_id: str,
    pdf_sha256: str,
) -> None:
    """Record (or, on a resend, update) the date's email."""
    cur.execute(
        """INSERT INTO historical.report_deliveries (report_date, first_sent_at, last_sent_at,
               recipients, transport, message_id, pdf_sha256)
           VALUES (%(day)s, %(at)s, %(at)s, %(to)s, %(via)s, %(id)s, %(sha)s)
           ON CONFLICT (report_date) DO UPDATE SET
               last_sent_at = EXCLUDED.last_sent_at,
               sends = historical.report_deliveries.sends + 1,
               recipients = EXCLUDED.recipients, transport = EXCLUDED.transport,
               message_id = EXCLUDED.message_id, pdf_sha256 = EXCLUDED.pdf_sha256""",
        {
            "day": day,
            "at": sent_at,
            "to": recipients,
            "via": transport,
            "id": message_id,
            "sha": pdf_sha256,
        },
    )
