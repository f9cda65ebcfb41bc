"""Benchmark `deloton compress`: summarise + retention over 10M readings, and DROP vs DELETE.

    python -m bench.compress                 # 20,000 rides x 500 readings over 50 hours
    python -m bench.compress --rides 2000    # smaller
    DATABASE_URL=postgresql://... python -m bench.compress   # else an embedded PostgreSQL

The data is generated inside PostgreSQL (generate_series), in a scratch database that is
dropped afterwards. All of it is older than the retention window, except a few rides in
progress, so one run summarises every ride and empties the daily schema of old data.

`run_compress_bench(dsn)` times one compress run over whatever the database holds and returns
the figures; it is safe to call from a thread or process while something else (ingest) runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2 import sql
from pydantic import SecretStr

from bench import results
from services.common import db
from services.common.config import Settings
from services.compress import repository as repo
from services.compress import run
from tests import harness

RETENTION_HOURS = 12.0
TARGET_S = 30.0  # summarise and retention of a 10M-reading day


@dataclass(frozen=True)
class Workload:
    """The generated data: finished rides spread evenly over `hours` hourly partitions."""

    rides: int = 20_000
    readings_per_ride: int = 500
    hours: int = 50
    riders: int = 2_000
    bikes: int = 500
    in_progress: int = 50  # recent rides still going: must survive untouched
    alert_every: int = 40  # one alert per this many rides

    @property
    def readings(self) -> int:
        return self.rides * self.readings_per_ride


def rss_mb() -> float:
    """Peak resident set size of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident set size of this process now, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- data -----------------------------------------------------------------------------------


def generate(dsn: str, workload: Workload, *, now: datetime, chunk_rides: int = 2_000) -> float:
    """Write riders, rides, readings and alerts with generate_series; return seconds taken.

    Ride ids are scattered over bigint (like ingest's hash of bike and start), so summary
    batches, taken in ride_id order, each touch every partition.
    """
    t0 = time.perf_counter()
    first = now - timedelta(hours=RETENTION_HOURS + workload.hours + 1)
    step_s = workload.hours * 3600 / workload.rides
    conn = db.connect(dsn, application_name="bench-compress-generate")
    try:
        with db.transaction(conn) as cur:
            cur.execute(
                """INSERT INTO daily.riders (user_id, first_name, last_name, gender, city,
                       date_of_birth, email_address, details_at)
                   SELECT g, 'First' || g, 'Last' || g,
                          (ARRAY['male', 'female', 'other'])[1 + g %% 3],
                          'City' || (g %% 50), date '1950-01-01' + (g * 7 %% 20000),
                          'r' || g || '@example.com', %(first)s
                   FROM generate_series(1, %(riders)s) g
                   ON CONFLICT (user_id) DO NOTHING""",
                {"first": first, "riders": workload.riders},
            )
            cur.execute(
                "SELECT daily.ensure_readings_partitions(%s, %s)",
                (first, now + timedelta(hours=1)),
            )
        for lo in range(1, workload.rides + 1, chunk_rides):
            hi = min(lo + chunk_rides - 1, workload.rides)
            with db.transaction(conn) as cur:
                _generate_rides(cur, workload, first=first, step_s=step_s, lo=lo, hi=hi)
        with db.transaction(conn) as cur:
            _generate_in_progress(cur, workload, now=now)
            # Autovacuum would have analysed hours-old partitions; the drop step reports the
            # catalogue's row estimate.
            cur.execute("ANALYZE daily.rides, daily.riders, daily.readings")
    finally:
        conn.close()
    return time.perf_counter() - t0


