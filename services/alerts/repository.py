"""SQL for daily.alerts (and the rejects the alerts consumer finds). The caller owns the
transaction: these functions never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg2.extensions
from psycopg2.extras import Json, execute_values

from services.alerts.codec import iso
from services.alerts.models import Alert

Connection = psycopg2.extensions.connection


@dataclass(frozen=True)
class PendingAlert:
    """An alert row claimed for sending, with everything its email shows. The rider's name
    and address are read from daily.riders at send time: they travel nowhere else."""

    alert_id: int
    ride_id: int
    episode: int
    user_id: int
    bike_serial: str
    kind: str
    detected_at: datetime
    heart_rates: list[int]
    limit_low: int
    limit_high: int
    recipient: str | None
    rider_name: str | None
    readings: list[dict[str, Any]]
    observed_at: datetime | None
    attempts: int
    rider_known: bool  # False: ingest has not committed the rider's row yet
    email_invalid: str | None  # why ingest marked the address unusable
    last_error: str | None


@dataclass(frozen=True)
class NewAlert:
    """One alert to record, with when its confirming event was produced and read."""

    alert: Alert
    observed_at: datetime | None  # Kafka timestamp of the confirming event
    received_at: datetime | None = None  # when the alerts service read that event
    status: str = "pending"
    last_error: str | None = None


def insert_alerts(conn: Connection, *, rows: list[NewAlert]) -> set[tuple[int, int]]:
    """Record alerts once per (ride_id, episode) in one statement; return the (ride_id,
    episode) of those that were not there yet."""
    if not rows:
        return set()
    values = [
        (
            r.alert.ride_id, r.alert.episode, r.alert.user_id, r.alert.bike_serial,
            r.alert.kind, r.alert.detected_at, r.alert.heart_rates, r.alert.limits.low,
            r.alert.limits.high, Json(_readings(r.alert), dumps=_dumps), r.observed_at,
            r.received_at, r.status, r.last_error,
        )
        for r in rows
    ]  # fmt: skip
    with conn.cursor() as cur:
        inserted = execute_values(
            cur,
            """INSERT INTO daily.alerts (ride_id, episode, user_id, bike_serial, kind,
                   detected_at, heart_rates, limit_low, limit_high, readings, observed_at,
                   received_at, status, last_error)
               VALUES %s
               ON CONFLICT (ride_id, episode) DO NOTHING
               RETURNING ride_id, episode""",
            values,
            template="(%s, %s, %s, %s, %s, %s, %s::smallint[], %s, %s, %s, %s, %s, %s, %s)",
            page_size=len(values),
            fetch=True,
        )
    return {(ride_id, episode) for ride_id, episode in inserted}


def insert_alert(
    conn: Connection,
    *,
    alert: Alert,
    observed_at: datetime | None,
    status: str = "pending",
    last_error: str | None = None,
) -> bool:
    """Record an alert once per (ride_id, episode); False when it was already there."""
    row = NewAlert(alert, observed_at, status=status, last_error=last_error)
    return bool(insert_alerts(conn, rows=[row]))


def _readings(alert: Alert) -> list[dict[str, Any]]:
    return [
        {"elapsed_s": s.elapsed_s, "recorded_at": iso(s.recorded_at), "heart_rate": s.heart_rate}
        for s in alert.readings
    ]


def claim_pending(conn: Connection, *, limit: int) -> list[PendingAlert]:
    """Lock up to `limit` due pending alerts, oldest first, skipping rows another sender holds,
    with the rider's current name and address. The locks last until the caller's transaction
    ends, so a crash mid-send frees the rows."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT a.alert_id, a.ride_id, a.episode, a.user_id, a.bike_serial, a.kind,
                      a.detected_at, a.heart_rates, a.limit_low, a.limit_high,
                      CASE WHEN r.user_id IS NULL THEN a.recipient ELSE r.email_address END,
                      coalesce(r.first_name, a.rider_name),
                      coalesce(a.readings, '[]'::jsonb), a.observed_at, a.attempts,
                      r.user_id IS NOT NULL OR a.recipient IS NOT NULL, r.email_invalid,
                      a.last_error
                 FROM daily.alerts a
                 LEFT JOIN daily.riders r ON r.user_id = a.user_id
                WHERE a.status = 'pending'
                  AND (a.next_attempt_at IS NULL OR a.next_attempt_at <= now())
                ORDER BY a.created_at
                LIMIT %s
                  FOR UPDATE OF a SKIP LOCKED""",
            (limit,),
        )
        return [PendingAlert(*row) for row in cur.fetchall()]


def mark_sent(
    conn: Connection,
    *,
    alert_id: int,
    message_id: str,
    sent_at: datetime,
    claimed_at: datetime | None = None,
) -> None:
    """The email was accepted for delivery; `claimed_at` is when this attempt claimed the row."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE daily.alerts SET status = 'sent', sent_at = %s, message_id = %s,
                      claimed_at = %s, attempts = attempts + 1, last_error = NULL,
                      next_attempt_at = NULL
                WHERE alert_id = %s""",
            (sent_at, message_id, claimed_at, alert_id),
        )


def mark_retry(conn: Connection, *, alert_id: int, error: str, retry_at: datetime) -> None:
    """A transient failure: stay pending, not before `retry_at`."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE daily.alerts SET attempts = attempts + 1, last_error = %s,
                      next_attempt_at = %s
                WHERE alert_id = %s""",
            (error[:1000], retry_at, alert_id),
        )


def mark_failed(conn: Connection, *, alert_id: int, error: str, attempted: bool = True) -> None:
    """Give up on this alert's email (a permanent error)."""
    _finish(conn, alert_id=alert_id, status="failed", error=error, attempted=attempted)


def mark_expired(conn: Connection, *, alert_id: int, error: str) -> None:
    """Not delivered before it went stale: the rider has likely stopped riding."""
    _finish(conn, alert_id=alert_id, status="expired", error=error, attempted=False)


def _finish(conn: Connection, *, alert_id: int, status: str, error: str, attempted: bool) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE daily.alerts SET status = %s, attempts = attempts + %s,
                      last_error = %s, next_attempt_at = NULL
                WHERE alert_id = %s""",
            (status, int(attempted), error[:1000], alert_id),
        )


def insert_reject(
    conn: Connection,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    raw: bytes,
    reason: str,
    detail: str | None = None,
) -> None:
    """Keep a message the alerts consumer could not read, once per topic position."""
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO daily.rejects (topic, kafka_partition, kafka_offset, message_key,
                   raw, reason, detail, bike_serial)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING""",
            (
                topic, partition, offset, key, raw, reason, detail,
                key.decode("utf-8", "replace") if key else None,
            ),
        )  # fmt: skip


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
