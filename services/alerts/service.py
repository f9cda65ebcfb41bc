"""Run the alerts service: migrate, topics, metrics server, notifier threads, faust worker."""

from __future__ import annotations

import logging
from datetime import timedelta

import faust
from confluent_kafka.admin import AdminClient
from prometheus_client import start_http_server

from services.alerts.app import Recorder, create_app
from services.alerts.notifier import Notifier
from services.alerts.sender import OutboxSender, check_override, sender_factory
from services.common import db
from services.common.config import ConfigError, Settings
from services.common.kafka import ensure_topics
from services.common.runtime import RuntimeSettings
from services.common.runtime_store import loader

log = logging.getLogger(__name__)


def topic_partitions(settings: Settings, topic: str) -> int:
    """How many partitions the topic has (the table must have as many)."""
    admin = AdminClient({"bootstrap.servers": settings.require_kafka()})
    meta = admin.list_topics(topic, timeout=15).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        raise ConfigError(f"topic {topic} is not available: {meta.error if meta else 'missing'}")
    return len(meta.partitions)


def check_codecs() -> None:
    """Fail at start, not at the first batch: ingest's producer compresses with lz4, which
    aiokafka (under faust) reads only with cramjam installed (the `aiokafka[lz4]` extra)."""
    from aiokafka.codec import has_lz4

    if not has_lz4():
        raise ConfigError(
            "cannot read lz4-compressed events: install cramjam (pip install 'aiokafka[lz4]')"
        )


def run(
    settings: Settings,
    *,
    senders: int = 4,
    replication_factor: int = 1,
) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    check_codecs()
    make_sender = sender_factory(settings, threads=senders)
    mode = "outbox" if isinstance(make_sender(), OutboxSender) else "ses"
    if mode == "ses":
        check_override(settings)
    conn = db.connect(settings.require_database(), application_name="alerts")
    try:
        db.prepare_schema(conn, settings)
    finally:
        conn.close()
    ensure_topics(settings, [settings.topic_events, settings.topic_alerts])
    partitions = topic_partitions(settings, settings.topic_events)

    notifier = Notifier(settings, make_sender, workers=senders)
    recorder = Recorder(settings, stale_after_s=settings.alert_stale_after_s)

    def follow(current: Settings) -> None:
        # Thresholds and episode lengths are read per event (create_app's `current`); the
        # stale window by the recorder and the notifier: each attribute swap is atomic.
        recorder.stale_after = timedelta(seconds=current.alert_stale_after_s)
        notifier.settings = current

    runtime = RuntimeSettings(
        settings, loader(settings, application_name="alerts"), on_change=follow
    ).start()
    app = create_app(
        settings,
        partitions=partitions,
        recorder=recorder,
        on_alert=notifier.wake,
        replication_factor=replication_factor,
        current=runtime.current,
    )
    server, _ = start_http_server(settings.alerts_metrics_port, addr=settings.metrics_bind)
    log.info(
        "alerts service starting",
        extra={
            "topic": settings.topic_events,
            "partitions": partitions,
            "email": mode,
            "outbox": str(settings.email_outbox_dir) if mode == "outbox" else None,
            "metrics_port": server.server_port,
        },
    )
    notifier.start()
    worker = faust.Worker(
        app,
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
        loglevel=logging.getLevelName(logging.getLogger().level),
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        runtime.stop()
        notifier.stop()
        recorder.close()
        server.shutdown()
    return 0
