"""Test data for compress, written straight into the daily schema with SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg2.extensions
from psycopg2.extras import execute_values

Cursor = psycopg2.extensions.cursor

READING_COLUMNS = [
    "ride_id",
    "elapsed_s",
    "recorded_at",
    "resistance",
    "heart_rate",
    "rpm",
    "power",
]


def add_rider(
    cur: Cursor, user_id: int, *, details_at: datetime, first_name: str = "Ada", city: str = "Leeds"
) -> None:
    """One daily.riders row (latest details win on conflict, as ingest does)."""
    cur.execute(
        """INSERT INTO daily.riders (user_id, title, first_name, last_name, gender, address_line,
               city, postcode, date_of_birth, email_address, height_cm, weight_kg,
               account_created_at, original_source, details_at)
           VALUES (%s, 'Dr', %s, 'Lovelace', 'female', '1 Main St', %s, 'LS1 1AA', %s,
                   'ada@example.com', 170, 60, %s, 'direct', %s)
           ON CONFLICT (user_id) DO UPDATE SET first_name = EXCLUDED.first_name,
               city = EXCLUDED.city, details_at = EXCLUDED.details_at
           WHERE daily.riders.details_at < EXCLUDED.details_at""",
        (
            user_id,
            first_name,
            city,
            date(1980, 5, 17),
            details_at - timedelta(days=400),
            details_at,
        ),
    )


def add_ride(
    cur: Cursor,
    ride_id: int,
    user_id: int,
    *,
    started_at: datetime,
    ended_at: datetime | None,
    bike_serial: str = "SN0001",
) -> None:
    """One daily.rides row."""
    cur.execute(
        """INSERT INTO daily.rides (ride_id, bike_serial, user_id, model, started_at, ended_at)
           VALUES (%s, %s, %s, 'mendoza v9', %s, %s)""",
        (ride_id, bike_serial, user_id, started_at, ended_at),
    )


def add_feed(cur: Cursor, ride_id: int, *, group: str = "ingest", partition: int = 0) -> None:
    """Record which ingest group and partition feed a ride, as ingest does."""
    cur.execute(
        "INSERT INTO daily.ride_feeds (ride_id, consumer_group, kafka_partition) "
        "VALUES (%s, %s, %s)",
        (ride_id, group, partition),
    )


def set_progress(
    cur: Cursor,
    event_time: datetime | None,
    *,
    group: str = "ingest",
    topic: str = "deloton",
    partition: int = 0,
) -> None:
    """Store ingest's committed event time of one partition (with a made-up offset)."""
    cur.execute(
        """INSERT INTO daily.ingest_offsets
               (consumer_group, topic, kafka_partition, next_offset, event_time)
           VALUES (%s, %s, %s, 1, %s)
           ON CONFLICT (consumer_group, topic, kafka_partition)
           DO UPDATE SET event_time = EXCLUDED.event_time""",
        (group, topic, partition, event_time),
    )


def readings_frame(
    ride_id: int,
    started_at: datetime,
    seconds: int,
    *,
    seed: int,
    hr_missing: float = 0.2,
    first_reading_s: int = 1,
) -> pd.DataFrame:
    """One reading a second, random but plausible, with `hr_missing` of heart rates absent."""
    rng = np.random.default_rng(seed)
    elapsed = np.arange(first_reading_s, first_reading_s + seconds)
    hr = rng.integers(60, 190, size=seconds).astype("float")
    hr[rng.random(seconds) < hr_missing] = np.nan
    return pd.DataFrame(
        {
            "ride_id": ride_id,
            "elapsed_s": elapsed,
            "recorded_at": [started_at + timedelta(seconds=int(s)) for s in elapsed],
            "resistance": rng.integers(0, 100, size=seconds),
            "heart_rate": pd.array(hr, dtype="Int64"),
            "rpm": rng.integers(0, 120, size=seconds),
            "power": rng.random(seconds) * 300.0,
        }
    )


def insert_readings(cur: Cursor, frame: pd.DataFrame, *, table: str = "readings") -> None:
    """Create the hourly partitions the readings need, then insert them.

    `table` names another table of the daily schema to write to instead (no partitions made).
    """
    if frame.empty:
        return
    if table == "readings":
        cur.execute(
            "SELECT daily.ensure_readings_partitions(%s, %s)",
            (frame.recorded_at.min().to_pydatetime(), frame.recorded_at.max().to_pydatetime()),
        )
    rows = [
        (
            int(r.ride_id),
            int(r.elapsed_s),
            r.recorded_at.to_pydatetime(),
            int(r.resistance),
            None if pd.isna(r.heart_rate) else int(r.heart_rate),
            int(r.rpm),
            float(r.power),
        )
        for r in frame.itertuples(index=False)
    ]
    execute_values(cur, f"INSERT INTO daily.{table} ({', '.join(READING_COLUMNS)}) VALUES %s", rows)


def add_alert(
    cur: Cursor,
    ride_id: int,
    episode: int,
    user_id: int,
    *,
    detected_at: datetime,
    status: str = "sent",
    bike_serial: str = "SN0001",
) -> None:
    """One daily.alerts row."""
    cur.execute(
        """INSERT INTO daily.alerts (ride_id, episode, user_id, bike_serial, kind, detected_at,
               heart_rates, limit_low, limit_high, status)
           VALUES (%s, %s, %s, %s, 'high', %s, '{200,201,202}', 45, 180, %s)""",
        (ride_id, episode, user_id, bike_serial, detected_at, status),
    )


@dataclass
class Ride:
    """A ride written by `write_ride`, with the readings pandas computes expectations from."""

    ride_id: int
    user_id: int
    started_at: datetime
    ended_at: datetime | None
    readings: pd.DataFrame


