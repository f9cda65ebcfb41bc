"""The trends page's data: hourly or daily aggregates through the shared read layer, read at
most once per DASHBOARD_CACHE_S per process for each choice, whatever the number of viewers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg_pool import ConnectionPool

from services.common.pool import Connection, read_only
from services.common.reads import stats
from services.dashboard.recent import QUERIES

# What one chart shows: enough buckets to see a pattern, few enough to read each one.
SPAN = {"hourly": timedelta(hours=48), "daily": timedelta(days=60)}
WIDTH = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}


@dataclass(frozen=True)
class Series:
    """One choice's buckets over the span ending with the current bucket."""

    start: datetime
    end: datetime
    buckets: list[stats.Bucket]


def span_end(now: datetime, resolution: stats.Resolution) -> datetime:
    """The end of the bucket `now` is in."""
    start = now.replace(minute=0, second=0, microsecond=0)
    if resolution == "daily":
        start = start.replace(hour=0)
    return start + WIDTH[resolution]


def series(
    pool: ConnectionPool[Connection],
    *,
    resolution: stats.Resolution,
    scope: stats.Scope,
    key: str,
    now: datetime,
) -> Series:
    """The buckets of the fleet, a bike or a city over the span."""
    end = span_end(now, resolution)
    start = end - SPAN[resolution]
    with read_only(pool) as conn:
        QUERIES.labels("stats").inc()
        found = stats.buckets(
            conn,
            resolution=resolution,
            start=start,
            end=end,
            bike=key if scope == "bike" else None,
            city=key if scope == "city" else None,
            limit=2000,
        )
    if scope == "city":  # the fold may join spellings: keep the chosen one
        found = [b for b in found if b.key == key]
    return Series(start, end, found)


def choices(pool: ConnectionPool[Connection]) -> tuple[list[str], list[str]]:
    """Cities and bikes that have aggregates."""
    with read_only(pool) as conn:
        QUERIES.labels("stats_keys").inc()
        return stats.keys(conn, scope="city"), stats.keys(conn, scope="bike")
