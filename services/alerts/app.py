"""The faust app: events topic -> per-bike state table -> recorded, published alerts.

The agent is thin and works on what arrived together (up to BATCH_MAX events, waiting at most
BATCH_WITHIN_S for more): it runs the pure state machine over the events in order, then does
the I/O in this order:
1. insert the batch's alerts into daily.alerts in one statement (ON CONFLICT DO NOTHING),
   awaited;
2. publish them to the alerts topic;
3. write each changed bike's new state to the table (its changelog).
The batch's events are acknowledged only after all three, so if the worker dies anywhere in
between they are redelivered (offsets are committed only after faust flushes the changelog)
and recompute the same (ride_id, episode), which the unique key turns into a no-op. Doing 3
before 1 could lose an alert: the restored state would already count the reading as seen.

One insert per batch rather than per alert is what keeps a burst (a thousand riders out of
range in the same second) from queueing a thousand database round trips behind each other.

No event is acknowledged unaccounted for: an event that cannot be read, an alert the database
refuses, or any other error handling an event is kept in daily.rejects with its reason, and
the stream goes on to the next event.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import faust
import psycopg2

from services.alerts import codec, metrics, repository
from services.alerts.episodes import BikeState, EpisodeRules, apply
from services.alerts.models import Alert
from services.alerts.transport import Transport
from services.common import db
from services.common.config import Settings

log = logging.getLogger(__name__)

# Events handled together: at most this many, waiting at most this long for more. The wait is
# added to every alert's latency when the stream is quiet; under load a batch holds what
# arrived while the previous one was being written.
BATCH_MAX = 2000
BATCH_WITHIN_S = 0.02


class Unrecordable(Exception):
    """The database refused a row for good (bad data, a constraint): retrying cannot help."""


class Recorder:
    """The agent's database writes, on one thread with its own connection; retried until the
    database answers, because skipping an insert would lose an alert."""

    def __init__(self, settings: Settings, *, stale_after_s: float) -> None:
        self.settings = settings
        self.stale_after = timedelta(seconds=stale_after_s)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alerts-db")
        self._conn: psycopg2.extensions.connection | None = None

    async def insert_alerts(
        self, rows: list[tuple[Alert, datetime | None, datetime | None]]
    ) -> set[tuple[int, int]]:
        """Record (alert, observed_at, received_at) rows in one transaction; return the
        (ride_id, episode) of the new ones. Stale alerts (replayed old events) are kept as
        `expired`, never emailed. Raises Unrecordable when the database refuses a row."""
        now = datetime.now(UTC)
        records = []
        for alert, observed_at, received_at in rows:
            fresh = now - alert.detected_at <= self.stale_after
            status, error = ("pending", None) if fresh else ("expired", "stale: not emailed")
            records.append(
                repository.NewAlert(
                    alert, observed_at, received_at, status=status, last_error=error
                )
            )
        new: set[tuple[int, int]] = await self._run(
            lambda conn: repository.insert_alerts(conn, rows=records)
        )
        stale = sum(r.status == "expired" and (r.alert.ride_id, r.alert.episode) in new
                    for r in records)  # fmt: skip
        if stale:
            metrics.EXPIRED.labels("stale_on_arrival").inc(stale)
        return new

    async def insert_alert(
        self, alert: Alert, observed_at: datetime | None, received_at: datetime | None = None
    ) -> bool:
        """Record one alert; True when it is new (see insert_alerts)."""
        return bool(await self.insert_alerts([(alert, observed_at, received_at)]))

    async def insert_rejects(self, rejects: list[dict[str, Any]]) -> None:
        """Keep events that could not be handled in daily.rejects, in one transaction (one by
        one when the database refuses one of them)."""
        if not rejects:
            return

        def write(conn: psycopg2.extensions.connection) -> None:
            for fields in rejects:
                repository.insert_reject(conn, **fields)

        try:
            await self._run(write)
        except Unrecordable:
            for fields in rejects:
                await self.insert_reject(**fields)

    async def insert_reject(self, **fields: Any) -> None:
        """Keep an event that could not be handled in daily.rejects."""
        try:
            await self._run(lambda conn: repository.insert_reject(conn, **fields))
        except Unrecordable as exc:
            log.error("alerts reject not recorded", extra={"reason": fields.get("reason"),
                                                           "error": str(exc)[:200]})  # fmt: skip

    async def _run(self, work: Callable[[psycopg2.extensions.connection], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._retry, work)

    def _retry(self, work: Callable[[psycopg2.extensions.connection], Any]) -> Any:
        delay = 0.1
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    dsn = self.settings.require_database()
                    self._conn = db.connect(dsn, application_name="alerts")
                with db.transaction(self._conn):
                    return work(self._conn)
            except (
                psycopg2.DataError,
                psycopg2.IntegrityError,
                psycopg2.ProgrammingError,
                psycopg2.NotSupportedError,
            ) as exc:
                # Not retryable: this row can never be written. The caller records why.
                raise Unrecordable(db.error_line(exc)) from exc
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                log.error("alerts database unavailable", extra={"error": db.error_line(exc)})
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def close(self) -> None:
        """Stop the database thread and close its connection."""
        self._pool.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()


def faust_brokers(bootstrap: str) -> list[str]:
    """faust's broker URLs for a comma-separated bootstrap list."""
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """TLS/SASL credentials for aiokafka, mirroring services.common.kafka.security_config."""
    tls = (
        ssl.create_default_context() if "SSL" in (settings.kafka_security_protocol or "") else None
    )
    if settings.kafka_sasl_mechanism:
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=tls,
        )
    return faust.SSLCredentials(tls) if tls is not None else None


