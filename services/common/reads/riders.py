"""Riders as every reader sees them: current details, totals over all their rides, rankings.

A rider's current details are the `daily.riders` row when there is one (ingest keeps it
newest), else the `historical.riders` row. The records returned here hold personal data;
deciding who may see it is the caller's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from services.common.pool import AsyncConnection, Connection
from services.common.reads.rides import day_bounds

LeaderboardBy = Literal["rides", "duration", "longest_ride", "max_power", "energy"]


@dataclass(frozen=True)
class Rider:
    """A rider's details (personal data included) as of their latest SYSTEM line."""

    user_id: int
    title: str | None
    first_name: str
    last_name: str
    gender: str
    address_line: str | None
    city: str | None
    postcode: str | None
    date_of_birth: date
    email_address: str | None
    height_cm: int | None
    weight_kg: int | None
    account_created_at: datetime | None
    original_source: str | None


@dataclass(frozen=True)
class RiderStats:
    """Totals over a rider's rides that are not deleted, summarised or not."""

    rides: int
    total_duration_s: int
    avg_heart_rate: float | None  # over every reading with heart-rate contact


@dataclass(frozen=True)
class LeaderboardEntry:
    """One ranked rider; ties share a value and are ordered by user_id."""

    rank: int
    user_id: int
    value: float
    rides: int


_RIDER_COLUMNS = (
    "user_id, title, first_name, last_name, gender, address_line, city, postcode, "
    "date_of_birth, email_address, height_cm, weight_kg, account_created_at, original_source"
)


_RIDER = f"""
    SELECT {_RIDER_COLUMNS} FROM daily.riders WHERE user_id = %(id)s
    UNION ALL
    SELECT {_RIDER_COLUMNS} FROM historical.riders h WHERE user_id = %(id)s
      AND NOT EXISTS (SELECT 1 FROM daily.riders d WHERE d.user_id = %(id)s)
    LIMIT 1
"""


def get_rider(conn: Connection, *, user_id: int) -> Rider | None:
    """The rider's current details, or None for an unknown rider."""
    row = conn.execute(_RIDER, {"id": user_id}).fetchone()
    return Rider(**row) if row else None


# Totals from the rider's summaries plus their rides still only in daily, whose figures are
# computed as the ride reads compute them. Average heart rate weights each ride by its
# readings with contact, so it is the average over all of them.
_STATS = """
    WITH per_ride AS (
        SELECT h.duration_s, h.heart_rate_readings AS hr_n,
               h.avg_heart_rate * h.heart_rate_readings AS hr_sum
        FROM historical.rides h
        WHERE h.user_id = %(id)s
          AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = h.ride_id)
        UNION ALL
        SELECT greatest(0, round(extract(epoch FROM
                   coalesce(d.ended_at, r.last_at, d.started_at) - d.started_at)))::integer,
               coalesce(r.hr_n, 0), r.hr_sum
        FROM daily.rides d
        LEFT JOIN LATERAL (
            SELECT count(nullif(x.heart_rate, 0)) AS hr_n,
                   sum(nullif(x.heart_rate, 0))::double precision AS hr_sum,
                   max(x.recorded_at) AS last_at
            FROM daily.readings x
            WHERE x.ride_id = d.ride_id AND x.recorded_at >= d.started_at
        ) r ON true
        WHERE d.user_id = %(id)s
          AND NOT EXISTS (SELECT 1 FROM historical.rides h WHERE h.ride_id = d.ride_id)
          AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = d.ride_id)
    )
    SELECT count(*)::integer AS rides, coalesce(sum(duration_s), 0)::bigint AS total_duration_s,
           sum(hr_sum) / nullif(sum(hr_n), 0) AS avg_heart_rate
    FROM per_ride
"""


def rider_stats(conn: Connection, *, user_id: int) -> RiderStats:
    """Number of rides, total riding time and average heart rate of a rider (zeros if none)."""
    return _stats(conn.execute(_STATS, {"id": user_id}).fetchone())


# `get_rider` and `rider_stats` as one row of one statement: the rider's columns are NULL
# for an unknown rider, and the totals are always there. One statement costs the API about a
# quarter less CPU than the two in psycopg's pipeline mode, for the same single round trip.
_RIDER_WITH_STATS = f"""
    SELECT r.*, s.*
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL ({_RIDER}) r ON true
    CROSS JOIN LATERAL ({_STATS}) s
"""
_RIDER_FIELDS = tuple(c.strip() for c in _RIDER_COLUMNS.split(","))


