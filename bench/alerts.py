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

The latency is split per stage from each alert row (produced -> read by the agent -> row in
daily.alerts -> claimed by a sender -> SES accepted). After the run, with the service stopped,
moto alone is sent the same message as fast as it takes it: its rate is the baseline, the
floor under a burst's last email however cheap sending is on the service's side.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg2

from bench import results
from bench.procs import cpu_seconds
from services.alerts.message import build_message
from services.alerts.repository import PendingAlert
from services.common.kafka import ensure_topics, make_producer
from tests import harness
from tests.alerts import synthetic
from tests.alerts.support import SENDER, Ses, Worker, running_moto

GOAL_P99_S = 1.0
GOAL_BURST_P99_S = 2.0  # every rider out of range in the same second
HIGH = 200  # above every adult's maximum
WARMUP_RIDE = 9_000_000
MOTO_CONNECTIONS = 4  # requests in flight at once when measuring moto alone


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


def moto_pid(url: str) -> int | None:
    """The pid of the moto server listening on the URL's port (found by its command line)."""
    port = url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"moto_server" in a for a in argv) and port.encode() in argv:
            return int(proc.name)
    return None


def alert_times(dsn: str) -> dict[int, dict[str, datetime | None]]:
    """ride_id -> the alert's timestamps: received_at (the service read the confirming event;
    absent before migration 0012), created_at (the insert ran), claimed_at (a sender claimed
    it; absent before 0016), sent_at (SES accepted)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                """SELECT column_name FROM information_schema.columns
                    WHERE table_schema = 'daily' AND table_name = 'alerts'"""
            )
            have = {r[0] for r in cur.fetchall()}
            cols = [c if c in have else "NULL::timestamptz" for c in ("received_at", "claimed_at")]
            cur.execute(f"SELECT ride_id, {', '.join(cols)}, created_at, sent_at FROM daily.alerts")
            return {
                r[0]: {"received_at": r[1], "claimed_at": r[2], "created_at": r[3], "sent_at": r[4]}
                for r in cur.fetchall()
            }
    finally:
        conn.close()


def wait_until_handled(dsn: str, count: int, timeout: float) -> None:
    """Wait until `count` alerts are no longer pending, asking PostgreSQL. Polling moto's
    /moto-api/data.json instead, as the tests do, made moto serialise and this process parse
    every email accepted so far four times a second: during a burst that took CPU from the
    service and moto it was measuring."""
    deadline = time.monotonic() + timeout
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("SELECT count(*) FROM daily.alerts WHERE status <> 'pending'")
                if (cur.fetchone() or (0,))[0] >= count:
                    return
                time.sleep(0.1)
    finally:
        conn.close()


def sample_email(bike: Bike) -> bytes:
    """The email the service sends for this bike's alert, as SES receives it."""
    now = datetime.now(UTC)
    readings = [
        {"elapsed_s": bike.onset_s + i, "recorded_at": now.isoformat(), "heart_rate": HIGH}
        for i in range(3)
    ]
    alert = PendingAlert(
        0, bike.ride_id, 1, bike.rider["user_id"], bike.serial, "high", now, [HIGH] * 3, 40,
        184, bike.rider["email_address"], bike.rider["first_name"], readings, now, 0, True,
        None, None,
    )  # fmt: skip
    return build_message(alert, sender=SENDER, recipient=alert.recipient or "").as_bytes()


