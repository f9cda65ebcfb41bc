"""SQL of the daily -> historical roll-up and of retention; all set-based, inside Postgres.

Every function takes the cursor of the caller's transaction first and keyword arguments
after it; the job decides where transactions begin and end. Readings never leave the
database: Python only sees ride ids (one batch at a time), partition names and counts.

"Settled" below means summarised into historical.rides or tombstoned in
historical.deleted_rides: the two states in which a ride's full-resolution data may go.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

Cursor = psycopg2.extensions.cursor

# Session-level lock key for "a compress run is in progress" ("delocomp").
COMPRESS_LOCK_KEY = 0x6465_6C6F_636F_6D70

# Partitions are created only by daily.ensure_readings_partitions, which names each one after
# the UTC hour it covers; the name is therefore the bound, without parsing pg_get_expr output.
_PARTITION_NAME = re.compile(r"^readings_(\d{8})h(\d{2})$")

_RIDER_COLUMNS = (
    "user_id, title, first_name, last_name, gender, address_line, city, postcode, "
    "date_of_birth, email_address, height_cm, weight_kg, account_created_at, "
    "original_source, details_at"
)
_RIDER_UPDATES = ", ".join(
    f"{c} = EXCLUDED.{c}" for c in _RIDER_COLUMNS.split(", ") if c != "user_id"
)
# Latest details win; a replayed older SYSTEM line never overwrites newer ones.
_UPSERT_RIDERS = f"""
    INSERT INTO historical.riders ({_RIDER_COLUMNS})
    SELECT {_RIDER_COLUMNS} FROM daily.riders r WHERE {{where}}
    ON CONFLICT (user_id) DO UPDATE SET {_RIDER_UPDATES}
    WHERE historical.riders.details_at < EXCLUDED.details_at