async def rider_with_stats_async(
    conn: AsyncConnection, *, user_id: int
) -> tuple[Rider | None, RiderStats]:
    """`get_rider` and `rider_stats` in one round trip."""
    cur = await conn.execute(_RIDER_WITH_STATS, {"id": user_id})
    row = await cur.fetchone()
    assert row is not None
    rider = Rider(**{f: row[f] for f in _RIDER_FIELDS}) if row["user_id"] is not None else None
    return rider, _stats(row)


def _stats(row: dict[str, Any] | None) -> RiderStats:
    assert row is not None
    return RiderStats(
        rides=row["rides"],
        total_duration_s=int(row["total_duration_s"]),
        avg_heart_rate=row["avg_heart_rate"],
    )


# Ranking column in historical.rider_totals, and the same figure aggregated from rides.
_TOTALS_COLUMN: dict[str, str] = {
    "rides": "rides",
    "duration": "duration_s",
    "longest_ride": "longest_ride_s",
    "max_power": "max_power",
    "energy": "energy_kj",
}
_RIDES_AGGREGATE: dict[str, str] = {
    "rides": "count(*)",
    "duration": "sum(h.duration_s)",
    "longest_ride": "max(h.duration_s)",
    "max_power": "max(h.max_power)",
    "energy": "coalesce(sum(h.total_energy_kj), 0)",
}


def all_time_query(by: LeaderboardBy) -> str:
    """The all-time ranking: the first `limit` entries of the ranking column's index.

    The ORDER BY must match the index exactly: `DESC NULLS LAST` on a column indexed `DESC`
    (NULLS FIRST) made PostgreSQL sort all 100,000 riders on every call, although only
    max_power can be null (the others are NOT NULL, so their order is the same).
    """
    column = _TOTALS_COLUMN[by]
    nulls = " NULLS LAST" if by == "max_power" else ""
    return f"""SELECT user_id, {column}::double precision AS value, rides
               FROM historical.rider_totals
               ORDER BY {column} DESC{nulls}, user_id
               LIMIT %(limit)s"""


# Whether any summary started since the day belongs to a deleted ride (a roll-up that raced
# the DELETE; usually none).
_TOMBSTONED_SINCE = """
    SELECT EXISTS (SELECT 1 FROM historical.rides h
                   JOIN historical.deleted_rides t ON t.ride_id = h.ride_id
                   WHERE h.started_at >= %(since)s) AS any
"""
_NOT_TOMBSTONED = """
    AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = h.ride_id)
"""


def leaderboard(
    conn: Connection, *, by: LeaderboardBy = "rides", since: date | None = None, limit: int = 10
) -> list[LeaderboardEntry]:
    """Riders ranked by a figure over their summarised rides (since a UTC day, if given).

    All time reads the totals that triggers keep on historical.rides (an index, not every
    ride); `since` aggregates the rides started from that day on. Ties go to the lower
    user_id; riders with no value (no power recorded) come last.
    """
    if since is None:
        query = all_time_query(by)
        params: dict[str, Any] = {"limit": limit}
    else:
        params = {"since": day_bounds(since)[0], "limit": limit}
        # Summaries of deleted rides are purged by the next roll-up; until then they must
        # not count. Asked first, separately: with no tombstone in the table PostgreSQL
        # plans the check inside the aggregate as a loop over every ride since the day,
        # which cost more than the aggregate itself.
        gone = conn.execute(_TOMBSTONED_SINCE, params).fetchone()
        check = _NOT_TOMBSTONED if gone is not None and gone["any"] else ""
        query = f"""SELECT h.user_id, ({_RIDES_AGGREGATE[by]})::double precision AS value,
                           count(*)::integer AS rides
                    FROM historical.rides h
                    WHERE h.started_at >= %(since)s {check}
                    GROUP BY h.user_id
                    ORDER BY value DESC NULLS LAST, h.user_id
                    LIMIT %(limit)s"""
    rows = conn.execute(query, params).fetchall()
    return [
        LeaderboardEntry(
            rank=i + 1, user_id=row["user_id"], value=row["value"] or 0.0, rides=row["rides"]
        )
        for i, row in enumerate(rows)
    ]
