"""Benchmark `deloton quality`: one fleet health run over a full window of a 1,000-bike fleet.

    python -m bench.quality                  # 1,000 bikes x 900 readings (15 minutes)
    python -m bench.quality --quick          # 50 bikes: a smoke run
    DATABASE_URL=postgresql://... python -m bench.quality   # else an embedded PostgreSQL

Readings are generated inside PostgreSQL (generate_series) in a scratch database: plausible
values, 1% of bikes without heart-rate contact so some incidents open. Prints wall and CPU
seconds of the run and the process's peak RSS (the window is read one bike at a time), and
writes bench/results/quality.json. The target is the schedule: a run must end well within
QUALITY_INTERVAL_S (60 s).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import UTC, datetime, timedelta

import psycopg2
from pydantic import SecretStr

from bench import results
from services.common import db
from services.common.config import Settings
from services.quality.job import run_on
from tests import harness

WINDOW_S = 900


def seed(dsn: str, bikes: int, now: datetime) -> None:
    """One ride per bike covering the window; readings every second."""
    start = now - timedelta(seconds=WINDOW_S)
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT daily.ensure_readings_partitions(%s, %s)", (start, now))
        cur.execute(
            """INSERT INTO daily.riders (user_id, first_name, last_name, gender, date_of_birth,
                                         details_at)
               VALUES (1, 'Ada', 'Bench', 'female', '1990-01-01', now())"""
        )
        cur.execute(
            """INSERT INTO daily.rides (ride_id, bike_serial, user_id, started_at)
               SELECT b, 'SN' || lpad(b::text, 5, '0'), 1, %s FROM generate_series(1, %s) b""",
            (start, bikes),
        )
        cur.execute(
            """INSERT INTO daily.readings
               SELECT b, s, %(start)s + s * interval '1 second', 40 + (b %% 60),
                      CASE WHEN b %% 100 = 0 THEN NULL ELSE 100 + ((b * 7 + s) %% 40) END,
                      60 + ((b + s * 3) %% 30),
                      (60 + ((b + s * 3) %% 30)) * (1.5 + (b %% 60) / 40.0)
               FROM generate_series(1, %(bikes)s) b, generate_series(1, %(n)s - 1) s""",
            {"start": start, "bikes": bikes, "n": WINDOW_S},
        )
        cur.execute(
            """INSERT INTO daily.bikes (bike_serial, first_seen_at, last_seen_at, written_at)
               SELECT bike_serial, %s, %s, %s FROM daily.rides""",
            (start, now, now + timedelta(seconds=1)),
        )
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bikes", type=int, default=None, help="1,000 (50 with --quick)")
    parser.add_argument("--quick", action="store_true", help="50 bikes: a smoke run")
    args = parser.parse_args()
    bikes = args.bikes or (50 if args.quick else 1000)
    now = datetime.now(UTC).replace(microsecond=0)
    with harness.running_postgres() as server, harness.scratch_database(server) as dsn:
        seed(dsn, bikes, now)
        settings = Settings(_env_file=None, database_url=SecretStr(dsn))  # type: ignore[call-arg]
        conn = db.connect(dsn)
        wall, cpu = time.perf_counter(), time.process_time()
        result = run_on(conn, settings, now=now)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        conn.close()
    rss = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    figures = {
        "bikes": bikes,
        "readings": bikes * (WINDOW_S - 1),
        "judged": result.judged,
        "opened": len(result.opened),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 3),
        "peak_rss_mb": rss,
    }
    print(json.dumps(figures))
    window = f"{figures['readings']:,} readings of {bikes:,} bikes"
    results.write(
        "quality",
        [
            results.Figure("fleet health run", figures["wall_s"], "s", target=60.0,
                           higher_is_better=False, note=window),
            results.Figure("fleet health run, CPU", figures["cpu_s"], "s", higher_is_better=False),
            results.Figure("fleet health: peak RSS", rss, "MiB", higher_is_better=False),
        ],
        quick=args.quick,
        params={"bikes": bikes, "window_s": WINDOW_S},
        raw=figures,
    )  # fmt: skip


if __name__ == "__main__":
    main()
