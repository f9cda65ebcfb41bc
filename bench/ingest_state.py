"""Ingest's memory and saved state over many bikes that come and go.

    python -m bench.ingest_state            # 100,000 distinct keys, the hour in 120 s
    python -m bench.ingest_state --quick    # 10,000 keys, the hour in 30 s (smoke run)

Every key is a bike that rides once, for a few seconds, then falls silent; their starts are
spread evenly over one hour of event time, on 4 partitions keyed by bike serial. The hour is
produced at a steady pace (compressed to --wall-seconds) while a real `deloton ingest`
process consumes it into a fresh database, twice: without eviction (INGEST_EVICT_IDLE_S=0,
the baseline: every bike is kept) and with eviction. For each run: RSS sampled through the
run, and the stored size of the session state rows each batch rewrote, both by quarter of
the run. The first quarter holds the warm-up (bikes are kept INGEST_EVICT_IDLE_S plus
RIDE_SILENCE_S of event time); flat after eviction means the last quarter is no larger than
the second. Uses KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL when set, otherwise starts the
embedded broker and PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
from confluent_kafka import Producer

from bench import results
from bench.ingest import finish, ingest_env, settings_for, start_ingest
from services.common.kafka import ensure_topics, producer_config
from services.ingest import repository
from tests import harness

MODEL = "mendoza v9"
HOUR_S = 3600
TARGET_FLAT = 1.10  # last quarter / second quarter, with eviction


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def _value(line: str) -> bytes:
    return json.dumps({"log": line}).encode()


def bike_feed(n: int, start: datetime, seconds: int) -> Iterator[tuple[bytes, bytes]]:
    """One short ride of bike number `n`, in the exact raw format of the feed."""
    serial = f"SN{n:06d}"
    key = serial.encode()
    rider = json.dumps(
        {
            "user_id": n + 1, "name": "Ms Jane Doe", "gender": "female",
            "address": "1 High St,Leeds,LS1 1AA", "date_of_birth": 315532800000,
            "email_address": f"rider{n}@example.com", "height_cm": 170, "weight_kg": 60,
            "account_create_date": 1647993600000, "bike_serial": serial,
            "original_source": "offline",
        },
        separators=(",", ":"),
    )  # fmt: skip
    half = timedelta(seconds=0.5)
    yield key, _value("--------- beginning of a new ride\n")
    yield key, _value(f"{_stamp(start - half)} {MODEL}: Getting user data from server..\n")
    yield key, _value(f"{_stamp(start)} {MODEL}: [SYSTEM] data = {rider}\n")
    for s in range(1, seconds + 1):
        at = start + timedelta(seconds=s)
        yield (
            key,
            _value(
                f"{_stamp(at - half)} {MODEL}: [INFO]: Ride - duration = {s}.0; resistance = 30\n"
            ),
        )
        yield (
            key,
            _value(
                f"{_stamp(at)} {MODEL}: [INFO]: Telemetry - hrt = 120; rpm = 60; power = 80.5\n"
            ),
        )


def paced_produce(
    bootstrap: str, topic: str, bikes: int, ride_s: int, start: datetime, wall_s: float
) -> int:
    """Every bike's ride in the order of their starts, the hour spread over `wall_s` seconds."""
    producer = Producer(producer_config(settings_for(bootstrap)))
    n = 0
    step = HOUR_S / bikes
    began = time.monotonic()
    for b in range(bikes):
        due = began + wall_s * b / bikes
        if due > time.monotonic():
            producer.poll(0)
            time.sleep(max(0.0, due - time.monotonic()))
        for key, value in bike_feed(b, start + timedelta(seconds=b * step), ride_s):
            while True:
                try:
                    producer.produce(topic, value, key)
                    break
                except BufferError:
                    producer.poll(0.1)
            n += 1
    assert producer.flush(120) == 0
    return n


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _quarters(values: list[float]) -> list[float]:
    n = len(values)
    if n == 0:
        return [0.0] * 4
    parts = [values[n * q // 4 : max(n * (q + 1) // 4, n * q // 4 + 1)] for q in range(4)]
    return [round(sum(p) / len(p), 1) for p in parts]


def run(
    server: str, template: str, bootstrap: str, evict_idle_s: float, feed: dict[str, Any]
) -> dict[str, Any]:
    """One ingest process over a freshly produced hour: its report, RSS and state kept."""
    topic = f"state-{uuid.uuid4().hex[:6]}"
    ensure_topics(
        settings_for(bootstrap), [topic, f"{topic}.events", f"{topic}.rejects"], partitions=4
    )
    with harness.cloned_database(server, template) as dsn:
        env = ingest_env(bootstrap, dsn, topic, f"state-{uuid.uuid4().hex[:8]}")
        env["INGEST_EVICT_IDLE_S"] = str(evict_idle_s)
        # Rides close after RIDE_SILENCE_S of *read* time: the hour is compressed into
        # wall_s seconds, so the 60 s of a real-time feed become 60 * wall_s / 3600 here.
        env["RIDE_SILENCE_S"] = str(max(1, round(60 * feed["args"]["wall_s"] / 3600)))
        proc = start_ingest(env, 3.0, "--track-state")
        samples: list[float] = []

        def sample() -> None:
            while proc.poll() is None:
                rss = _rss_mb(proc.pid)
                if rss is not None:
                    samples.append(rss)
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # Produce from now on: the group join (a few seconds) only delays the first batches,
        # and ingest, which stops once idle, never sees an empty topic.
        try:
            feed["messages"] = paced_produce(bootstrap, topic, **feed["args"])
            report = finish(proc)
        finally:
            if proc.poll() is None:  # the benchmark failed: leave nothing running
                proc.kill()
                proc.wait()
        sampler.join(5)
        conn = psycopg2.connect(dsn)
        try:
            with conn.cursor() as cur:
                kept, stored = repository.state_size(cur, group=env["INGEST_GROUP"])
                cur.execute("SELECT count(*) FROM daily.readings")
                (readings,) = cur.fetchone()  # type: ignore[misc]
        finally:
            conn.close()
    return {
        "evict_idle_s": evict_idle_s,
        "consumed": report["consumed"],
        "readings": readings,
        "rejects": report["rejects"],
        "messages_per_s": report.get("messages_per_s"),
        "max_rss_mb": report["max_rss_mb"],
        "rss_mb_by_quarter": _quarters(samples),
        "state_bytes_by_quarter": report.get("state_bytes_by_quarter", [0, 0, 0, 0]),
        "state_bytes_max": report.get("state_bytes_max", 0),
        "bikes_kept": int(kept),
        "state_bytes_stored": int(stored),
    }


def line(label: str, value: str, target: str = "") -> None:
    print(f"  {label:<46} {value:>30}   {target}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="10,000 keys, the hour in 30 s")
    ap.add_argument("--bikes", type=int, help="distinct keys (default 100,000; 10,000 quick)")
    ap.add_argument("--wall-seconds", type=float, help="the hour in (default 120; 30 quick)")
    ap.add_argument("--ride-seconds", type=int, default=5, help="readings per bike")
    ap.add_argument("--evict-idle-s", type=float, default=600.0, help="INGEST_EVICT_IDLE_S")
    args = ap.parse_args()
    bikes = args.bikes or (10_000 if args.quick else 100_000)
    wall_s = args.wall_seconds or (30.0 if args.quick else 120.0)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    feed: dict[str, Any] = {
        "args": {"bikes": bikes, "ride_s": args.ride_seconds, "start": start, "wall_s": wall_s}
    }
    with (
        harness.running_broker() as bootstrap,
        harness.running_postgres() as server,
        harness.template_database(server) as template,
    ):
        print(
            f"Ingest state ({os.cpu_count()} CPUs): {bikes:,} keys over one hour of feed "
            f"produced in {wall_s:.0f} s, 4 partitions",
            flush=True,
        )
        base = run(server, template, bootstrap, 0, feed)
        evicting = run(server, template, bootstrap, args.evict_idle_s, feed)
        n = feed["messages"]
    expected = bikes * args.ride_seconds
    for r in (base, evicting):
        assert r["readings"] == expected and r["rejects"] == 0, r
    flat_state = evicting["state_bytes_by_quarter"][3] / max(
        1, evicting["state_bytes_by_quarter"][1]
    )
    flat_rss = evicting["rss_mb_by_quarter"][3] / max(1, evicting["rss_mb_by_quarter"][1])
    for label, r in (("no eviction (baseline)", base), (f"evict after {args.evict_idle_s:.0f} s", evicting)):  # fmt: skip
        print(f"{label}: {r['consumed']:,} messages, {r['readings']:,} readings", flush=True)
        line("bikes kept in the saved state at the end", f"{r['bikes_kept']:,}")
        line("stored state at the end", f"{r['state_bytes_stored']:,} B")
        line("state rewritten per batch, by quarter", " / ".join(
            f"{b / 1000:,.0f}k" for b in r["state_bytes_by_quarter"]))  # fmt: skip
        line("RSS by quarter (MB)", " / ".join(f"{m:.0f}" for m in r["rss_mb_by_quarter"]))
        line("peak RSS", f"{r['max_rss_mb']:.0f} MB")
    line(
        "with eviction: state, last / second quarter",
        f"{flat_state:.2f}",
        f"target <= {TARGET_FLAT}",
    )
    line("with eviction: RSS, last / second quarter", f"{flat_rss:.2f}", f"target <= {TARGET_FLAT}")
    raw = {
        "bikes": bikes,
        "messages": n,
        "baseline": base,
        "evicting": evicting,
        "state_last_over_second_quarter": round(flat_state, 3),
        "rss_last_over_second_quarter": round(flat_rss, 3),
    }
    figures = [
        results.Figure(
            "bikes kept in the saved state at the end", evicting["bikes_kept"], "bikes",
            baseline=base["bikes_kept"], baseline_name="no eviction", higher_is_better=False,
            note=f"{bikes:,} keys over an hour of feed",
        ),
        results.Figure(
            "state rewritten per batch, last quarter", evicting["state_bytes_by_quarter"][3], "B",
            baseline=base["state_bytes_by_quarter"][3], baseline_name="no eviction",
            higher_is_better=False,
        ),
        results.Figure(
            "with eviction: state, last / second quarter", round(flat_state, 3), "x",
            target=TARGET_FLAT, higher_is_better=False,
        ),
        results.Figure(
            "with eviction: RSS, last / second quarter", round(flat_rss, 3), "x",
            target=TARGET_FLAT, higher_is_better=False,
        ),
    ]  # fmt: skip
    params = {"bikes": bikes, "wall_s": wall_s, "ride_s": args.ride_seconds}
    results.write(
        "ingest_state",
        figures,
        quick=args.quick,
        params=params | {"evict_idle_s": args.evict_idle_s},
        raw=raw,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
