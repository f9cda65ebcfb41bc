"""SQL of the ingest write path. Keyword-only functions taking a cursor first."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import orjson
from psycopg2.errors import UniqueViolation
from psycopg2.extensions import cursor as Cursor
from psycopg2.extras import execute_values

from services.ingest.batch import RejectRow, RideRow
from services.ingest.models import Rider


class FencedError(RuntimeError):
    """Another consumer wrote these partitions since we read their offsets: re-seek."""


class LateReadingsError(RuntimeError):
    """The batch holds readings of summarised rides for hours retention already dropped."""

    def __init__(self, late: set[tuple[int, str]]) -> None:
        super().__init__(f"{len(late)} (ride, hour) pairs arrived after their hour was dropped")
        self.late = late


def load_offsets(
    cur: Cursor, *, group: str, partitions: Iterable[tuple[str, int]], lock: bool = False
) -> dict[tuple[str, int], int]:
    """Stored next offsets of the given (topic, partition)s; `lock` holds their rows."""
    parts = list(partitions)
    if not parts:
        return {}
    cur.execute(
        "SELECT topic, kafka_partition, next_offset FROM daily.ingest_offsets "
        "WHERE consumer_group = %s AND (topic, kafka_partition) IN %s"
        + (" FOR UPDATE" if lock else ""),
        (group, tuple(parts)),
    )
    return {(t, p): o for t, p, o in cur.fetchall()}


def load_state(cur: Cursor, *, group: str, partitions: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Stored sessioniser state of the given partition numbers."""
    parts = tuple(partitions)
    if not parts:
        return {}
    cur.execute(
        "SELECT kafka_partition, state FROM daily.ingest_state "
        "WHERE consumer_group = %s AND kafka_partition IN %s",
        (group, parts),
    )
    return {p: s for p, s in cur.fetchall()}


def forget_positions(cur: Cursor) -> int:
    """Drop every stored offset and session state (the broker they refer to is gone)."""
    cur.execute("SELECT to_regclass('daily.ingest_offsets') IS NOT NULL")
    row = cur.fetchone()
    if not row or not row[0]:
        return 0  # not migrated yet: nothing to forget
    cur.execute("DELETE FROM daily.ingest_offsets")
    forgotten = cur.rowcount
    cur.execute("DELETE FROM daily.ingest_state")
    return forgotten


def advance_offsets(
    cur: Cursor,
    *,
    group: str,
    expected: dict[tuple[str, int], int | None],
    new: dict[tuple[str, int], int],
    event_times: dict[tuple[str, int], str] | None = None,
) -> None:
    """Move each partition's stored offset from `expected` to `new`, or raise FencedError.

    `event_times` is each partition's committed event time (the latest reading time read up
    to `new`); it only moves forward, and compress judges silent rides by it.
    """
    stored = load_offsets(cur, group=group, partitions=new, lock=True)
    for tp in new:
        if stored.get(tp) != expected.get(tp):
            raise FencedError(
                f"{tp[0]}[{tp[1]}] is at {stored.get(tp)}, expected {expected.get(tp)}"
            )
    times = event_times or {}
    execute_values(
        cur,
        "INSERT INTO daily.ingest_offsets "
        "(consumer_group, topic, kafka_partition, next_offset, event_time) "
        "SELECT v.g, v.t, v.p, v.o, v.e::timestamptz "
        "FROM (VALUES %s) AS v (g, t, p, o, e) "
        "ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE "
        "SET next_offset = EXCLUDED.next_offset, updated_at = now(), "
        "event_time = GREATEST(daily.ingest_offsets.event_time, EXCLUDED.event_time)",
        [
            (group, t, p, o, times[(t, p)] + "+00" if (t, p) in times else None)
            for (t, p), o in new.items()
        ],
    )


def save_state(
    cur: Cursor,
    *,
    group: str,
    states: dict[int, dict[str, Any]],
    evicted: dict[int, set[str]] | None = None,
) -> tuple[int, dict[int, int]]:
    """Remove evicted bikes from, then merge changed bikes into, each partition's stored state.

    Returns the bytes of state sent, and the stored size of each partition's state written
    (bytes, as PostgreSQL keeps it).
    """
    for partition, keys in sorted((evicted or {}).items()):
        cur.execute(
            "UPDATE daily.ingest_state SET state = state - %s::text[], updated_at = now() "
            "WHERE consumer_group = %s AND kafka_partition = %s",
            (sorted(keys), group, partition),
        )
    if not states:
        return 0, {}
    texts = {p: orjson.dumps(state).decode() for p, state in states.items()}
    rows = execute_values(
        cur,
        "INSERT INTO daily.ingest_state (consumer_group, kafka_partition, state) "
        "SELECT v.g, v.p, v.s::jsonb FROM (VALUES %s) AS v (g, p, s) "
        "ON CONFLICT (consumer_group, kafka_partition) DO UPDATE "
        "SET state = daily.ingest_state.state || EXCLUDED.state, updated_at = now() "
        "RETURNING kafka_partition, pg_column_size(state)",
        [(group, p, text) for p, text in sorted(texts.items())],
        fetch=True,
    )
    return sum(len(t) for t in texts.values()), {p: size for p, size in rows}


