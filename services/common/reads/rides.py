"""Rides as every reader sees them, wherever they live.

A ride is read from `historical.rides` once compress has summarised it; until then it is read
from `daily`, with its summary computed on the fly from its readings exactly as compress
computes it (same filters, same formulas), so a ride looks the same before and after the
roll-up. A ride tombstoned in `historical.deleted_rides` is gone from every function here.

Lists are found in two steps: first the page of ride ids through indexes (no readings
touched), then the summaries of that page only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from services.common.pool import AsyncConnection, Connection

# The summary columns, in the order both sources produce them.
SUMMARY_FIELDS = (
    "readings_count",
    "heart_rate_readings",
    "avg_heart_rate",
    "max_heart_rate",
    "avg_power",
    "max_power",
    "total_energy_kj",
    "avg_rpm",
    "avg_resistance",
    "alert_count",
)


@dataclass(frozen=True)
class RideSummary:
    """A ride's figures: compress's formulas, whether stored or computed now."""

    readings_count: int
    heart_rate_readings: int
    avg_heart_rate: float | None
    max_heart_rate: int | None
    avg_power: float | None
    max_power: float | None
    total_energy_kj: float | None
    avg_rpm: float | None
    avg_resistance: float | None
    alert_count: int


@dataclass(frozen=True)
class Ride:
    """One ride: who, which bike, when, and its summary.

    `ended_at` is None while the ride is in progress; `duration_s` is then the time up to
    its latest reading. `summarised` says whether compress has rolled it up yet.
    """

    ride_id: int
    user_id: int
    bike_serial: str
    model: str | None
    started_at: datetime
    ended_at: datetime | None
    duration_s: int
    summarised: bool
    summary: RideSummary

    @property
    def in_progress(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class Reading:
    """One per-second reading of a ride still held at full resolution in `daily`."""

    elapsed_s: int
    recorded_at: datetime
    heart_rate: int | None
    rpm: int
    power: float
    resistance: int


_HISTORICAL = """
    SELECT h.ride_id, h.user_id, h.bike_serial, h.model, h.started_at, h.ended_at, h.duration_s,
           true AS summarised, h.readings_count, h.heart_rate_readings, h.avg_heart_rate,
           h.max_heart_rate, h.avg_power, h.max_power, h.total_energy_kj, h.avg_rpm,
           h.avg_resistance, h.alert_count
    FROM historical.rides h
    WHERE h.ride_id = ANY(%(ids)s)
      AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = h.ride_id)
"""

# Mirrors compress's insert_ride_summaries: heart rate 0 or NULL is no contact, readings are
# a second apart so the sum of watts is joules, a ride still open ends at its last reading.
_DAILY = """
    SELECT d.ride_id, d.user_id, d.bike_serial, d.model, d.started_at, d.ended_at,
           greatest(0, round(extract(epoch FROM
               coalesce(d.ended_at, r.last_at, d.started_at) - d.started_at)))::integer
               AS duration_s,
           false AS summarised, coalesce(r.n, 0) AS readings_count,
           coalesce(r.hr_n, 0) AS heart_rate_readings, r.avg_hr AS avg_heart_rate,
           r.max_hr AS max_heart_rate, r.avg_power, r.max_power, r.energy_kj AS total_energy_kj,
           r.avg_rpm, r.avg_resistance, coalesce(a.n, 0)::integer AS alert_count
    FROM daily.rides d
    LEFT JOIN LATERAL (
        SELECT count(*)::integer AS n,
               count(nullif(x.heart_rate, 0))::integer AS hr_n,
               avg(nullif(x.heart_rate, 0))::double precision AS avg_hr,
               max(nullif(x.heart_rate, 0)) AS max_hr,
               avg(x.power) AS avg_power,
               max(x.power) AS max_power,
               sum(x.power) / 1000.0 AS energy_kj,
               avg(x.rpm)::double precision AS avg_rpm,
               avg(x.resistance)::double precision AS avg_resistance,
               max(x.recorded_at) AS last_at
        FROM daily.readings x
        WHERE x.ride_id = d.ride_id AND x.recorded_at >= d.started_at
    ) r ON true
    LEFT JOIN LATERAL (
        SELECT count(*) AS n FROM daily.alerts al WHERE al.ride_id = d.ride_id
    ) a ON true
    WHERE d.ride_id = ANY(%(ids)s)
      AND NOT EXISTS (SELECT 1 FROM historical.rides h WHERE h.ride_id = d.ride_id)
      AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = d.ride_id)
