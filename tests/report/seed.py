"""Seeding report databases the way production fills them: the simulator's raw feed through
the real broker and ingest, compress for the historical part."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg2

from services.common.config import Settings
from services.compress.job import run as compress
from services.ingest.service import IngestService
from services.simulator.fleet import Fleet, FleetConfig
from services.simulator.pacing import MAX
from services.simulator.producer import produce, topic_map


def simulate(settings: Settings, **config: object) -> int:
    """Produce one simulated fleet at full speed; return the number of messages."""
    fleet = Fleet(FleetConfig(**config))  # type: ignore[arg-type]
    stats = produce(settings, fleet.messages(), MAX, topics=topic_map(settings))
    assert stats.failed == 0
    return stats.messages


def ingest(settings: Settings) -> None:
    """One ingest process until it has caught up and gone idle."""
    IngestService(settings).run(until_idle=1.5)


def roll_up(settings: Settings, now: datetime) -> None:
    """Summarise finished rides into historical and apply retention as of `now`."""
    result = compress(settings, now=now)
    assert result.status == "ok", result


def record_alerts(dsn: str, *, day_start: datetime) -> None:
    """Alerts as the alerts service records them, for the first rides after `day_start`:
    two sent, one failed, one pending."""
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                """SELECT ride_id, user_id, bike_serial, started_at FROM daily.rides
                   WHERE started_at >= %s ORDER BY started_at, ride_id LIMIT 3""",
                (day_start,),
            )
            rides = cur.fetchall()
            plan = [(0, 1, "sent"), (0, 2, "failed"), (1, 1, "sent"), (2, 1, "pending")]
            for index, episode, status in plan:
                ride_id, user_id, bike, started = rides[index]
                cur.execute(
                    """INSERT INTO daily.alerts (ride_id, episode, user_id, bike_serial, kind,
                           detected_at, heart_rates, limit_low, limit_high, status)
                       VALUES (%s, %s, %s, %s, 'high', %s, '{200,201,202}', 45, 180, %s)""",
                    (ride_id, episode, user_id, bike, started + timedelta(seconds=60), status),
                )
    finally:
        conn.close()


def date_rejects(dsn: str, *, at: datetime) -> int:
    """Stamp the rejected lines as having arrived at `at` (ingest stamps the wall clock, and
    the simulated day is in the past)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE daily.rejects SET received_at = %s", (at,))
            return cur.rowcount
    finally:
        conn.close()
