"""`deloton soak`: every service on its own embedded broker and database, a faulty fleet, real
faults injected on a printed schedule, then a check of everything against the simulator's truth.

Loopback only, bounded: the feed stops by itself after `--minutes`, the services get a short
time to settle, and everything the soak started is stopped. Exit 0 when every count in the
table is 0, 1 otherwise, 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg2
from confluent_kafka import KafkaException
from pydantic import SecretStr

from services.common import db, infra
from services.common.config import ConfigError, Settings
from services.common.infra_cli import LOCAL_TUNING
from services.common.signals import sigterm_as_interrupt
from services.demo import supervisor
from services.simulator import truth as truth_file
from services.soak import check, progress, repository, schedule
from services.soak.proxy import Proxy

log = logging.getLogger(__name__)

SENDER = "alerts@deloton.example"
SILENCE_S = 12  # rides close this long after their bike's last line (> the broker freeze)
SETTLE_S = 240.0  # most the services get to finish the work after the feed ends
API_SAMPLE = 25
MARKER = ".deloton-soak"  # only a folder holding this is emptied by the next soak


def register(subparsers: Any) -> None:
    """Add the `soak` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "soak",
        help="the whole stack under real faults for a bounded time, checked against the truth",
        description="Start a private broker, PostgreSQL, a moto SES server and every service "
        "(two ingest processes, alerts, compress every 30 s, the API); feed a faulty fleet "
        "at real-time speed; kill and freeze things on a schedule printed at the start; then "
        "check every reading, reject, alert, summary and a sample of API answers against "
        "what the simulator recorded it sent.",
        epilog="Exit status: 0 when every count is 0, 1 otherwise, 2 for a configuration error.",
    )
    p.add_argument("--minutes", type=float, default=5.0, help="length of the feed (5)")
    p.add_argument("--bikes", type=int, default=500, help="simulated bikes (500)")
    p.add_argument("--faults", type=float, default=0.002, help="feed fault rate per line")
    p.add_argument("--seed", type=int, default=1, help="simulator seed (1)")
    p.add_argument(
        "--dir", type=Path, default=None, help="working folder (default: <STATE_DIR>/soak)"
    )
    p.add_argument("--keep", action="store_true", help="keep the working folder afterwards")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the soak; print the schedule, progress and the table."""
    if args.minutes <= 0 or args.bikes < 1:
        raise ConfigError("--minutes must be positive and --bikes at least 1")
    if shutil.which("moto_server", path=str(Path(sys.executable).parent)) is None:
        raise ConfigError("the soak needs moto's server (pip install 'moto[server]')")
    settings = Settings()
    work = (args.dir or settings.state_dir / "soak").resolve()
    if work.exists() and any(work.iterdir()) and not (work / MARKER).exists():
        raise ConfigError(f"{work} is not empty and not a soak's folder: give --dir a new one")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / MARKER).write_text("a deloton soak's working folder: the next soak replaces it\n")
    soak = Soak(work, minutes=args.minutes, bikes=args.bikes, faults=args.faults, seed=args.seed)
    sigterm_as_interrupt()  # a stopped soak stops what it started, as Ctrl-C does
    try:
        verdict = soak.run()
    finally:
        soak.stop_everything()
        if not args.keep:
            shutil.rmtree(work / "pgdata", ignore_errors=True)
    return 0 if verdict is not None and not verdict.failures() else 1


class Soak:
    """One soak run: its processes, its faults, its verdict."""

    def __init__(self, work: Path, *, minutes: float, bikes: int, faults: float, seed: int):
        self.work = work
        self.feed_s = minutes * 60
        self.bikes = bikes
        self.fault_rate = faults
        self.seed = seed
        # Rides long enough for the riders who push past their maximum to do so (from 35% of
        # the ride on), short enough that most bikes ride twice and every ride ends in time.
        self.ride_s = max(40, min(120, round(self.feed_s * 2 / 3)))
        self.until_s = max(1, round(self.feed_s - self.ride_s))
        self.children: dict[str, supervisor.Child] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self.restarts: dict[str, int] = {}
        self.injected: dict[str, int] = dict.fromkeys(schedule.FAULTS, 0)
        self.survived: dict[str, bool] = dict.fromkeys(schedule.FAULTS, True)
        self.broker: infra.Broker | None = None
        self.pg: infra.Postgres | None = None
        self.moto: subprocess.Popen[bytes] | None = None
        self.proxy: Proxy | None = None
        self.lock = threading.Lock()
        self.started = 0.0
        self.unsettled: tuple[int, ...] = ()

    # --- start ---------------------------------------------------------------------------

    def run(self) -> check.Verdict | None:
        plan = schedule.plan(self.feed_s)
        _say(
            f"soak: {self.bikes} bikes at real-time speed for {self.feed_s:.0f} s, rides of "
            f"{self.ride_s} s, faults {self.fault_rate} per line, seed {self.seed}; in {self.work}"
        )
        _say("schedule (seconds into the feed):")
        for injection in plan:
            _say("  " + injection.describe())
        began = time.monotonic()
        self.start_infra()
        self.start_services()
        _say(f"infra and services started in {self.started - began:.1f} s; the feed begins")
        threads = [threading.Thread(target=self.inject, args=(i,), daemon=True) for i in plan]
        for t in threads:
            t.start()
        self.supervise(until=lambda: self.children["simulator"].proc.poll() is not None)
        for t in threads:
            t.join(timeout=90)
        sim = self.children["simulator"].proc.returncode
        if sim != 0:
            _say(f"the simulator ended with {supervisor.describe_exit(sim)}: no exact truth")
            _print_tail(self.children["simulator"])
            return None
        _say(f"{self._t()}  feed over; waiting for the services to settle ...")
        self.settle()
        _say(f"{self._t()}  settled; checking ...")
        infra.wait_for_port(self.api_port, 60.0, self.children["api"].proc)
        self.compress_once()
        verdict = self.verify()
        _say(table(self, verdict))
        return verdict

    def start_infra(self) -> None:
        (self.work / "logs").mkdir(parents=True, exist_ok=True)
        moto_port, proxy_port = infra.free_port(), infra.free_port()
        with open(self.work / "logs" / "moto.log", "ab") as out:
            self.moto = subprocess.Popen(
                [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p",
                 str(moto_port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        kafka_port, pg_port = infra.free_port(), infra.free_port()
        self.broker = infra.start_broker(kafka_port, self.work / "logs" / "broker.log")
        self.pg = infra.start_postgres(self.work / "pgdata", pg_port)
        conn = db.connect(self.pg.url(), application_name="soak")
        try:
            db.migrate(conn)
        finally:
            conn.close()
        infra.wait_for_port(moto_port, 30.0, self.moto)
        self.moto_url = f"http://127.0.0.1:{moto_port}"
        self.proxy = Proxy(proxy_port, moto_port)
        self.proxy.up()
        import boto3

        boto3.client(
            "ses", region_name="eu-west-2", endpoint_url=self.moto_url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        ).verify_email_identity(EmailAddress=SENDER)  # fmt: skip
        # Hermetic: none of the caller's settings (a split-topic flag, real AWS keys) leak in.
        own = {name.upper() for name in Settings.model_fields}
        self.base_env = (
            {
                k: v
                for k, v in os.environ.items()
                if k.upper() not in own and not k.startswith(("AWS_", "KAFKA_"))
            }
            | LOCAL_TUNING
            | {
                "PYTHONUNBUFFERED": "1",
                "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap,
                "DATABASE_URL": self.pg.url(),
                "STATE_DIR": str(self.work),
                "RIDE_SILENCE_S": str(SILENCE_S),
                "COMPRESS_INTERVAL_S": "30",
                "SES_ENDPOINT_URL": f"http://127.0.0.1:{proxy_port}",
                "AWS_REGION": "eu-west-2",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_EC2_METADATA_DISABLED": "true",
                "EMAIL_SENDER": SENDER,
                "EMAIL_OUTBOX_DIR": str(self.work / "outbox"),
                "ALERT_RETRY_MAX_S": "10",
                "INGEST_METRICS_PORT": "0",
                "ALERTS_METRICS_PORT": "0",
                "COMPRESS_METRICS_PORT": "0",
                "QUALITY_METRICS_PORT": "0",
            }
        )

    def start_services(self) -> None:
        import psycopg
        from psycopg.rows import dict_row

        from services.api import keys

        assert self.pg is not None
        self.api_port = infra.free_port()
        with psycopg.connect(self.pg.url(), connect_timeout=10, row_factory=dict_row) as conn:
            self.api_token = keys.create(conn, name="soak", scopes="read")
        self.truth_path = self.work / "truth.jsonl"
        simulate = (
            *("simulate", "--bikes", str(self.bikes), "--speed", "realtime", "--rides", "0"),
            *("--seconds", str(self.ride_s), "--until", str(self.until_s)),
            *("--faults", str(self.fault_rate), "--seed", str(self.seed)),
            *("--truth", str(self.truth_path)),
        )
        specs = [
            (supervisor.Spec("api", ("api",)), {"API_PORT": str(self.api_port)}),
            (supervisor.Spec("compress", ("compress", "--loop")), {}),
            (supervisor.Spec("alerts", ("alerts",)), {}),
            (supervisor.Spec("ingest-1", ("ingest",)), {}),
            (supervisor.Spec("ingest-2", ("ingest",)), {}),
            (supervisor.Spec("simulator", simulate), {}),
        ]
        for spec, extra in specs:
            self.envs[spec.name] = self.base_env | extra
            self._start(spec)
        # The feed (and the fault schedule) starts when the simulator opens its truth file,
        # right before it produces: starting the services takes a while on two cores.
        sim = self.children["simulator"].proc
        deadline = time.monotonic() + 120
        while not self.truth_path.exists() and sim.poll() is None:
            if time.monotonic() > deadline:
                raise ConfigError("the simulator did not start within 120 s")
            self.supervise(until=lambda: True)
            time.sleep(0.1)
        self.started = time.monotonic()

    def _start(self, spec: supervisor.Spec) -> None:
        argv = supervisor.command(spec, log_level="INFO", plain_logs=True)
        child = supervisor.start(spec, argv, env=self.envs[spec.name], log_dir=self.work / "logs")
        self.children[spec.name] = child

    # --- run -----------------------------------------------------------------------------

    def supervise(self, until: Any, limit_s: float | None = None) -> None:
        """Restart any service that exits, as ECS would, until `until()` is true."""
        deadline = None if limit_s is None else time.monotonic() + limit_s
        while not until():
            if deadline is not None and time.monotonic() > deadline:
                return
            with self.lock:
                for name, child in list(self.children.items()):
                    if name != "simulator" and child.proc.poll() is not None:
                        _say(
                            f"{self._t()}  {name} {supervisor.describe_exit(child.proc.returncode)}"
                            ": restarting"
                        )
                        self.restarts[name] = self.restarts.get(name, 0) + 1
                        self._start(child.spec)
            time.sleep(0.5)

    def inject(self, injection: schedule.Injection) -> None:
        """Wait for the injection's time, inject it, undo it after its length."""
        delay = self.started + injection.at_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        _say(f"{self._t()}  inject: {injection.fault}")
        fault = injection.fault
        try:
            if fault == schedule.INGEST_KILL:
                self._kill(f"ingest-{injection.target + 1}")
            elif fault == schedule.ALERTS_KILL:
                self._kill("alerts")
            elif fault == schedule.PG_RESTART:
                assert self.pg is not None
                infra.stop_postgres(self.pg.pgdata)
                self.pg = infra.start_postgres(self.pg.pgdata, self.pg.port)
            elif fault == schedule.BROKER_FREEZE:
                assert self.broker is not None
                os.kill(self.broker.pid, signal.SIGSTOP)
                try:
                    time.sleep(injection.for_s)
                finally:
                    os.kill(self.broker.pid, signal.SIGCONT)
            elif fault == schedule.SES_DOWN:
                assert self.proxy is not None
                self.proxy.down()
                try:
                    time.sleep(injection.for_s)
                finally:
                    self.proxy.up()
            self.injected[fault] += 1
            if injection.for_s:
                _say(f"{self._t()}  undone: {fault}")
        except Exception as exc:  # the table says the fault could not be injected
            self.survived[fault] = False
            _say(f"{self._t()}  could not inject {fault}: {exc}")

    def _kill(self, name: str) -> None:
        with self.lock:
            child = self.children[name]
            if child.proc.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.proc.wait()

    def settle(self) -> None:
        """Until ingest has stored every raw message, every ride is closed, the alerts worker
        has committed every event and no alert is pending, twice in a row."""
        assert self.pg is not None and self.broker is not None
        # model_construct: the children's settings (defaults), not the caller's environment.
        kafka = Settings.model_construct(
            kafka_bootstrap_servers=self.broker.bootstrap,
            kafka_session_timeout_ms=int(LOCAL_TUNING["KAFKA_SESSION_TIMEOUT_MS"]),
        )
        last: tuple[int, ...] = ()
        steady = 0
        deadline = time.monotonic() + SETTLE_S + SILENCE_S
        while time.monotonic() < deadline:
            self.supervise(until=lambda: True)
            try:
                conn = psycopg2.connect(self.pg.url(), connect_timeout=5)
                try:
                    with conn.cursor() as cur:
                        open_rides, pending, _ = repository.unsettled(cur)
                        stored = repository.ingest_offsets(cur, kafka.ingest_group, kafka.topic_raw)
                finally:
                    conn.close()
                raw = progress.ends(kafka, kafka.topic_raw)
                ingest_behind = sum(max(0, h - stored.get(p, 0)) for p, h in raw.items())
                alerts_behind = progress.behind(kafka, kafka.alerts_app_id, kafka.topic_events)
            except (psycopg2.Error, KafkaException):
                time.sleep(1)
                continue
            last = (ingest_behind, open_rides, alerts_behind, pending)
            steady = steady + 1 if last == (0, 0, 0, 0) else 0
            if steady >= 2:
                return
            time.sleep(1)
        self.unsettled = last
        _say(
            f"{self._t()}  not settled after {SETTLE_S:.0f} s: ingest {last[0]} messages "
            f"behind, {last[1]} rides open, alerts {last[2]} events behind, {last[3]} pending"
        )

    def compress_once(self) -> None:
        """One more compress run, so every ride closed by now is summarised."""
        from services.compress import job

        assert self.pg is not None
        settings = Settings.model_construct(
            database_url=SecretStr(self.pg.url()), ride_silence_s=SILENCE_S
        )
        job.run(settings)

    # --- verify --------------------------------------------------------------------------

    def verify(self) -> check.Verdict:
        assert self.pg is not None
        rides, bad, _ = truth_file.read(str(self.truth_path))
        v = check.Verdict()
        conn = psycopg2.connect(self.pg.url())
        try:
            with conn.cursor() as cur:
                ids = check.ride_ids(rides, repository.rides(cur))
                check.check_readings(v, rides, ids, repository.readings(cur))
                self.reasons = check.check_rejects(v, bad, repository.rejects(cur))
                stored = repository.summaries(cur)
        finally:
            conn.close()
        check.check_alerts(v, rides, ids, self.delivered_alerts())
        expected = check.check_summaries(v, rides, ids, stored)
        self.compressed = len(stored)
        sample = random.Random(self.seed).sample(sorted(expected), min(API_SAMPLE, len(expected)))
        for ride_id in sample:
            check.check_api_ride(v, ride_id, self.api_ride(ride_id), expected[ride_id])
        return v

    def delivered_alerts(self) -> list[str]:
        """X-Deloton-Alert of every email the SES server accepted."""
        with urllib.request.urlopen(f"{self.moto_url}/moto-api/data.json", timeout=30) as resp:
            data = json.loads(resp.read())
        out = []
        for m in data.get("ses", {}).get("RawMessage", []):
            parsed = email.message_from_string(m["raw_data"], policy=email.policy.default)
            out.append(str(parsed["X-Deloton-Alert"]))
        return out

    def api_ride(self, ride_id: int) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}/ride/{ride_id}",
            headers={"Authorization": f"Bearer {self.api_token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                body: dict[str, Any] = json.loads(resp.read())
                return body
        except OSError as exc:
            return {"error": str(exc)}

    # --- stop ----------------------------------------------------------------------------

    def stop_everything(self) -> None:
        """Interrupt every child at once, kill what is left after 5 s, stop the infra."""
        for child in self.children.values():
            if child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGINT)
        deadline = time.monotonic() + 5
        for child in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            if child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.proc.wait()
        if self.proxy is not None:
            self.proxy.down()
        if self.moto is not None:  # what it holds was read already
            self.moto.kill()
            self.moto.wait()
        if self.broker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.broker.pid, signal.SIGCONT)
            infra.stop_pid(self.broker.pid, "tansu")
        if self.pg is not None:
            with contextlib.suppress(ConfigError):
                infra.stop_postgres(self.pg.pgdata)

    def _t(self) -> str:
        return f"{time.monotonic() - self.started:7.1f} s" if self.started else "      -  "