def moto_alone(url: str, raw: bytes, n: int) -> dict[str, float | None]:
    """Moto's own rate for SendRawEmail with this message, nothing else running: the floor
    under any sender. The request is signed once by botocore and posted n times, from
    MOTO_CONNECTIONS threads, so the client's own cost stays out of the figure."""
    from botocore.awsrequest import AWSResponse

    captured: dict[str, Any] = {}

    class Body:
        def stream(self, **_: Any) -> Any:
            yield b"<SendRawEmailResponse><SendRawEmailResult><MessageId>x</MessageId>" \
                  b"</SendRawEmailResult></SendRawEmailResponse>"  # fmt: skip

    def capture(request: Any, **_: Any) -> AWSResponse:
        captured.update(headers=dict(request.headers), body=request.body)
        return AWSResponse(request.url, 200, {}, Body())

    ses = Ses(url)
    ses.client.meta.events.register("before-send.ses.SendRawEmail", capture)
    ses.client.send_raw_email(Source=SENDER, RawMessage={"Data": raw})
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in captured["headers"].items()}
    body = captured["body"]
    host, port = url.removeprefix("http://").split(":")
    failures: list[int] = []

    def post(count: int) -> None:
        for _ in range(count):
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            conn.request("POST", "/", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            conn.close()  # moto's server closes every connection after one response anyway
            if response.status != 200:
                failures.append(response.status)

    pid = moto_pid(url)
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    threads = [
        threading.Thread(target=post, args=(n // MOTO_CONNECTIONS,))
        for _ in range(MOTO_CONNECTIONS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(pid)
    done = n // MOTO_CONNECTIONS * MOTO_CONNECTIONS
    if failures:
        raise SystemExit(f"moto refused {len(failures)} of {done} emails: {failures[:3]}")
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return {
        "moto_alone_emails": done,
        "moto_alone_emails_per_s": round(done / elapsed, 1),
        "moto_alone_cpu_ms_per_email": None if cpu is None else round(cpu / done * 1000, 2),
    }


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
            pids = {"service": worker.proc.pid if worker.proc else None, "moto": moto_pid(moto)}
            cpu_before = {k: cpu_seconds(pid) for k, pid in pids.items()}
            started = time.time()
            events = stream(producer, settings.topic_events, fleet, duration, rng)
            streamed_s = time.time() - started
            wait_until_handled(dsn, bikes + 1, timeout=120)
            cpu = {
                k: None if before is None or (after := cpu_seconds(pids[k])) is None
                else round(after - before, 2)
                for k, before in cpu_before.items()
            }  # fmt: skip
            rows = alert_times(dsn)
            metrics = worker.metrics()
            emails = ses.sent()  # once, at the end: see wait_until_handled
            worker.stop()
            # Moto alone, with the same message, once the service has stopped: its rate is the
            # floor under the burst however cheap sending becomes on our side.
            floor = moto_alone(moto, sample_email(fleet[0]), max(bikes, 200))
        finally:
            worker.stop()

    latencies, to_row, to_send, to_agent, agent_to_row = [], [], [], [], []
    to_claim, claim_to_send = [], []
    for bike in fleet:
        times = rows.get(bike.ride_id, {})
        created_at, sent_at = times.get("created_at"), times.get("sent_at")
        if created_at is None or sent_at is None or bike.third_produced_at is None:
            continue
        latencies.append(sent_at.timestamp() - bike.third_produced_at)
        to_row.append(created_at.timestamp() - bike.third_produced_at)
        to_send.append((sent_at - created_at).total_seconds())
        if (claimed_at := times.get("claimed_at")) is not None:
            to_claim.append((claimed_at - created_at).total_seconds())
            claim_to_send.append((sent_at - claimed_at).total_seconds())
        if (received_at := times.get("received_at")) is not None:
            to_agent.append(received_at.timestamp() - bike.third_produced_at)
            agent_to_row.append((created_at - received_at).total_seconds())
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
        "to_agent_p50_s": pct(to_agent, 50),
        "to_agent_p99_s": pct(to_agent, 99),
        "agent_to_recorded_p50_s": pct(agent_to_row, 50),
        "agent_to_recorded_p99_s": pct(agent_to_row, 99),
        "to_recorded_p50_s": pct(to_row, 50),
        "to_recorded_p99_s": pct(to_row, 99),
        "recorded_to_sent_p50_s": pct(to_send, 50),
        "recorded_to_sent_p99_s": pct(to_send, 99),
        "recorded_to_claimed_p50_s": pct(to_claim, 50),
        "recorded_to_claimed_p99_s": pct(to_claim, 99),
        "claimed_to_sent_p50_s": pct(claim_to_send, 50),
        "claimed_to_sent_p99_s": pct(claim_to_send, 99),
        **floor,
        # Moto's own time for every email of the run, on its one core (its CPU per email, which
        # other load on the machine barely changes), and at the rate it kept here: no latency
        # can beat it once the emails arrive faster than moto takes them.
        "moto_floor_s": round(floor["moto_alone_cpu_ms_per_email"] * bikes / 1000, 2)
        if floor["moto_alone_cpu_ms_per_email"]
        else None,
        "moto_floor_wall_s": round(bikes / floor["moto_alone_emails_per_s"], 2)
        if floor["moto_alone_emails_per_s"]
        else None,
        "goal_p99_s": GOAL_BURST_P99_S if burst else GOAL_P99_S,
        "service_cpu_s": cpu["service"],
        "moto_cpu_s": cpu["moto"],
        "service_latency_count": metrics.get("deloton_alert_latency_seconds_count"),
        "service_latency_sum_s": metrics.get("deloton_alert_latency_seconds_sum"),
    }


def report(f: dict[str, Any]) -> str:
    """Human-readable figures."""
    ok = f["latency_p99_s"] is not None and f["latency_p99_s"] <= f["goal_p99_s"]
    ok = ok and f["emails_sent"] == f["alerts_expected"] and f["duplicate_emails"] == 0
    goal = f["goal_p99_s"]

    def stage(name: str, key: str) -> str:
        return f"      {name:<44} {f[f'{key}_p50_s']} / {f[f'{key}_p99_s']} s"

    return "\n".join(
        [
            f"alerts bench: {f['bikes']} live bikes, 1 reading/s each, {f['duration_s']} s, "
            f"onsets {f['onsets']} ({f['events_per_s']} events/s produced)",
            f"  emails: {f['emails_sent']} of {f['alerts_expected']} expected, "
            f"{f['duplicate_emails']} duplicates",
            f"  third abnormal reading produced -> SES accepted: p50 {f['latency_p50_s']} s, "
            f"p90 {f['latency_p90_s']} s, p99 {f['latency_p99_s']} s, "
            f"max {f['latency_max_s']} s (n={f['latency_n']}); goal p99 <= {goal} s",
            "    per stage (p50 / p99):",
            stage("produced -> read by the alerts agent:", "to_agent"),
            stage("read by the agent -> row in daily.alerts:", "agent_to_recorded"),
            stage("produced -> row in daily.alerts:", "to_recorded"),
            stage("row -> claimed by a sender:", "recorded_to_claimed"),
            stage("claimed -> SES accepted:", "claimed_to_sent"),
            stage("(row -> SES accepted:", "recorded_to_sent") + ")",
            f"  baseline, moto alone with the same message ({MOTO_CONNECTIONS} at a time, "
            f"{f['moto_alone_emails']} emails): {f['moto_alone_emails_per_s']} emails/s, "
            f"{f['moto_alone_cpu_ms_per_email']} ms of its CPU each: {f['bikes']} emails need "
            f"{f['moto_floor_s']} s of moto's one core ({f['moto_floor_wall_s']} s at the rate "
            "here): "
            + (
                "the floor under the last alert's latency"
                if f["onsets"] == "burst"
                else "the floor under a burst (onsets here are spread)"
            ),
            f"  CPU used from the first event to the last email: deloton alerts "
            f"{f['service_cpu_s']} s, moto (SES) {f['moto_cpu_s']} s",
            f"  goal: p99 <= {goal} s: {'met' if ok else 'NOT met'}",
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
    """The figures of the report table: a burst's p99 beside moto's floor, the latency's split
    in the note."""
    burst = f["onsets"] == "burst"
    lat = [
        results.Figure(
            f"third abnormal reading -> SES accepted, p{q}",
            f[f"latency_p{q}_s"] or 0.0,
            "s",
            target=f["goal_p99_s"] if q == 99 else None,
            higher_is_better=False,
            baseline=f["moto_floor_s"] if q == 99 and burst else None,
            baseline_name="moto alone: its CPU for every email, back to back"
            if q == 99 and burst
            else "",
            note=f"{f['bikes']} bikes, {f['onsets']} onsets"
            + (
                f"; split p99: produced -> row {f['to_recorded_p99_s']} s, row -> claimed"
                f" {f['recorded_to_claimed_p99_s']} s, claimed -> SES"
                f" {f['claimed_to_sent_p99_s']} s"
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
