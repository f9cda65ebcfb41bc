"""What the soak reads back from PostgreSQL (read-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg2.extensions import cursor as Cursor


def rides(cur: Cursor) -> dict[tuple[str, datetime], int]:
    """(bike serial, start) -> ride_id of every ride ingest wrote."""
    cur.execute("SELECT bike_serial, started_at, ride_id FROM daily.rides")
    return {(serial, started): ride_id for serial, started, ride_id in cur.fetchall()}


def readings(cur: Cursor) -> list[tuple[int, int, datetime, int, int | None, int, float]]:
    """Every reading: ride_id, elapsed_s, recorded_at, resistance, heart_rate, rpm, power."""
    cur.execute(
        "SELECT ride_id, elapsed_s, recorded_at, resistance, heart_rate, rpm, power "
        "FROM daily.readings"
    )
    return list(cur.fetchall())


def rejects(cur: Cursor) -> list[tuple[bytes, bytes, str]]:
    """Every dead letter: key, raw bytes, reason."""
    cur.execute("SELECT message_key, raw, reason FROM daily.rejects")
    return [(bytes(k or b""), bytes(raw), reason) for k, raw, reason in cur.fetchall()]


def summaries(cur: Cursor) -> dict[int, dict[str, Any]]:
    """historical.rides as {ride_id: {column: value}}."""
    cur.execute("SELECT * FROM historical.rides")
    names = [c.name for c in cur.description or ()]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def unsettled(cur: Cursor) -> tuple[int, int, int]:
    """Open rides, alerts still pending, and readings written so far."""
    cur.execute(
        "SELECT (SELECT count(*) FROM daily.rides WHERE ended_at IS NULL), "
        "(SELECT count(*) FROM daily.alerts WHERE status = 'pending'), "
        "(SELECT count(*) FROM daily.readings)"
    )
    row = cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def ingest_offsets(cur: Cursor, group: str, topic: str) -> dict[int, int]:
    """The next offset ingest stored for each partition of `topic`."""
    cur.execute(
        "SELECT kafka_partition, next_offset FROM daily.ingest_offsets "
        "WHERE consumer_group = %s AND topic = %s",
        (group, topic),
    )
    return {int(p): int(o) for p, o in cur.fetchall()}
