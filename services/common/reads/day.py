"""Reads for a span of days (the daily report): rides started in it, their riders, rejects.

A ride looks the same wherever it lives: summarised into historical.rides, or still in daily
with its summary computed here from the readings with the formulas compress uses (so a
report made before and after the roll-up gives the same numbers). Tombstoned rides are gone.

`rides.rides_by_ids` gives the same summaries (tests/report/test_reads_day.py checks it ride
for ride), but through one LATERAL aggregate per ride: right for a page of 50, while a day
of 20,000 rides in daily measured 3.5x slower that way than the single hash aggregate over
the day's readings below. That aggregate takes every reading since the window's start, not
only the window's rides' (a semi-join on them kept PostgreSQL from running it in parallel
workers, 3x slower): what it adds are readings of rides that started earlier or are settled,
a few in a 12-hour daily schema, and the join drops them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from services.common.pool import Connection

_NOT_DELETED = "NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = {r}.ride_id)"


@dataclass(frozen=True)
class RideSummary:
    """One ride's summary, the same for a daily ride (on the fly) and a historical one."""

    ride_id: int
    user_id: int
    bike_serial: str
    started_at: datetime
    ended_at: datetime
    duration_s: int
    readings_count: int
    heart_rate_readings: int
    avg_heart_rate: float | None
    avg_power: float | None
    total_energy_kj: float | None
    alert_count: int
    alerts_sent: int  # of alert_count, those whose email is on record as sent
    source: str  # 'daily' | 'historical'


# Daily rides not settled yet, summarised on the fly exactly as compress's
# insert_ride_summaries does (heart rate 0/NULL is no contact; one reading a second, so the sum
# of watts is joules; an open ride ends at its last reading).
_RIDE_SUMMARIES = f"""
WITH d AS (
    SELECT r.ride_id, r.user_id, r.bike_serial, r.started_at, r.ended_at
    FROM daily.rides r
    WHERE r.started_at >= %(from)s AND r.started_at < %(to)s
      AND NOT EXISTS (SELECT 1 FROM historical.rides h WHERE h.ride_id = r.ride_id)
      AND {_NOT_DELETED.format(r="r")}
), agg AS (
    SELECT x.ride_id,
           count(*) AS n,
           count(nullif(x.heart_rate, 0)) AS hr_n,
           avg(nullif(x.heart_rate, 0))::double precision AS avg_hr,
           avg(x.power) AS avg_power,
           sum(x.power) / 1000.0 AS energy_kj,
           max(x.recorded_at) AS last_at
    FROM daily.readings x
    WHERE x.recorded_at >= %(from)s
    GROUP BY x.ride_id
), al AS (
    SELECT a.ride_id, count(*) AS n, count(*) FILTER (WHERE a.status = 'sent') AS sent
    FROM daily.alerts a
    WHERE a.detected_at >= %(from)s
    GROUP BY a.ride_id
)
SELECT d.ride_id, d.user_id, d.bike_serial, d.started_at, e.ended_at,
       greatest(0, round(extract(epoch FROM e.ended_at - d.started_at)))::integer AS duration_s,
       coalesce(agg.n, 0) AS readings_count, coalesce(agg.hr_n, 0) AS heart_rate_readings,
       agg.avg_hr AS avg_heart_rate, agg.avg_power, agg.energy_kj AS total_energy_kj,
       coalesce(al.n, 0)::integer AS alert_count, coalesce(al.sent, 0)::integer AS alerts_sent,
       'daily' AS source
FROM d
LEFT JOIN agg ON agg.ride_id = d.ride_id
LEFT JOIN al ON al.ride_id = d.ride_id
CROSS JOIN LATERAL (SELECT coalesce(d.ended_at, agg.last_at, d.started_at) AS ended_at) e
UNION ALL
SELECT h.ride_id, h.user_id, h.bike_serial, h.started_at, h.ended_at, h.duration_s,
       h.readings_count, h.heart_rate_readings, h.avg_heart_rate, h.avg_power,
       h.total_energy_kj, greatest(h.alert_count, coalesce(al.n, 0))::integer,
       greatest(h.alerts_sent, coalesce(al.sent, 0))::integer, 'historical'
FROM historical.rides h
LEFT JOIN al ON al.ride_id = h.ride_id
WHERE h.started_at >= %(from)s AND h.started_at < %(to)s AND {_NOT_DELETED.format(r="h")}
ORDER BY started_at, ride_id
"""


def ride_summaries(conn: Connection, *, start: datetime, end: datetime) -> list[RideSummary]:
    """Every ride started in [start, end), daily or historical, deleted rides left out."""
    with conn.cursor() as cur:
        cur.execute("SELECT set_config('jit', 'off', true)")
        cur.execute(_RIDE_SUMMARIES, {"from": start, "to": end})
        return [RideSummary(**row) for row in cur.fetchall()]


@dataclass(frozen=True)
class Rider:
    """What a report may show of a rider: no surname beyond its initial leaves this module."""

    user_id: int
    first_name: str
    last_initial: str
    gender: str
    date_of_birth: date


def riders(conn: Connection, *, user_ids: list[int]) -> dict[int, Rider]:
    """The riders with these ids (daily details when newer than historical ones)."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT DISTINCT ON (user_id) user_id, first_name,
                      upper(left(last_name, 1)) AS last_initial, gender, date_of_birth
               FROM (SELECT user_id, first_name, last_name, gender, date_of_birth, details_at
                     FROM daily.riders WHERE user_id = ANY(%(ids)s)
                     UNION ALL
                     SELECT user_id, first_name, last_name, gender, date_of_birth, details_at
                     FROM historical.riders WHERE user_id = ANY(%(ids)s)) r
               ORDER BY user_id, details_at DESC""",
            {"ids": user_ids},
        )
        return {row["user_id"]: Rider(**row) for row in cur.fetchall()}


def first_rides(conn: Connection, *, user_ids: list[int]) -> dict[int, datetime]:
    """Each rider's first ride ever (daily or historical, deleted rides left out)."""
    with conn.cursor() as cur:
        cur.execute(
            f"""SELECT user_id, min(started_at) AS first_at FROM (
                    SELECT r.user_id, r.started_at, r.ride_id FROM daily.rides r
                    WHERE r.user_id = ANY(%(ids)s)
                    UNION ALL
                    SELECT h.user_id, h.started_at, h.ride_id FROM historical.rides h
                    WHERE h.user_id = ANY(%(ids)s)) x
                WHERE {_NOT_DELETED.format(r="x")}
                GROUP BY user_id""",
            {"ids": user_ids},
        )
        return {row["user_id"]: row["first_at"] for row in cur.fetchall()}


def rejects_by_reason(conn: Connection, *, start: datetime, end: datetime) -> dict[str, int]:
    """Lines rejected in [start, end) (by arrival), counted by reason, most frequent first."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT reason, count(*) AS n FROM daily.rejects
               WHERE received_at >= %(from)s AND received_at < %(to)s
               GROUP BY reason ORDER BY n DESC, reason""",
            {"from": start, "to": end},
        )
        return {row["reason"]: int(row["n"]) for row in cur.fetchall()}