def create_app(
    settings: Settings,
    *,
    partitions: int,
    recorder: Recorder,
    on_alert: Callable[[], None],
    replication_factor: int = 1,
    current: Callable[[], Settings] | None = None,
) -> faust.App:
    """The faust app with its events agent and per-bike table; `current` gives the settings
    in force now (run-time changes), read for every batch of events."""
    conf: dict[str, Any] = {}
    if settings.kafka_session_timeout_ms is not None:
        conf["broker_session_timeout"] = settings.kafka_session_timeout_ms / 1000
    if settings.kafka_heartbeat_interval_ms is not None:
        conf["broker_heartbeat_interval"] = settings.kafka_heartbeat_interval_ms / 1000
    credentials = faust_credentials(settings)
    if credentials is not None:
        conf["broker_credentials"] = credentials
    datadir = settings.state_dir / "alerts" / settings.alerts_app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)  # faust makes only the last level
    app = faust.App(
        settings.alerts_app_id,
        broker=faust_brokers(settings.require_kafka()),
        store="memory://",  # the table lives in memory and is restored from its changelog
        datadir=str(datadir),
        processing_guarantee="at_least_once",  # exactly_once needs transactions the broker lacks
        topic_partitions=partitions,
        topic_replication_factor=replication_factor,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        **conf,
    )
    app.transport = Transport(app.conf.broker_consumer, app)  # before anything creates one
    events = app.topic(
        settings.topic_events, key_serializer="raw", value_serializer="raw", partitions=partitions
    )
    alerts_topic = app.topic(settings.topic_alerts, key_serializer="raw", value_serializer="raw")
    # Keyed by bike serial, like the events topic, so the table is co-partitioned with it.
    bikes = app.Table("bikes", partitions=partitions, key_type=str)  # JSON keys and values
    follow = current or (lambda: settings)
    ruled: list[tuple[Settings, EpisodeRules]] = [(settings, EpisodeRules.from_settings(settings))]

    def rules_now() -> EpisodeRules:
        # Rebuilt only when the settings object changes (a run-time change), not per event.
        now = follow()
        if ruled[0][0] is not now:
            ruled[0] = (now, EpisodeRules.from_settings(now))
        return ruled[0][1]

    async def handle_batch(events: list[Any]) -> None:
        received_at = datetime.now(UTC)
        rejects: list[dict[str, Any]] = []
        states: dict[str, tuple[BikeState, Any]] = {}  # bike -> new state, its last event
        found: list[tuple[Any, Alert]] = []  # (confirming event, alert), in stream order
        rules = rules_now()  # a run-time change applies from the next batch
        # Counted once the batch is fully handled (alerts recorded, states written), so the
        # metric never runs ahead of what the database shows.
        handled: Counter[str] = Counter()

        def reject(event: Any, reason: str, detail: str | None = None) -> None:
            msg = event.message
            rejects.append({
                "topic": msg.topic, "partition": msg.partition, "offset": msg.offset,
                "key": event.key, "raw": event.value or b"", "reason": reason, "detail": detail,
            })  # fmt: skip

        for event in events:
            try:
                parsed = codec.parse_event(event.value)
            except codec.BadEvent as exc:
                metrics.REJECTED.labels(str(exc)).inc()
                reject(event, str(exc))
                continue
            if parsed is None:
                handled["ignored"] += 1
                continue
            try:
                key = event.key.decode() if event.key else parsed.bike_serial
                if key in states:
                    state: BikeState | None = states[key][0]
                else:
                    doc = bikes.get(key)
                    state = codec.state_from_dict(doc) if doc else None
                out = apply(state, parsed, rules)
            except Exception as exc:
                # Anything else would escape the agent with the event acknowledged anyway:
                # keep the event and why, and go on with the stream.
                processing_error(event, exc, reject)
                continue
            if out.state is not state and out.state is not None:
                states[key] = (out.state, event)
            if out.alert is not None:
                found.append((event, out.alert))
            handled[out.what] += 1

        try:
            recorded = await record(found, received_at, reject)
        except Exception as exc:  # not a refusal of one row (that is Unrecordable)
            for event, alert in found:
                processing_error(event, exc, reject)
                # Keep the bike's state from before this batch: its next readings raise the
                # alert again rather than count it as raised.
                states.pop(event.key.decode() if event.key else alert.bike_serial, None)
            recorded = []
        for event, alert in recorded:
            try:
                await alerts_topic.send(
                    key=alert.bike_serial.encode(), value=codec.alert_payload(alert)
                )
            except Exception as exc:
                processing_error(event, exc, reject)
        # Only now, after the alerts are in the database: the bikes' new states.
        for key, (state, event) in states.items():
            try:
                doc = codec.state_to_dict(state)
                bikes.data[key] = doc
                # Table.__setitem__ takes the changelog partition from the event being
                # processed, which a batch does not have: the bike's last event's partition
                # (the table is co-partitioned with the events topic).
                bikes.send_changelog(event.message.partition, key, doc)
            except Exception as exc:
                processing_error(event, exc, reject)
        await recorder.insert_rejects(rejects)
        for what, n in handled.items():
            metrics.EVENTS.labels(what).inc(n)

    async def record(
        found: list[tuple[Any, Alert]], received_at: datetime, reject: Callable[..., None]
    ) -> list[tuple[Any, Alert]]:
        """Insert the alerts; return those in the database (new or already there), to publish."""
        if not found:
            return []
        refused: set[tuple[int, int]] = set()

        def row(event: Any, alert: Alert) -> tuple[Alert, datetime | None, datetime]:
            ts = event.message.timestamp
            return alert, datetime.fromtimestamp(ts, UTC) if ts else None, received_at

        try:
            new = await recorder.insert_alerts([row(e, a) for e, a in found])
        except Unrecordable:
            # One of them is refused for good: record them one by one to keep the others.
            new = set()
            for event, alert in found:
                try:
                    if await recorder.insert_alerts([row(event, alert)]):
                        new.add((alert.ride_id, alert.episode))
                except Unrecordable as exc:
                    # Kept with the event that confirmed it; the bike's state still moves on,
                    # as a replay would meet the same refusal.
                    metrics.UNRECORDED.labels("alert_not_recorded").inc()
                    log.error("alert not recorded", extra={"ride_id": alert.ride_id,
                                                           "episode": alert.episode})  # fmt: skip
                    reject(event, "alert_not_recorded", str(exc))
                    refused.add((alert.ride_id, alert.episode))
        for _, alert in found:
            if (alert.ride_id, alert.episode) in new:
                metrics.RAISED.labels(alert.kind).inc()
                log.info(
                    "alert raised",
                    extra={"ride_id": alert.ride_id, "episode": alert.episode,
                           "kind": alert.kind, "bike_serial": alert.bike_serial},
                )  # fmt: skip
        if new:
            on_alert()
        return [(e, a) for e, a in found if (a.ride_id, a.episode) not in refused]

    def processing_error(event: Any, exc: Exception, reject: Callable[..., None]) -> None:
        metrics.UNRECORDED.labels("processing_error").inc()
        log.error(
            "event handling failed",
            exc_info=exc,
            extra={"offset": event.message.offset},
        )
        reject(event, "processing_error", f"{type(exc).__name__}: {str(exc)[:300]}")

    @app.agent(events, name="alerts")
    async def process(stream: faust.StreamT[Any]) -> None:
        # take_events acknowledges a batch's events only once the body below has finished.
        batches = cast(faust.Stream[Any], stream).take_events(BATCH_MAX, within=BATCH_WITHIN_S)
        async for batch in batches:
            await handle_batch(list(batch))

    return app