"""

_SETTLED = """(EXISTS (SELECT 1 FROM historical.rides h WHERE h.ride_id = {d}.ride_id)
            OR EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = {d}.ride_id))"""
_UNSETTLED = f"NOT {_SETTLED}"


def try_lock(cur: Cursor) -> bool:
    """Take the session-level compress lock if nobody holds it; False when another run does."""
    cur.execute("SELECT pg_try_advisory_lock(%s)", (COMPRESS_LOCK_KEY,))
    row = cur.fetchone()
    return bool(row and row[0])


def unlock(cur: Cursor) -> None:
    """Release the compress lock held by this session."""
    cur.execute("SELECT pg_advisory_unlock(%s)", (COMPRESS_LOCK_KEY,))


def set_lock_timeout(cur: Cursor, *, ms: int) -> None:
    """Bound how long the rest of this transaction waits for any lock (LockNotAvailable after)."""
    cur.execute("SELECT set_config('lock_timeout', %s, true)", (f"{ms}ms",))


# --- summarise ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RideBatch:
    """A batch of ride ids, the time range their readings lie in, and where the next starts.

    A bike carries one ride at a time and ingest files a reading under the ride whose start
    it follows, so a ride's readings lie between its start and the start of the bike's next
    ride (open-ended while there is none). Bounding the readings queries by that range lets
    PostgreSQL skip every other hourly partition; batches are taken in start order so each
    one's range stays short.
    """

    ride_ids: list[int]
    readings_from: datetime
    readings_before: datetime | None
    last: tuple[datetime, int]

    @classmethod
    def from_rows(cls, rows: list[tuple[int, datetime, datetime | None]]) -> RideBatch | None:
        """From (ride_id, started_at, next_started_at) rows in start order; None when empty."""
        if not rows:
            return None
        nexts = [row[2] for row in rows]
        return cls(
            ride_ids=[row[0] for row in rows],
            readings_from=min(row[1] for row in rows),
            readings_before=None if any(n is None for n in nexts) else max(n for n in nexts if n),
            last=(rows[-1][1], rows[-1][0]),
        )


# The start of the bike's next ride: where a ride's readings end at the latest.
_NEXT_START = """(SELECT min(n.started_at) FROM daily.rides n
                  WHERE n.bike_serial = d.bike_serial AND n.started_at > d.started_at)"""
_AFTER = """(%(after_ts)s::timestamptz IS NULL
             OR (d.started_at, d.ride_id) > (%(after_ts)s::timestamptz, %(after_id)s))"""


def _keyset(after: tuple[datetime, int] | None) -> dict[str, object]:
    return {"after_ts": after[0] if after else None, "after_id": after[1] if after else None}


def tune_for_batch(cur: Cursor) -> None:
    """Session settings for one batch transaction (they end with it).

    JIT compilation costs more than these statements run. The aggregate's planner estimate
    (every ride in the partitions, not the batch's 1000) exceeds the default 4 MB work_mem,
    which made it pick sorted index scans over a hash aggregate, at twice the time.
    """
    cur.execute("SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)")


# When a ride counts as quiet since: RIDE_SILENCE_S before ingest's committed event time on
# the partition that feeds it (never later than the run's clock, which holds back a partition
# pushed ahead by one bike whose clock runs fast). NULL while ingest has committed no event
# time there: nothing is known to have come after the ride. A ride without a recorded feed
# (written before it was recorded, or by another writer) falls back to the run's clock.
_QUIET_SINCE = """CROSS JOIN LATERAL (
        SELECT count(*) > 0 AS fed, max(o.event_time) AS progress
        FROM daily.ride_feeds f
        LEFT JOIN daily.ingest_offsets o ON o.consumer_group = f.consumer_group
                                        AND o.kafka_partition = f.kafka_partition
        WHERE f.ride_id = d.ride_id
    ) pr
    CROSS JOIN LATERAL (
        SELECT CASE WHEN NOT pr.fed THEN %(now)s::timestamptz
                    WHEN pr.progress IS NULL THEN NULL
                    ELSE least(%(now)s::timestamptz, pr.progress)
               END - make_interval(secs => %(silence)s) AS quiet_since
    ) q"""


def finished_unsummarised_rides(
    cur: Cursor,
    *,
    now: datetime,
    silence_s: float,
    after: tuple[datetime, int] | None,
    limit: int,
) -> RideBatch | None:
    """The next `limit` finished, unsettled rides in (started_at, ride_id) order after `after`.

    Finished: ingest set ended_at, or ingest has read `silence_s` of event time past the ride's
    last reading on the partition that feeds it, and nothing came for the ride (see
    _QUIET_SINCE). An ingest that lags, is paused or backfills old data keeps its rides open.
    """
    cur.execute(
        f"""
        SELECT d.ride_id, d.started_at, {_NEXT_START} FROM daily.rides d
        {_QUIET_SINCE}
        WHERE {_AFTER}
          AND (d.ended_at IS NOT NULL
               OR (d.started_at < q.quiet_since
                   AND NOT EXISTS (SELECT 1 FROM daily.readings r
                                   WHERE r.ride_id = d.ride_id
                                     AND r.recorded_at >= q.quiet_since)))
          AND {_UNSETTLED.format(d="d")}
        ORDER BY d.started_at, d.ride_id
        LIMIT %(limit)s
        """,
        {**_keyset(after), "now": now, "silence": silence_s, "limit": limit},
    )
    return RideBatch.from_rows(cur.fetchall())


def upsert_riders_of_rides(cur: Cursor, *, ride_ids: list[int]) -> int:
    """Copy the riders of these daily rides into historical.riders; return rows written."""
    cur.execute(
        _UPSERT_RIDERS.format(
            where="r.user_id IN (SELECT user_id FROM daily.rides WHERE ride_id = ANY(%(ids)s))"
        ),
        {"ids": ride_ids},
    )
    return cur.rowcount


def insert_ride_summaries(cur: Cursor, *, batch: RideBatch) -> int:
    """Write one historical.rides row per ride not yet there nor tombstoned; return rows written.

    A ride without ended_at (closed here by silence) ends at its last reading. Heart rate NULL
    means no contact (0 is treated the same, in case a writer ever keeps the feed's value).
    Energy: readings are one second apart, so the sum of watts is joules; /1000 gives kJ.
    """
    cur.execute(
        """
        INSERT INTO historical.rides (
            ride_id, user_id, bike_serial, model, started_at, ended_at, duration_s,
            readings_count, heart_rate_readings, avg_heart_rate, max_heart_rate,
            avg_power, max_power, total_energy_kj, avg_rpm, avg_resistance, alert_count,
            last_elapsed_s)
        SELECT d.ride_id, d.user_id, d.bike_serial, d.model, d.started_at, e.ended_at,
               greatest(0, round(extract(epoch FROM e.ended_at - d.started_at)))::integer,
               coalesce(r.n, 0), coalesce(r.hr_n, 0), r.avg_hr, r.max_hr,
               r.avg_power, r.max_power, r.energy_kj, r.avg_rpm, r.avg_resistance,
               coalesce(a.n, 0), r.last_elapsed_s
        FROM daily.rides d
        LEFT JOIN (
            SELECT ride_id,
                   count(*) AS n,
                   count(nullif(heart_rate, 0)) AS hr_n,
                   avg(nullif(heart_rate, 0))::double precision AS avg_hr,
                   max(nullif(heart_rate, 0)) AS max_hr,
                   avg(power) AS avg_power,
                   max(power) AS max_power,
                   sum(power) / 1000.0 AS energy_kj,
                   avg(rpm)::double precision AS avg_rpm,
                   avg(resistance)::double precision AS avg_resistance,
                   max(recorded_at) AS last_at,
                   max(elapsed_s) AS last_elapsed_s
            FROM daily.readings
            WHERE ride_id = ANY(%(ids)s) AND recorded_at >= %(from)s
              AND (%(before)s::timestamptz IS NULL OR recorded_at < %(before)s::timestamptz)
            GROUP BY ride_id
        ) r ON r.ride_id = d.ride_id
        LEFT JOIN (
            SELECT ride_id, count(*) AS n FROM daily.alerts
            WHERE ride_id = ANY(%(ids)s) GROUP BY ride_id
        ) a ON a.ride_id = d.ride_id
        CROSS JOIN LATERAL (
            SELECT coalesce(d.ended_at, r.last_at, d.started_at) AS ended_at
        ) e
        WHERE d.ride_id = ANY(%(ids)s)
          AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = d.ride_id)
        ON CONFLICT (ride_id) DO NOTHING
        """,
        {"ids": batch.ride_ids, "from": batch.readings_from, "before": batch.readings_before},
    )
    return cur.rowcount


def ingest_active(cur: Cursor, *, within_s: float) -> bool:
    """True when ingest stored offsets within the last `within_s` seconds.

    Ingest stores its next offsets (updated_at = its transaction's start) with every batch it
    commits, and only when it has read something: they stand still while it has nothing to
    read, or is down.
    """
    cur.execute(
        """SELECT EXISTS (SELECT 1 FROM daily.ingest_offsets
                          WHERE updated_at > clock_timestamp() - make_interval(secs => %s))""",
        (within_s,),
    )
    row = cur.fetchone()
    return bool(row and row[0])


def database_now(cur: Cursor) -> datetime:
    """The database's clock (what summarised_at is stamped with)."""
    cur.execute("SELECT clock_timestamp()")
    row = cur.fetchone()
    assert row is not None
    return row[0]


def summarised_rides(
    cur: Cursor,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
    summarised_before: datetime | None = None,
) -> RideBatch | None:
    """The next `limit` daily rides that have a summary, in (started_at, ride_id) order.

    With `summarised_before`, only summaries written (or refreshed) before it: one written
    since has just counted every reading its ride had.
    """
    cur.execute(
        f"""SELECT d.ride_id, d.started_at, {_NEXT_START} FROM daily.rides d
            WHERE {_AFTER}
              AND EXISTS (SELECT 1 FROM historical.rides h WHERE h.ride_id = d.ride_id
                          AND (%(before)s::timestamptz IS NULL
                               OR h.summarised_at < %(before)s::timestamptz))
            ORDER BY d.started_at, d.ride_id LIMIT %(limit)s""",
        {**_keyset(after), "limit": limit, "before": summarised_before},
    )
    return RideBatch.from_rows(cur.fetchall())


def refresh_summaries(cur: Cursor, *, batch: RideBatch) -> int:
    """Add readings that arrived after a ride was summarised to its summary; return rows updated.

    A reading is new when its elapsed_s is above the summary's last_elapsed_s (ingest writes a
    ride's readings in increasing elapsed_s). Only the new readings are read, one index probe
    per ride when there are none, and they are folded into the stored figures, so this stays
    exact after retention has removed some of the ride's earlier readings. ended_at follows
    the daily ride's (ingest moves it when a late tail arrives). No upper time bound: any
    uncounted reading of the ride would otherwise keep its partition from ever going.
    """
    cur.execute(
        """
        WITH fresh AS (
            SELECT d.ride_id, d.ended_at AS ride_end, f.*
            FROM daily.rides d
            JOIN historical.rides h ON h.ride_id = d.ride_id
            CROSS JOIN LATERAL (
                SELECT count(*) AS n,
                       count(nullif(r.heart_rate, 0)) AS hr_n,
                       sum(nullif(r.heart_rate, 0))::double precision AS hr_sum,
                       max(nullif(r.heart_rate, 0)) AS hr_max,
                       sum(r.power) AS power_sum,
                       max(r.power) AS power_max,
                       sum(r.rpm)::double precision AS rpm_sum,
                       sum(r.resistance)::double precision AS resistance_sum,
                       max(r.recorded_at) AS last_at,
                       max(r.elapsed_s) AS last_elapsed_s
                FROM daily.readings r
                WHERE r.ride_id = d.ride_id AND r.recorded_at >= d.started_at
                  AND r.recorded_at >= %(from)s
                  AND r.elapsed_s > coalesce(h.last_elapsed_s, -2147483648)
            ) f
            WHERE d.ride_id = ANY(%(ids)s)
              AND (f.n > 0 OR d.ended_at IS DISTINCT FROM h.ended_at AND d.ended_at IS NOT NULL)
        )
        UPDATE historical.rides h SET
            readings_count = h.readings_count + x.n,
            heart_rate_readings = h.heart_rate_readings + x.hr_n,
            avg_heart_rate = CASE WHEN x.hr_n = 0 THEN h.avg_heart_rate
                ELSE (coalesce(h.avg_heart_rate * h.heart_rate_readings, 0) + x.hr_sum)
                     / (h.heart_rate_readings + x.hr_n) END,
            max_heart_rate = greatest(h.max_heart_rate, x.hr_max),
            avg_power = CASE WHEN x.n = 0 THEN h.avg_power
                ELSE (coalesce(h.avg_power * h.readings_count, 0) + x.power_sum)
                     / (h.readings_count + x.n) END,
            max_power = greatest(h.max_power, x.power_max),
            total_energy_kj = CASE WHEN x.n = 0 THEN h.total_energy_kj
                ELSE coalesce(h.total_energy_kj, 0) + x.power_sum / 1000.0 END,
            avg_rpm = CASE WHEN x.n = 0 THEN h.avg_rpm
                ELSE (coalesce(h.avg_rpm * h.readings_count, 0) + x.rpm_sum)
                     / (h.readings_count + x.n) END,
            avg_resistance = CASE WHEN x.n = 0 THEN h.avg_resistance
                ELSE (coalesce(h.avg_resistance * h.readings_count, 0) + x.resistance_sum)
                     / (h.readings_count + x.n) END,
            last_elapsed_s = coalesce(x.last_elapsed_s, h.last_elapsed_s),
            ended_at = coalesce(x.ride_end, greatest(h.ended_at, x.last_at)),
            duration_s = greatest(0, round(extract(epoch FROM
                coalesce(x.ride_end, greatest(h.ended_at, x.last_at)) - h.started_at)))::integer,
            summarised_at = now()
        FROM fresh x
        WHERE h.ride_id = x.ride_id
        """,
        {"ids": batch.ride_ids, "from": batch.readings_from},
    )
    return cur.rowcount


def refresh_alert_counts(cur: Cursor, *, batch: RideBatch) -> int:
    """Bring the summaries' alert_count and alerts_sent up to date with daily.alerts; return
    rows updated. The alerts worker may confirm an episode, or the sender deliver it, after
    the ride was summarised (a worker that lags or restarts): the API and the report read the
    summary, so it must not wait for retention to count it."""
    cur.execute(
        """
        UPDATE historical.rides h SET alert_count = c.n, alerts_sent = c.sent
        FROM (SELECT a.ride_id, count(*) AS n,
                     count(*) FILTER (WHERE a.status = 'sent') AS sent
              FROM daily.alerts a
              WHERE a.ride_id = ANY(%(ids)s)
              GROUP BY a.ride_id) c
        WHERE h.ride_id = c.ride_id AND (h.alert_count <> c.n OR h.alerts_sent <> c.sent)
        """,
        {"ids": batch.ride_ids},
    )
    return cur.rowcount


def purge_tombstoned_summaries(cur: Cursor) -> int:
    """Delete summaries of tombstoned rides (a roll-up racing an analyst's DELETE); return count."""
    cur.execute(
        """DELETE FROM historical.rides h USING historical.deleted_rides t
           WHERE h.ride_id = t.ride_id"""
    )
    return cur.rowcount


# --- retention: partitions ------------------------------------------------------------------


@dataclass(frozen=True)
class Partition:
    """One hourly partition of daily.readings."""

    name: str
    start: datetime

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=1)


def partition_hour(name: str) -> datetime | None:
    """The UTC hour an hourly partition name stands for; None for any other table name."""
    m = _PARTITION_NAME.match(name)
    if m is None:
        return None
    return datetime.strptime(m[1] + m[2], "%Y%m%d%H").replace(tzinfo=UTC)


def partitions_older_than(cur: Cursor, *, cutoff: datetime) -> list[Partition]:
    """Hourly partitions of daily.readings whose whole range lies before `cutoff`, oldest first."""
    cur.execute(
        """SELECT c.relname FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE i.inhparent = 'daily.readings'::regclass AND n.nspname = 'daily'"""
    )
    found = []
    for (name,) in cur.fetchall():
        start = partition_hour(name)
        if start is not None and start + timedelta(hours=1) <= cutoff:
            found.append(Partition(name, start))
    return sorted(found, key=lambda p: p.start)


def partition_holds_unsettled(cur: Cursor, *, partition: Partition) -> bool:
    """True when the partition has a reading no summary counts, of a ride still in daily.

    A reading is counted once its ride is tombstoned, or summarised up to its elapsed second
    (last_elapsed_s). Only rides whose readings can lie in the partition count (started
    before it ends, and the bike's next ride did not start before it begins). Readings whose
    ride row is gone are leftovers of rides already removed, and do not count.

    Driven from the partition's rides: a walk down its primary key (ride_id, elapsed_s)
    takes each ride's highest elapsed second, one index probe per ride, and only those are
    compared with the summaries. Joining the rides to the partition instead read every
    reading of it (a merge join over the whole index, 0.15 s for 200,000 readings, twice
    per partition removed).
    """
    cur.execute(
        sql.SQL(
            """WITH RECURSIVE last_of AS (
                   (SELECT p.ride_id, p.elapsed_s FROM {part} p
                    ORDER BY p.ride_id DESC, p.elapsed_s DESC LIMIT 1)
                   UNION ALL
                   SELECT x.ride_id, x.elapsed_s FROM last_of l
                   CROSS JOIN LATERAL (SELECT p.ride_id, p.elapsed_s FROM {part} p
                                       WHERE p.ride_id < l.ride_id
                                       ORDER BY p.ride_id DESC, p.elapsed_s DESC
                                       LIMIT 1) x
               )
               SELECT EXISTS (
                   SELECT 1 FROM last_of l
                   JOIN daily.rides d ON d.ride_id = l.ride_id
                   LEFT JOIN historical.rides h ON h.ride_id = d.ride_id
                   WHERE d.started_at < %(end)s
                     AND NOT EXISTS (SELECT 1 FROM daily.rides n
                                     WHERE n.bike_serial = d.bike_serial
                                       AND n.started_at > d.started_at
                                       AND n.started_at <= %(start)s)
                     AND NOT EXISTS (SELECT 1 FROM historical.deleted_rides t
                                     WHERE t.ride_id = d.ride_id)
                     AND (h.ride_id IS NULL
                          OR l.elapsed_s > coalesce(h.last_elapsed_s, -2147483648)))"""
        ).format(part=sql.Identifier("daily", partition.name)),
        {"start": partition.start, "end": partition.end},
    )
    row = cur.fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class PartitionSize:
    """What dropping a partition frees, without reading it."""

    rows_estimate: int  # pg_class.reltuples (kept by autovacuum/ANALYZE); 0 if never analysed
    bytes: int  # table, indexes and TOAST


def partition_size(cur: Cursor, *, partition: Partition) -> PartitionSize:
    """The catalogued size of one partition: cheap, unlike count(*), which reads it all."""
    cur.execute(
        """SELECT greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'daily' AND c.relname = %s""",
        (partition.name,),
    )
    row = cur.fetchone()
    return PartitionSize(int(row[0]), int(row[1])) if row else PartitionSize(0, 0)


def count_partition_rows(cur: Cursor, *, partition: Partition) -> int:
    """Exact number of readings in one partition (reads all of it)."""
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("daily", partition.name)))
    row = cur.fetchone()
    return int(row[0]) if row else 0


