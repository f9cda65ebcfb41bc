"""The compress job: summarise finished rides into historical, then apply retention to daily.

`run` is run-once; the schedule lives outside (Terraform, `deloton compress --loop`, the
demo runner). Each step commits in bounded batches, so ingest keeps writing while it runs
and a crash anywhere leaves a state from which the next run finishes the same work:
summaries are keyed by ride_id, and daily rows go only after their ride is settled.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2.errors
import psycopg2.extensions

from services.common import runtime, runtime_store
from services.common.config import Settings
from services.common.db import connect, transaction
from services.compress import repository as repo

log = logging.getLogger(__name__)

Connection = psycopg2.extensions.connection
# Called after each committed batch with the step name and the batch's row count; tests use it
# to stop a run between two batches.
BatchHook = Callable[[str, int], None]

DROP_LOCK_TIMEOUT_MS = 2000
# A concurrent detach blocks nobody while it waits, except ingest creating a new hourly
# partition (ACCESS EXCLUSIVE on daily.readings, once an hour) during its second phase.
DETACH_LOCK_TIMEOUT_MS = 10_000
DROP_ATTEMPTS = 3
REJECTS_BATCH = 10_000
# A partition found locked is tried again after the others, for up to this long in all, every
# BUSY_RETRY_INTERVAL_S. Autovacuum vacuums and analyses each partition once its rows are in
# (a second or so each, in the order compress drops them), so the lock a run sees is most
# often autovacuum's, gone a moment later; a reader's long query is still there at the end.
BUSY_RETRY_S = 5.0
BUSY_RETRY_INTERVAL_S = 0.2
# Compress pauses (COMPRESS_PAUSE_RATIO) only while ingest is active: it stored offsets within
# the last INGEST_ACTIVE_S. Ingest commits every fraction of a second while it has messages;
# when it has none there is nobody to leave the cores to.
INGEST_ACTIVE_S = 5.0


@dataclass
class CompressResult:
    """What one run did; `as_dict` is the structured JSON the CLI prints and Lambda logs."""

    status: str = "ok"  # ok | skipped (another run holds the lock)
    reason: str | None = None
    now: str = ""
    retention_cutoff: str = ""
    rides_summarised: int = 0
    summary_batches: int = 0
    riders_upserted: int = 0
    summaries_updated: int = 0  # summarised rides that got readings (or an end) since
    stats_ride_hours: int = 0  # ride-hours written or grown, whose aggregate buckets were redone
    tombstoned_summaries_purged: int = 0
    partitions_dropped: int = 0
    readings_dropped_estimate: int = 0  # from the catalogue: counting would read what DROP spares
    bytes_dropped: int = 0
    partitions_kept_unsettled: int = 0
    partitions_busy: int = 0
    partitions_reattached: int = 0  # detached, then found to hold uncounted readings
    partitions_repaired: int = 0  # detached tables an interrupted run left, settled now
    readings_deleted: int = 0
    delete_batches: int = 0
    rides_removed: int = 0
    alerts_removed: int = 0
    alert_counts_updated: int = 0
    riders_removed: int = 0
    rejects_purged: int = 0
    partitions_retried: int = 0  # found locked, removed when tried again after the others
    pauses: int = 0  # pauses taken after a batch, ingest being active
    pauses_skipped: int = 0  # pauses not taken: ingest made no progress (nobody to yield to)
    seconds: dict[str, float] = field(default_factory=dict)  # each step's, pauses included
    paused: dict[str, float] = field(default_factory=dict)  # of which pausing, by step

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run(
    target: Settings | Connection,
    *,
    now: datetime | None = None,
    settings: Settings | None = None,
    on_batch: BatchHook | None = None,
) -> CompressResult:
    """Run compress once against a connection, or against the database of `target` settings.

    With a connection, `settings` supplies retention and batch sizes (the defaults if None).
    """
    if isinstance(target, Settings):
        conn = connect(target.require_database(), application_name="deloton-compress")
        try:
            # Retention windows changed through the API apply from the next run.
            with transaction(conn):
                target = runtime.apply(target, runtime_store.stored(conn))
            return run(conn, now=now, settings=target, on_batch=on_batch)
        finally:
            conn.close()
    cfg = settings if settings is not None else Settings.model_construct()
    now = _as_utc(now or datetime.now(UTC))
    job = _Job(target, cfg, now, on_batch or (lambda _step, _n: None))
    return job.run()


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _Job:
    def __init__(self, conn: Connection, cfg: Settings, now: datetime, hook: BatchHook) -> None:
        self.conn = conn
        self.cfg = cfg
        self.now = now
        self.cutoff = now - timedelta(hours=cfg.retention_hours)
        self.hook = hook
        self.result = CompressResult(now=now.isoformat(), retention_cutoff=self.cutoff.isoformat())
        self.busy: list[repo.Partition] = []  # partitions whose drop waits for the next run
        self.started_db: datetime | None = None  # the database's clock when the run began
        self._batch_started: float | None = None  # when the batch now running began
        self.hidden: list[repo.Partition] = []  # detached (or pending) with readings unsettled
        self._step = ""  # the step now running (pauses are accounted to it)

    def run(self) -> CompressResult:
        started = time.perf_counter()
        with transaction(self.conn) as cur:
            locked = repo.try_lock(cur)
            self.started_db = repo.database_now(cur)
        if not locked:
            self.result.status = "skipped"
            self.result.reason = "another compress run holds the lock; nothing done"
            self.result.seconds["total"] = round(time.perf_counter() - started, 3)
            log.warning(self.result.reason)
            return self.result
        try:
            self._timed("repair", self.repair_detached)
            if self.hidden:
                # Readings out of sight would be missing from any summary made now, for good
                # if they are a ride's earliest: summaries wait until they are back.
                log.warning(
                    "summaries postponed: readings of %s are detached and could not be settled",
                    ", ".join(p.name for p in self.hidden),
                )
            else:
                self._timed("summarise", self.summarise)
                self._timed("refresh", self.refresh)
            self._timed("drop_partitions", self.drop_partitions)
            self._timed("delete_rows", self.delete_rows)
            self._timed("riders", self.clean_riders)
            self._timed("rejects", self.purge_rejects)
        finally:
            self._unlock()
        self.result.seconds["total"] = round(time.perf_counter() - started, 3)
        return self.result

    def _timed(self, name: str, step: Callable[[], None]) -> None:
        t0 = time.perf_counter()
        self._batch_started = t0
        self._step = name
        step()
        self.result.seconds[name] = round(time.perf_counter() - t0, 3)

    def _unlock(self) -> None:
        if self.conn.closed:
            return  # the session (and its lock) is gone already
        try:
            self.conn.rollback()
            with transaction(self.conn) as cur:
                repo.unlock(cur)
        except psycopg2.Error:
            log.warning("could not release the compress lock; it goes with the session")

    def summarise(self) -> None:
        """Summaries (and their riders) for finished rides, one transaction per batch."""
        after: tuple[datetime, int] | None = None
        while True:
            with transaction(self.conn) as cur:
                repo.tune_for_batch(cur)
                batch = repo.finished_unsummarised_rides(
                    cur,
                    now=self.now,
                    silence_s=self.cfg.ride_silence_s,
                    after=after,
                    limit=self._batch,
                )
                if batch is None:
                    break
                self.result.riders_upserted += repo.upsert_riders_of_rides(
                    cur, ride_ids=batch.ride_ids
                )
                written = repo.insert_ride_summaries(cur, batch=batch)
                self.result.stats_ride_hours += repo.recompute_stats(
                    cur, touched=repo.insert_ride_hours(cur, batch=batch)
                )
            self.result.rides_summarised += written
            self.result.summary_batches += 1
            after = batch.last
            self.hook("summarise", written)
            self._yield()
        with transaction(self.conn) as cur:
            self.result.tombstoned_summaries_purged = repo.purge_tombstoned_summaries(cur)

    def refresh(self) -> None:
        """Fold readings and alerts that arrived after their ride was summarised into its
        summary.

        Runs before retention, which removes only readings a summary counts: a reading that
        lands between this step and retention stays in daily until the next run adds it.
        """
        after: tuple[datetime, int] | None = None
        while True:
            with transaction(self.conn) as cur:
                repo.tune_for_batch(cur)
                # A summary written by this run counted every reading its ride had a moment
                # ago; probing it again costs one index lookup per hourly partition after
                # the ride's start. What arrived since keeps its partition (the drop checks
                # each reading) and is folded in by the next run.
                batch = repo.summarised_rides(
                    cur, after=after, limit=self._batch, summarised_before=self.started_db
                )
                if batch is None:
                    break
                updated = repo.refresh_summaries(cur, batch=batch)
                self.result.alert_counts_updated += repo.refresh_alert_counts(cur, batch=batch)
                # After the summaries: this statement sees at least the readings they counted,
                # so retention (which follows the summaries' mark) never drops one not in hours.
                self.result.stats_ride_hours += repo.recompute_stats(
                    cur, touched=repo.refresh_ride_hours(cur, batch=batch)
                )
            self.result.summaries_updated += updated
            after = batch.last
            self.hook("refresh", updated)
            self._yield()

    @property
    def _batch(self) -> int:
        return self.cfg.compress_batch_rides

    def _yield(self) -> None:
        """Pause after a batch for COMPRESS_PAUSE_RATIO times as long as it took, while ingest
        is active.

        Ingest keeps both cores of a small host busy; a batch that ran flat out took that
        time from it. Pausing bounds the share of CPU and I/O compress takes while it runs.
        With ingest idle (no offsets stored for INGEST_ACTIVE_S) there is nobody to leave the
        cores to, and the batch is not followed by a pause. Must be called outside any
        transaction.
        """
        now = time.perf_counter()
        started = self._batch_started
        self._batch_started = now
        if started is None or self.cfg.compress_pause_ratio <= 0:
            return
        if not self._ingest_active():
            self.result.pauses_skipped += 1
            self._batch_started = time.perf_counter()
            return
        pause = (now - started) * self.cfg.compress_pause_ratio
        self.result.pauses += 1
        self.result.seconds["paused"] = round(self.result.seconds.get("paused", 0.0) + pause, 3)
        self.result.paused[self._step] = round(self.result.paused.get(self._step, 0.0) + pause, 3)
        time.sleep(pause)
        self._batch_started = time.perf_counter()

    def _ingest_active(self) -> bool:
        with transaction(self.conn) as cur:
            return repo.ingest_active(cur, within_s=INGEST_ACTIVE_S)

    def drop_partitions(self) -> None:
        """Drop each hourly partition wholly before the cutoff whose readings are all counted.

        A partition is detached CONCURRENTLY, checked again, then dropped: ingest's COPY never
        waits for it. What an interrupted run left is settled first, by repair_detached.
        One found locked is tried again once the others are done (see BUSY_RETRY_S) and left
        for the next run only if it is still locked then: its readings stay in daily until
        it goes, so giving up at once would leave the hour's rides and readings for a day.
        """
        with transaction(self.conn) as cur:
            candidates = repo.partitions_older_than(cur, cutoff=self.cutoff)
        held = [part for part in candidates if not self._remove(part, last_try=False)]
        retried, busy_before = len(held), self.result.partitions_busy
        deadline = time.perf_counter() + BUSY_RETRY_S
        while held:
            last_try = time.perf_counter() >= deadline
            if not last_try:
                time.sleep(BUSY_RETRY_INTERVAL_S)  # waiting for a lock, not work: no pause
                self._batch_started = time.perf_counter()
            held = [part for part in held if not self._remove(part, last_try=last_try)]
        self.result.partitions_retried += retried - (self.result.partitions_busy - busy_before)

    def _remove(self, part: repo.Partition, *, last_try: bool) -> bool:
        """Remove one partition, or count why not; False if it is locked and not last_try."""
        # Checked before detaching, so a partition kept for an unsettled ride is never
        # detached; checked again once detached, since ingest may have written meanwhile.
        with transaction(self.conn) as cur:
            unsettled = repo.partition_holds_unsettled(cur, partition=part)
            if not unsettled:
                size = repo.partition_size(cur, partition=part)
                free = repo.partition_is_free(cur, partition=part)
        if unsettled:
            self.result.partitions_kept_unsettled += 1
            self._yield()
            return True
        if not free and not last_try:
            return False
        outcome = self._detach(part) if free else "busy"
        if outcome == "detached":
            self.hook("detach_partition", size.rows_estimate)
            outcome = self._settle_detached(part)
        self._count(part, outcome, size)
        self._yield()
        return True

    def _count(self, part: repo.Partition, outcome: str, size: repo.PartitionSize) -> None:
        if outcome == "dropped":
            self.result.partitions_dropped += 1
            self.result.readings_dropped_estimate += size.rows_estimate
            self.result.bytes_dropped += size.bytes
            self.hook("drop_partition", size.rows_estimate)
        elif outcome == "unsettled":
            self.result.partitions_kept_unsettled += 1
            self.result.partitions_reattached += 1
        else:
            self.busy.append(part)
            self.result.partitions_busy += 1

    @contextlib.contextmanager
    def _autocommit(self) -> Iterator[psycopg2.extensions.cursor]:
        """A cursor outside any transaction block, which DETACH ... CONCURRENTLY requires."""
        self.conn.rollback()
        self.conn.autocommit = True
        try:
            with self.conn.cursor() as cur:
                yield cur
        finally:
            self.conn.autocommit = False

    def _detach(self, part: repo.Partition) -> str:
        try:
            with self._autocommit() as cur:
                repo.detach_partition(cur, partition=part, lock_timeout_ms=DETACH_LOCK_TIMEOUT_MS)
            return "detached"
        except psycopg2.errors.UndefinedTable:
            return "dropped"  # gone, or detached by someone else (then repaired next run)
        except (
            psycopg2.errors.LockNotAvailable,
            psycopg2.errors.ObjectNotInPrerequisiteState,  # another detach is pending
        ) as exc:
            # If the wait between the two phases timed out, the detach is pending: the
            # partition is out of sight and the next run finalizes it.
            log.warning("partition %s not detached; left for the next run: %s", part.name, exc)
            return "busy"

    def _settle_detached(self, part: repo.Partition) -> str:
        """Drop a detached partition if summaries count its readings, else put it back."""
        try:
            with transaction(self.conn) as cur:
                repo.set_lock_timeout(cur, ms=DROP_LOCK_TIMEOUT_MS)
                if part.end > self.cutoff or repo.partition_holds_unsettled(cur, partition=part):
                    how = repo.restore_detached(cur, partition=part)
                    log.warning(
                        "partition %s holds readings no summary counts: %s back", part.name, how
                    )
                    return "unsettled"
                repo.drop_partition(cur, partition=part)
            return "dropped"
        except psycopg2.errors.LockNotAvailable:
            log.warning("detached partition %s busy; left for the next run", part.name)
            return "busy"

    def repair_detached(self) -> None:
        """Finish detaches a timeout or a crash interrupted, then settle detached tables.

        Runs first: a detached table's readings are invisible to the summaries until they
        are dropped (all counted) or put back (not all counted).
        """
        with transaction(self.conn) as cur:
            pending = repo.pending_detaches(cur)
        for part in pending:
            try:
                with self._autocommit() as cur:
                    repo.finalize_detach(
                        cur, partition=part, lock_timeout_ms=DETACH_LOCK_TIMEOUT_MS
                    )
            except psycopg2.errors.LockNotAvailable:
                log.warning("pending detach of %s still busy; left for the next run", part.name)
                self.busy.append(part)
                self.hidden.append(part)
                self.result.partitions_busy += 1
        with transaction(self.conn) as cur:
            leftovers = repo.detached_partitions(cur)
            sizes = [repo.partition_size(cur, partition=part) for part in leftovers]
        for part, size in zip(leftovers, sizes, strict=True):
            self.result.partitions_repaired += 1
            outcome = self._settle_detached(part)
            if outcome == "busy":
                self.hidden.append(part)
            self._count(part, outcome, size)

    def delete_rows(self) -> None:
        """Delete settled rides' readings before the cutoff, then drained rides and alerts."""
        skip = [(p.start, p.end) for p in self.busy]
        after: tuple[datetime, int] | None = None
        while True:
            with transaction(self.conn) as cur:
                repo.tune_for_batch(cur)
                batch = repo.settled_rides_started_before(
                    cur, cutoff=self.cutoff, after=after, limit=self._batch
                )
                if batch is None:
                    break
                deleted = repo.delete_readings_before(
                    cur, batch=batch, cutoff=self.cutoff, skip_ranges=skip
                )
                removed = repo.remove_drained_rides(cur, ride_ids=batch.ride_ids)
            self.result.readings_deleted += deleted
            self.result.rides_removed += removed.rides
            self.result.alerts_removed += removed.alerts
            self.result.alert_counts_updated += removed.alert_counts_updated
            self.result.delete_batches += 1
            after = batch.last
            self.hook("delete_rows", deleted)
            self._yield()
        with transaction(self.conn) as cur:
            self.result.alerts_removed += repo.delete_orphan_alerts_of_tombstoned(
                cur, cutoff=self.cutoff
            )
            repo.delete_orphan_ride_feeds(cur)

    def purge_rejects(self) -> None:
        """Delete dead letters older than REJECTS_RETENTION_DAYS: their raw lines may hold a
        rider's name, address and email. Bounded batches keep each transaction short."""
        cutoff = self.now - timedelta(days=self.cfg.rejects_retention_days)
        while True:
            with transaction(self.conn) as cur:
                purged = repo.purge_rejects_before(cur, cutoff=cutoff, limit=REJECTS_BATCH)
            self.result.rejects_purged += purged
            self.hook("rejects", purged)
            if purged < REJECTS_BATCH:
                return

    def clean_riders(self) -> None:
        """Remove daily riders no daily ride references, after copying them to historical."""
        try:
            with transaction(self.conn) as cur:
                repo.set_lock_timeout(cur, ms=DROP_LOCK_TIMEOUT_MS)
                self.result.riders_upserted += repo.copy_unreferenced_riders(
                    cur, cutoff=self.cutoff
                )
                self.result.riders_removed = repo.delete_unreferenced_riders(
                    cur, cutoff=self.cutoff
                )
        except (psycopg2.errors.ForeignKeyViolation, psycopg2.errors.LockNotAvailable) as exc:
            # Ingest started a ride for one of them meanwhile; the next run tries again.
            log.info("daily riders left for the next run: %s", exc.pgerror or exc)
