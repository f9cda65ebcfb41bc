"""Reads over a recent window of rides: who rode, for how long, effort through the period.

A ride in the window is in `daily.rides` until retention drops its readings, and in
`historical.rides` once summarised; the union takes each ride once (daily first) and leaves
out tombstoned rides. Nothing here scans readings outside the buckets it is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from services.common.pool import Connection


@dataclass(frozen=True)
class RecentRide:
    """One ride that started in the window, with the rider facts the dashboard groups by."""

    ride_id: int
    user_id: int
    started_at: datetime
    ended_at: datetime | None  # None while in progress
    gender: str
    date_of_birth: date


@dataclass(frozen=True)
class RideBucket:
    """Sums of one ride's readings inside one time bucket (so any filter can re-add them)."""

    bucket: datetime
    ride_id: int
    power_sum: float
    power_n: int
    heart_rate_sum: float
    heart_rate_n: int


@dataclass(frozen=True)
class FleetDay:
    """Today's counts for the fleet page."""

    rides: int
    riders: int
    alerts: int
    cities: list[tuple[str, int]]  # (city, riders today), busiest first


_RIDES = """
SELECT d.ride_id, d.user_id, d.started_at, d.ended_at, r.gender, r.date_of_birth
FROM daily.rides d JOIN daily.riders r USING (user_id)
WHERE d.started_at >= %(since)s AND d.started_at < %(until)s
  AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = d.ride_id)
UNION ALL
SELECT h.ride_id, h.user_id, h.started_at, h.ended_at, r.gender, r.date_of_birth
FROM historical.rides h JOIN historical.riders r USING (user_id)
WHERE h.started_at >= %(since)s AND h.started_at < %(until)s
  AND NOT EXISTS (SELECT 1 FROM daily.rides d WHERE d.ride_id = h.ride_id)
  AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = h.ride_id)
"""


def recent_rides(conn: Connection, *, since: datetime, until: datetime) -> list[RecentRide]:
    """Rides that started in [since, until), each once, tombstoned rides left out."""
    rows = conn.execute(_RIDES, {"since": since, "until": until}).fetchall()
    return [RecentRide(**row) for row in rows]


def ride_buckets(
    conn: Connection, *, since: datetime, until: datetime, bucket_s: int
) -> list[RideBucket]:
    """Per ride and per `bucket_s` bucket (aligned on the epoch), sums of power and heart rate
    of the readings recorded in [since, until). Heart rate NULL or 0 (no contact) is left out.
    Only the hourly partitions the range touches are read."""
    rows = conn.execute(
        """
        SELECT date_bin(make_interval(secs => %(step)s), recorded_at, 'epoch'::timestamptz)
                 AS bucket,
               ride_id,
               sum(power) AS power_sum, count(*) AS power_n,
               coalesce(sum(nullif(heart_rate, 0)), 0)::double precision AS heart_rate_sum,
               count(nullif(heart_rate, 0)) AS heart_rate_n
        FROM daily.readings
        WHERE recorded_at >= %(since)s AND recorded_at < %(until)s
        GROUP BY 1, 2
        """,
        {"since": since, "until": until, "step": bucket_s},
    ).fetchall()
    return [RideBucket(**row) for row in rows]


def fleet_day(
    conn: Connection, *, day_start: datetime, until: datetime, top_cities: int = 5
) -> FleetDay:
    """Rides, distinct riders and alerts since `day_start`, and the cities with most riders."""
    params = {"since": day_start, "until": until, "top": top_cities}
    counts = conn.execute(
        f"""
        WITH today AS ({_RIDES})
        SELECT count(*) AS rides, count(DISTINCT user_id) AS riders,
               (SELECT count(*) FROM daily.alerts
                 WHERE detected_at >= %(since)s AND detected_at < %(until)s) AS alerts
        FROM today
        """,
        params,
    ).fetchone()
    assert counts is not None
    cities = conn.execute(
        f"""
        WITH today AS ({_RIDES}),
        who AS (SELECT DISTINCT user_id FROM today)
        SELECT coalesce(d.city, h.city) AS city, count(*) AS riders
        FROM who
        LEFT JOIN daily.riders d USING (user_id)
        LEFT JOIN historical.riders h USING (user_id)
        WHERE coalesce(d.city, h.city) IS NOT NULL
        GROUP BY 1 ORDER BY riders DESC, city LIMIT %(top)s
        """,
        params,
    ).fetchall()
    return FleetDay(
        rides=counts["rides"],
        riders=counts["riders"],
        alerts=counts["alerts"],
        cities=[(row["city"], row["riders"]) for row in cities],
    )