"""

# Smaller than any elapsed_s (an integer column): "from the first reading".
_BEFORE_ANY = -(2**31)

_RIDES_BY_IDS = f"{_HISTORICAL} UNION ALL {_DAILY}"

# One ride: the same query with a scalar id. psycopg prepares a query it runs often, and
# PostgreSQL then keeps one generic plan for it when that plan costs no more than planning
# each call would; with an array of ids the generic plan is estimated for several rides, so
# it re-plans every call, and planning the daily side (a lateral over every readings
# partition) costs about 0.5 ms of server CPU, five times the lookup itself.
_RIDE_BY_ID = _RIDES_BY_IDS.replace("= ANY(%(ids)s)", "= %(id)s")

# Ids of rides not tombstoned, from either schema; a ride in both (summarised, daily rows not
# yet removed) appears once, from historical. {h} and {d} are each side's conditions.
_PAGE = """
    SELECT ride_id, started_at FROM (
        SELECT h.ride_id, h.started_at FROM historical.rides h
        WHERE {h}
          AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = h.ride_id)
        UNION ALL
        SELECT d.ride_id, d.started_at FROM daily.rides d
        WHERE {d}
          AND NOT EXISTS (SELECT 1 FROM historical.rides h WHERE h.ride_id = d.ride_id)
          AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = d.ride_id)
    ) u
    ORDER BY started_at {order}, ride_id {order}
    LIMIT %(limit)s OFFSET %(offset)s
"""


def _ride(row: dict[str, Any]) -> Ride:
    summary = RideSummary(**{name: row[name] for name in SUMMARY_FIELDS})
    return Ride(
        ride_id=row["ride_id"],
        user_id=row["user_id"],
        bike_serial=row["bike_serial"],
        model=row["model"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        duration_s=row["duration_s"],
        summarised=row["summarised"],
        summary=summary,
    )


def rides_by_ids(conn: Connection, *, ride_ids: Sequence[int]) -> list[Ride]:
    """The rides among these ids that exist and are not deleted, in the order of `ride_ids`."""
    if not ride_ids:
        return []
    rows = conn.execute(_RIDES_BY_IDS, {"ids": list(ride_ids)}).fetchall()
    found = {row["ride_id"]: _ride(row) for row in rows}
    return [found[i] for i in ride_ids if i in found]


def get_ride(conn: Connection, *, ride_id: int) -> Ride | None:
    """One ride with its summary, or None if it does not exist or was deleted."""
    row = conn.execute(_RIDE_BY_ID, {"id": ride_id}).fetchone()
    return _ride(row) if row is not None else None


async def get_ride_async(conn: AsyncConnection, *, ride_id: int) -> Ride | None:
    """`get_ride` on an asyncio connection."""
    cur = await conn.execute(_RIDE_BY_ID, {"id": ride_id})
    row = await cur.fetchone()
    return _ride(row) if row is not None else None


_READINGS = """
    SELECT x.elapsed_s, x.recorded_at, nullif(x.heart_rate, 0) AS heart_rate, x.rpm,
           x.power, x.resistance
    FROM daily.readings x
    WHERE x.ride_id = %(id)s
      AND x.elapsed_s > %(after)s
      AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = %(id)s)
    ORDER BY x.elapsed_s, x.recorded_at
    LIMIT %(limit)s