def state_size(cur: Cursor, *, group: str) -> tuple[int, int]:
    """(bikes, bytes) of the state stored for a consumer group (monitoring, benchmarks)."""
    cur.execute(
        "SELECT coalesce(sum((SELECT count(*) FROM jsonb_object_keys(state))), 0), "
        "coalesce(sum(pg_column_size(state)), 0) FROM daily.ingest_state "
        "WHERE consumer_group = %s",
        (group,),
    )
    row = cur.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def upsert_bikes(cur: Cursor, *, bikes: dict[str, tuple[str, str, str]]) -> None:
    """Bikes seen, with their model, first/last event time and when the last was written."""
    if not bikes:
        return
    execute_values(
        cur,
        "INSERT INTO daily.bikes (bike_serial, model, first_seen_at, last_seen_at, written_at) "
        "SELECT v.serial, v.model, v.first::timestamptz, v.last::timestamptz, now() "
        "FROM (VALUES %s) AS v (serial, model, first, last) "
        "ON CONFLICT (bike_serial) DO UPDATE SET "
        "model = COALESCE(NULLIF(EXCLUDED.model, ''), daily.bikes.model), "
        "first_seen_at = LEAST(daily.bikes.first_seen_at, EXCLUDED.first_seen_at), "
        "last_seen_at = GREATEST(daily.bikes.last_seen_at, EXCLUDED.last_seen_at), "
        # When the latest line was written: the fleet health job's clock-skew measure.
        "written_at = CASE WHEN EXCLUDED.last_seen_at >= daily.bikes.last_seen_at "
        "THEN now() ELSE daily.bikes.written_at END",
        [(s, m, f + "+00", last + "+00") for s, (m, f, last) in sorted(bikes.items())],
    )


def upsert_riders(cur: Cursor, *, riders: dict[int, tuple[Rider, str]]) -> None:
    """Riders by user_id; the details of the latest SYSTEM line win."""
    if not riders:
        return
    rows = [
        (
            r.user_id, r.title, r.first_name, r.last_name, r.gender, r.address_line, r.city,
            r.postcode, r.date_of_birth, r.email_address, r.height_cm, r.weight_kg,
            r.account_created_at, r.original_source, ts + "+00", r.email_invalid,
        )
        for r, ts in (riders[k] for k in sorted(riders))
    ]  # fmt: skip
    execute_values(
        cur,
        "INSERT INTO daily.riders (user_id, title, first_name, last_name, gender, address_line, "
        "city, postcode, date_of_birth, email_address, height_cm, weight_kg, account_created_at, "
        "original_source, details_at, email_invalid) VALUES %s "
        "ON CONFLICT (user_id) DO UPDATE SET title = EXCLUDED.title, "
        "first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, "
        "gender = EXCLUDED.gender, address_line = EXCLUDED.address_line, city = EXCLUDED.city, "
        "postcode = EXCLUDED.postcode, date_of_birth = EXCLUDED.date_of_birth, "
        "email_address = EXCLUDED.email_address, height_cm = EXCLUDED.height_cm, "
        "weight_kg = EXCLUDED.weight_kg, account_created_at = EXCLUDED.account_created_at, "
        "original_source = EXCLUDED.original_source, details_at = EXCLUDED.details_at, "
        "email_invalid = EXCLUDED.email_invalid "
        "WHERE daily.riders.details_at <= EXCLUDED.details_at",
        rows,
    )


def insert_rides(cur: Cursor, *, rides: list[RideRow]) -> None:
    """New rides; a ride already there (replay) or deleted by an analyst is left alone."""
    if not rides:
        return
    execute_values(
        cur,
        "INSERT INTO daily.rides "
        "(ride_id, bike_serial, user_id, model, started_at, announced_serial) "
        "SELECT v.ride_id, v.bike_serial, v.user_id, v.model, v.started_at::timestamptz, "
        "v.announced_serial "
        "FROM (VALUES %s) AS v (ride_id, bike_serial, user_id, model, started_at, "
        "announced_serial) "
        "WHERE NOT EXISTS (SELECT 1 FROM historical.deleted_rides d WHERE d.ride_id = v.ride_id) "
        "ON CONFLICT DO NOTHING",
        [
            (r.ride_id, r.bike_serial, r.user_id, r.model, r.started_at + "+00", r.announced_serial)
            for r in rides
        ],
    )


def record_ride_feeds(cur: Cursor, *, group: str, rides: list[RideRow]) -> None:
    """Which group and partition feed each new ride (compress reads their progress)."""
    if not rides:
        return
    execute_values(
        cur,
        "INSERT INTO daily.ride_feeds (ride_id, consumer_group, kafka_partition) "
        "SELECT v.ride_id, v.g, v.p FROM (VALUES %s) AS v (ride_id, g, p) "
        "WHERE EXISTS (SELECT 1 FROM daily.rides r WHERE r.ride_id = v.ride_id) "
        "ON CONFLICT DO NOTHING",
        [(r.ride_id, group, r.partition) for r in rides],
    )


