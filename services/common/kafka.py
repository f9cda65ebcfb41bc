"""confluent-kafka client configuration and topic administration from Settings."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from services.common.config import ConfigError, Settings

log = logging.getLogger(__name__)


_LIBRDKAFKA_LOG = logging.getLogger("librdkafka")


def _base(settings: Settings) -> dict[str, Any]:
    return {"bootstrap.servers": settings.require_kafka()} | security_config(settings)


def security_config(settings: Settings) -> dict[str, Any]:
    """TLS and SASL client settings for a cluster that wants them (MSK with SCRAM)."""
    conf: dict[str, Any] = {}
    if settings.kafka_security_protocol:
        conf["security.protocol"] = settings.kafka_security_protocol
    if settings.kafka_sasl_mechanism:
        conf["sasl.mechanism"] = settings.kafka_sasl_mechanism
        conf["sasl.username"] = settings.kafka_sasl_username or ""
        password = settings.kafka_sasl_password
        conf["sasl.password"] = password.get_secret_value() if password else ""
    return conf


def _admin(settings: Settings) -> AdminClient:
    # Quiet: an unreachable broker is reported once, as a ConfigError, not per retry on stderr.
    return AdminClient(
        _base(settings) | {"log_level": 0, "socket.connection.setup.timeout.ms": 3000}
    )


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """A durable, ordered producer: acks=all with idempotence, batched with lz4."""
    conf = _base(settings) | {
        "logger": _LIBRDKAFKA_LOG,  # librdkafka's own logs join the structured ones
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": "lz4",
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
    }
    return conf | overrides


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A manual-commit consumer; session timings come from settings when set (local broker)."""
    conf = _base(settings) | {
        "logger": _LIBRDKAFKA_LOG,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # The embedded broker answers "latest" offset queries wrongly: always start from earliest.
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "partition.assignment.strategy": "range",
    }
    if settings.kafka_session_timeout_ms is not None:
        conf["session.timeout.ms"] = settings.kafka_session_timeout_ms
    if settings.kafka_heartbeat_interval_ms is not None:
        conf["heartbeat.interval.ms"] = settings.kafka_heartbeat_interval_ms
    if settings.kafka_fetch_wait_max_ms is not None:
        conf["fetch.wait.max.ms"] = settings.kafka_fetch_wait_max_ms
    if settings.kafka_fetch_queue_backoff_ms is not None:
        conf["fetch.queue.backoff.ms"] = settings.kafka_fetch_queue_backoff_ms
    return conf | overrides


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    """A Producer built from producer_config."""
    return Producer(producer_config(settings, **overrides))


def make_consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """A Consumer built from consumer_config."""
    return Consumer(consumer_config(settings, group_id, **overrides))


def topic_config(settings: Settings, topic: str) -> dict[str, str]:
    """Configuration of a topic the project creates: a week of retention; the dead letters,
    whose raw lines may hold a rider's details, only REJECTS_RETENTION_DAYS."""
    if topic == settings.topic_rejects:
        return {"retention.ms": str(round(settings.rejects_retention_days * 86_400_000))}
    return {"retention.ms": "604800000"}


def ensure_topics(
    settings: Settings, topics: list[str], partitions: int | None = None, timeout: float = 15.0
) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    admin = _admin(settings)
    existing = _topic_names(admin, settings, timeout)
    missing = [t for t in topics if t not in existing]
    if not missing:
        return
    n = partitions or settings.kafka_topic_partitions
    futures = admin.create_topics(
        [
            NewTopic(
                t,
                num_partitions=n,
                replication_factor=settings.kafka_topic_replication_factor,
                config=topic_config(settings, t),
            )
            for t in missing
        ]
    )
    for topic, fut in futures.items():
        try:
            fut.result(timeout)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
        log.info("created topic %s with %d partitions", topic, n)


def ping(settings: Settings, timeout: float = 5.0) -> None:
    """Raise ConfigError unless the broker answers a metadata request."""
    _topic_names(_admin(settings), settings, timeout)


def _topic_names(admin: AdminClient, settings: Settings, timeout: float) -> set[str]:
    """The topics the broker knows, or a ConfigError saying it cannot be reached."""
    try:
        return set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise ConfigError(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc.args[0]}"
        ) from exc
