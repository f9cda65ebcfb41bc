"""The day's figures computed independently with pandas from the tables themselves."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg2


def _frame(conn: psycopg2.extensions.connection, sql: str) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(sql)
        cols = [c.name for c in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=cols)


def day_figures(dsn: str, day: date, tz_name: str = "Europe/London") -> dict[str, float]:
    """Rides, riders, new riders, riding hours, energy (kWh) and alerts of a local day."""
    tz = ZoneInfo(tz_name)
    start = pd.Timestamp(datetime.combine(day, time(0), tzinfo=tz))
    end = pd.Timestamp(datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz))
    conn = psycopg2.connect(dsn)
    try:
        deleted = set(_frame(conn, "SELECT ride_id FROM historical.deleted_rides").ride_id)
        hist = _frame(
            conn,
            "SELECT ride_id, user_id, started_at, duration_s, total_energy_kj, alert_count "
            "FROM historical.rides",
        )
        rides = _frame(conn, "SELECT ride_id, user_id, started_at, ended_at FROM daily.rides")
        readings = _frame(conn, "SELECT ride_id, recorded_at, power FROM daily.readings")
        alerts = _frame(conn, "SELECT ride_id, status FROM daily.alerts")
    finally:
        conn.close()
    live = rides[~rides.ride_id.isin(hist.ride_id)].copy()
    per_ride = readings.groupby("ride_id").agg(last=("recorded_at", "max"), watts=("power", "sum"))
    live = live.join(per_ride, on="ride_id")
    # A ride still open (no ended_at anywhere) must not leave the column as plain objects.
    ended = pd.to_datetime(live.ended_at, utc=True)
    # One resolution for all three before filling: pandas will refuse mixed ones.
    last, started = (
        pd.to_datetime(live[c], utc=True).astype(ended.dtype) for c in ("last", "started_at")
    )
    end_at = ended.fillna(last).fillna(started)
    live["duration_s"] = (end_at - live.started_at).dt.total_seconds().round().clip(lower=0)
    live["total_energy_kj"] = live.watts.fillna(0) / 1000
    live["alert_count"] = live.ride_id.map(alerts.ride_id.value_counts()).fillna(0)
    both = pd.concat([hist, live[hist.columns]], ignore_index=True)
    both = both[~both.ride_id.isin(deleted)]
    both["started_at"] = pd.to_datetime(both.started_at, utc=True)
    first = both.groupby("user_id").started_at.min()
    today = both[(both.started_at >= start) & (both.started_at < end)]
    users = today.user_id.unique()
    return {
        "rides": len(today),
        "riders": len(users),
        "new_riders": int(((first[users] >= start) & (first[users] < end)).sum()),
        "riding_hours": today.duration_s.sum() / 3600,
        "energy_kwh": today.total_energy_kj.sum() / 3600,
        "alerts": int(today.alert_count.sum()),
    }