def partition_is_free(cur: Cursor, *, partition: Partition) -> bool:
    """True when nobody holds any lock on the partition (it is taken and released at once).

    A concurrent detach ends by waiting for ACCESS EXCLUSIVE on the partition; a reader in
    the middle of a long report would make it time out half-way (detach pending, and no
    other partition can be detached until it is finalized). NOWAIT: never queue.
    """
    try:
        cur.execute("SAVEPOINT probe")
        cur.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE NOWAIT").format(
                sql.Identifier("daily", partition.name)
            )
        )
        cur.execute("ROLLBACK TO SAVEPOINT probe")  # releases the lock at once
        return True
    except psycopg2.errors.LockNotAvailable:
        cur.execute("ROLLBACK TO SAVEPOINT probe")
        return False


def detach_partition(cur: Cursor, *, partition: Partition, lock_timeout_ms: int) -> None:
    """Detach one partition of daily.readings CONCURRENTLY (the cursor must be autocommit).

    Two transactions inside PostgreSQL, with SHARE UPDATE EXCLUSIVE on daily.readings: it
    never waits for nor blocks ingest's COPY, unlike DROP's ACCESS EXCLUSIVE. Between them it
    waits for every transaction using daily.readings to end. Interrupted there (a timeout, a
    crash), the partition stays "detach pending": out of sight of new queries, finished by
    finalize_detach. lock_timeout bounds the waits on locks (LockNotAvailable after).
    """
    cur.execute("SELECT set_config('lock_timeout', %s, false)", (f"{lock_timeout_ms}ms",))
    try:
        cur.execute(
            sql.SQL("ALTER TABLE daily.readings DETACH PARTITION {} CONCURRENTLY").format(
                sql.Identifier("daily", partition.name)
            )
        )
    finally:
        cur.execute("RESET lock_timeout")


