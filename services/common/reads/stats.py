"""Hourly and daily aggregates (historical.stats, kept by compress) for the fleet, a bike or
a city.

A bucket is a UTC hour or day: `rides` counts rides with a reading in it (a ride over two
hours counts in each), `riders` the distinct riders of those rides, `riding_s` the readings
(one a second). Only summarised rides are in: a ride joins at its roll-up, and a deleted one
leaves at once. City matching folds case and accents, as /city does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.common.pool import Connection

Resolution = Literal["hourly", "daily"]
Scope = Literal["fleet", "bike", "city"]
_BUCKET = {"hourly": "hour", "daily": "day"}


@dataclass(frozen=True)
class Bucket:
    """One hour or day of one scope's key ('' for the fleet)."""

    bucket: datetime
    key: str
    rides: int
    riders: int
    riding_s: int
    hr_readings: int
    avg_heart_rate: float | None
    max_heart_rate: int | None
    avg_power: float | None
    max_power: float | None
    energy_kj: float


_COLUMNS = """bucket, key, rides, riders, riding_s, hr_readings, avg_heart_rate, max_heart_rate,
              avg_power, max_power, energy_kj"""


def buckets(
    conn: Connection,
    *,
    resolution: Resolution,
    start: datetime,
    end: datetime,
    bike: str | None = None,
    city: str | None = None,
    limit: int,
) -> list[Bucket]:
    """Buckets starting in [start, end), oldest first: a bike's, a city's, else the fleet's."""
    params = {"res": _BUCKET[resolution], "start": start, "end": end, "limit": limit}
    if bike is not None:
        where = "scope = 'bike' AND key = %(key)s"
        params["key"] = bike
    elif city is not None:
        where = "scope = 'city' AND public.deloton_fold(key) = public.deloton_fold(%(key)s)"
        params["key"] = city
    else:
        where = "scope = 'fleet' AND key = ''"
    rows = conn.execute(
        f"""SELECT {_COLUMNS} FROM historical.stats
            WHERE {where} AND resolution = %(res)s
              AND bucket >= %(start)s AND bucket < %(end)s
            ORDER BY bucket, key LIMIT %(limit)s""",
        params,
    ).fetchall()
    return [Bucket(**row) for row in rows]


def keys(conn: Connection, *, scope: Literal["bike", "city"], limit: int = 5000) -> list[str]:
    """The bikes or cities that have aggregates ('' is the unknown city), sorted."""
    rows = conn.execute(
        """SELECT DISTINCT key FROM historical.stats
           WHERE scope = %(scope)s AND resolution = 'day' ORDER BY key LIMIT %(limit)s""",
        {"scope": scope, "limit": limit},
    ).fetchall()
    return [row["key"] for row in rows]
