"""Per-bike sessions: parsed lines -> rides, readings and rejects, by event time.

A SYSTEM line opens a ride; each Ride line is paired with the Telemetry line that follows it
(by timestamp, so neighbours swapped in transit still pair); a reading joins the ride whose
timeline it fits (elapsed seconds ~ reading time - ride start). Readings that fit no known ride
are orphans, never glued onto another ride. With split topics, announcements and readings
arrive on different topics, so a reading that fits no ride yet is held for a while in case
its ride's SYSTEM line is still on its way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.ingest.batch import Batch, RejectRow, RideRow
from services.ingest.models import (
    Announcement,
    Banner,
    Reject,
    RideLine,
    Rider,
    SystemLine,
    TelemetryLine,
)
from services.ingest.parser import Parser

# Bike id of an unkeyed partition (the historical single stream): not printable, so no key
# can collide with it; JSON-safe, unlike NUL, so it can live in the jsonb state.
_PARTITION_BIKE = "\x1fp"
_NULL = "\\N"  # NULL in COPY text format
MAX_PENDING = 4  # half-pairs kept per bike before the oldest is declared unpaired
# Readings held per bike while its SYSTEM line may be late (split topics); the default of
# INGEST_MAX_HELD_PER_BIKE.
MAX_HELD = 600
MAX_DETAIL = 500  # characters of a reject's detail: a 520 KB line must not make a 1 MB one
_MAX_CACHED_JSON = 100_000  # bike serials whose JSON text is cached for the events
# How much better a line must fit the previous ride than the open one to prove that the
# previous ride is still going (two rides on one key).
MARGIN_S = 1.5
# Ride lines whose duration goes back: this many within this many seconds mean two rides.
CROSSINGS = 3
CROSSING_WINDOW_S = 5.0


def ride_id_for(bike_serial: str, started_at: str) -> int:
    """Stable id of a ride from its natural key; below 2**53 so JavaScript reads it exactly."""
    digest = hashlib.blake2b(f"{bike_serial}|{_full_ts(started_at)}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") >> 11


def _full_ts(ts: str) -> str:
    """The timestamp with all six fraction digits, so equal instants compare equal."""
    if len(ts) == 26:
        return ts
    return (ts + "000000")[:26] if "." in ts else ts + ".000000"


def _to_dt(ts: str) -> datetime:
    return datetime.fromisoformat(ts).replace(tzinfo=UTC)


def iso(ts: str) -> str:
    """Feed timestamp -> RFC 3339 UTC."""
    return f"{ts[:10]}T{ts[11:]}Z"


class Source(tuple[str, int, int, bytes | None, bytes]):
    """Where a line came from: (topic, partition, offset, key, raw value)."""

    __slots__ = ()


@dataclass
class Ride:
    """A ride as the sessioniser tracks it."""

    ride_id: int
    bike_serial: str
    user_id: int
    started_at: str
    last_elapsed: int = 0
    last_ts: str = ""


@dataclass
class Bike:
    """Everything known about one bike's stream."""

    key: str
    partition: int
    model: str = ""
    ride: Ride | None = None
    prev: Ride | None = None
    pending_rides: list[tuple[RideLine, Source]] = field(default_factory=list)
    pending_tels: list[tuple[TelemetryLine, Source]] = field(default_factory=list)
    held: list[tuple[RideLine, TelemetryLine, Source, Source]] = field(default_factory=list)
    last_ts: str = ""
    announced: bool = False  # a new ride was announced; its SYSTEM line has not come yet
    # When a line of the bike was last read (the service's clock; None: not since a restart).
    # Not saved: silence is measured from when this process last heard of the bike.
    seen: float | None = None
    # The lines of the pair made last: an exact repeat of either is a duplicate.
    last_ride: RideLine | None = None
    last_tel: TelemetryLine | None = None
    # Two rides seen at once on this key: readings up to this event time are not attributable.
    ambiguous_until: str = ""
    last_elapsed_seen: int = 0  # the duration of the bike's latest Ride line
    crossings: list[str] = field(default_factory=list)  # when durations went back lately


