"""Benchmark `deloton alerts`: reading -> email latency with 1,000 live bikes.

    python -m bench.alerts                       # 1,000 bikes, 60 s, onsets spread over the run
    python -m bench.alerts --bikes 200 --duration 30
    python -m bench.alerts --burst               # every rider in danger in the same second
    KAFKA_BOOTSTRAP_SERVERS=... DATABASE_URL=... python -m bench.alerts   # else embedded ones

Every bike streams one reading a second in real time (ride_started, then readings with a
normal heart rate, each bike at its own phase within the second). Once during the run each
rider's heart rate goes above their maximum for three readings. The latency of an alert is
from the moment the bench hands the third abnormal reading to the producer to the moment
SES (a moto server) accepted the email, which the service records as daily.alerts.sent_at
on the same clock. The service runs as the real `deloton alerts` process.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg2

from bench import results
from services.common.kafka import ensure_topics, make_producer
from tests import harness
from tests.alerts import synthetic
from tests.alerts.support import SENDER, Ses, Worker, running_moto

GOAL_P99_S = 1.0
HIGH = 200  # above every adult's maximum
WARMUP_RIDE = 9_000_000


@dataclass
class Bike:
    """One live bike: its ride, rider and when its rider's heart rate goes out of range."""

    serial: str
    ride_id: int
    rider: dict[str, Any]
    phase: float  # offset of its readings within each second
    onset_s: int  # elapsed second of the first of three abnormal readings
    third_produced_at: float | None = None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def make_fleet(n: int, duration: int, burst: bool, rng: random.Random) -> list[Bike]:
    """n bikes; onsets uniform over the run (after a few seconds), or all at once."""
    fleet = []
    for i in range(n):
        onset = duration // 3 if burst else rng.randint(5, max(6, duration - 8))
        who = synthetic.rider(100_000 + i, email=f"rider{100_000 + i}@example.com")
        fleet.append(Bike(f"SN{i:05d}", 1_000_000 + i, who, rng.random(), onset))
    return fleet


def stream(producer: Any, topic: str, fleet: list[Bike], duration: int, rng: random.Random) -> int:
    """Produce the fleet's events in real time for `duration` seconds; return how many."""
    t0 = time.time()
    schedule: list[tuple[float, Bike, int]] = []
    for bike in fleet:
        schedule += [(t0 + bike.phase + s, bike, s) for s in range(duration + 1)]
    schedule.sort(key=lambda item: item[0])
    sent = 0
    for due, bike, s in schedule:
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        if s == 0:
            event = synthetic.ride_started(bike.ride_id, bike.serial, bike.rider)
        else:
            abnormal = bike.onset_s <= s < bike.onset_s + 3
            hr = HIGH if abnormal else rng.randint(110, 150)
            event = synthetic.reading(bike.ride_id, bike.serial, bike.rider["user_id"], s, hr)
        value = orjson.dumps(event)
        if s == bike.onset_s + 2:
            bike.third_produced_at = time.time()
        producer.produce(topic, key=bike.serial.encode(), value=value)
        producer.poll(0)
        sent += 1
    producer.flush(30)
    return sent


