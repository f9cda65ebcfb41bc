"""SQL of the fleet health job: the window's readings, rejects and clock lags; quality rows;
incidents and their emails. Keyword-only functions taking a psycopg2 cursor first."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import psycopg2.extensions
from psycopg2.extensions import cursor as Cursor
from psycopg2.extras import Json, execute_values

from services.quality.detectors import Quality, Reading

_LOCK = 0x6465_6C71  # advisory lock: one quality run at a time ("delq")


def try_lock(cur: Cursor) -> bool:
    """Take the run's transaction-level lock; False when another run holds it."""
    cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK,))
    row = cur.fetchone()
    return bool(row and row[0])


def window_readings(
    conn: psycopg2.extensions.connection, *, since: datetime, until: datetime
) -> Iterator[tuple[str, list[Reading]]]:
    """Each bike's readings recorded in [since, until), by ride and second, one bike at a time
    through a server-side cursor (memory holds one bike's window, not the fleet's). Runs in
    the caller's open transaction."""
    with conn.cursor() as plain:
        # The whole window is read: plan for total time, not for the first rows (a cursor's
        # default, which picks a nested loop over every hourly partition's index).
        plain.execute("SET LOCAL cursor_tuple_fraction = 1.0")
    with conn.cursor(name="quality_window") as cur:
        cur.itersize = 20_000
        cur.execute(
            """SELECT r.bike_serial, d.ride_id, d.elapsed_s, d.recorded_at, d.resistance,
                      d.heart_rate, d.rpm, d.power
               FROM daily.readings d JOIN daily.rides r USING (ride_id)
               WHERE d.recorded_at >= %s AND d.recorded_at < %s
               ORDER BY r.bike_serial, d.ride_id, d.elapsed_s""",
            (since, until),
        )
        bike: str | None = None
        rows: list[Reading] = []
        for serial, *rest in cur:
            if serial != bike:
                if bike is not None:
                    yield bike, rows
                bike, rows = serial, []
            rows.append(Reading(*rest))
        if bike is not None:
            yield bike, rows


def window_rejects(cur: Cursor, *, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
    """Each bike's rejected lines received in [since, until), by reason."""
    cur.execute(
        """SELECT bike_serial, reason, count(*) FROM daily.rejects
           WHERE received_at >= %s AND received_at < %s AND bike_serial IS NOT NULL
           GROUP BY bike_serial, reason""",
        (since, until),
    )
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for serial, reason, n in cur.fetchall():
        out[serial][reason] = int(n)
    return dict(out)


def clock_lags(cur: Cursor, *, since: datetime) -> dict[str, float]:
    """Seconds from each bike's latest line time to when ingest wrote it (bikes written since)."""
    cur.execute(
        """SELECT bike_serial, extract(epoch FROM written_at - last_seen_at)::float8
           FROM daily.bikes WHERE written_at >= %s""",
        (since,),
    )
    return {serial: float(lag) for serial, lag in cur.fetchall()}


def save_quality(
    cur: Cursor, *, computed_at: datetime, since: datetime, until: datetime,
    judged: dict[str, Quality],
) -> None:  # fmt: skip
    """Replace each judged bike's latest quality row."""
    if not judged:
        return
    execute_values(
        cur,
        """INSERT INTO ops.bike_quality AS q (bike_serial, computed_at, window_from, window_to,
               score, readings, measures, problems)
           VALUES %s
           ON CONFLICT (bike_serial) DO UPDATE SET computed_at = EXCLUDED.computed_at,
               window_from = EXCLUDED.window_from, window_to = EXCLUDED.window_to,
               score = EXCLUDED.score, readings = EXCLUDED.readings,
               measures = EXCLUDED.measures, problems = EXCLUDED.problems""",
        [
            (bike, computed_at, since, until, q.score, q.readings, Json(q.measures), q.problems)
            for bike, q in sorted(judged.items())
        ],
    )


@dataclass(frozen=True)
class OpenIncident:
    incident_id: int
    bike_serial: str
    worst_score: float


def open_incidents(cur: Cursor) -> dict[str, OpenIncident]:
    """The open incident of each bike that has one."""
    cur.execute(
        "SELECT incident_id, bike_serial, worst_score FROM ops.bike_incidents "
        "WHERE cleared_at IS NULL"
    )
    return {r[1]: OpenIncident(*r) for r in cur.fetchall()}


def open_incident(cur: Cursor, *, bike: str, at: datetime, quality: Quality) -> bool:
    """Open an incident for the bike; False if one is open already (a concurrent run)."""
    cur.execute(
        """INSERT INTO ops.bike_incidents (bike_serial, opened_at, score, worst_score, problems)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (bike_serial) WHERE cleared_at IS NULL DO NOTHING
           RETURNING incident_id""",
        (bike, at, quality.score, quality.score, quality.problems),
    )
    return cur.fetchone() is not None


def worsen(cur: Cursor, *, incident_id: int, score: float) -> None:
    """Record a lower score on an open incident."""
    cur.execute(
        "UPDATE ops.bike_incidents SET worst_score = least(worst_score, %s) WHERE incident_id = %s",
        (score, incident_id),
    )


def clear_incident(cur: Cursor, *, incident_id: int, at: datetime) -> None:
    """Close the incident; its recovery email becomes due."""
    cur.execute(
        """UPDATE ops.bike_incidents SET cleared_at = %s, cleared_email = 'pending',
               email_attempts = 0
           WHERE incident_id = %s AND cleared_at IS NULL""",
        (at, incident_id),
    )


@dataclass(frozen=True)
class DueEmail:
    incident_id: int
    kind: str  # "opened" or "cleared"
    bike_serial: str
    opened_at: datetime
    cleared_at: datetime | None
    score: float
    worst_score: float
    problems: list[str]
    attempts: int


def due_emails(
    cur: Cursor, *, limit: int = 100, skip: list[tuple[int, str]] | None = None
) -> list[DueEmail]:
    """Incident emails not sent yet (openings first, oldest first), locked for this run;
    `skip` leaves out (incident_id, kind) pairs another run is sending."""
    cur.execute(
        """SELECT incident_id,
                  CASE WHEN opened_email = 'pending' THEN 'opened' ELSE 'cleared' END,
                  bike_serial, opened_at, cleared_at, score, worst_score, problems,
                  email_attempts
           FROM ops.bike_incidents
           WHERE (opened_email = 'pending' OR cleared_email = 'pending')
             AND (incident_id, CASE WHEN opened_email = 'pending' THEN 'opened'
                                    ELSE 'cleared' END)
                 NOT IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))
           ORDER BY opened_at, incident_id LIMIT %s FOR UPDATE SKIP LOCKED""",
        ([i for i, _ in skip or []], [k for _, k in skip or []], limit),
    )
    return [DueEmail(*r) for r in cur.fetchall()]


def mark_email(
    cur: Cursor, *, incident_id: int, kind: str, status: str, error: str | None = None
) -> None:
    """Record an email sent, failed for good, or (status 'pending') to be retried."""
    column = "opened_email" if kind == "opened" else "cleared_email"
    cur.execute(
        f"""UPDATE ops.bike_incidents SET {column} = %s, last_error = %s,
               email_attempts = email_attempts + 1
           WHERE incident_id = %s""",
        (status, error, incident_id),
    )
