"""The ingest consumer: raw topics -> daily schema, exactly once, plus clean events.

Each partition's next offset and its bikes' session state are written in the same database
transaction as the rows they produced; on assignment the consumer seeks to the stored offset
and restores the state. A crash, a replay or a rebalance therefore never loses or doubles a
row. Kafka commits are made afterwards only so that the usual lag tools see progress.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg2
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from psycopg2.errors import CheckViolation

from services.common import db
from services.common.config import Settings
from services.common.kafka import ensure_topics, make_consumer, make_producer
from services.ingest import metrics, repository
from services.ingest.batch import Batch
from services.ingest.parser import Parser
from services.ingest.sessionizer import Sessionizer

log = logging.getLogger(__name__)

_DB_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)
# librdkafka's default message.max.bytes, less room for the record's own overhead: a dead
# letter past it is refused by the producer, so it is kept in daily.rejects only.
_MAX_DEAD_LETTER_BYTES = 1_000_000 - 4_096
_MAX_KNOWN_HOURS = 10_000


# A write that finds no partition for an hour is tried this often (about 2.5 minutes).
CHECK_VIOLATION_ATTEMPTS = 14


@dataclass
class WriteJob:
    """A batch and what was snapshotted for it when it was handed to the writer."""

    batch: Batch
    expected: dict[tuple[str, int], int | None]
    states: dict[int, dict[str, Any]]
    event_times: dict[tuple[str, int], str]  # committed event time of each partition
    evicted: dict[int, set[str]] = field(default_factory=dict)


@dataclass
class RunStats:
    """What one run did (returned for tests, backfills and benchmarks)."""

    consumed: int = 0
    readings: int = 0
    rejects: int = 0
    batches: int = 0
    first_message_at: float | None = None  # monotonic
    last_commit_at: float | None = None  # monotonic
    first_message_wall: float | None = None  # epoch seconds, comparable across processes
    last_commit_wall: float | None = None
    latencies_ms: list[float] = field(default_factory=list)  # produce -> commit, if tracked
    # Stored size of the session state rows each batch rewrote (bytes), if tracked.
    state_bytes: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The figures a backfill or a benchmark reports."""
        out: dict[str, Any] = {
            "consumed": self.consumed,
            "readings": self.readings,
            "rejects": self.rejects,
            "batches": self.batches,
            "first_message_wall": self.first_message_wall,
            "last_commit_wall": self.last_commit_wall,
        }
        if self.first_message_at is not None and self.last_commit_at is not None:
            seconds = self.last_commit_at - self.first_message_at
            out["seconds"] = round(seconds, 3)
            out["messages_per_s"] = round(self.consumed / seconds) if seconds > 0 else None
        if self.latencies_ms:
            ordered = sorted(self.latencies_ms)
            for q in (50, 90, 99):
                out[f"latency_p{q}_ms"] = round(
                    ordered[min(len(ordered) - 1, len(ordered) * q // 100)], 1
                )
            out["latency_max_ms"] = round(ordered[-1], 1)
        if self.state_bytes:
            n = len(self.state_bytes)
            quarters = [
                self.state_bytes[n * q // 4 : max(n * (q + 1) // 4, n * q // 4 + 1)]
                for q in range(4)
            ]
            out["state_bytes_max"] = max(self.state_bytes)
            out["state_bytes_by_quarter"] = [round(sum(q) / len(q)) for q in quarters]
        return out


class IngestService:
    """One ingest process: a consumer-group member with its sink."""

    def __init__(
        self, settings: Settings, *, track_latency: bool = False, track_state: bool = False
    ) -> None:
        self.settings = settings
        self.track_latency = track_latency
        self.track_state = track_state  # keep each batch's state size (a list per batch)
        self.group = settings.ingest_group
        self.topics = (
            [settings.topic_bikes, settings.topic_telemetry]
            if settings.ingest_split_topics
            else [settings.topic_raw]
        )
        self.sessions = Sessionizer(
            Parser(max_future_s=settings.ingest_max_future_s),
            split_topics=settings.ingest_split_topics,
            publish_events=settings.ingest_publish_events,
            max_held=settings.ingest_max_held_per_bike,
        )
        self.stats = RunStats()
        self.stop = threading.Event()
        self.conn = db.connect(settings.require_database(), application_name="deloton-ingest")
        self.consumer = make_consumer(
            settings,
            self.group,
            **{
                "queued.min.messages": settings.ingest_queued_min_messages,
                "fetch.max.bytes": settings.ingest_fetch_max_bytes,
                "max.partition.fetch.bytes": settings.ingest_partition_fetch_max_bytes,
            },
        )
        self.producer = make_producer(settings) if settings.ingest_publish_events else None
        self.positions: dict[tuple[str, int], int | None] = {}  # stored next offset per partition
        self.known_hours: set[str] = set()
        self.batch = Batch()
        self._published = 0  # events of self.batch already handed to the producer
        self._rejects_published = 0
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ingest-writer")
        self._inflight: tuple[Batch, Future[tuple[int, dict[int, int]]], float] | None = None
        self._fresh: dict[int, float] = {}  # partition -> last time it was read to its end
        self.partition_counts: dict[str, int] = {}  # of the topics read, for the unkeyed warning
        self._unkeyed_warned = -math.inf  # monotonic time of the last warning

    # --- assignment ------------------------------------------------------------------------

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._wait_write()
        tps = [(tp.topic, tp.partition) for tp in partitions]
        starts = self._restore(tps)
        for tp in partitions:
            tp.offset = starts[(tp.topic, tp.partition)]
        consumer.assign(partitions)
        log.info("assigned", extra={"partitions": [f"{t}[{p}]" for t, p in tps]})
        self._count_partitions(consumer)

    def _count_partitions(self, consumer: Any) -> None:
        for topic in self.topics:
            try:
                meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
            except Exception as exc:  # only the unkeyed warning depends on it
                log.debug("no metadata for %s: %s", topic, exc)
                continue
            if meta is not None and meta.partitions:
                self.partition_counts[topic] = len(meta.partitions)

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self.flush(wait=True)
        for tp in partitions:
            self.positions.pop((tp.topic, tp.partition), None)
            with contextlib.suppress(KeyError):
                metrics.LAG.remove(tp.topic, str(tp.partition))
        for p in {tp.partition for tp in partitions}:
            if not any(pp == p for _, pp in self.positions):
                self.sessions.drop_partition(p)
        consumer.unassign()
        log.info(
            "revoked", extra={"partitions": [f"{tp.topic}[{tp.partition}]" for tp in partitions]}
        )

    def _load(
        self, tps: list[tuple[str, int]]
    ) -> tuple[dict[tuple[str, int], int], dict[int, dict[str, Any]]]:
        while True:
            try:
                with db.transaction(self.conn) as cur:
                    offsets = repository.load_offsets(cur, group=self.group, partitions=tps)
                    states = repository.load_state(
                        cur, group=self.group, partitions={p for _, p in tps}
                    )
                return offsets, states
            except _DB_ERRORS as exc:
                self._reconnect(exc)

    # --- the loop --------------------------------------------------------------------------

    def run(self, until_idle: float | None = None) -> RunStats:
        """Consume until stopped (SIGTERM/SIGINT), or until idle for `until_idle` seconds."""
        s = self.settings
        ensure_topics(s, [*self.topics, s.topic_events, s.topic_rejects])
        self.consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        batch_max_s = s.ingest_batch_max_ms / 1000
        last_msg = time.monotonic()
        last_flush = time.monotonic()
        last_tick = 0.0
        try:
            while not self.stop.is_set():
                msgs = self.consumer.consume(min(10_000, s.ingest_batch_size), 0.05)
                now = time.monotonic()
                if self._inflight is not None and self._inflight[1].done():
                    self._wait_write()
                if msgs:
                    last_msg = now
                    self._process(msgs)
                if now - last_tick >= 1.0:
                    last_tick = now
                    self._tick()
                if len(self.batch) and (
                    len(self.batch) >= s.ingest_batch_size or now - last_flush >= batch_max_s
                ):
                    self.flush()
                    last_flush = time.monotonic()
                elif not len(self.batch):
                    last_flush = now
                if (
                    until_idle is not None
                    and not msgs
                    and self._inflight is None
                    and self.positions
                    and now - last_msg >= until_idle
                    and self._caught_up()
                ):
                    break
        finally:
            try:
                self.flush(wait=True)
            finally:
                self.close()
        return self.stats

    def _process(self, msgs: list[Any]) -> None:
        process = self.sessions.process
        batch = self.batch
        n = 0
        if self.stats.first_message_at is None:
            self.stats.first_message_at = time.monotonic()
            self.stats.first_message_wall = time.time()
        created = batch.created_ms if self.track_latency else None
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error: %s", err)
                continue
            process(batch, msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value())
            if created is not None:
                created.append(msg.timestamp()[1])
            n += 1
        self.stats.consumed += n
        metrics.CONSUMED.inc(n)
        self._publish()

    def _tick(self) -> None:
        """Once a second: lag, silent rides, held readings."""
        lags = {tp: self._lag(*tp) for tp in self.positions}
        for (topic, partition), lag in lags.items():
            if lag is not None:
                metrics.LAG.labels(topic, str(partition)).set(lag)
        # Silence is judged per bike, on when its lines were read, and only up to the last
        # moment its partition was read to the end (on every topic read).
        clock = time.monotonic()
        self.sessions.mark_seen(self.batch.dirty, clock)
        fresh = self._fresh
        for p in {p for _, p in lags}:
            if all(lag == 0 for (_, pp), lag in lags.items() if pp == p):
                fresh[p] = clock
        self.sessions.close_silent(self.batch, fresh, self.settings.ride_silence_s)
        now = self.sessions.partition_now
        if now:
            if self.settings.ingest_split_topics:
                bikes_topic = self.settings.topic_bikes
                caught_up = {p for (t, p), lag in lags.items() if t == bikes_topic and lag == 0}
                self.sessions.expire_held(self.batch, now, caught_up)
            idle_s = self.settings.ingest_evict_idle_s
            if idle_s:
                # A scan of the bikes kept, once a second (as close_silent): eviction is what
                # keeps their number, and so this scan, bounded.
                metrics.BIKES_EVICTED.inc(self.sessions.evict_idle(self.batch, now, idle_s))
        metrics.BIKES_TRACKED.set(len(self.sessions.bikes))

    def _lag(self, topic: str, partition: int) -> int | None:
        """Messages behind the high watermark of the last fetch; None before the first fetch."""
        tp = TopicPartition(topic, partition)
        try:
            _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            (pos,) = self.consumer.position([tp])
        except Exception:
            return None
        if high < 0:
            return None
        stored = self.positions.get((topic, partition)) or 0
        return max(0, high - max(pos.offset, stored))

    def _caught_up(self) -> bool:
        return all(self._lag(t, p) == 0 for t, p in self.positions)

    def _publish(self) -> None:
        """Hand new events and dead letters to the producer (acknowledged before the commit)."""
        if self.producer is None:
            return
        batch = self.batch
        events_topic = self.settings.topic_events
        for key, value in batch.events[self._published :]:
            self._produce(events_topic, value, key)
        self._published = len(batch.events)
        rejects_topic = self.settings.topic_rejects
        for r in batch.rejects[self._rejects_published :]:
            value = orjson.dumps(
                {
                    "topic": r.topic,
                    "partition": r.partition,
                    "offset": r.offset,
                    "reason": r.reason,
                    "detail": r.detail,
                    "bike_serial": r.bike_serial,
                    "raw": r.raw.decode("utf-8", "replace"),
                }
            )
            if len(value) + len(r.key or b"") > _MAX_DEAD_LETTER_BYTES:
                # The raw line is kept whole in daily.rejects; the topic cannot take it.
                metrics.DEAD_LETTERS_DROPPED.labels("too_large").inc()
                log.warning(
                    "dead letter of %d bytes kept in daily.rejects only",
                    len(value),
                    extra={"topic": r.topic, "partition": r.partition, "offset": r.offset},
                )
                continue
            self._produce(rejects_topic, value, r.key, _delivery_report)
        self._rejects_published = len(batch.rejects)
        self.producer.poll(0)

    def _produce(
        self, topic: str, value: bytes, key: bytes | None, on_delivery: Any = None
    ) -> None:
        """Produce one message, waiting for room when the local queue is full.

        Any other refusal is counted and logged, never raised: the rows of the batch matter
        more than one event or dead letter, and raising here would replay the batch for ever.
        """
        assert self.producer is not None
        while True:
            try:
                if on_delivery is None:
                    self.producer.produce(topic, value, key)
                else:
                    self.producer.produce(topic, value, key, on_delivery=on_delivery)
                return
            except BufferError:
                self.producer.poll(0.05)
            except KafkaException as exc:
                metrics.PRODUCE_FAILED.labels(topic).inc()
                log.warning("message of %d bytes not produced to %s: %s", len(value), topic, exc)
                return

    # --- the sink --------------------------------------------------------------------------

    def flush(self, wait: bool = False) -> None:
        """Hand the current batch to the writer; with `wait`, also wait until it committed.

        Events are acknowledged by the broker before the batch is handed over, so a committed
        row always has its event published (at least once). One batch at most is in flight:
        batches commit in order and each one's expected offsets are its predecessor's.
        """
        batch = self.batch
        if len(batch):
            started = time.monotonic()
            self._publish()
            if self.producer is not None:
                while self.producer.flush(10) > 0:
                    log.warning("events not yet acknowledged by the broker; waiting")
            job = self._prepare(batch)
            self._wait_write()
            if self.batch is batch:  # not discarded by a re-seek while waiting
                for tp, offset in batch.offsets.items():
                    self.positions[tp] = offset
                self._inflight = (batch, self._writer.submit(self._write, job), started)
                self._reset_batch()
        if wait:
            self._wait_write()

    def _wait_write(self) -> None:
        """Collect the batch in flight: account for it, or re-seek if it was fenced."""
        if self._inflight is None:
            return
        batch, future, started = self._inflight
        self._inflight = None
        try:
            written, stored = future.result()
        except repository.FencedError as exc:
            metrics.FENCED.inc()
            log.warning("batch dropped, partitions moved: %s", exc)
            self._reset_batch()
            self._reseek()
            return
        except repository.LateReadingsError as exc:
            # Read the batch again from the stored offsets, rejecting those readings this time.
            log.warning("batch re-read: %s", exc)
            self.sessions.reject_too_late(exc.late)
            self._reset_batch()
            self._reseek()
            return
        if self.track_state:
            self.stats.state_bytes.append(sum(stored.values()))
        metrics.STATE_WRITTEN_BYTES.observe(written)
        for partition, size in stored.items():
            metrics.STATE_BYTES.labels(str(partition)).set(size)
        self._commit_kafka(batch)
        self.stats.readings += len(batch.readings)
        self.stats.rejects += len(batch.rejects)
        self.stats.batches += 1
        self.stats.last_commit_at = time.monotonic()
        self.stats.last_commit_wall = time.time()
        if batch.created_ms:
            now_ms = self.stats.last_commit_wall * 1000
            self.stats.latencies_ms.extend(now_ms - c for c in batch.created_ms)
        metrics.READINGS.inc(len(batch.readings))
        metrics.RIDES.inc(len(batch.rides))
        if mismatched := sum(r.announced_serial is not None for r in batch.rides):
            metrics.SERIAL_MISMATCHES.inc(mismatched)
        metrics.EVENTS.inc(len(batch.events))
        for rider, _ in batch.riders.values():
            if rider.email_invalid:
                metrics.INVALID_EMAILS.labels(rider.email_invalid).inc()
        for r in batch.rejects:
            metrics.REJECTED.labels(r.reason).inc()
        if batch.unkeyed:
            self._note_unkeyed(batch.unkeyed)
        metrics.BATCH_SIZE.observe(batch.messages)
        metrics.BATCH_SECONDS.observe(time.monotonic() - started)

    def _note_unkeyed(self, unkeyed: dict[str, int]) -> None:
        """Unkeyed messages on a topic of several partitions: counted, and a warning a minute."""
        for topic, n in unkeyed.items():
            partitions = self.partition_counts.get(topic, 1)
            if partitions < 2:
                continue  # the historical single stream: the partition is the bike
            metrics.UNKEYED.labels(topic).inc(n)
            now = time.monotonic()
            if now - self._unkeyed_warned >= 60:
                self._unkeyed_warned = now
                log.warning(
                    "%d unkeyed messages on topic %s, which has %d partitions: a producer "
                    "without keys spreads a stream over them and its lines lose their order "
                    "and their bike; key messages by bike serial or use one partition",
                    n,
                    topic,
                    partitions,
                )

    def _reset_batch(self) -> None:
        self.batch = Batch()
        self._published = 0
        self._rejects_published = 0

    def _prepare(self, batch: Batch) -> WriteJob:
        """Snapshot what the writer needs while the sessioniser moves on (main thread)."""
        self.sessions.mark_seen(batch.dirty, time.monotonic())
        partitions = {b.partition for k in batch.dirty if (b := self.sessions.bikes.get(k))}
        states = {p: self.sessions.dump_partition(p, batch.dirty) for p in partitions}
        expected = {tp: self.positions.get(tp) for tp in batch.offsets}
        # The sessioniser has read exactly this batch's messages so far: its event time per
        # partition is what these offsets commit to (compress judges silence by it).
        now = self.sessions.partition_now
        event_times = {tp: now[tp[1]] for tp in batch.offsets if tp[1] in now}
        return WriteJob(batch, expected, states, event_times, batch.evicted)

    def _write(self, job: WriteJob) -> tuple[int, dict[int, int]]:
        """One transaction for the whole batch, retried on connection loss (writer thread).

        Returns the bytes of session state written and each partition's stored state size.
        """
        backoff = 0.5
        stale = 0
        while True:
            try:
                return self._write_once(job)
            except _DB_ERRORS as exc:
                metrics.DB_RETRIES.inc()
                self._reconnect(exc, backoff)
                backoff = min(backoff * 2, 30)
            except CheckViolation:
                # No partition for a row: compress dropped an hour this process had cached.
                # Forget the cache; the next attempt creates what is missing, and finds out
                # whether those readings came too late for their ride's summary. An hour
                # compress has detached but not yet dropped keeps its name, so it cannot be
                # created again until compress settles it (seconds later, or at its next run
                # after a crash): wait for that with a backoff rather than exit.
                stale += 1
                if stale > CHECK_VIOLATION_ATTEMPTS:
                    raise
                log.warning("no partition for a reading's hour (attempt %d); checking again", stale)
                self.known_hours.clear()
                if stale > 1 and self.stop.wait(min(0.5 * 2 ** (stale - 2), 15.0)):
                    raise

    def _write_once(self, job: WriteJob) -> tuple[int, dict[int, int]]:
        batch = job.batch
        with db.transaction(self.conn) as cur:
            repository.advance_offsets(
                cur,
                group=self.group,
                expected=job.expected,
                new=batch.offsets,
                event_times=job.event_times,
            )
            repository.upsert_bikes(cur, bikes=batch.bikes)
            repository.upsert_riders(cur, riders=batch.riders)
            repository.insert_rides(cur, rides=batch.rides)
            repository.record_ride_feeds(cur, group=self.group, rides=batch.rides)
            repository.end_rides(cur, ends=batch.ride_ends)
            new_hours = batch.hours - self.known_hours
            created = repository.ensure_partitions(cur, hours=new_hours) if new_hours else []
            repository.copy_readings(cur, lines=batch.readings)
            droppable = [h for h in created if h <= self._retention_limit()]
            if droppable:
                # An old hour without a partition may be one retention dropped (a restart
                # forgets which); readings there of a ride already summarised came too late.
                late = repository.summarised_readings(cur, hours=droppable)
                if late:
                    raise repository.LateReadingsError(late)
            repository.drop_deleted(cur, ride_ids=batch.ride_ids)
            repository.insert_rejects(cur, rejects=batch.rejects)
            written, stored = repository.save_state(
                cur, group=self.group, states=job.states, evicted=job.evicted
            )
        if len(self.known_hours) > _MAX_KNOWN_HOURS:
            self.known_hours.clear()
        self.known_hours |= batch.hours
        return written, stored

    def _retention_limit(self) -> str:
        """The latest 'YYYY-MM-DD HH' whose partition compress's retention may have dropped."""
        hours = self.settings.retention_hours + 1
        return (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%d %H")

    def _commit_kafka(self, batch: Batch) -> None:
        try:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in batch.offsets.items()],
                asynchronous=True,
            )
        except Exception as exc:  # monitoring only: the database holds the real position
            log.debug("kafka commit failed: %s", exc)

    def _reseek(self) -> None:
        """Back to what the database holds: its offsets and session state."""
        for (t, p), start in self._restore(list(self.positions)).items():
            self.consumer.seek(TopicPartition(t, p, start))

    def _restore(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Load the stored offsets and sessions of these partitions; return where to start."""
        offsets, states = self._load(tps)
        for p in {p for _, p in tps}:
            self._fresh.pop(p, None)
            self.sessions.drop_partition(p)
            if p in states:
                self.sessions.load_partition(p, states[p])
        starts = {}
        for tp in tps:
            stored = offsets.get(tp)
            self.positions[tp] = stored
            starts[tp] = stored if stored is not None else OFFSET_BEGINNING
        return starts

    def _reconnect(self, exc: Exception, delay: float = 0.5) -> None:
        log.warning("database unavailable (%s); reconnecting in %.1fs", db.error_line(exc), delay)
        with contextlib.suppress(Exception):
            self.conn.close()
        while not self.stop.is_set():
            time.sleep(delay)
            try:
                self.conn = db.connect(
                    self.settings.require_database(), application_name="deloton-ingest"
                )
                return
            except Exception as again:
                log.warning("database still unavailable: %s", db.error_line(again))
                delay = min(delay * 2, 30)
        raise exc

    def close(self) -> None:
        """Leave the group and release connections."""
        try:
            self.consumer.close()
        finally:
            self._writer.shutdown(wait=True)
            if self.producer is not None:
                self.producer.flush(10)
            self.conn.close()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: finish the current batch, commit, leave the group."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())


def _delivery_report(err: KafkaError | None, msg: Any) -> None:
    """Delivery report of a dead letter (rare, so each has one); failures are counted.

    Events have none: a callback per event would cost on the hot path, and their failures
    are librdkafka's to retry until message.timeout.ms.
    """
    if err is None:
        return
    topic = msg.topic() if msg is not None else "?"
    metrics.PRODUCE_FAILED.labels(topic or "?").inc()
    # Never the value: a dead letter carries the raw line, a SYSTEM line the rider's details.
    log.warning("message to %s not delivered: %s", topic, err)