class Sessionizer:
    """Turns a stream of raw messages into the rows of a Batch. No I/O."""

    def __init__(
        self,
        parser: Parser,
        *,
        split_topics: bool = False,
        clock_tolerance_s: float = 10.0,
        hold_s: float = 30.0,
        publish_events: bool = True,
        max_held: int = MAX_HELD,
    ) -> None:
        self.parser = parser
        self.split = split_topics
        self.tolerance = clock_tolerance_s
        self.hold = timedelta(seconds=hold_s)
        self.publish = publish_events
        self.max_held = max_held
        self.bikes: dict[str, Bike] = {}
        self.partition_now: dict[int, str] = {}  # latest event time seen per partition
        # Split topics: latest event time read from the bike topic, per partition. Once it has
        # passed a held reading, that reading's SYSTEM line would have been read already.
        self.announce_now: dict[int, str] = {}
        self._bike_json: dict[str, str] = {}
        # (ride_id, "YYYY-MM-DD HH") whose hour retention dropped after the ride was summarised.
        self._too_late: set[tuple[int, str]] = set()
        self._sources: tuple[Source, Source] | None = None

    # --- entry point -----------------------------------------------------------------------

    def process(
        self,
        batch: Batch,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
    ) -> None:
        """Handle one Kafka message: its rows, rejects and events go into `batch`."""
        batch.messages += 1
        batch.offsets[(topic, partition)] = offset + 1
        rec = self.parser.parse(value)
        if key:
            bike_key = _bike_key(key, partition)
        else:
            # Counted per topic: spread over several partitions, an unkeyed stream loses its
            # order and its bike (the service warns). The partition is then the bike.
            unkeyed = batch.unkeyed
            unkeyed[topic] = unkeyed.get(topic, 0) + 1
            bike_key = _PARTITION_KEYS.get(partition) or _partition_key(partition)
        src = Source((topic, partition, offset, key, value or b""))
        cls = type(rec)
        if cls is Reject:
            self._reject(batch, src, rec.reason, rec.detail, bike_key)  # type: ignore[union-attr]
            return
        bike = self.bikes.get(bike_key)
        if bike is None:
            bike = self.bikes[bike_key] = Bike(bike_key, partition)
        batch.dirty.add(bike_key)
        if cls is RideLine:
            self._ride_line(batch, bike, rec, src)  # type: ignore[arg-type]
        elif cls is TelemetryLine:
            self._telemetry_line(batch, bike, rec, src)  # type: ignore[arg-type]
        elif cls is SystemLine:
            self._system_line(batch, bike, rec, src)  # type: ignore[arg-type]
        elif cls is Announcement:
            self._announcement(batch, bike, rec)  # type: ignore[arg-type]
        else:
            assert cls is Banner

    # --- line kinds ------------------------------------------------------------------------

    def _ride_line(self, batch: Batch, bike: Bike, rec: RideLine, src: Source) -> None:
        bike.model = rec.model
        ride = bike.ride
        if ride is not None and rec.elapsed_s > ride.last_elapsed + 1 and bike.prev is not None:
            # Not the open ride's next second: perhaps the previous ride, still going.
            self._check_interleaved(bike, rec)
        tels = bike.pending_tels
        if tels:
            # A Telemetry line that overtook its Ride line in transit: pair them by time (on a
            # tie the Telemetry line came first, so it is not this Ride line's).
            for i, (waiting, tsrc) in enumerate(tels):
                if waiting.ts > rec.ts:
                    del tels[i]
                    bike.last_ride, bike.last_tel = rec, waiting
                    self._reading(batch, bike, rec, waiting, src, tsrc)
                    return
        pending = bike.pending_rides
        if (pending and pending[-1][0] == rec) or rec == bike.last_ride:
            # A repeat of the waiting Ride line, or of the one paired last (whatever the state
            # of its ride): one rule on the single topic and on split topics.
            self._reject(batch, src, "duplicate", f"Ride line at {rec.ts} seen twice", bike.key)
            return
        if rec.elapsed_s <= bike.last_elapsed_seen and ride is not None:
            self._crossing(bike, rec)
        bike.last_elapsed_seen = rec.elapsed_s
        pending.append((rec, src))
        if len(pending) > MAX_PENDING:
            self._unpaired(batch, bike, *pending.pop(0))

    def _telemetry_line(self, batch: Batch, bike: Bike, rec: TelemetryLine, src: Source) -> None:
        pending = bike.pending_rides
        if len(pending) == 1 and pending[0][0].ts < rec.ts:  # the usual case
            ride, rsrc = pending.pop()
            bike.last_ride, bike.last_tel = ride, rec
            self._reading(batch, bike, ride, rec, rsrc, src)
            return
        if rec == bike.last_tel:
            # An exact repeat of the Telemetry line paired last (an at-least-once producer),
            # whatever the state of its ride (held, closed, on split topics), and before a
            # tie could pair it with the next Ride line.
            self._reject(
                batch, src, "duplicate", f"Telemetry line at {rec.ts} seen twice", bike.key
            )
            return
        match = -1
        for i, (ride, _) in enumerate(pending):
            # A tie (clocks with whole seconds only) pairs by feed order: the Ride line came
            # first.
            if ride.ts <= rec.ts:
                match = i
        if match >= 0:
            for old, osrc in pending[:match]:
                self._unpaired(batch, bike, old, osrc)
            ride, rsrc = pending[match]
            del pending[: match + 1]
            bike.last_ride, bike.last_tel = ride, rec
            self._reading(batch, bike, ride, rec, rsrc, src)
            return
        tels = bike.pending_tels
        if tels and tels[-1][0] == rec:
            self._reject(
                batch, src, "duplicate", f"Telemetry line at {rec.ts} seen twice", bike.key
            )
            return
        if bike.last_ts and rec.ts <= bike.last_ts and bike.ride is not None:
            self._reject(batch, src, "duplicate", f"Telemetry at {rec.ts} already paired", bike.key)
            return
        tels.append((rec, src))
        if len(tels) > MAX_PENDING:
            self._unpaired(batch, bike, *tels.pop(0))

    def _system_line(self, batch: Batch, bike: Bike, rec: SystemLine, src: Source) -> None:
        bike.model = rec.model
        if rec.ts > self.announce_now.get(bike.partition, ""):
            self.announce_now[bike.partition] = rec.ts
        rider = rec.rider
        announced = rider.bike_serial
        if bike.key.startswith(_PARTITION_BIKE):
            serial = announced or bike.key[1:]
            announced = None
        else:
            # The key names the bike (a gateway or a re-keying producer knows which bike it
            # relays); a SYSTEM line naming another one is kept on the ride and counted.
            serial = bike.key
            if announced == serial:
                announced = None
        ride_id = ride_id_for(serial, rec.ts)
        current = bike.ride
        bike.announced = False
        if current is not None and current.ride_id == ride_id:
            self._reject(
                batch, src, "duplicate", f"SYSTEM line of the open ride {ride_id}", bike.key
            )
            return
        if current is not None and current.started_at > rec.ts:
            # A late SYSTEM line (split topics): its ride precedes the open one.
            if bike.prev is None or bike.prev.started_at < rec.ts:
                bike.prev = Ride(ride_id, serial, rider.user_id, rec.ts)
                self._open(batch, bike, bike.prev, rider, rec, announced)
            else:
                reason = "duplicate" if bike.prev.ride_id == ride_id else "out_of_order"
                self._reject(
                    batch, src, reason, f"SYSTEM line older than ride {current.ride_id}", bike.key
                )
            return
        if current is not None:
            self._close(batch, bike, current, current.last_ts or current.started_at, "next_ride")
            bike.prev = current
        if not self.split:
            self._flush_pending(batch, bike, "unpaired")
        ride = bike.ride = Ride(ride_id, serial, rider.user_id, rec.ts)
        self._open(batch, bike, ride, rider, rec, announced)
        if bike.held:
            held, bike.held = bike.held, []
            for r, t, rsrc, tsrc in held:
                self._reading(batch, bike, r, t, rsrc, tsrc)

    def _announcement(self, batch: Batch, bike: Bike, rec: Announcement) -> None:
        if self.split:
            if rec.ts and rec.ts > self.announce_now.get(bike.partition, ""):
                self.announce_now[bike.partition] = rec.ts
            return  # order across topics is unknown; SYSTEM lines and timelines decide
        ride = bike.ride
        if rec.ts and ride is not None and _full_ts(rec.ts) <= _full_ts(ride.started_at):
            # Stamped before the open ride's SYSTEM line: this ride's own "Getting user data",
            # overtaken in transit by that SYSTEM line. It announces nothing new; taken as an
            # announcement it would make every reading of the ride an orphan.
            return
        # Readings from here to the SYSTEM line belong to no known rider. The open ride stays
        # open: the SYSTEM line closes it, unless it turns out to announce that same ride.
        bike.announced = True
        self._flush_pending(batch, bike, "unpaired")

    # --- readings --------------------------------------------------------------------------

    def _reading(
        self, batch: Batch, bike: Bike, r: RideLine, t: TelemetryLine, rsrc: Source, tsrc: Source
    ) -> None:
        ts = t.ts
        if ts > self.partition_now.get(bike.partition, ""):
            self.partition_now[bike.partition] = ts  # event time moves on, held or not
        ride = bike.ride
        if bike.announced:
            self._reject_pair(
                batch,
                bike,
                rsrc,
                tsrc,
                "orphan",
                "reading between a ride announcement and its SYSTEM line",
            )
            return
        if bike.ambiguous_until and self._ambiguous(batch, bike, r, ts, rsrc, tsrc):
            return
        if ride is not None and ts >= ride.started_at:
            if r.elapsed_s == ride.last_elapsed + 1 and ts > ride.last_ts:
                self._write(batch, bike, ride, r, t)  # the usual case: the next second
                return
            if self._fits(ride, r, ts):
                if r.elapsed_s > ride.last_elapsed:
                    self._write(batch, bike, ride, r, t)
                elif r.elapsed_s == ride.last_elapsed:
                    self._reject_pair(
                        batch, bike, rsrc, tsrc, "duplicate", f"second {r.elapsed_s} again"
                    )
                else:
                    self._reject_pair(
                        batch,
                        bike,
                        rsrc,
                        tsrc,
                        "out_of_order",
                        f"second {r.elapsed_s} after {ride.last_elapsed}",
                    )
                return
        prev = bike.prev
        if (
            prev is not None
            and prev.started_at <= ts
            and (ride is None or ts < ride.started_at)
            and self._fits(prev, r, ts)
            and r.elapsed_s > prev.last_elapsed
        ):
            self._write(batch, bike, prev, r, t)  # the tail of the previous ride, late
            return
        if self._check_interleaved(bike, r):
            self._ambiguous(batch, bike, r, ts, rsrc, tsrc)
            return
        if self.split:
            # Its SYSTEM line may still be unread on the bike topic: expire_held decides.
            bike.held.append((r, t, rsrc, tsrc))
            if len(bike.held) > self.max_held:
                _, _, orsrc, otsrc = bike.held.pop(0)
                self._reject_pair(
                    batch, bike, orsrc, otsrc, "orphan", "no ride announced for this reading"
                )
            return
        self._reject_pair(batch, bike, rsrc, tsrc, "orphan", "no ride announced for this reading")

    def _interleaved(self, bike: Bike, r: RideLine, ts: str) -> bool:
        """Whether this reading shows the previous ride still going after the open one began.

        One bike rides one ride at a time: a reading on the previous ride's timeline, stamped
        after the next ride's SYSTEM line, means two rides share this key (two bikes behind
        one gateway, a mis-keyed producer, an unkeyed partition). Their lines interleave, and
        which Telemetry line goes with which Ride line can no longer be told.
        """
        ride, prev = bike.ride, bike.prev
        if ride is None or prev is None or ts < ride.started_at:
            return False
        off_prev = self._misfit(prev, r, ts)
        # Rides that began close together fit each other's timeline too: the line must fit
        # the previous ride clearly better than the open one (a bike's duration keeps within
        # a second of its clock).
        return off_prev <= self.tolerance and self._misfit(ride, r, ts) > off_prev + MARGIN_S

    def _check_interleaved(self, bike: Bike, r: RideLine) -> bool:
        """On a sign of two rides at once, make the bike's readings ambiguous for a while."""
        if not self._interleaved(bike, r, r.ts):
            return False
        until = _to_dt(r.ts) + timedelta(seconds=self.tolerance)
        bike.ambiguous_until = until.strftime("%Y-%m-%d %H:%M:%S.%f")
        return True

    def _crossing(self, bike: Bike, r: RideLine) -> None:
        """A Ride line whose duration goes back: a new ride, a late line, or two rides at once.

        One bike's durations go back once per ride (and on a rare late line); two rides
        interleaved on one key make them go back every second, even rides that began so close
        together that their lines fit either timeline.
        """
        ts = _full_ts(r.ts)
        since = (_to_dt(ts) - timedelta(seconds=CROSSING_WINDOW_S)).strftime("%Y-%m-%d %H:%M:%S.%f")
        recent = [t for t in bike.crossings if since <= t <= ts]
        recent.append(ts)
        bike.crossings = recent[-CROSSINGS:]
        if len(recent) >= CROSSINGS or self._began_together(bike):
            until = _to_dt(ts) + timedelta(seconds=self.tolerance)
            bike.ambiguous_until = until.strftime("%Y-%m-%d %H:%M:%S.%f")

    def _began_together(self, bike: Bike) -> bool:
        """Whether the open ride began within 2 x MARGIN_S of the previous one on this key.

        One bike cannot end a ride and announce the next within a few seconds of starting it,
        so a duration going back right then is already the sign of two rides.
        """
        ride, prev = bike.ride, bike.prev
        if ride is None or prev is None:
            return False
        began = (_to_dt(ride.started_at) - _to_dt(prev.started_at)).total_seconds()
        return 0 <= began < 2 * MARGIN_S

    def _ambiguous(
        self, batch: Batch, bike: Bike, r: RideLine, ts: str, rsrc: Source, tsrc: Source
    ) -> bool:
        """Reject a reading of a bike whose key carries two rides at once; False once over.

        Every reading is rejected while the previous ride keeps showing up, and for the clock
        tolerance after its last sign: a reading there may pair one ride's Ride line with the
        other's Telemetry line, so it is attributed to no one.
        """
        if self._check_interleaved(bike, r):
            pass
        elif _full_ts(ts) > bike.ambiguous_until and _full_ts(r.ts) > bike.ambiguous_until:
            bike.ambiguous_until = ""
            return False
        detail = "two rides interleaved on this bike's key; reading not attributable"
        self._reject_pair(batch, bike, rsrc, tsrc, "ambiguous", detail)
        return True

    def _fits(self, ride: Ride, r: RideLine, ts: str) -> bool:
        return self._misfit(ride, r, ts) <= self.tolerance

    def _misfit(self, ride: Ride, r: RideLine, ts: str) -> float:
        """Seconds between the line's duration and its time since the ride's start."""
        since_start = (_to_dt(ts) - _to_dt(ride.started_at)).total_seconds()
        return abs(since_start - r.elapsed_s)

    def _write(self, batch: Batch, bike: Bike, ride: Ride, r: RideLine, t: TelemetryLine) -> None:
        ts = t.ts
        ride.last_elapsed = r.elapsed_s
        ride.last_ts = ts
        if ts > bike.last_ts:
            bike.last_ts = ts
        if ride is bike.prev and ts > batch.ride_ends.get(ride.ride_id, ""):
            batch.ride_ends[ride.ride_id] = ts  # a late tail of a closed ride moves its end
        batch.ride_ids.add(ride.ride_id)
        hr = t.heart_rate
        batch.readings.append(
            f"{ride.ride_id}\t{r.elapsed_s}\t{ts}+00\t{r.resistance}\t"
            f"{_NULL if hr is None else hr}\t{t.rpm}\t{t.power!r}\n"
        )
        batch.hours.add(ts[:13])
        batch.touch_bike(ride.bike_serial, bike.model, ts)
        if self.publish:
            batch.events.append(
                (
                    ride.bike_serial.encode(),
                    (
                        f'{{"type":"reading","ride_id":{ride.ride_id},"bike_serial":'
                        f'{self._json_str(ride.bike_serial)},"user_id":{ride.user_id},'
                        f'"recorded_at":"{iso(ts)}","elapsed_s":{r.elapsed_s},'
                        f'"resistance":{r.resistance},"heart_rate":{"null" if hr is None else hr},'
                        f'"rpm":{t.rpm},"power":{t.power!r}}}'
                    ).encode(),
                )
            )

    # --- rides -----------------------------------------------------------------------------

    def _open(
        self,
        batch: Batch,
        bike: Bike,
        ride: Ride,
        rider: Rider,
        rec: SystemLine,
        announced: str | None = None,
    ) -> None:
        batch.add_rider(rider, rec.ts)
        batch.rides.append(
            RideRow(
                ride.ride_id,
                ride.bike_serial,
                rider.user_id,
                rec.model,
                rec.ts,
                bike.partition,
                announced,
            )
        )
        batch.touch_bike(ride.bike_serial, rec.model, rec.ts)
        if self.publish:
            # Only what consumers use travels (alerts: gender and birth date for the limits;
            # the dashboard: first name and age). Addresses stay in PostgreSQL.
            event = {
                "type": "ride_started",
                "ride_id": ride.ride_id,
                "bike_serial": ride.bike_serial,
                "model": rec.model,
                "started_at": iso(rec.ts),
                "rider": {
                    "user_id": rider.user_id,
                    "first_name": rider.first_name,
                    "gender": rider.gender,
                    "date_of_birth": rider.date_of_birth.isoformat(),
                },
            }
            batch.events.append((ride.bike_serial.encode(), orjson.dumps(event)))

    def _close(self, batch: Batch, bike: Bike, ride: Ride, ended_at: str, reason: str) -> None:
        if not ended_at:
            ended_at = ride.started_at
        batch.ride_ends[ride.ride_id] = ended_at
        if self.publish:
            event = {
                "type": "ride_ended",
                "ride_id": ride.ride_id,
                "bike_serial": ride.bike_serial,
                "ended_at": iso(ended_at),
                "reason": reason,
            }
            batch.events.append((ride.bike_serial.encode(), orjson.dumps(event)))

    def mark_seen(self, keys: Iterable[str], now: float) -> None:
        """The bikes `keys` had lines read at `now` (the service's clock, seconds)."""
        bikes = self.bikes
        for key in keys:
            bike = bikes.get(key)
            if bike is not None:
                bike.seen = now

    def close_silent(self, batch: Batch, fresh: dict[int, float], silence_s: float) -> int:
        """Close rides whose bike sent nothing for `silence_s` while its partition was read.

        `fresh[p]` is the latest time (the clock of `mark_seen`) at which partition p was read
        up to its end: a bike last seen more than `silence_s` before that sent nothing in
        between. Each bike is judged on its own lines, never on another bike's clock (one
        running ahead would close every other ride), and an ingest that lags or stalls sees
        no silence that the broker did not see.
        """
        closed = 0
        for bike in self.bikes.values():
            ride = bike.ride
            at = fresh.get(bike.partition)
            if ride is None or at is None:
                continue
            if bike.seen is None:
                bike.seen = at  # restored from saved state: count from now
                continue
            if at - bike.seen > silence_s:
                self._close(batch, bike, ride, ride.last_ts or ride.started_at, "silence")
                bike.prev, bike.ride = ride, None
                self._flush_pending(batch, bike, "unpaired")
                batch.dirty.add(bike.key)
                closed += 1
        return closed

    # --- rejects ---------------------------------------------------------------------------

    def _flush_pending(self, batch: Batch, bike: Bike, reason: str) -> None:
        for r, src in bike.pending_rides:
            self._unpaired(batch, bike, r, src, reason)
        for t, src in bike.pending_tels:
            self._unpaired(batch, bike, t, src, reason)
        bike.pending_rides.clear()
        bike.pending_tels.clear()

    def _unpaired(
        self,
        batch: Batch,
        bike: Bike,
        half: RideLine | TelemetryLine,
        src: Source,
        reason: str = "unpaired",
    ) -> None:
        """Reject half of a reading whose other half never came."""
        if type(half) is RideLine:
            detail = f"no Telemetry line for Ride at {half.ts}"
        else:
            detail = f"no Ride line for Telemetry at {half.ts}"
        self._reject(batch, src, reason, detail, bike.key)

    def expire_held(
        self, batch: Batch, partition_now: dict[int, str], caught_up: set[int] | None = None
    ) -> None:
        """Held readings whose ride cannot show up any more become orphans.

        That is when the bike topic has been read past the reading's time, or when the bike
        topic is caught up (`caught_up`: partitions at their high watermark; None: all) and
        the reading is older than the hold time.
        """
        for bike in self.bikes.values():
            p = bike.partition
            now = partition_now.get(p)
            if not bike.held or now is None:
                continue
            limit = _to_dt(now) - self.hold if caught_up is None or p in caught_up else None
            announced = self.announce_now.get(p)
            passed = _to_dt(announced) - timedelta(seconds=self.tolerance) if announced else None
            keep = []
            for r, t, rsrc, tsrc in bike.held:
                when = _to_dt(t.ts)
                if (limit is not None and when < limit) or (passed is not None and when < passed):
                    self._reject_pair(
                        batch, bike, rsrc, tsrc, "orphan", "no ride announced for this reading"
                    )
                else:
                    keep.append((r, t, rsrc, tsrc))
            if len(keep) != len(bike.held):
                bike.held = keep
                batch.dirty.add(bike.key)

    def _reject_pair(
        self, batch: Batch, bike: Bike, rsrc: Source, tsrc: Source, reason: str, detail: str
    ) -> None:
        self._reject(batch, rsrc, reason, detail, bike.key)
        self._reject(batch, tsrc, reason, detail, bike.key)

    def _reject(self, batch: Batch, src: Source, reason: str, detail: str, bike_key: str) -> None:
        topic, partition, offset, key, raw = src
        serial = None if bike_key.startswith(_PARTITION_BIKE) else bike_key
        if len(detail) > MAX_DETAIL:
            detail = detail[: MAX_DETAIL - 3] + "..."
        batch.rejects.append(RejectRow(topic, partition, offset, key, raw, reason, detail, serial))

    def _json_str(self, s: str) -> str:
        cached = self._bike_json.get(s)
        if cached is None:
            if len(self._bike_json) >= _MAX_CACHED_JSON:
                self._bike_json.clear()  # bikes come and go: keep the cache bounded
            cached = self._bike_json[s] = orjson.dumps(s).decode()
        return cached

    # --- readings too late for their hour --------------------------------------------------

    def reject_too_late(self, late: set[tuple[int, str]]) -> None:
        """From now on, readings of these (ride_id, 'YYYY-MM-DD HH') are rejected as too_late.

        Retention dropped their hour after the ride was summarised, so the summary would never
        count them. The check is installed on this instance only once such a reading has been
        met (instance attributes shadow the methods), so the usual path pays nothing for it.
        """
        if len(self._too_late) > 100_000:
            self._too_late.clear()  # they arrive rarely; a forgotten one is found again
        self._too_late |= late
        # mypy does not allow assigning to a method; setattr is the same thing here.
        setattr(self, "_reading", self._reading_checked)  # noqa: B010
        setattr(self, "_write", self._write_checked)  # noqa: B010

    def _reading_checked(
        self, batch: Batch, bike: Bike, r: RideLine, t: TelemetryLine, rsrc: Source, tsrc: Source
    ) -> None:
        self._sources = (rsrc, tsrc)  # the lines _write_checked rejects, if it must
        try:
            Sessionizer._reading(self, batch, bike, r, t, rsrc, tsrc)
        finally:
            self._sources = None

    def _write_checked(
        self, batch: Batch, bike: Bike, ride: Ride, r: RideLine, t: TelemetryLine
    ) -> None:
        if self._sources is not None and (ride.ride_id, t.ts[:13]) in self._too_late:
            rsrc, tsrc = self._sources
            self._reject_pair(
                batch,
                bike,
                rsrc,
                tsrc,
                "too_late",
                f"ride {ride.ride_id} was summarised and its readings of {t.ts[:13]}h dropped",
            )
            return
        Sessionizer._write(self, batch, bike, ride, r, t)

    # --- bounded state ---------------------------------------------------------------------

    def evict_idle(self, batch: Batch, partition_now: dict[int, str], idle_s: float) -> int:
        """Forget bikes whose ride is closed and that were silent for `idle_s` of event time.

        Nothing waits on such a bike: no open ride, no half pair, no held reading. What is
        lost is only the closed ride a very late tail could still join (it becomes an orphan).
        Evicted keys go into the batch so that they leave the stored state with it. Returns
        how many bikes were evicted.
        """
        cutoffs = {
            p: (_to_dt(ts) - timedelta(seconds=idle_s)).strftime("%Y-%m-%d %H:%M:%S.%f")
            for p, ts in partition_now.items()
        }
        gone = []
        for key, bike in self.bikes.items():
            cutoff = cutoffs.get(bike.partition)
            if (
                cutoff is None
                or bike.ride is not None
                or bike.pending_rides
                or bike.pending_tels
                or bike.held
            ):
                continue
            prev = bike.prev
            last = bike.last_ts or (prev.last_ts or prev.started_at if prev else "")
            if not last or _full_ts(last) < cutoff:
                gone.append(key)
        for key in gone:
            bike = self.bikes.pop(key)
            batch.evicted.setdefault(bike.partition, set()).add(key)
        return len(gone)

    # --- state that survives restarts and rebalances ---------------------------------------

    def dump_partition(self, partition: int, keys: set[str] | None = None) -> dict[str, Any]:
        """The state of a partition's bikes (only `keys`, when given) as JSON-able data."""
        out: dict[str, Any] = {}
        if keys is None:
            for key, bike in self.bikes.items():
                if bike.partition == partition:
                    out[key] = _dump_bike(bike)
            return out
        for key in keys:  # the batch's bikes, not every bike tracked
            found = self.bikes.get(key)
            if found is not None and found.partition == partition:
                out[key] = _dump_bike(found)
        return out

    def load_partition(self, partition: int, state: dict[str, Any]) -> None:
        """Restore a partition's bikes from dump_partition output."""
        for key, data in state.items():
            self.bikes[key] = _load_bike(key, partition, data)

    def drop_partition(self, partition: int) -> None:
        """Forget a partition's bikes (it was revoked)."""
        for key in [k for k, b in self.bikes.items() if b.partition == partition]:
            del self.bikes[key]