def _generate_rides(
    cur: psycopg2.extensions.cursor,
    workload: Workload,
    *,
    first: datetime,
    step_s: float,
    lo: int,
    hi: int,
) -> None:
    params = {
        "first": first,
        "step": step_s,
        "lo": lo,
        "hi": hi,
        "n": workload.readings_per_ride,
        "riders": workload.riders,
        "bikes": workload.bikes,
        "every": workload.alert_every,
    }
    cur.execute(
        """INSERT INTO daily.rides (ride_id, bike_serial, user_id, model, started_at, ended_at)
           SELECT ('x' || substr(md5(i::text), 1, 15))::bit(60)::bigint,
                  'SN' || lpad((i %% %(bikes)s)::text, 4, '0'), 1 + i %% %(riders)s, 'mendoza v9',
                  %(first)s + make_interval(secs => i * %(step)s),
                  %(first)s + make_interval(secs => i * %(step)s + %(n)s + 1)
           FROM generate_series(%(lo)s, %(hi)s) i""",
        params,
    )
    cur.execute(
        """INSERT INTO daily.readings
               (ride_id, elapsed_s, recorded_at, resistance, heart_rate, rpm, power)
           SELECT d.ride_id, s, d.started_at + make_interval(secs => s),
                  least(s / 5, 100)::smallint,
                  CASE WHEN (s + d.ride_id) %% 11 = 0 THEN NULL
                       ELSE (70 + (s * 7 + d.ride_id) %% 110)::smallint END,
                  (40 + (s * 3 + d.ride_id) %% 60)::smallint,
                  ((s * 13 + d.ride_id) %% 3000) / 10.0
           FROM (SELECT ('x' || substr(md5(i::text), 1, 15))::bit(60)::bigint AS ride_id,
                        %(first)s + make_interval(secs => i * %(step)s) AS started_at
                 FROM generate_series(%(lo)s, %(hi)s) i) d
           CROSS JOIN generate_series(1, %(n)s) s""",
        params,
    )
    cur.execute(
        """INSERT INTO daily.alerts (ride_id, episode, user_id, bike_serial, kind, detected_at,
               heart_rates, limit_low, limit_high, status)
           SELECT d.ride_id, 1, d.user_id, d.bike_serial, 'high', d.started_at + interval '60 s',
                  '{190,191,192}', 45, 185, 'sent'
           FROM daily.rides d
           WHERE d.ride_id IN (SELECT ('x' || substr(md5(i::text), 1, 15))::bit(60)::bigint
                               FROM generate_series(%(lo)s, %(hi)s) i WHERE i %% %(every)s = 0)""",
        params,
    )


def _generate_in_progress(
    cur: psycopg2.extensions.cursor, workload: Workload, *, now: datetime
) -> None:
    cur.execute(
        """INSERT INTO daily.rides (ride_id, bike_serial, user_id, model, started_at)
           SELECT -i, 'SN9' || lpad(i::text, 3, '0'), 1 + i %% %(riders)s, 'mendoza v9',
                  %(now)s - interval '300 s'
           FROM generate_series(1, %(k)s) i""",
        {"k": workload.in_progress, "riders": workload.riders, "now": now},
    )
    cur.execute(
        """INSERT INTO daily.readings
               (ride_id, elapsed_s, recorded_at, resistance, heart_rate, rpm, power)
           SELECT -i, s, %(now)s - interval '300 s' + make_interval(secs => s), 20, 120, 60, 100.0
           FROM generate_series(1, %(k)s) i CROSS JOIN generate_series(1, 295) s""",
        {"k": workload.in_progress, "now": now},
    )


def count(dsn: str, query: str) -> int:
    """One integer from the database."""
    conn = db.connect(dsn)
    try:
        with db.transaction(conn) as cur:
            cur.execute(query)
            row = cur.fetchone()
            return int(row[0]) if row else 0
    finally:
        conn.close()


# --- measurements ---------------------------------------------------------------------------


def run_compress_bench(
    dsn: str,
    *,
    now: datetime | None = None,
    batch_rides: int = 1_000,
    on_batch: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Run compress once over the database and return its result, timings and this process's RSS."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=SecretStr(dsn),
        retention_hours=RETENTION_HOURS,
        compress_batch_rides=batch_rides,
    )
    rss_before = current_rss_mb()
    t0 = time.perf_counter()
    result = run(settings, now=now, on_batch=on_batch).as_dict()
    wall = time.perf_counter() - t0
    return {
        "wall_s": round(wall, 2),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(current_rss_mb(), 1),
        "peak_rss_mb": round(max(rss_mb(), current_rss_mb()), 1),
        "result": result,
    }