def alert_times(dsn: str) -> dict[int, tuple[datetime, datetime | None]]:
    """ride_id -> (created_at, sent_at) of every alert (created_at: when the insert ran)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ride_id, created_at, sent_at FROM daily.alerts")
            return {r[0]: (r[1], r[2]) for r in cur.fetchall()}
    finally:
        conn.close()


def run(bikes: int, duration: int, burst: bool, senders: int, seed: int) -> dict[str, Any]:
    """Start the infrastructure and the service, stream the fleet, return the figures."""
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="deloton-bench-alerts-"))
    with (
        harness.running_broker() as bootstrap,
        harness.running_postgres() as server,
        running_moto(work / "moto.log") as moto,
        harness.scratch_database(server) as dsn,
    ):
        settings = harness.test_settings(
            bootstrap, dsn, work, ses_endpoint_url=moto, email_sender=SENDER
        )
        ensure_topics(settings, [settings.topic_events, settings.topic_alerts])
        ses = Ses(moto)
        ses.verify(SENDER)
        worker = Worker(settings, work / "worker", ("--senders", str(senders)))
        producer = make_producer(settings)
        try:
            fleet = make_fleet(bikes, duration, burst, rng)
            # The notifier reads addresses from daily.riders, which ingest fills in production.
            conn = psycopg2.connect(dsn)
            try:
                synthetic.register_riders(conn, synthetic.rider(1), *(b.rider for b in fleet))
            finally:
                conn.close()
            worker.start()
            # Warm-up: one alert end to end, so group join and first connections are not timed.
            warm = synthetic.ride(WARMUP_RIDE, "WARMUP", synthetic.rider(1), [HIGH] * 3)
            synthetic.produce(producer, settings.topic_events, warm)
            if len(ses.wait_for(1, timeout=120)) < 1:
                raise SystemExit(f"the service sent no warm-up email:\n{worker.tail()}")
            started = time.time()
            events = stream(producer, settings.topic_events, fleet, duration, rng)
            streamed_s = time.time() - started
            emails = ses.wait_for(bikes + 1, timeout=120)
            rows = alert_times(dsn)
            metrics = worker.metrics()
        finally:
            worker.stop()

    latencies, to_row, to_send = [], [], []
    for bike in fleet:
        created_at, sent_at = rows.get(bike.ride_id, (None, None))
        if created_at is None or sent_at is None or bike.third_produced_at is None:
            continue
        latencies.append(sent_at.timestamp() - bike.third_produced_at)
        to_row.append(created_at.timestamp() - bike.third_produced_at)
        to_send.append((sent_at - created_at).total_seconds())
    per_ride = [m.message["X-Deloton-Alert"] for m in emails]

    def pct(values: list[float], q: float) -> float | None:
        return round(percentile(values, q), 3) if values else None

    return {
        "bikes": bikes,
        "duration_s": duration,
        "onsets": "burst" if burst else "spread",
        "events_produced": events,
        "events_per_s": round(events / streamed_s, 1),
        "alerts_expected": bikes,
        "emails_sent": len(emails) - 1,
        "duplicate_emails": len(per_ride) - len(set(per_ride)),
        "latency_n": len(latencies),
        "latency_p50_s": pct(latencies, 50),
        "latency_p90_s": pct(latencies, 90),
        "latency_p99_s": pct(latencies, 99),
        "latency_max_s": pct(latencies, 100),
        "to_recorded_p50_s": pct(to_row, 50),
        "to_recorded_p99_s": pct(to_row, 99),
        "recorded_to_sent_p50_s": pct(to_send, 50),
        "recorded_to_sent_p99_s": pct(to_send, 99),
        "goal_p99_s": GOAL_P99_S,
        "service_latency_count": metrics.get("deloton_alert_latency_seconds_count"),
        "service_latency_sum_s": metrics.get("deloton_alert_latency_seconds_sum"),
    }


def report(f: dict[str, Any]) -> str:
    """Human-readable figures."""
    ok = f["latency_p99_s"] is not None and f["latency_p99_s"] <= f["goal_p99_s"]
    ok = ok and f["emails_sent"] == f["alerts_expected"] and f["duplicate_emails"] == 0
    return "\n".join(
        [
            f"alerts bench: {f['bikes']} live bikes, 1 reading/s each, {f['duration_s']} s, "
            f"onsets {f['onsets']} ({f['events_per_s']} events/s produced)",
            f"  emails: {f['emails_sent']} of {f['alerts_expected']} expected, "
            f"{f['duplicate_emails']} duplicates",
            f"  third abnormal reading produced -> SES accepted: p50 {f['latency_p50_s']} s, "
            f"p90 {f['latency_p90_s']} s, p99 {f['latency_p99_s']} s, "
            f"max {f['latency_max_s']} s (n={f['latency_n']})",
            f"    of which produced -> row in daily.alerts: p50 {f['to_recorded_p50_s']} s, "
            f"p99 {f['to_recorded_p99_s']} s; row -> SES accepted: "
            f"p50 {f['recorded_to_sent_p50_s']} s, p99 {f['recorded_to_sent_p99_s']} s",
            f"  goal: p99 <= {f['goal_p99_s']} s: {'met' if ok else 'NOT met'}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures (JSON with --json)."""
    p = argparse.ArgumentParser(prog="python -m bench.alerts", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="100 bikes for 20 s (a smoke run)")
    p.add_argument("--bikes", type=int, help="live bikes (1,000; 100 with --quick)")
    p.add_argument("--duration", type=int, help="seconds of live streaming (60; 20 with --quick)")
    p.add_argument("--burst", action="store_true", help="every rider in danger at once")
    p.add_argument("--senders", type=int, default=4, help="email sender threads")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    bikes = args.bikes or (100 if args.quick else 1000)
    duration = args.duration or (20 if args.quick else 60)
    figures = run(bikes, duration, args.burst, args.senders, args.seed)
    print(json.dumps(figures, indent=2, default=str) if args.json else report(figures))
    results.write(
        "alerts_burst" if args.burst else "alerts",
        result_figures(figures),
        quick=args.quick,
        params={"bikes": bikes, "duration_s": duration, "burst": args.burst},
        raw=figures,
    )
    return 0


def result_figures(f: dict[str, Any]) -> list[results.Figure]:
    """The figures of the report table (no baseline: the latency's split stands beside it)."""
    lat = [
        results.Figure(
            f"third abnormal reading -> SES accepted, p{q}",
            f[f"latency_p{q}_s"] or 0.0,
            "s",
            target=GOAL_P99_S if q == 99 else None,
            higher_is_better=False,
            note=f"{f['bikes']} bikes, {f['onsets']} onsets"
            + (
                f"; split p99: to row {f['to_recorded_p99_s']} s, row -> SES"
                f" {f['recorded_to_sent_p99_s']} s"
                if q == 99
                else ""
            ),
        )
        for q in (50, 99)
    ]
    return [
        *lat,
        results.Figure("emails sent, one per rider in danger", f["emails_sent"], "emails",
                       target=f["alerts_expected"]),
        results.Figure("duplicate emails", f["duplicate_emails"], "emails", target=0,
                       higher_is_better=False),
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