def finalize_detach(cur: Cursor, *, partition: Partition, lock_timeout_ms: int) -> None:
    """Complete a concurrent detach that was interrupted (autocommit cursor)."""
    cur.execute("SELECT set_config('lock_timeout', %s, false)", (f"{lock_timeout_ms}ms",))
    try:
        cur.execute(
            sql.SQL("ALTER TABLE daily.readings DETACH PARTITION {} FINALIZE").format(
                sql.Identifier("daily", partition.name)
            )
        )
    finally:
        cur.execute("RESET lock_timeout")


def pending_detaches(cur: Cursor) -> list[Partition]:
    """Hourly partitions of daily.readings whose concurrent detach was interrupted."""
    cur.execute(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'daily.readings'::regclass AND i.inhdetachpending"""
    )
    return _hourly(name for (name,) in cur.fetchall())


def detached_partitions(cur: Cursor) -> list[Partition]:
    """Tables named like hourly partitions of daily.readings that are no longer attached.

    What a run leaves when it stops between the detach and the drop.
    """
    cur.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'daily' AND c.relkind = 'r' AND NOT c.relispartition
             AND c.relname LIKE 'readings%'"""
    )
    return _hourly(name for (name,) in cur.fetchall())


def _hourly(names: Iterable[str]) -> list[Partition]:
    found = [Partition(n, h) for n in names if (h := partition_hour(n)) is not None]
    return sorted(found, key=lambda p: p.start)