_PARTITION_KEYS: dict[int, str] = {}


def _partition_key(partition: int) -> str:
    key = _PARTITION_KEYS[partition] = f"{_PARTITION_BIKE}{partition}"
    return key


def _bike_key(key: bytes | None, partition: int) -> str:
    if key:
        try:
            text = key.decode()
        except UnicodeDecodeError:
            # Replacement characters would merge distinct keys into one bike: use the bytes.
            text = "0x" + key.hex()
        if len(text) <= 100 and text.isprintable():
            return text
    # Without a usable key the partition is the bike (the historical single stream).
    return f"{_PARTITION_BIKE}{partition}"


def _dump_src(src: Source) -> list[Any]:
    topic, partition, offset, key, raw = src
    return [topic, partition, offset, key.hex() if key else None, raw.hex()]


def _load_src(data: list[Any]) -> Source:
    topic, partition, offset, key, raw = data
    return Source(
        (topic, partition, offset, bytes.fromhex(key) if key else None, bytes.fromhex(raw))
    )


def _dump_ride(ride: Ride | None) -> list[Any] | None:
    if ride is None:
        return None
    return [
        ride.ride_id,
        ride.bike_serial,
        ride.user_id,
        ride.started_at,
        ride.last_elapsed,
        ride.last_ts,
    ]


