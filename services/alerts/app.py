"""The faust app: events topic -> per-bike state table -> recorded, published alerts.

The agent is thin: parse, run the pure state machine, then do the I/O in this order:
1. insert the alert into daily.alerts (ON CONFLICT DO NOTHING), awaited;
2. publish it to the alerts topic;
3. write the bike's new state to the table (its changelog).
If the worker dies anywhere in between, the event is redelivered (offsets are committed only
after faust flushes the changelog) and recomputes the same (ride_id, episode), which the
unique key turns into a no-op. Doing 3 before 1 could lose an alert: the restored state
would already count the reading as seen.

No event is acknowledged unaccounted for: an event that cannot be read, an alert the database
refuses, or any other error handling an event is kept in daily.rejects with its reason, and
the stream goes on to the next event.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import psycopg2

from services.alerts import codec, metrics, repository
from services.alerts.episodes import EpisodeRules, apply
from services.alerts.models import Alert
from services.alerts.transport import Transport
from services.common import db
from services.common.config import Settings

log = logging.getLogger(__name__)


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

    async def insert_alert(self, alert: Alert, observed_at: datetime | None) -> bool:
        """Record the alert; True when it is new. Stale alerts (replayed old events) are kept
        as `expired`, never emailed. Raises Unrecordable when the database refuses the row."""
        fresh = datetime.now(UTC) - alert.detected_at <= self.stale_after
        status, error = ("pending", None) if fresh else ("expired", "stale: not emailed")
        new = await self._run(
            lambda conn: repository.insert_alert(
                conn, alert=alert, observed_at=observed_at, status=status, last_error=error
            )
        )
        if new and not fresh:
            metrics.EXPIRED.labels("stale_on_arrival").inc()
        return bool(new)

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
                raise Unrecordable(f"{exc.pgcode}: {str(exc).strip()[:500]}") from exc
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                log.error("alerts database unavailable", extra={"error": str(exc)})
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
    in force now (run-time changes), read for every event."""
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

    async def reject(event: Any, reason: str, detail: str | None = None) -> None:
        msg = event.message
        await recorder.insert_reject(
            topic=msg.topic, partition=msg.partition, offset=msg.offset,
            key=event.key, raw=event.value or b"", reason=reason, detail=detail,
        )  # fmt: skip

    async def handle(event: Any) -> None:
        msg = event.message
        try:
            parsed = codec.parse_event(event.value)
        except codec.BadEvent as exc:
            reason = str(exc)
            metrics.REJECTED.labels(reason).inc()
            await reject(event, reason)
            return
        if parsed is None:
            metrics.EVENTS.labels("ignored").inc()
            return
        key = event.key.decode() if event.key else parsed.bike_serial
        doc = bikes.get(key)
        state = codec.state_from_dict(doc) if doc else None
        out = apply(state, parsed, rules_now())
        if out.alert is not None:
            observed_at = datetime.fromtimestamp(msg.timestamp, UTC) if msg.timestamp else None
            try:
                new = await recorder.insert_alert(out.alert, observed_at)
            except Unrecordable as exc:
                # Kept with the event that confirmed it; the bike's state still moves on, as a
                # replay would meet the same refusal.
                metrics.UNRECORDED.labels("alert_not_recorded").inc()
                log.error("alert not recorded", extra={"ride_id": out.alert.ride_id,
                                                       "episode": out.alert.episode})  # fmt: skip
                await reject(event, "alert_not_recorded", str(exc))
                if out.state is not None:
                    bikes[key] = codec.state_to_dict(out.state)
                metrics.EVENTS.labels(out.what).inc()
                return
            if new:
                metrics.RAISED.labels(out.alert.kind).inc()
                log.info(
                    "alert raised",
                    extra={"ride_id": out.alert.ride_id, "episode": out.alert.episode,
                           "kind": out.alert.kind, "bike_serial": out.alert.bike_serial},
                )  # fmt: skip
                on_alert()
            await alerts_topic.send(
                key=out.alert.bike_serial.encode(), value=codec.alert_payload(out.alert)
            )
        if out.state is not state and out.state is not None:
            bikes[key] = codec.state_to_dict(out.state)
        metrics.EVENTS.labels(out.what).inc()

    async def handle_safely(event: Any) -> None:
        try:
            await handle(event)
        except Exception as exc:
            # Anything else would escape the agent with the event acknowledged anyway: keep
            # the event and why, and go on with the stream.
            metrics.UNRECORDED.labels("processing_error").inc()
            log.exception("event handling failed", extra={"offset": event.message.offset})
            await reject(event, "processing_error", f"{type(exc).__name__}: {str(exc)[:300]}")

    @app.agent(events, name="alerts")
    async def process(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await handle_safely(event)

    return app