def restore_detached(cur: Cursor, *, partition: Partition) -> str:
    """Put a detached partition's readings back under daily.readings; return how.

    Attached again when its hour is free ("attached"). If ingest has created the hour's
    partition anew meanwhile, the rows are copied into it and the old table dropped
    ("copied"), so no reading is lost either way.
    """
    table = sql.Identifier("daily", partition.name)
    cur.execute("SAVEPOINT restore_detached")
    try:
        cur.execute(
            sql.SQL(
                "ALTER TABLE daily.readings ATTACH PARTITION {} FOR VALUES FROM (%s) TO (%s)"
            ).format(table),
            (partition.start, partition.end),
        )
        cur.execute("RELEASE SAVEPOINT restore_detached")
        return "attached"
    except psycopg2.errors.InvalidObjectDefinition:  # overlaps the hour's new partition
        cur.execute("ROLLBACK TO SAVEPOINT restore_detached")
    cur.execute(
        sql.SQL("INSERT INTO daily.readings SELECT * FROM {} ON CONFLICT DO NOTHING").format(table)
    )
    cur.execute(sql.SQL("DROP TABLE {}").format(table))
    return "copied"


def drop_partition(cur: Cursor, *, partition: Partition) -> None:
    """Drop a detached partition (or, in benchmarks, an attached one) of daily.readings."""
    cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("daily", partition.name)))