def write_ride(
    cur: Cursor,
    ride_id: int,
    user_id: int,
    *,
    started_at: datetime,
    seconds: int,
    ended: bool = True,
    seed: int | None = None,
    hr_missing: float = 0.2,
    bike_serial: str = "SN0001",
) -> Ride:
    """A rides row plus `seconds` readings; ended rides end one second after the last reading."""
    frame = readings_frame(
        ride_id, started_at, seconds, seed=ride_id if seed is None else seed, hr_missing=hr_missing
    )
    ended_at = started_at + timedelta(seconds=seconds + 1) if ended else None
    add_ride(
        cur, ride_id, user_id, started_at=started_at, ended_at=ended_at, bike_serial=bike_serial
    )
    insert_readings(cur, frame)
    return Ride(ride_id, user_id, started_at, ended_at, frame)


def table_state(cur: Cursor) -> dict[str, object]:
    """A comparable picture of every table compress touches (summarised_at aside)."""
    out: dict[str, object] = {}
    queries = {
        "historical.rides": """SELECT ride_id, user_id, bike_serial, model, started_at, ended_at,
               duration_s, readings_count, heart_rate_readings, round(avg_heart_rate::numeric, 9),
               max_heart_rate, round(avg_power::numeric, 9), max_power,
               round(total_energy_kj::numeric, 9), round(avg_rpm::numeric, 9),
               round(avg_resistance::numeric, 9), alert_count
               FROM historical.rides ORDER BY ride_id""",
        "historical.riders": "SELECT * FROM historical.riders ORDER BY user_id",
        "daily.riders": "SELECT user_id FROM daily.riders ORDER BY user_id",
        "daily.rides": "SELECT ride_id, ended_at FROM daily.rides ORDER BY ride_id",
        "daily.alerts": "SELECT ride_id, episode, status FROM daily.alerts ORDER BY 1, 2",
        "daily.readings": """SELECT ride_id, count(*), min(recorded_at), max(recorded_at)
               FROM daily.readings GROUP BY ride_id ORDER BY ride_id""",
        "partitions": """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'daily.readings'::regclass ORDER BY 1""",
        # partitions and any table a detach left behind
        "reading tables": """SELECT c.relname, c.relispartition FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'daily' AND c.relkind = 'r' AND c.relname LIKE 'readings%'
               ORDER BY 1""",
    }
    for name, query in queries.items():
        cur.execute(query)
        out[name] = cur.fetchall()
    return out


# A fixed clock for the scenario: retention (12 h) cuts at 2026-11-20 00:00:30 UTC, inside the
# hour of partition readings_20261120h00, which therefore straddles the boundary.
NOW = datetime.fromisoformat("2026-11-20T12:00:30+00:00")


def at(text: str) -> datetime:
    """A UTC timestamp from 'YYYY-MM-DD HH:MM:SS'."""
    return datetime.fromisoformat(text + "+00:00")


def write_scenario(cur: Cursor) -> dict[str, Ride]:
    """Rides in every situation compress meets, around NOW (see each comment)."""
    for user_id in range(1, 8):
        add_rider(cur, user_id, details_at=at("2026-11-19 18:00:00"), first_name=f"R{user_id}")
    rides = {
        # old, finished: its partition (h20) goes whole
        "old": write_ride(cur, 101, 1, started_at=at("2026-11-19 20:10:00"), seconds=600),
        # finished, straddles the retention cutoff: h23 dropped, h00 partly deleted
        "straddling": write_ride(cur, 102, 2, started_at=at("2026-11-19 23:55:00"), seconds=900),
        # finished, recent: summarised, stays in daily
        "recent": write_ride(cur, 106, 5, started_at=at("2026-11-20 10:00:00"), seconds=600),
        # old, finished, shares partition h22 with the ride in progress below
        "old_shared": write_ride(
            cur, 104, 1, started_at=at("2026-11-19 22:00:00"), seconds=300, bike_serial="SN0002"
        ),
        # tombstoned by an analyst: never summarised, its daily data still goes with retention
        "tombstoned_old": write_ride(
            cur, 107, 6, started_at=at("2026-11-19 21:00:00"), seconds=300
        ),
        "tombstoned_recent": write_ride(
            cur, 108, 7, started_at=at("2026-11-20 11:00:00"), seconds=300
        ),
    }
    # In progress for 13.5 hours (readings at the start and in the last minute): keeps h22.
    start = at("2026-11-19 22:30:00")
    add_ride(cur, 103, 3, started_at=start, ended_at=None, bike_serial="SN0003")
    early = readings_frame(103, start, 600, seed=103)
    late = readings_frame(103, start, 85, seed=1031, first_reading_s=48_510)
    insert_readings(cur, early)
    insert_readings(cur, late)
    rides["in_progress"] = Ride(103, 3, start, None, pd.concat([early, late], ignore_index=True))
    # Silent: no ended_at, nothing for 3.5 minutes (> ride_silence_s); ends at its last reading.
    start = at("2026-11-20 11:50:00")
    add_ride(cur, 105, 4, started_at=start, ended_at=None, bike_serial="SN0004")
    frame = readings_frame(105, start, 420, seed=105, hr_missing=0.5)
    insert_readings(cur, frame)
    rides["silent"] = Ride(105, 4, start, None, frame)
    add_alert(cur, 101, 1, 1, detected_at=at("2026-11-19 20:12:00"))
    add_alert(cur, 101, 2, 1, detected_at=at("2026-11-19 20:15:00"), status="failed")
    add_alert(cur, 106, 1, 5, detected_at=at("2026-11-20 10:05:00"), status="pending")
    cur.execute("INSERT INTO historical.deleted_rides (ride_id) VALUES (107), (108)")
    return rides
