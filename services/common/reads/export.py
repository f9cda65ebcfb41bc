"""Bulk reads for `deloton export` and the API's download: raw readings still in daily, or
the hourly and daily aggregates, streamed as CSV straight out of PostgreSQL (COPY).

Nothing is held in memory: rows leave the server as CSV in blocks of about 256 KiB, which the
caller writes out (CSV) or parses block by block into Parquet row groups. Deleted rides are
left out of raw readings (their aggregates are already gone).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.common.pool import Connection

Resolution = Literal["raw", "hourly", "daily"]
BLOCK_BYTES = 256 << 10
ColumnKind = Literal["int16", "int32", "int64", "float64", "text", "timestamptz"]


@dataclass(frozen=True)
class ExportQuery:
    """What to export: a resolution, [start, end), and at most one of bike or city."""

    resolution: Resolution
    start: datetime
    end: datetime
    bike: str | None = None
    city: str | None = None

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ValueError("from must be before to")
        if self.bike is not None and self.city is not None and self.resolution != "raw":
            raise ValueError("aggregates are per bike or per city: give one of them")


RAW_COLUMNS: list[tuple[str, ColumnKind]] = [
    ("ride_id", "int64"),
    ("bike_serial", "text"),
    ("user_id", "int64"),
    ("elapsed_s", "int32"),
    ("recorded_at", "timestamptz"),
    ("resistance", "int16"),
    ("heart_rate", "int16"),
    ("rpm", "int16"),
    ("power", "float64"),
]
STATS_COLUMNS: list[tuple[str, ColumnKind]] = [
    ("bucket", "timestamptz"),
    ("scope", "text"),
    ("key", "text"),
    ("rides", "int32"),
    ("riders", "int32"),
    ("riding_s", "int64"),
    ("hr_readings", "int64"),
    ("avg_heart_rate", "float64"),
    ("max_heart_rate", "int16"),
    ("avg_power", "float64"),
    ("max_power", "float64"),
    ("energy_kj", "float64"),
]


def columns(resolution: Resolution) -> list[tuple[str, ColumnKind]]:
    """The exported columns and their types, in order."""
    return RAW_COLUMNS if resolution == "raw" else STATS_COLUMNS


def _select(query: ExportQuery) -> tuple[str, dict[str, object]]:
    params: dict[str, object] = {"start": query.start, "end": query.end}
    if query.resolution == "raw":
        where = ["r.recorded_at >= %(start)s", "r.recorded_at < %(end)s"]
        joins = ""
        if query.bike is not None:
            where.append("d.bike_serial = %(bike)s")
            params["bike"] = query.bike
        if query.city is not None:
            joins = "JOIN daily.riders u ON u.user_id = d.user_id"
            where.append("public.deloton_fold(u.city) = public.deloton_fold(%(city)s)")
            params["city"] = query.city
        where.append(
            "NOT EXISTS (SELECT 1 FROM historical.deleted_rides t WHERE t.ride_id = r.ride_id)"
        )
        # Partitions are read in hour order; within an hour rows come as stored (sorting 10M
        # rows would cost more than the export itself).
        return (
            f"""SELECT r.ride_id, d.bike_serial, d.user_id, r.elapsed_s, r.recorded_at,
                       r.resistance, r.heart_rate, r.rpm, r.power
                FROM daily.readings r JOIN daily.rides d ON d.ride_id = r.ride_id {joins}
                WHERE {" AND ".join(where)}""",
            params,
        )
    params["res"] = "hour" if query.resolution == "hourly" else "day"
    if query.bike is not None:
        scope = "scope = 'bike' AND key = %(key)s"
        params["key"] = query.bike
    elif query.city is not None:
        scope = "scope = 'city' AND public.deloton_fold(key) = public.deloton_fold(%(key)s)"
        params["key"] = query.city
    else:
        scope = "scope = 'fleet' AND key = ''"
    names = ", ".join(name for name, _ in STATS_COLUMNS)
    return (
        f"""SELECT {names} FROM historical.stats
            WHERE {scope} AND resolution = %(res)s
              AND bucket >= %(start)s AND bucket < %(end)s
            ORDER BY bucket, key""",
        params,
    )


def select_statement(query: ExportQuery) -> tuple[str, dict[str, object]]:
    """The SELECT an export runs and its parameters (benchmarks compare it with psql's copy)."""
    return _select(query)


def count_rows(conn: Connection, *, query: ExportQuery) -> int:
    """How many rows the export will hold (for a progress bar)."""
    select, params = _select(query)
    row = conn.execute(f"SELECT count(*) AS n FROM ({select}) x", params).fetchone()
    return int(row["n"]) if row else 0


def csv_chunks(conn: Connection, *, query: ExportQuery) -> Iterator[bytes]:
    """The export as CSV with a header line, in chunks as the server sends them.

    Times are ISO 8601 in UTC (`2026-11-20 10:00:01+00`); NULL is an empty field, an empty
    string is `""`. Must run inside the caller's transaction, which fixes the time zone.
    """
    conn.execute("SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO', true)")
    select, params = _select(query)
    statement = f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER)"
    # PostgreSQL sends one message per row: gathered into blocks, the caller's per-chunk work
    # (counting, writing, yielding through generators) runs once per block, not per row.
    block: list[bytes] = []
    size = 0
    with conn.cursor() as cur, cur.copy(statement, params) as copy:
        for row in copy:
            block.append(bytes(row))
            size += len(row)
            if size >= BLOCK_BYTES:
                yield b"".join(block)
                block.clear()
                size = 0
    if block:
        yield b"".join(block)