# --- retention: rows ------------------------------------------------------------------------


def settled_rides_started_before(
    cur: Cursor, *, cutoff: datetime, after: tuple[datetime, int] | None, limit: int
) -> RideBatch | None:
    """The next `limit` settled daily rides that started before `cutoff`, in start order."""
    cur.execute(
        f"""SELECT d.ride_id, d.started_at, {_NEXT_START} FROM daily.rides d
            WHERE {_AFTER} AND d.started_at < %(cutoff)s AND {_SETTLED.format(d="d")}
            ORDER BY d.started_at, d.ride_id LIMIT %(limit)s""",
        {**_keyset(after), "cutoff": cutoff, "limit": limit},
    )
    return RideBatch.from_rows(cur.fetchall())


def delete_readings_before(
    cur: Cursor,
    *,
    batch: RideBatch,
    cutoff: datetime,
    skip_ranges: list[tuple[datetime, datetime]],
) -> int:
    """Delete the batch's readings recorded before `cutoff`, outside `skip_ranges`; return count.

    Only readings a summary counts go (or any of a tombstoned ride): one that arrived after
    the last refresh stays for the next run to add. skip_ranges are partitions whose DROP is
    only postponed (lock busy): deleting their rows one by one would waste the cheap drop
    the next run will do.
    """
    cur.execute(
        """DELETE FROM daily.readings r
           WHERE r.ride_id = ANY(%(ids)s) AND r.recorded_at >= %(from)s
             AND r.recorded_at < %(cutoff)s
             AND (EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = r.ride_id)
                  OR EXISTS (SELECT 1 FROM historical.rides h
                             WHERE h.ride_id = r.ride_id AND r.elapsed_s <= h.last_elapsed_s))
             AND NOT EXISTS (
                 SELECT 1 FROM unnest(%(lo)s::timestamptz[], %(hi)s::timestamptz[]) AS s(lo, hi)
                 WHERE r.recorded_at >= s.lo AND r.recorded_at < s.hi)""",
        {
            "ids": batch.ride_ids,
            "from": batch.readings_from,
            "cutoff": cutoff,
            "lo": [lo for lo, _ in skip_ranges],
            "hi": [hi for _, hi in skip_ranges],
        },
    )
    return cur.rowcount


@dataclass(frozen=True)
class RemovedRides:
    """What removing the daily rows of drained rides did."""

    rides: int
    alerts: int
    alert_counts_updated: int


def remove_drained_rides(cur: Cursor, *, ride_ids: list[int]) -> RemovedRides:
    """Delete the daily rides row and alerts of those rides with no readings left.

    A ride keeps its rows while one of its alerts is still pending, so the alert sender never
    loses an email. The summary's alert_count and alerts_sent are brought up to date first: an
    alert may be confirmed (or sent) after the ride was summarised, and the report needs to
    know how many reached riders once the alert rows are gone.
    """
    cur.execute(
        """
        WITH gone AS (
            SELECT d.ride_id FROM daily.rides d
            WHERE d.ride_id = ANY(%(ids)s)
              AND NOT EXISTS (SELECT 1 FROM daily.readings r WHERE r.ride_id = d.ride_id)
              AND NOT EXISTS (SELECT 1 FROM daily.alerts a
                              WHERE a.ride_id = d.ride_id AND a.status = 'pending')
        ), counted AS (
            UPDATE historical.rides h SET alert_count = c.n, alerts_sent = c.sent
            FROM (SELECT a.ride_id, count(*) AS n,
                         count(*) FILTER (WHERE a.status = 'sent') AS sent
                  FROM daily.alerts a JOIN gone g USING (ride_id)
                  GROUP BY a.ride_id) c
            WHERE h.ride_id = c.ride_id AND (h.alert_count <> c.n OR h.alerts_sent <> c.sent)
            RETURNING 1
        ), alerts_gone AS (
            DELETE FROM daily.alerts a USING gone g WHERE a.ride_id = g.ride_id RETURNING 1
        ), rides_gone AS (
            DELETE FROM daily.rides d USING gone g WHERE d.ride_id = g.ride_id RETURNING 1
        ), feeds_gone AS (
            DELETE FROM daily.ride_feeds f USING gone g WHERE f.ride_id = g.ride_id
        )
        SELECT (SELECT count(*) FROM rides_gone), (SELECT count(*) FROM alerts_gone),
               (SELECT count(*) FROM counted)
        """,
        {"ids": ride_ids},
    )
    row = cur.fetchone()
    assert row is not None
    return RemovedRides(rides=int(row[0]), alerts=int(row[1]), alert_counts_updated=int(row[2]))