def table(soak: Soak, v: check.Verdict) -> str:
    """The result table: faults injected and survived, then every count that must be 0."""
    rows = [("fault", "injected", "survived")]
    planned = {f: 0 for f in schedule.FAULTS}
    for i in schedule.plan(soak.feed_s):
        planned[i.fault] += 1
    for fault in schedule.FAULTS:
        ok = soak.survived[fault] and soak.injected[fault] == planned[fault]
        rows.append((fault, f"{soak.injected[fault]} of {planned[fault]}", "yes" if ok else "NO"))
    width = max(len(r[0]) for r in rows)
    lines = [f"  {a:<{width}}  {b:>9}  {c}" for a, b, c in rows]
    restarts = ", ".join(f"{k} x{n}" for k, n in sorted(soak.restarts.items())) or "none"
    lines.append(f"  services restarted by the supervisor: {restarts}")
    settled = "yes" if not soak.unsettled else "NO (ingest, open rides, alerts, pending: "
    settled += "" if not soak.unsettled else f"{soak.unsettled})"
    lines.append(f"  caught up after the feed: {settled}")
    lines.append("")
    counts = [
        ("readings sent (good)", v.readings_expected, False),
        ("readings lost", v.readings_lost, True),
        ("readings duplicated", v.readings_duplicated, True),
        ("readings wrong", v.readings_wrong, True),
        ("bad lines sent", v.bad_expected, False),
        ("bad lines not in daily.rejects", v.bad_not_rejected, True),
        ("intact lines rejected", v.good_rejected, True),
        ("alerts due", v.alerts_expected, False),
        ("alerts missed", v.alerts_missed, True),
        ("alerts duplicated", v.alerts_duplicated, True),
        ("alerts spurious", v.alerts_spurious, True),
        ("rides finished", v.rides_expected, False),
        ("rides not summarised", v.rides_unsummarised, True),
        ("summaries wrong", v.summaries_wrong, True),
        ("API /ride/{id} checked", v.api_checked, False),
        ("API answers wrong", v.api_wrong, True),
    ]
    for name, n, must_be_zero in counts:
        mark = ("ok" if n == 0 else "FAIL") if must_be_zero else ""
        lines.append(f"  {name:<{width}}  {n:>9,}  {mark}")
    reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(getattr(soak, "reasons", {}).items()))
    lines.append(f"  rejects by reason: {reasons or 'none'}")
    for example in v.examples:
        lines.append(f"    {example}")
    failed = v.failures() or soak.unsettled or not all(r[2] == "yes" for r in rows[1:])
    lines.append("soak: " + ("FAILED" if failed else "passed: every count is 0"))
    return "\n".join(lines)


def _print_tail(child: supervisor.Child) -> None:
    for line in supervisor.tail(child.log_path, start=child.log_start):
        _say("    " + line)


def _say(text: str) -> None:
    print(text, flush=True)


__all__ = ["register", "run", "table"]