def measure_drop_vs_delete(dsn: str, *, now: datetime) -> dict[str, Any]:
    """Retention of equal halves of the expired partitions: plain DELETE (+ VACUUM) vs DROP.

    The older half goes by one `DELETE ... WHERE recorded_at < ...` and the VACUUM it makes
    necessary; the newer half by `DROP TABLE`, one partition a transaction. Only those
    statements are timed (compress's own drop step also checks, detaches and re-checks each
    partition).
    """
    cutoff = now - timedelta(hours=RETENTION_HOURS)
    conn = db.connect(dsn, application_name="bench-compress-retention")
    try:
        with db.transaction(conn) as cur:
            parts = repo.partitions_older_than(cur, cutoff=cutoff)
        full = parts[1:-1]  # the first and last hours are only partly filled
        half = len(full) // 2
        by_delete, by_drop = full[:half], full[half : 2 * half]
        with db.transaction(conn) as cur:
            drop_rows = sum(repo.count_partition_rows(cur, partition=p) for p in by_drop)
        t0 = time.perf_counter()
        with db.transaction(conn) as cur:
            cur.execute(
                "DELETE FROM daily.readings WHERE recorded_at >= %s AND recorded_at < %s",
                (by_delete[0].start, by_delete[-1].end),
            )
            delete_rows = cur.rowcount
        delete_s = time.perf_counter() - t0
        conn.autocommit = True  # VACUUM cannot run in a transaction
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("VACUUM {}").format(
                    sql.SQL(", ").join(sql.Identifier("daily", p.name) for p in by_delete)
                )
            )
        vacuum_s = time.perf_counter() - t0
        conn.autocommit = False
        t0 = time.perf_counter()
        for part in by_drop:
            with db.transaction(conn) as cur:
                repo.drop_partition(cur, partition=part)
        drop_s = time.perf_counter() - t0
    finally:
        conn.close()
    return {
        "partitions_each": half,
        "delete_rows": delete_rows,
        "delete_s": round(delete_s, 3),
        "vacuum_s": round(vacuum_s, 3),
        "drop_rows": drop_rows,
        "drop_s": round(drop_s, 3),
    }


def reset_daily(dsn: str) -> None:
    """Empty the daily tables compress works on, keeping historical (so rides count as settled)."""
    conn = db.connect(dsn)
    try:
        with db.transaction(conn) as cur:
            cur.execute("TRUNCATE daily.readings, daily.alerts, daily.rides")
    finally:
        conn.close()


# --- servers and scratch databases ----------------------------------------------------------


# --- main -----------------------------------------------------------------------------------


def bench(server: str, workload: Workload, *, batch_rides: int = 1_000) -> dict[str, Any]:
    """Generate, compress (timed), regenerate, plain DELETE (timed); return every figure."""
    now = datetime.now(UTC).replace(microsecond=0)
    with harness.scratch_database(server) as dsn:
        gen_s = generate(dsn, workload, now=now)
        compress = run_compress_bench(dsn, now=now, batch_rides=batch_rides)
        left = count(dsn, "SELECT count(*) FROM daily.readings")
        summaries = count(dsn, "SELECT count(*) FROM historical.rides")
        # The same data again, its rides already summarised: retention alone, by DELETE.
        reset_daily(dsn)
        regen_s = generate(dsn, workload, now=now)
        retention = measure_drop_vs_delete(dsn, now=now)
    return {
        "workload": asdict(workload) | {"readings": workload.readings},
        "generate_s": round(gen_s, 1),
        "regenerate_s": round(regen_s, 1),
        "compress": compress,
        "check": {"historical_rides": summaries, "daily_readings_left": left},
        "retention_drop_vs_delete": retention,
    }


STEPS = ("repair", "summarise", "refresh", "drop_partitions", "delete_rows", "riders", "rejects")


def step_split(result: dict[str, Any]) -> str:
    """Each step's time as work + pause (compress pauses only while ingest is active)."""
    s, paused = result["seconds"], result.get("paused", {})
    parts = []
    for step in STEPS:
        if step not in s:
            continue
        pause = paused.get(step, 0.0)
        parts.append(f"{step} {s[step] - pause:.2f}" + (f"+{pause:.2f}" if pause else ""))
    return ", ".join(parts)


