"""Ingest throughput, scaling, memory and latency, against the real broker and PostgreSQL.

    python -m bench.ingest            # everything (about 4 minutes on 2 cores)
    python -m bench.ingest --quick    # W3 and its baseline only

Every figure is printed beside its baseline, measured in the same run on the same
preloaded topic: a bare confluent-kafka consumer with the same client settings that only
reads and JSON-decodes the messages. Throughput is first message received to last row
committed (the consumer-group join is excluded). Uses KAFKA_BOOTSTRAP_SERVERS and
DATABASE_URL when set, otherwise starts the embedded broker and PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from bench import results as bench_results
from services.common.config import Settings
from services.common.kafka import consumer_config, ensure_topics
from services.simulator.fleet import Fleet, FleetConfig
from services.simulator.pacing import MAX
from services.simulator.producer import produce
from tests import harness

TARGETS = {
    "w3_msgs_per_s": 80_000,
    "w1_msgs_per_s": 50_000,
    "two_process_speedup": 1.4,
    "max_rss_mb": 200,  # one process at 1,000 bikes
    "latency_p99_ms": 300,
}


def settings_for(bootstrap: str, dsn: str | None = None, **extra: Any) -> Settings:
    """Settings as `deloton infra up` would write them for the embedded broker."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        kafka_bootstrap_servers=bootstrap,
        database_url=dsn,
        **harness.LOCAL_CLIENT_SETTINGS,
        **extra,
    )


def preload(bootstrap: str, topic: str, config: FleetConfig, partitions: int, keyed: bool) -> int:
    """Produce a simulated fleet into a new topic as fast as possible; return its size."""
    settings = settings_for(bootstrap)
    ensure_topics(settings, [topic], partitions=partitions)
    messages = Fleet(config).messages()
    if not keyed:  # the historical single stream: no key, the partition is the bike
        messages = (m._replace(key=None) for m in messages)
    stats = produce(settings, messages, MAX, topics={"bikes": topic, "telemetry": topic})
    assert stats.failed == 0
    return stats.messages


def bare_consumer(bootstrap: str, topic: str, expected: int) -> float:
    """Messages/s of a consumer with ingest's client settings that only decodes JSON."""
    from confluent_kafka import Consumer

    conf = consumer_config(settings_for(bootstrap), f"bare-{uuid.uuid4().hex[:8]}")
    consumer = Consumer(conf)
    consumer.subscribe([topic])
    n, first = 0, 0.0
    loads = orjson.loads
    try:
        while n < expected:
            for msg in consumer.consume(10_000, 0.5):
                if msg.error() is None:
                    if not n:
                        first = time.perf_counter()
                    loads(msg.value())
                    n += 1
        return n / (time.perf_counter() - first)
    finally:
        consumer.close()


def ingest_env(bootstrap: str, dsn: str, topic: str, group: str) -> dict[str, str]:
    """The environment of an ingest process reading `topic` into `dsn` as `group`."""
    settings = settings_for(
        bootstrap,
        dsn,
        topic_raw=topic,
        topic_events=f"{topic}.events",
        topic_rejects=f"{topic}.rejects",
        ingest_group=group,
        ingest_metrics_port=0,
    )
    return harness.service_env(settings)