def _load_ride(data: list[Any] | None) -> Ride | None:
    return None if data is None else Ride(*data)


def _dump_bike(bike: Bike) -> dict[str, Any]:
    return {
        "model": bike.model,
        "ride": _dump_ride(bike.ride),
        "prev": _dump_ride(bike.prev),
        "last_ts": bike.last_ts,
        "announced": bike.announced,
        "pending_rides": [[list(r), _dump_src(s)] for r, s in bike.pending_rides],
        "pending_tels": [[list(t), _dump_src(s)] for t, s in bike.pending_tels],
        "held": [[list(r), list(t), _dump_src(a), _dump_src(b)] for r, t, a, b in bike.held],
        "last_ride": None if bike.last_ride is None else list(bike.last_ride),
        "last_tel": None if bike.last_tel is None else list(bike.last_tel),
        "ambiguous_until": bike.ambiguous_until,
        "last_elapsed_seen": bike.last_elapsed_seen,
        "crossings": bike.crossings,
    }


def _load_bike(key: str, partition: int, data: dict[str, Any]) -> Bike:
    return Bike(
        key=key,
        partition=partition,
        model=data["model"],
        ride=_load_ride(data["ride"]),
        prev=_load_ride(data["prev"]),
        last_ts=data["last_ts"],
        announced=data["announced"],
        pending_rides=[(RideLine(*r), _load_src(s)) for r, s in data["pending_rides"]],
        pending_tels=[(TelemetryLine(*t), _load_src(s)) for t, s in data["pending_tels"]],
        held=[
            (RideLine(*r), TelemetryLine(*t), _load_src(a), _load_src(b))
            for r, t, a, b in data["held"]
        ],
        last_ride=RideLine(*last_ride) if (last_ride := data.get("last_ride")) else None,
        last_tel=TelemetryLine(*last_tel) if (last_tel := data.get("last_tel")) else None,
        ambiguous_until=data.get("ambiguous_until", ""),
        last_elapsed_seen=data.get("last_elapsed_seen", 0),
        crossings=data.get("crossings", []),
    )