def delete_orphan_ride_feeds(cur: Cursor) -> int:
    """Delete the feed rows of rides removed by someone else (an analyst's DELETE)."""
    cur.execute(
        """DELETE FROM daily.ride_feeds f
           WHERE NOT EXISTS (SELECT 1 FROM daily.rides d WHERE d.ride_id = f.ride_id)"""
    )
    return cur.rowcount


def delete_orphan_alerts_of_tombstoned(cur: Cursor, *, cutoff: datetime) -> int:
    """Delete handled alerts of tombstoned rides whose daily ride row is already gone."""
    cur.execute(
        """DELETE FROM daily.alerts a
           WHERE a.status <> 'pending' AND a.detected_at < %(cutoff)s
             AND EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = a.ride_id)
             AND NOT EXISTS (SELECT 1 FROM daily.rides d WHERE d.ride_id = a.ride_id)""",
        {"cutoff": cutoff},
    )
    return cur.rowcount


# --- retention: riders ----------------------------------------------------------------------

_UNREFERENCED_RIDER = """NOT EXISTS (SELECT 1 FROM daily.rides d WHERE d.user_id = r.user_id)
                         AND r.details_at < %(cutoff)s"""


def copy_unreferenced_riders(cur: Cursor, *, cutoff: datetime) -> int:
    """Bring historical.riders up to date for the daily riders about to be removed."""
    cur.execute(_UPSERT_RIDERS.format(where=_UNREFERENCED_RIDER), {"cutoff": cutoff})
    return cur.rowcount


def delete_unreferenced_riders(cur: Cursor, *, cutoff: datetime) -> int:
    """Delete daily riders no daily ride references and whose details predate `cutoff`.

    The age condition leaves a rider that ingest has just written (its ride row following in
    the same transaction) alone.
    """
    cur.execute(f"DELETE FROM daily.riders r WHERE {_UNREFERENCED_RIDER}", {"cutoff": cutoff})
    return cur.rowcount


# --- retention: rejects ---------------------------------------------------------------------


def purge_rejects_before(cur: Cursor, *, cutoff: datetime, limit: int) -> int:
    """Delete up to `limit` rejects received before `cutoff`, oldest first; return how many."""
    cur.execute(
        """DELETE FROM daily.rejects WHERE reject_id IN (
               SELECT reject_id FROM daily.rejects WHERE received_at < %(cutoff)s
                ORDER BY received_at LIMIT %(limit)s)""",
        {"cutoff": cutoff, "limit": limit},
    )
    return cur.rowcount


# --- aggregates (historical.ride_hours -> historical.stats) ---------------------------------


# Hours are binned from a UTC midnight: date_bin is plain arithmetic, where date_trunc with a
# time zone converts every reading (it made the roll-up several times slower).
UTC_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Touched:
    """The (UTC hour, bike, city) of every ride_hours row a statement changed."""

    hours: list[datetime]
    bikes: list[str]
    cities: list[str]


def _touched(cur: Cursor) -> Touched:
    row = cur.fetchone()
    if row is None or row[0] is None:
        return Touched([], [], [])
    return Touched(list(row[0]), list(row[1]), list(row[2]))