def start_ingest(env: dict[str, str], until_idle: float, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "--log-level", "WARNING", "ingest",
         "--until-idle", str(until_idle), "--report", *extra],
        env=env, cwd=harness.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"ingest exited with {proc.returncode}:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def ingest_run(
    server: str, template: str, bootstrap: str, topic: str, processes: int
) -> dict[str, Any]:
    """Ingest the topic into a fresh database with N processes of one group."""
    with harness.cloned_database(server, template) as dsn:
        env = ingest_env(bootstrap, dsn, topic, f"bench-{uuid.uuid4().hex[:8]}")
        procs = [start_ingest(env, 3.0) for _ in range(processes)]
        parts = [finish(p) for p in procs]
    consumed = sum(p["consumed"] for p in parts)
    seconds = max(p["last_commit_wall"] for p in parts) - min(
        p["first_message_wall"] for p in parts
    )
    return {
        "processes": processes,
        "consumed": consumed,
        "readings": sum(p["readings"] for p in parts),
        "seconds": round(seconds, 2),
        "messages_per_s": round(consumed / seconds),
        "max_rss_mb": max(p["max_rss_mb"] for p in parts),
        "per_process": [p["consumed"] for p in parts],
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput."""
    return sorted(runs, key=lambda r: r["messages_per_s"])[len(runs) // 2]


def latency_run(
    server: str, template: str, bootstrap: str, bikes: int, seconds: int
) -> dict[str, Any]:
    """1,000 bikes live at real-time speed: produce -> committed row, per message."""
    topic = f"live-{uuid.uuid4().hex[:6]}"
    settings = settings_for(bootstrap)
    ensure_topics(settings, [topic, f"{topic}.events", f"{topic}.rejects"], partitions=4)
    with harness.cloned_database(server, template) as dsn:
        env = ingest_env(bootstrap, dsn, topic, f"live-{uuid.uuid4().hex[:8]}")
        proc = start_ingest(env, 20.0, "--track-latency")  # idle longer than the warm-up
        time.sleep(8)  # let the group join before the fleet starts riding
        fleet = Fleet(FleetConfig(bikes=bikes, rides=1, seconds=seconds, seed=3))
        produce(settings, fleet.messages(), 1.0, topics={"bikes": topic, "telemetry": topic})
        result = finish(proc)
    return {
        k: v
        for k, v in result.items()
        if k.startswith("latency") or k in ("consumed", "max_rss_mb")
    }


def line(label: str, value: str, target: str = "") -> None:
    print(f"  {label:<52} {value:>14}   {target}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="W3 and its baseline only")
    ap.add_argument("--bikes", type=int, default=1000)
    ap.add_argument("--live-seconds", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3, help="runs of 1 and of 2 processes on W3")
    args = ap.parse_args()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
    }
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    with (
        harness.running_broker() as bootstrap,
        harness.running_postgres() as server,
        harness.template_database(server) as template,
    ):
        print(f"Ingest benchmark ({os.cpu_count()} CPUs, broker {bootstrap})", flush=True)

        w3 = FleetConfig(bikes=args.bikes, rides=1, seconds=500, seed=1, start=past)
        # Topics of this run's own: a broker given in KAFKA_BOOTSTRAP_SERVERS may hold older ones.
        tag = uuid.uuid4().hex[:6]
        n = preload(bootstrap, f"w3-{tag}", w3, 4, True)
        bare = bare_consumer(bootstrap, f"w3-{tag}", n)
        # One and two processes alternate, --repeat times each: one pair of runs swings by
        # about 10% here, more than the margin the scaling target leaves.
        ones: list[dict[str, Any]] = []
        twos: list[dict[str, Any]] = []
        for _ in range(1 if args.quick else args.repeat):
            ones.append(ingest_run(server, template, bootstrap, f"w3-{tag}", 1))
            if not args.quick:
                twos.append(ingest_run(server, template, bootstrap, f"w3-{tag}", 2))
        one = median_run(ones)
        results |= {"w3_messages": n, "w3_bare_msgs_per_s": round(bare), "w3_one": one}
        results["w3_one_runs"] = ones
        print(
            f"W3: {n:,} messages, {args.bikes} bikes x one 500 s ride, 4 partitions keyed by bike"
        )
        line("bare consumer (same settings, JSON decode)", f"{bare:,.0f} msg/s", "baseline")
        line(
            "ingest, 1 process (rows, rejects, events, exactly-once)",
            f"{one['messages_per_s']:,} msg/s",
            f"target >= {TARGETS['w3_msgs_per_s']:,}; {one['messages_per_s'] / bare:.0%} of bare"
            f" (median of {len(ones)})",
        )
        line(
            "ingest, 1 process: peak RSS",
            f"{max(r['max_rss_mb'] for r in ones):.0f} MB",
            f"target <= {TARGETS['max_rss_mb']} MB (worst of {len(ones)})",
        )

        if not args.quick:
            two = median_run(twos)
            speedup = two["messages_per_s"] / one["messages_per_s"]
            results |= {
                "w3_two": two,
                "w3_two_runs": twos,
                "two_process_speedup": round(speedup, 2),
            }
            line(
                "ingest, 2 processes, one group",
                f"{two['messages_per_s']:,} msg/s",
                f"{speedup:.2f}x of 1 process (target >= {TARGETS['two_process_speedup']}x);"
                f" medians of {len(twos)}",
            )
            line("  each run: 1 process", ", ".join(f"{r['messages_per_s']:,}" for r in ones))
            line("  each run: 2 processes", ", ".join(f"{r['messages_per_s']:,}" for r in twos))
            w1 = preload(
                bootstrap,
                f"w1-{tag}",
                FleetConfig(bikes=1, rides=100, seconds=500, seed=2, start=past),
                1,
                False,
            )
            bare1 = bare_consumer(bootstrap, f"w1-{tag}", w1)
            single = ingest_run(server, template, bootstrap, f"w1-{tag}", 1)
            results |= {"w1_messages": w1, "w1_bare_msgs_per_s": round(bare1), "w1_one": single}
            print(
                f"W1: {w1:,} messages, the historical single stream (1 bike, 100 rides, 1 partition, no key)"
            )
            line("bare consumer (same settings, JSON decode)", f"{bare1:,.0f} msg/s", "baseline")
            line(
                "ingest, 1 process",
                f"{single['messages_per_s']:,} msg/s",
                f"target >= {TARGETS['w1_msgs_per_s']:,}; {single['messages_per_s'] / bare1:.0%} of bare",
            )

            live = latency_run(server, template, bootstrap, args.bikes, args.live_seconds)
            results["live"] = live
            print(
                f"Live: {args.bikes} bikes at real-time speed for {args.live_seconds} s ({live['consumed']:,} messages)"
            )
            line("produce -> committed row, p50", f"{live['latency_p50_ms']:.0f} ms")
            line(
                "produce -> committed row, p99",
                f"{live['latency_p99_ms']:.0f} ms",
                f"target <= {TARGETS['latency_p99_ms']} ms",
            )
            line("produce -> committed row, max", f"{live['latency_max_ms']:.0f} ms")
            line(
                "peak RSS with every bike riding",
                f"{live['max_rss_mb']:.0f} MB",
                f"target <= {TARGETS['max_rss_mb']} MB",
            )
    params = {"bikes": args.bikes, "repeat": 1 if args.quick else args.repeat}
    bench_results.write(
        "ingest", result_figures(results), quick=args.quick, params=params, raw=results
    )
    return 0


def result_figures(r: dict[str, Any]) -> list[bench_results.Figure]:
    """The README's ingest table: each rate beside the bare consumer of the same run."""
    Figure = bench_results.Figure
    one = r["w3_one"]
    out = [
        Figure(
            "W3, 1 process", one["messages_per_s"], "msg/s", baseline=r["w3_bare_msgs_per_s"],
            baseline_name="bare consumer", target=TARGETS["w3_msgs_per_s"],
            note=f"{r['w3_messages']:,} messages; median of {len(r['w3_one_runs'])}",
        ),
        Figure(
            "peak RSS of one process", max(x["max_rss_mb"] for x in r["w3_one_runs"]), "MB",
            target=TARGETS["max_rss_mb"], higher_is_better=False,
        ),
    ]  # fmt: skip
    if "w3_two" in r:
        out.append(
            Figure(
                "W3, 2 processes in one group", r["w3_two"]["messages_per_s"], "msg/s",
                baseline=one["messages_per_s"], baseline_name="1 process",
                ratio_target=TARGETS["two_process_speedup"],
            )
        )  # fmt: skip
    if "w1_one" in r:
        out.append(
            Figure(
                "W1, one bike, 1 partition, no key", r["w1_one"]["messages_per_s"], "msg/s",
                baseline=r["w1_bare_msgs_per_s"], baseline_name="bare consumer",
                target=TARGETS["w1_msgs_per_s"],
            )
        )  # fmt: skip
    if "live" in r:
        out.append(
            Figure(
                "live: produce -> committed row, p99", r["live"]["latency_p99_ms"], "ms",
                target=TARGETS["latency_p99_ms"], higher_is_better=False,
                note=f"p50 {r['live']['latency_p50_ms']} ms",
            )
        )  # fmt: skip
    return out


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
