"""Hourly and daily aggregates equal a pandas recomputation from the raw readings.

Through compress's real code on a real PostgreSQL: after the roll-up, after retention has
dropped a summarised hour, after late readings grew summaries (into an hour already counted
and into a new one), and after an analyst's DELETE /ride (the API's own repository code).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import psycopg
import pytest
from psycopg.rows import dict_row

from services.api import repository as api_repo
from services.compress import run
from tests.compress.builders import (
    NOW,
    Ride,
    add_rider,
    at,
    insert_readings,
    readings_frame,
    write_ride,
)

pytestmark = pytest.mark.postgres

CITIES = {1: "Leeds", 2: "Leeds", 3: "York"}
Key = tuple[str, str, str, datetime]


def expected_stats(rides: list[Ride], bikes: dict[int, str]) -> dict[Key, dict[str, Any]]:
    """Every bucket of every resolution and scope, from the readings alone, with pandas."""
    frames = []
    for ride in rides:
        f = ride.readings.copy()
        f["user_id"] = ride.user_id
        f["bike"] = bikes[ride.ride_id]
        f["city"] = CITIES[ride.user_id]
        f["fleet"] = ""
        frames.append(f)
    data = pd.concat(frames, ignore_index=True)
    data["recorded_at"] = pd.to_datetime(data.recorded_at, utc=True)
    data["hour"] = data.recorded_at.dt.floor("h")
    data["day"] = data.recorded_at.dt.floor("D")
    data["hr"] = data.heart_rate.astype("float").where(data.heart_rate.fillna(0) != 0)
    out: dict[Key, dict[str, Any]] = {}
    for resolution, column in (("hour", "hour"), ("day", "day")):
        for scope in ("fleet", "bike", "city"):
            for (key, bucket), g in data.groupby([scope, column]):
                hr = g.hr.dropna()
                out[(resolution, scope, str(key), bucket.to_pydatetime())] = {
                    "rides": g.ride_id.nunique(),
                    "riders": g.user_id.nunique(),
                    "riding_s": len(g),
                    "hr_readings": len(hr),
                    "avg_heart_rate": float(hr.mean()) if len(hr) else None,
                    "max_heart_rate": int(hr.max()) if len(hr) else None,
                    "avg_power": float(g.power.mean()),
                    "max_power": float(g.power.max()),
                    "energy_kj": float(g.power.sum()) / 1000,
                }
    return out


def stored_stats(conn) -> dict[Key, dict[str, Any]]:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM historical.stats")
        names = [c.name for c in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    return {(r.pop("resolution"), r.pop("scope"), r.pop("key"), r.pop("bucket")): r for r in rows}


def assert_stats(conn, rides: list[Ride], bikes: dict[int, str]) -> None:
    got, want = stored_stats(conn), expected_stats(rides, bikes)
    assert sorted(got) == sorted(want)
    for key, expected in want.items():
        for column, value in expected.items():
            if isinstance(value, float):
                assert got[key][column] == pytest.approx(value, rel=1e-9), (key, column)
            else:
                assert got[key][column] == value, (key, column)


def _grow(ride: Ride, seconds: int, seed: int) -> pd.DataFrame:
    last = int(ride.readings.elapsed_s.max())
    tail = readings_frame(
        ride.ride_id, ride.started_at, seconds, seed=seed, first_reading_s=last + 1
    )
    ride.readings = pd.concat([ride.readings, tail], ignore_index=True)
    return tail


def test_aggregates_follow_rollup_late_readings_retention_and_deletes(
    conn, compress_settings, database_url
):
    bikes = {1: "SN0001", 2: "SN0002", 3: "SN0001", 4: "SN0003", 5: "SN0003", 6: "SN0002"}
    with conn, conn.cursor() as cur:
        for user, city in CITIES.items():
            add_rider(cur, user, details_at=at("2026-11-19 20:00:00"), city=city)

        def ride(ride_id: int, user: int, start: str, seconds: int) -> Ride:
            return write_ride(
                cur,
                ride_id,
                user,
                started_at=at(start),
                seconds=seconds,
                bike_serial=bikes[ride_id],
            )

        rides = {
            1: ride(1, 1, "2026-11-20 10:50:00", 1200),  # two hours
            2: ride(2, 1, "2026-11-20 11:25:00", 600),  # the same rider again in hour 11
            3: ride(3, 2, "2026-11-20 11:40:00", 600),
            4: ride(4, 3, "2026-11-19 23:50:00", 1200),  # over midnight; its hours expire
            5: ride(5, 2, "2026-11-20 09:00:00", 300),  # deleted after its roll-up
            6: ride(6, 3, "2026-11-20 09:30:00", 300),  # deleted before its roll-up
        }
    with psycopg.connect(database_url, row_factory=dict_row) as api:
        assert api_repo.tombstone_ride(api, ride_id=6)
        api_repo.delete_ride_rows(api, ride_id=6, started_at=rides[6].started_at)

    result = run(conn, now=NOW, settings=compress_settings)
    assert result.rides_summarised == 5 and result.partitions_dropped >= 1
    live = [rides[i] for i in (1, 2, 3, 4, 5)]
    assert_stats(conn, live, bikes)

    # Late readings: ride 1 grows inside hour 11 (already counted), ride 3 into hour 12 (new).
    with conn, conn.cursor() as cur:
        insert_readings(cur, _grow(rides[1], 120, seed=101))
        insert_readings(cur, _grow(rides[3], 1500, seed=103))
    result = run(conn, now=at("2026-11-20 12:30:30"), settings=compress_settings)
    assert result.summaries_updated == 2
    assert_stats(conn, live, bikes)
    assert (
        run(conn, now=at("2026-11-20 12:30:30"), settings=compress_settings).stats_ride_hours == 0
    )

    # DELETE /ride of a summarised ride takes it out of every bucket, at once.
    with psycopg.connect(database_url, row_factory=dict_row) as api:
        assert api_repo.tombstone_ride(api, ride_id=5)
        gone = api_repo.delete_ride_rows(api, ride_id=5, started_at=rides[5].started_at)
        assert gone.summary
    live = [rides[i] for i in (1, 2, 3, 4)]
    assert_stats(conn, live, bikes)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM historical.ride_hours WHERE ride_id IN (5, 6)")
        assert cur.fetchone()[0] == 0