def insert_ride_hours(cur: Cursor, *, batch: RideBatch) -> Touched:
    """Put the batch's newly summarised rides into hours, and start following them.

    Runs after insert_ride_summaries in the same transaction and reads the readings again in
    a later statement, so it may count a reading that arrived in between and the summary
    does not yet: ride_hours keeps its own high-water mark (ride_hours_progress), so the
    summary's next refresh and this table's reach the same readings, each counting once.
    """
    cur.execute(
        """
        WITH agg AS (
            SELECT r.ride_id, date_bin('1 hour', r.recorded_at, %(epoch)s) AS hour,
                   count(*) AS n, count(nullif(r.heart_rate, 0)) AS hr_n,
                   coalesce(sum(nullif(r.heart_rate, 0)), 0)::double precision AS hr_sum,
                   max(nullif(r.heart_rate, 0)) AS hr_max,
                   sum(r.power) AS power_sum, max(r.power) AS power_max,
                   max(r.elapsed_s) AS last_elapsed_s
            FROM daily.readings r
            WHERE r.ride_id = ANY(%(ids)s) AND r.recorded_at >= %(from)s
              AND (%(before)s::timestamptz IS NULL OR r.recorded_at < %(before)s::timestamptz)
            GROUP BY 1, 2
        ), followed AS (
            INSERT INTO historical.ride_hours_progress (ride_id, last_elapsed_s)
            SELECT h.ride_id, (SELECT max(a.last_elapsed_s) FROM agg a WHERE a.ride_id = h.ride_id)
            FROM historical.rides h WHERE h.ride_id = ANY(%(ids)s)
            ON CONFLICT (ride_id) DO NOTHING
            RETURNING ride_id
        ), written AS (
            INSERT INTO historical.ride_hours (ride_id, hour, user_id, bike_serial, city,
                readings, hr_readings, hr_sum, hr_max, power_sum, power_max)
            SELECT a.ride_id, a.hour, h.user_id, h.bike_serial, coalesce(p.city, ''),
                   a.n, a.hr_n, a.hr_sum, a.hr_max, a.power_sum, a.power_max
            FROM agg a
            JOIN followed f ON f.ride_id = a.ride_id
            JOIN historical.rides h ON h.ride_id = a.ride_id
            LEFT JOIN historical.riders p ON p.user_id = h.user_id
            RETURNING hour, bike_serial, city
        )
        SELECT array_agg(hour), array_agg(bike_serial), array_agg(city) FROM written
        """,
        {
            "ids": batch.ride_ids,
            "from": batch.readings_from,
            "before": batch.readings_before,
            "epoch": UTC_EPOCH,
        },
    )
    return _touched(cur)


def refresh_ride_hours(cur: Cursor, *, batch: RideBatch) -> Touched:
    """Add readings of followed rides above their high-water mark into their hours.

    Counts, sums and maxima only grow, so this stays exact after retention removed the
    ride's earlier readings. The city is the one the ride's earlier hours carry.
    """
    cur.execute(
        """
        WITH agg AS (
            -- one index probe per ride (elapsed_s above the mark), as refresh_summaries does
            SELECT p.ride_id, x.*
            FROM historical.ride_hours_progress p
            CROSS JOIN LATERAL (
                SELECT date_bin('1 hour', r.recorded_at, %(epoch)s) AS hour,
                       count(*) AS n, count(nullif(r.heart_rate, 0)) AS hr_n,
                       coalesce(sum(nullif(r.heart_rate, 0)), 0)::double precision AS hr_sum,
                       max(nullif(r.heart_rate, 0)) AS hr_max,
                       sum(r.power) AS power_sum, max(r.power) AS power_max,
                       max(r.elapsed_s) AS last_elapsed_s
                FROM daily.readings r
                WHERE r.ride_id = p.ride_id AND r.recorded_at >= %(from)s
                  AND r.elapsed_s > coalesce(p.last_elapsed_s, -2147483648)
                GROUP BY 1
            ) x
            WHERE p.ride_id = ANY(%(ids)s)
        ), marked AS (
            UPDATE historical.ride_hours_progress p SET last_elapsed_s = m.last
            FROM (SELECT ride_id, max(last_elapsed_s) AS last FROM agg GROUP BY ride_id) m
            WHERE p.ride_id = m.ride_id
        ), written AS (
            INSERT INTO historical.ride_hours AS t (ride_id, hour, user_id, bike_serial, city,
                readings, hr_readings, hr_sum, hr_max, power_sum, power_max)
            SELECT a.ride_id, a.hour, h.user_id, h.bike_serial,
                   coalesce((SELECT o.city FROM historical.ride_hours o
                             WHERE o.ride_id = a.ride_id LIMIT 1), p.city, ''),
                   a.n, a.hr_n, a.hr_sum, a.hr_max, a.power_sum, a.power_max
            FROM agg a
            JOIN historical.rides h ON h.ride_id = a.ride_id
            LEFT JOIN historical.riders p ON p.user_id = h.user_id
            ORDER BY a.ride_id, a.hour
            ON CONFLICT (ride_id, hour) DO UPDATE SET
                readings = t.readings + EXCLUDED.readings,
                hr_readings = t.hr_readings + EXCLUDED.hr_readings,
                hr_sum = t.hr_sum + EXCLUDED.hr_sum,
                hr_max = greatest(t.hr_max, EXCLUDED.hr_max),
                power_sum = t.power_sum + EXCLUDED.power_sum,
                power_max = greatest(t.power_max, EXCLUDED.power_max)
            RETURNING t.hour, t.bike_serial, t.city
        )
        SELECT array_agg(hour), array_agg(bike_serial), array_agg(city) FROM written
        """,
        {"ids": batch.ride_ids, "from": batch.readings_from, "epoch": UTC_EPOCH},
    )
    return _touched(cur)


def recompute_stats(cur: Cursor, *, touched: Touched) -> int:
    """Recompute every aggregate bucket the touched ride hours fall in; return hours given."""
    if not touched.hours:
        return 0
    cur.execute(
        "SELECT historical.stats_recompute(%s::timestamptz[], %s::text[], %s::text[])",
        (touched.hours, touched.bikes, touched.cities),
    )
    return len(touched.hours)