"""


def _readings_params(ride_id: int, after_elapsed_s: int | None, limit: int) -> dict[str, int]:
    after = _BEFORE_ANY if after_elapsed_s is None else after_elapsed_s
    return {"id": ride_id, "after": after, "limit": limit}


def ride_readings(
    conn: Connection, *, ride_id: int, after_elapsed_s: int | None = None, limit: int = 500
) -> list[Reading]:
    """A page of the ride's readings still in `daily`, in elapsed order after `after_elapsed_s`.

    Empty for a deleted ride, and for a ride whose readings retention has dropped.
    """
    rows = conn.execute(_READINGS, _readings_params(ride_id, after_elapsed_s, limit)).fetchall()
    return [Reading(**row) for row in rows]


async def ride_readings_async(
    conn: AsyncConnection, *, ride_id: int, after_elapsed_s: int | None = None, limit: int = 500
) -> list[Reading]:
    """`ride_readings` on an asyncio connection."""
    cur = await conn.execute(_READINGS, _readings_params(ride_id, after_elapsed_s, limit))
    return [Reading(**row) for row in await cur.fetchall()]


def _page(
    conn: Connection,
    *,
    historical: str,
    daily: str,
    params: dict[str, Any],
    newest_first: bool,
    limit: int,
    offset: int,
) -> list[Ride]:
    ids = _page_ids(
        conn, historical=historical, daily=daily, params=params, newest_first=newest_first,
        limit=limit, offset=offset,
    )  # fmt: skip
    return rides_by_ids(conn, ride_ids=ids)


def _page_ids(
    conn: Connection,
    *,
    historical: str,
    daily: str,
    params: dict[str, Any],
    newest_first: bool,
    limit: int | None,
    offset: int,
) -> list[int]:
    """The ids of a page (`limit` None: all of them from `offset`)."""
    query = _PAGE.format(h=historical, d=daily, order="DESC" if newest_first else "ASC")
    rows = conn.execute(query, {**params, "limit": limit, "offset": offset}).fetchall()
    return [row["ride_id"] for row in rows]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants a calendar day starts and ends at (half-open)."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    if day == date.max:  # one day later does not fit a datetime; the instant after does
        return start, datetime.max.replace(tzinfo=UTC)
    return start, start + timedelta(days=1)


def rides_of_day(conn: Connection, *, day: date, limit: int = 50, offset: int = 0) -> list[Ride]:
    """Rides in progress or completed on a UTC day (any part of them in it), oldest first."""
    return rides_by_ids(conn, ride_ids=_ids_of_day(conn, day=day, limit=limit, offset=offset))


def ride_ids_of_day(conn: Connection, *, day: date) -> list[int]:
    """The ids of every ride `rides_of_day` lists for the day, in its order: a page of them
    is `rides_by_ids` of a slice."""
    return _ids_of_day(conn, day=day, limit=None, offset=0)


def _ids_of_day(conn: Connection, *, day: date, limit: int | None, offset: int) -> list[int]:
    start, end = day_bounds(day)
    return _page_ids(
        conn,
        historical="""tstzrange(h.started_at, h.ended_at, '[]')
                      && tstzrange(%(start)s, %(end)s, '[)')""",
        # An open ride that started before the day is on it if it has a reading from the day
        # on (not merely because nothing has ended it yet); the cheap tests go first.
        daily="""d.started_at < %(end)s
                 AND (d.started_at >= %(start)s
                      OR d.ended_at >= %(start)s
                      OR (d.ended_at IS NULL
                          AND EXISTS (SELECT 1 FROM daily.readings x
                                      WHERE x.ride_id = d.ride_id
                                        AND x.recorded_at >= %(start)s)))""",
        params={"start": start, "end": end},
        newest_first=False,
        limit=limit,
        offset=offset,
    )


def rides_of_rider(
    conn: Connection, *, user_id: int, limit: int = 50, offset: int = 0
) -> list[Ride]:
    """A rider's rides, newest first."""
    return _page(
        conn,
        historical="h.user_id = %(user_id)s",
        daily="d.user_id = %(user_id)s",
        params={"user_id": user_id},
        newest_first=True,
        limit=limit,
        offset=offset,
    )


# A rider's current details are the daily row when there is one (ingest keeps it newest),
# otherwise the historical row. Both sides are folded the same way (lower case, no accents).
# Each rider's rides are taken newest first through their (user_id, started_at) index, at
# most one page's worth plus the offset each, so a city of many riders with long histories
# never reads all of their rides.
_CITY_PAGE = """
    WITH city_riders AS MATERIALIZED (
        SELECT r.user_id FROM daily.riders r
        WHERE public.deloton_fold(r.city) = public.deloton_fold(%(city)s)
        UNION
        SELECT r.user_id FROM historical.riders r
        WHERE public.deloton_fold(r.city) = public.deloton_fold(%(city)s)
          AND NOT EXISTS (SELECT 1 FROM daily.riders n WHERE n.user_id = r.user_id)
    )
    SELECT ride_id, started_at FROM (
        SELECT h.ride_id, h.started_at FROM city_riders c
        CROSS JOIN LATERAL (
            SELECT h.ride_id, h.started_at FROM historical.rides h
            WHERE h.user_id = c.user_id
              AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t
                              WHERE t.ride_id = h.ride_id)
            ORDER BY h.started_at DESC, h.ride_id DESC
            LIMIT %(window)s
        ) h
        UNION ALL
        SELECT d.ride_id, d.started_at FROM city_riders c
        JOIN daily.rides d ON d.user_id = c.user_id
        WHERE NOT EXISTS (SELECT 1 FROM historical.rides h WHERE h.ride_id = d.ride_id)
          AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = d.ride_id)
    ) u
    ORDER BY started_at DESC, ride_id DESC
    LIMIT %(limit)s OFFSET %(offset)s
"""


def rides_in_city(conn: Connection, *, city: str, limit: int = 50, offset: int = 0) -> list[Ride]:
    """Rides of the riders who live in `city` (case- and accent-insensitive), newest first."""
    rows = conn.execute(
        _CITY_PAGE, {"city": city, "window": limit + offset, "limit": limit, "offset": offset}
    ).fetchall()
    return rides_by_ids(conn, ride_ids=[row["ride_id"] for row in rows])
