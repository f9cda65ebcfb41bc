"""The recent-rides and fleet numbers: shared read layer, cached, filtered in memory.

The database is asked at most once per `DASHBOARD_CACHE_S` for the window's rides and for
the buckets that may still change; buckets older than `SETTLE_S` are kept and never asked
for again. Filters (gender, age bracket) are applied in Python to the cached rows, so a
viewer changing a filter costs no query either.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter
from psycopg_pool import ConnectionPool

from services.common.ages import AGE_BRACKETS, age_bracket, age_on
from services.common.pool import Connection, read_only
from services.common.reads import recent as reads
from services.dashboard.cache import TtlCache

QUERIES = Counter(
    "deloton_dashboard_db_queries", "Read transactions the dashboard ran, by read", ["read"]
)
GENDERS = ("female", "male", "other")
# A bucket this long past its end gets no more readings (ingest lags by well under a second).
SETTLE_S = 120.0


@dataclass(frozen=True)
class Recent:
    """The recent-rides page for one filter."""

    since: datetime
    until: datetime
    rides_by_gender: dict[str, int]
    hours_by_gender: dict[str, float]
    rides_by_bracket: dict[str, int]
    buckets: list[datetime]
    avg_power: list[float | None]
    avg_heart_rate: list[float | None]
    rides: int


@dataclass
class _Buckets:
    settled: dict[datetime, list[reads.RideBucket]] = field(default_factory=dict)
    frontier: datetime | None = None  # start of the first bucket not settled yet


class Aggregates:
    """Cached aggregates over the recent window, shared by every viewer of one process."""

    def __init__(
        self,
        pool: ConnectionPool[Connection],
        *,
        window_h: float,
        bucket_min: int,
        ttl_s: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pool = pool
        self.window = timedelta(hours=window_h)
        self.bucket_s = bucket_min * 60
        self.now = now
        self.cache = TtlCache(ttl_s)
        self.results = TtlCache(ttl_s)
        self.buckets = _Buckets()

    def _snapshot(
        self,
    ) -> tuple[datetime, datetime, list[reads.RecentRide], list[reads.RideBucket]]:
        until = self.now()
        since = until - self.window
        with read_only(self.pool) as conn:
            QUERIES.labels("recent").inc()
            rides = reads.recent_rides(conn, since=since, until=until)
            live = self._refresh_buckets(conn, since, until)
        return since, until, rides, live

    def _refresh_buckets(
        self, conn: Connection, since: datetime, until: datetime
    ) -> list[reads.RideBucket]:
        """Read the buckets from the frontier on; keep those that have settled."""
        b = self.buckets
        first = _floor(since, self.bucket_s)
        for old in [k for k in b.settled if k < first]:
            del b.settled[old]
        start = max(b.frontier or first, first)
        rows = reads.ride_buckets(conn, since=start, until=until, bucket_s=self.bucket_s)
        settle_before = _floor(until - timedelta(seconds=SETTLE_S), self.bucket_s)
        fresh: list[reads.RideBucket] = []
        for row in rows:
            if row.bucket < settle_before:
                b.settled.setdefault(row.bucket, []).append(row)
            else:
                fresh.append(row)
        b.frontier = max(start, settle_before)
        settled = [row for k in sorted(b.settled) if k >= first for row in b.settled[k]]
        return settled + fresh

    def snapshot(self) -> tuple[datetime, datetime, list[reads.RecentRide], list[reads.RideBucket]]:
        """The window's rides and buckets, read at most once per ttl."""
        return self.cache.get("snapshot", self._snapshot)

    def recent(self, genders: tuple[str, ...], brackets: tuple[str, ...]) -> Recent:
        """The page's numbers for one filter (empty tuple: everyone)."""
        snap = self.snapshot()
        return self.results.get(
            (snap[1], genders, brackets), lambda: self._recent(snap, genders, brackets)
        )

    def _recent(
        self,
        snap: tuple[datetime, datetime, list[reads.RecentRide], list[reads.RideBucket]],
        genders: tuple[str, ...],
        brackets: tuple[str, ...],
    ) -> Recent:
        since, until, rides, rows = snap
        keep: set[int] = set()
        by_gender: dict[str, int] = dict.fromkeys(GENDERS, 0)
        hours: dict[str, float] = dict.fromkeys(GENDERS, 0.0)
        by_bracket: dict[str, int] = dict.fromkeys(AGE_BRACKETS, 0)
        for r in rides:
            bracket = age_bracket(age_on(r.date_of_birth, r.started_at.date()))
            if (genders and r.gender not in genders) or (brackets and bracket not in brackets):
                continue
            keep.add(r.ride_id)
            by_gender[r.gender] = by_gender.get(r.gender, 0) + 1
            end = r.ended_at or until
            hours[r.gender] = (
                hours.get(r.gender, 0.0) + max(0.0, (end - r.started_at).total_seconds()) / 3600
            )
            by_bracket[bracket] += 1
        sums: dict[datetime, list[float]] = defaultdict(lambda: [0.0, 0, 0.0, 0])
        for row in rows:
            if row.ride_id in keep:
                s = sums[row.bucket]
                s[0] += row.power_sum
                s[1] += row.power_n
                s[2] += row.heart_rate_sum
                s[3] += row.heart_rate_n
        buckets = sorted(sums)
        return Recent(
            since=since,
            until=until,
            rides_by_gender=by_gender,
            hours_by_gender=hours,
            rides_by_bracket=by_bracket,
            buckets=buckets,
            avg_power=[sums[b][0] / sums[b][1] if sums[b][1] else None for b in buckets],
            avg_heart_rate=[sums[b][2] / sums[b][3] if sums[b][3] else None for b in buckets],
            rides=len(keep),
        )

    def fleet_day(self) -> reads.FleetDay:
        """Today's (UTC) rides, riders, alerts and busiest cities, read at most once per ttl."""

        def compute() -> reads.FleetDay:
            now = self.now()
            day = now.replace(hour=0, minute=0, second=0, microsecond=0)
            with read_only(self.pool) as conn:
                QUERIES.labels("fleet").inc()
                return reads.fleet_day(conn, day_start=day, until=now + timedelta(seconds=1))

        return self.cache.get("fleet", compute)


def _floor(at: datetime, step_s: int) -> datetime:
    """The start of the epoch-aligned bucket holding `at` (as date_bin does)."""
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step_s, UTC)
