"""One hostile run: the services started, the feed sent, then every check."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from confluent_kafka import Producer
from psycopg.rows import dict_row

from bench.hostile import api, checks, logscan
from bench.hostile.checks import Row, row
from bench.hostile.feed import Feed, build
from bench.hostile.services import Secrets, Services
from services.api import keys
from services.common.kafka import ensure_topics, producer_config
from tests import harness
from tests.alerts.support import Ses, running_moto


@dataclass
class Outcome:
    """The table and the time each phase took."""

    rows: list[Row] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)


def produce(settings, feed: Feed) -> dict[tuple[int, int], int]:
    """Send every line in order; (partition, offset) -> index of the line, from delivery."""
    topic = settings.topic_raw
    ensure_topics(settings, [topic], partitions=4)
    producer = Producer(producer_config(settings) | {"message.max.bytes": 2_000_000})
    positions: dict[tuple[int, int], int] = {}
    failed: list[str] = []

    def delivered(index: int):
        def report(err, msg) -> None:
            if err is not None:
                failed.append(str(err))
            else:
                positions[(msg.partition(), msg.offset())] = index

        return report

    for i, line in enumerate(feed.lines):
        while True:
            try:
                producer.produce(topic, line.value, line.key, on_delivery=delivered(i))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(120)
    if failed:
        raise RuntimeError(f"{len(failed)} lines not delivered: {failed[:3]}")
    return positions


def _role(server_dsn: str, dsn: str, password: str) -> str:
    """A login role with a password for the services: its DSN (the password in it)."""
    role = f"hostile_{uuid.uuid4().hex[:8]}"
    harness.admin_execute(server_dsn, f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'")
    params = psycopg.conninfo.conninfo_to_dict(dsn) | {"user": role, "password": password}
    return psycopg.conninfo.make_conninfo(**params)


def wait_for(check, timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def run(
    lines: int, *, bootstrap: str, server_dsn: str, workdir: Path, examples: int, seed: int = 14
) -> Outcome:
    """Everything, against the broker and the PostgreSQL server given."""
    out = Outcome()
    t0 = time.monotonic()
    feed = build(lines, seed=seed)
    out.seconds["generate"] = time.monotonic() - t0
    secrets = Secrets.fresh()
    with (
        harness.scratch_database(server_dsn) as plain_dsn,
        running_moto(workdir / "moto.log") as ses_url,
    ):
        dsn = _role(server_dsn, plain_dsn, secrets.database_password)
        try:
            settings = harness.test_settings(bootstrap, dsn, workdir)
            ses = Ses(ses_url)
            ses.verify(settings.email_sender)
            svc = Services(settings, workdir, ses_url, secrets)
            try:
                _run_services(out, svc, feed, settings, dsn, ses, examples)
            except Exception as exc:  # the table still says what was checked, and this
                out.rows.append(
                    Row("run completed", "", f"{type(exc).__name__}: {exc}"[:300], False)
                )
            finally:
                crashed = {n for n, alive in svc.alive().items() if not alive}
                codes = svc.stop()
                out.rows.append(row("services that died during the run", set(), crashed))
                out.rows.append(row("exit codes after SIGINT", {n: 0 for n in codes}, codes))
            ingest_log = svc.log_path("ingest").read_text(errors="replace")
            assigned = ingest_log.count("services.ingest.service: assigned")
            out.rows.append(row("ingest partition assignments (no restart loop)", 1, assigned))
            logs = {p.stem: p for p in workdir.glob("*.log") if p.stem != "moto"}
            tokens = {f"API key ({k})": v for k, v in svc.tokens.items()}
            hidden = {
                "database password": secrets.database_password,
                "AWS access key id": secrets.aws_access_key_id,
                "AWS secret key": secrets.aws_secret_access_key,
                **tokens,
            }
            t = time.monotonic()
            out.rows += logscan.scan(logs, feed.personal, hidden)
            out.seconds["log scan"] = time.monotonic() - t
        finally:
            harness.drop_database(server_dsn, plain_dsn)
            role = psycopg.conninfo.conninfo_to_dict(dsn)["user"]
            harness.admin_execute(server_dsn, f"DROP ROLE IF EXISTS {role}")
    return out


def _run_services(out: Outcome, svc: Services, feed: Feed, settings, dsn, ses, examples) -> None:
    t = time.monotonic()
    svc.start("ingest", "ingest", port_var="INGEST_METRICS_PORT")
    svc.start("alerts", "alerts", port_var="ALERTS_METRICS_PORT")
    svc.start("api", "api", port_var="API_PORT", API_RATE_LIMIT_PER_S=0)
    svc.start("dashboard", "dashboard", port_var="DASHBOARD_PORT")
    svc.wait_http("ingest", "/metrics")
    svc.wait_http("api", "/health")
    out.seconds["start services"] = time.monotonic() - t

    t = time.monotonic()
    positions = produce(settings, feed)
    out.seconds["produce"] = time.monotonic() - t
    t = time.monotonic()
    ends: dict[int, int] = {}
    for p, o in positions:
        ends[p] = max(ends.get(p, 0), o + 1)
    group, topic = settings.ingest_group, settings.topic_raw
    caught_up = wait_for(
        lambda: checks.stored_offsets(dsn, group, topic) == ends,
        timeout=120 + len(feed.lines) / 500,
    )
    out.seconds["ingest"] = time.monotonic() - t
    out.rows.append(row("ingest caught up with every partition", True, caught_up))
    consumed = svc.metric("ingest", "deloton_ingest_consumed_messages_total")
    out.rows.append(row("messages ingest consumed (its /metrics)", len(feed.lines), int(consumed)))
    out.rows += checks.ingest_rows(feed, positions, dsn, topic)

    # Alerts: riders in danger with a usable address get one email; nobody else gets any.
    t = time.monotonic()
    mailable = {
        f.email_address for u, f in feed.riders.items() if u in feed.danger and not f.email_invalid
    }
    wait_for(lambda: len(ses.sent()) >= len(mailable), timeout=90)
    time.sleep(2)  # a duplicate would arrive right behind
    sent = [d for m in ses.sent() for d in m.destinations]
    out.seconds["alerts"] = time.monotonic() - t
    unusable = {f.email_address for f in feed.riders.values() if f.email_invalid}
    out.rows.append(row("alert emails, one per rider in danger", sorted(mailable), sorted(sent)))
    out.rows.append(row("emails to unusable (injected) addresses", 0, len(set(sent) & unusable)))

    svc.run_once("compress", "compress")
    out.rows.append(row("compress run exit code", 0, svc.exit_codes["compress"]))

    # The API over what ingest stored.
    t = time.monotonic()
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        svc.tokens = {s: keys.create(conn, name=f"hostile-{s}", scopes=s) for s in api.KEYS[1:]}
        svc.tokens["all"] = keys.create(conn, name="hostile-all", scopes="read,pii,admin")
        shown = conn.execute(
            "SELECT r.ride_id, r.user_id FROM daily.rides r JOIN daily.riders u USING (user_id)"
            " WHERE u.address_line IS NOT NULL AND u.email_invalid IS NULL"
            " AND r.bike_serial LIKE 'HB%%' ORDER BY r.ride_id LIMIT 1"
        ).fetchone()
        others = conn.execute(
            "SELECT ride_id FROM daily.rides WHERE ride_id <> %s ORDER BY ride_id LIMIT 4",
            (shown["ride_id"],),
        ).fetchall()
    target = api.Target(
        ride_id=shown["ride_id"],
        deletable=tuple(r["ride_id"] for r in others),
        rider=feed.riders[shown["user_id"]],
        day=time.strftime("%Y-%m-%d", time.gmtime()),
    )
    url = svc.url("api")
    out.rows += api.authorization(url, svc.tokens | {"none": ""}, target, feed.personal)
    out.rows += api.fuzz(url, svc.tokens["all"], examples)
    out.seconds["api"] = time.monotonic() - t

    svc.wait_http("dashboard", "/health")
    page = httpx.get(svc.url("dashboard") + "/", timeout=30)
    out.rows.append(row("dashboard answers", 200, page.status_code))