def report(figures: dict[str, Any]) -> str:
    """A few readable lines from the figures."""
    w, c, d = figures["workload"], figures["compress"], figures["retention_drop_vs_delete"]
    r = c["result"]
    s = r["seconds"]
    paused = s.get("paused", 0.0)
    return "\n".join(
        [
            f"workload: {w['readings']:,} readings in {w['rides']:,} rides over {w['hours']} "
            f"hourly partitions (+{w['in_progress']} rides in progress); "
            f"generated in {figures['generate_s']} s",
            f"compress: {c['wall_s']} s total = work {s['total'] - paused:.2f} s + pauses "
            f"{paused:.2f} s ({r['pauses']} pauses; {r['pauses_skipped']} not taken, ingest "
            f"idle)",
            f"  by step, work+pause s: {step_split(r)}",
            f"  summarise: {r['rides_summarised']:,} rides, {r['summary_batches']} batches; "
            f"drop: {r['partitions_dropped']} partitions (~{r['readings_dropped_estimate']:,} "
            f"readings, {r['bytes_dropped'] / 2**20:.0f} MiB; {r['partitions_retried']} "
            f"dropped on a second try, {r['partitions_busy']} left busy, "
            f"{r['partitions_kept_unsettled']} kept unsettled); delete: "
            f"{r['readings_deleted']:,} readings row by row, {r['rides_removed']:,} rides, "
            f"{r['alerts_removed']:,} alerts",
            f"python RSS: {c['rss_before_mb']} MiB before, {c['rss_after_mb']} MiB after, "
            f"peak {c['peak_rss_mb']} MiB",
            f"retention, {d['partitions_each']} partitions each way: plain DELETE of "
            f"{d['delete_rows']:,} readings {d['delete_s']} s + VACUUM {d['vacuum_s']} s; "
            f"DROP of {d['drop_rows']:,} readings {d['drop_s']} s "
            f"({_per_m(d['delete_s'] + d['vacuum_s'], d['delete_rows']):.3f} vs "
            f"{_per_m(d['drop_s'], d['drop_rows']):.4f} s per million readings)",
        ]
    )


def _per_m(seconds: float, rows: int) -> float:
    return seconds / max(rows, 1) * 1e6


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures (JSON with --json)."""
    p = argparse.ArgumentParser(prog="python -m bench.compress", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 rides x 100 readings (a smoke run)")
    p.add_argument("--rides", type=int, help=f"rides ({Workload.rides:,}; 1,000 with --quick)")
    p.add_argument(
        "--readings-per-ride",
        type=int,
        help=f"readings per ride ({Workload.readings_per_ride}; 100 with --quick)",
    )
    p.add_argument("--hours", type=int, default=Workload.hours)
    p.add_argument("--batch-rides", type=int, default=1_000)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    workload = Workload(
        rides=args.rides or (1_000 if args.quick else Workload.rides),
        readings_per_ride=args.readings_per_ride
        or (100 if args.quick else Workload.readings_per_ride),
        hours=args.hours,
    )
    with harness.running_postgres() as server:
        figures = bench(server, workload, batch_rides=args.batch_rides)
    print(json.dumps(figures, indent=2) if args.json else report(figures))
    results.write(
        "compress",
        result_figures(figures),
        quick=args.quick,
        params=figures["workload"] | {"batch_rides": args.batch_rides},
        raw=figures,
    )
    return 0


def result_figures(figures: dict[str, Any]) -> list[results.Figure]:
    """Compress's wall time and memory; retention by DROP against DELETE + VACUUM."""
    c, d = figures["compress"], figures["retention_drop_vs_delete"]
    readings = figures["workload"]["readings"]
    return [
        results.Figure(
            "summarise + retention", c["wall_s"], "s", target=TARGET_S, higher_is_better=False,
            note=f"{readings:,} readings in {figures['workload']['rides']:,} rides",
        ),
        results.Figure(
            "of which pausing for ingest", c["result"]["seconds"].get("paused", 0.0), "s",
            higher_is_better=False,
            note=f"{c['result']['pauses']} pauses, {c['result']['pauses_skipped']} not taken "
            "(ingest idle)",
        ),
        results.Figure("python peak RSS", c["peak_rss_mb"], "MiB", higher_is_better=False),
        results.Figure(
            "retention by DROP, per million readings",
            round(_per_m(d["drop_s"], d["drop_rows"]), 4),
            "s",
            baseline=round(_per_m(d["delete_s"] + d["vacuum_s"], d["delete_rows"]), 4),
            baseline_name="DELETE + VACUUM",
            higher_is_better=False,
        ),
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