def end_rides(cur: Cursor, *, ends: dict[int, str]) -> None:
    """Set ended_at of rides that were closed by the next ride or by silence."""
    if not ends:
        return
    execute_values(
        cur,
        "UPDATE daily.rides AS r SET ended_at = GREATEST(r.ended_at, v.ended_at::timestamptz) "
        "FROM (VALUES %s) AS v (ride_id, ended_at) WHERE r.ride_id = v.ride_id",
        [(rid, ts + "+00") for rid, ts in sorted(ends.items())],
    )


def ensure_partitions(cur: Cursor, *, hours: Iterable[str]) -> list[str]:
    """Hourly partitions of daily.readings for each 'YYYY-MM-DD HH' given; return those created.

    Only the hours that hold readings: a range from the oldest to the newest would ask for a
    million partitions when one bike's clock says 1900.
    """
    cur.execute(
        "SELECT h FROM unnest(%s::text[]) AS h WHERE daily.ensure_readings_partitions("
        "(h || ':00:00+00')::timestamptz, (h || ':00:00+00')::timestamptz) > 0",
        (sorted(hours),),
    )
    return [row[0] for row in cur.fetchall()]


def summarised_readings(cur: Cursor, *, hours: list[str]) -> set[tuple[int, str]]:
    """(ride_id, 'YYYY-MM-DD HH') of readings in these hours whose ride is already summarised.

    Used on hours whose partition this transaction had to (re-)create: a summarised ride's
    readings there arrived after retention dropped the hour, and its summary would not count
    them. The ranges are sent as constants so that only those partitions are read.
    """
    if not hours:
        return set()
    ranges = " OR ".join(
        "(r.recorded_at >= %s::timestamptz AND r.recorded_at < %s::timestamptz + interval '1 hour')"
        for _ in hours
    )
    cur.execute(
        "SELECT DISTINCT r.ride_id, to_char(r.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24') "
        f"FROM daily.readings r WHERE ({ranges}) "
        "AND EXISTS (SELECT 1 FROM historical.rides h WHERE h.ride_id = r.ride_id)",
        [h + ":00:00+00" for h in hours for _ in (0, 1)],
    )
    return {(ride_id, hour) for ride_id, hour in cur.fetchall()}


def copy_readings(cur: Cursor, *, lines: list[str]) -> bool:
    """COPY reading rows (text format) into daily.readings; False if some were there already.

    The fast path is a plain COPY. Rows that exist already (a topic replayed from offset 0 by
    a new consumer group) make it fail; the batch then goes through a staging table and
    INSERT ... ON CONFLICT DO NOTHING, so a replay writes nothing twice.
    """
    if not lines:
        return True
    data = "".join(lines)
    cur.execute("SAVEPOINT copy_readings")
    try:
        # A large read size: psycopg2's 8 KiB default makes COPY fight the parser for the GIL.
        cur.copy_expert(
            _COPY_READINGS.format(table="daily.readings"), io.StringIO(data), size=8 << 20
        )
        cur.execute("RELEASE SAVEPOINT copy_readings")
        return True
    except UniqueViolation:
        cur.execute("ROLLBACK TO SAVEPOINT copy_readings")
    cur.execute(
        "CREATE TEMP TABLE IF NOT EXISTS readings_stage "
        "(LIKE daily.readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    cur.copy_expert(_COPY_READINGS.format(table="readings_stage"), io.StringIO(data), size=8 << 20)
    cur.execute("INSERT INTO daily.readings SELECT * FROM readings_stage ON CONFLICT DO NOTHING")
    return False


_COPY_READINGS = (
    "COPY {table} (ride_id, elapsed_s, recorded_at, resistance, heart_rate, rpm, power) FROM STDIN"
)


def drop_deleted(cur: Cursor, *, ride_ids: Iterable[int]) -> None:
    """Remove readings just written for rides an analyst has deleted."""
    ids = list(ride_ids)
    if not ids:
        return
    cur.execute("SELECT ride_id FROM historical.deleted_rides WHERE ride_id = ANY(%s)", (ids,))
    gone = [r[0] for r in cur.fetchall()]
    if gone:
        cur.execute("DELETE FROM daily.readings WHERE ride_id = ANY(%s)", (gone,))


def insert_rejects(cur: Cursor, *, rejects: list[RejectRow]) -> None:
    """Rejected lines with where they came from and why (a replay inserts nothing twice)."""
    if not rejects:
        return
    execute_values(
        cur,
        "INSERT INTO daily.rejects (topic, kafka_partition, kafka_offset, message_key, raw, "
        "reason, detail, bike_serial) VALUES %s "
        "ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING",
        [
            (
                r.topic,
                r.partition,
                r.offset,
                r.key,
                r.raw,
                r.reason,
                r.detail.replace("\x00", ""),
                r.bike_serial,
            )
            for r in rejects
        ],
        page_size=2000,
    )
