"""Per-bike live state built from the clean events and the alerts (pure: no I/O).

One `Fleet` holds, for every bike, its current (or last) ride: who rides it, every reading
as compact arrays (so a viewer who opens the page mid-ride gets the whole ride, and a tick
sends only the points past what the browser has), running sums for the averages, and
whether the rider is in an alert episode. Views are plain dataclasses copied under the lock.
"""

from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from services.alerts.rules import Limits, Thresholds, limits_for
from services.common.ages import age_on

MAX_EARLY_ALERTS = 10_000


def ts(text: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class Episode:
    """An alert episode the alerts service raised on a ride, until the rider recovers."""

    number: int
    kind: str  # high or low
    limit_low: int
    limit_high: int
    detected_at: datetime
    active: bool = True
    in_range: int = 0  # consecutive in-range readings since the alert


@dataclass
class Ride:
    """One ride on one bike as seen on the events topic."""

    ride_id: int
    bike_serial: str
    model: str | None
    started_at: datetime
    user_id: int
    first_name: str
    gender: str
    date_of_birth: date
    limits: Limits
    elapsed: array = field(default_factory=lambda: array("i"))
    heart_rate: array = field(default_factory=lambda: array("h"))  # 0: no contact
    power: array = field(default_factory=lambda: array("f"))
    resistance: array = field(default_factory=lambda: array("h"))
    rpm: int = 0
    energy_j: float = 0.0
    resistance_sum: int = 0
    heart_rate_sum: int = 0
    heart_rate_n: int = 0
    max_heart_rate: int = 0
    ended_at: datetime | None = None
    episode: Episode | None = None
    alerts: int = 0

    @property
    def last_elapsed(self) -> int:
        return self.elapsed[-1] if self.elapsed else -1


@dataclass
class Bike:
    """A bike and its latest ride; `heard` is the broker time (s) of its latest event."""

    serial: str
    ride: Ride | None = None
    heard: float = 0.0


@dataclass(frozen=True)
class Points:
    """Readings of a ride from index `start` on (what a browser has not got yet)."""

    start: int
    elapsed_s: list[int]
    heart_rate: list[int | None]
    power: list[float]
    resistance: list[int]


@dataclass(frozen=True)
class RideView:
    """What the current-ride page shows, copied out of the state."""

    bike_serial: str
    model: str | None
    in_use: bool  # false after the idle time without an event, or once the ride ended
    ride_id: int
    user_id: int
    first_name: str
    gender: str
    age: int
    limits: Limits
    started_at: datetime
    ended: bool
    elapsed_s: int
    heart_rate: int | None
    rpm: int
    power: float
    resistance: int
    energy_kj: float
    avg_power: float | None
    avg_resistance: float | None
    avg_heart_rate: float | None
    max_heart_rate: int | None
    readings: int
    alert: Episode | None  # the episode in progress, if any
    alerts: int
    points: Points


@dataclass(frozen=True)
class Rider:
    """One line of the bike picker or the leaderboard."""

    bike_serial: str
    user_id: int
    first_name: str
    gender: str
    age: int
    elapsed_s: int
    energy_kj: float
    avg_power: float | None
    heart_rate: int | None
    in_alert: bool


class Fleet:
    """Every bike's state; thread-safe (one writer thread, many reader threads)."""

    def __init__(
        self, *, thresholds: Thresholds, recovery_readings: int = 3, idle_s: float = 30.0
    ) -> None:
        self.thresholds = thresholds
        self.recovery_readings = recovery_readings
        self.idle_s = idle_s
        self.bikes: dict[str, Bike] = {}
        self.by_ride: dict[int, Ride] = {}
        # Alerts read before their ride's announcement (the two topics are read side by side).
        self.early_alerts: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.events = 0
        self.rejected = 0

    # --- writing ------------------------------------------------------------------------

    def apply_events(self, batch: list[tuple[bytes, float]], parse: Any) -> None:
        """Apply (value, broker time in s) pairs; `parse` turns a value into a dict or None."""
        with self.lock:
            for value, at in batch:
                doc = parse(value)
                if doc is None:
                    self.rejected += 1
                    continue
                try:
                    self._apply(doc, at)
                    self.events += 1
                except (KeyError, TypeError, ValueError):
                    self.rejected += 1

    def _apply(self, doc: dict[str, Any], at: float) -> None:
        kind = doc.get("type")
        if kind == "reading":
            self._reading(doc, at)
        elif kind == "ride_started":
            self._started(doc, at)
        elif kind == "ride_ended":
            self._ended(doc, at)
        elif "episode" in doc and "limit_high" in doc:
            self._alert(doc)

    def _bike(self, serial: str, at: float) -> Bike:
        bike = self.bikes.get(serial)
        if bike is None:
            bike = self.bikes[serial] = Bike(serial)
        bike.heard = max(bike.heard, at)
        return bike

    def _started(self, doc: dict[str, Any], at: float) -> None:
        ride_id = int(doc["ride_id"])
        if ride_id in self.by_ride:
            return  # a replayed announcement
        # Only the slim rider's fields are read: user_id, first_name, gender, date_of_birth.
        who = doc["rider"]
        gender = who["gender"] if who["gender"] in ("male", "female") else "other"
        dob = date.fromisoformat(who["date_of_birth"])
        started = ts(doc["started_at"])
        bike = self._bike(str(doc["bike_serial"]), at)
        if bike.ride is not None and bike.ride.started_at > started:
            return  # an older ride announced late: the bike has moved on
        ride = Ride(
            ride_id=ride_id,
            bike_serial=bike.serial,
            model=doc.get("model"),
            started_at=started,
            user_id=int(who["user_id"]),
            first_name=str(who["first_name"]),
            gender=gender,
            date_of_birth=dob,
            limits=limits_for(gender, dob, started.date(), self.thresholds),
        )
        if bike.ride is not None:
            self.by_ride.pop(bike.ride.ride_id, None)
        bike.ride = ride
        self.by_ride[ride_id] = ride
        early = self.early_alerts.pop(ride_id, None)
        if early is not None:
            self._alert(early)

    def _reading(self, doc: dict[str, Any], at: float) -> None:
        ride = self.by_ride.get(int(doc["ride_id"]))
        if ride is None:
            return  # a ride announced before this process's window: nothing to show it with
        elapsed = int(doc["elapsed_s"])
        if elapsed <= ride.last_elapsed:
            return  # at-least-once delivery: a duplicate
        self._bike(ride.bike_serial, at)
        hr = doc["heart_rate"] or 0
        power = float(doc["power"])
        resistance = int(doc["resistance"])
        ride.elapsed.append(elapsed)
        ride.heart_rate.append(hr)
        ride.power.append(power)
        ride.resistance.append(resistance)
        ride.rpm = int(doc["rpm"])
        ride.energy_j += power  # one reading a second: watts summed are joules
        ride.resistance_sum += resistance
        if hr > 0:
            ride.heart_rate_sum += hr
            ride.heart_rate_n += 1
            ride.max_heart_rate = max(ride.max_heart_rate, hr)
            self._recovery(ride, hr)

    def _recovery(self, ride: Ride, hr: int) -> None:
        """The episode ends after `recovery_readings` in-range readings in a row (as alerts)."""
        ep = ride.episode
        if ep is None or not ep.active:
            return
        if ep.limit_low <= hr <= ep.limit_high:
            ep.in_range += 1
            if ep.in_range >= self.recovery_readings:
                ep.active = False
        else:
            ep.in_range = 0

    def _ended(self, doc: dict[str, Any], at: float) -> None:
        ride = self.by_ride.get(int(doc["ride_id"]))
        if ride is not None and ride.ended_at is None:
            ride.ended_at = ts(doc["ended_at"])
            self._bike(ride.bike_serial, at)

    def _alert(self, doc: dict[str, Any]) -> None:
        ride = self.by_ride.get(int(doc["ride_id"]))
        if ride is None:
            if len(self.early_alerts) >= MAX_EARLY_ALERTS:
                self.early_alerts.pop(next(iter(self.early_alerts)))
            self.early_alerts[int(doc["ride_id"])] = doc
            return
        number = int(doc["episode"])
        if ride.episode is not None and ride.episode.number >= number:
            return  # a replayed alert
        ride.alerts = max(ride.alerts, number)
        ride.episode = Episode(
            number=number,
            kind=str(doc["kind"]),
            limit_low=int(doc["limit_low"]),
            limit_high=int(doc["limit_high"]),
            detected_at=ts(doc["detected_at"]),
        )

    # --- reading ------------------------------------------------------------------------

    def _in_use(self, bike: Bike, now: float) -> bool:
        ride = bike.ride
        return ride is not None and ride.ended_at is None and now - bike.heard < self.idle_s

    def riders(self, now: float, today: date) -> list[Rider]:
        """Riders in a ride now, ranked by energy so far (then longest ride, then bike)."""
        with self.lock:
            out = [
                _rider(bike.ride, today)
                for bike in self.bikes.values()
                if bike.ride is not None and self._in_use(bike, now)
            ]
        out.sort(key=lambda r: (-r.energy_kj, -r.elapsed_s, r.bike_serial))
        return out

    def bike_of_rider(self, user_id: int, now: float) -> str | None:
        """The bike this rider is on now, if any."""
        with self.lock:
            for bike in self.bikes.values():
                if bike.ride and bike.ride.user_id == user_id and self._in_use(bike, now):
                    return bike.serial
        return None

    def view(
        self, serial: str, now: float, today: date, *, since: int = 0, ride_id: int | None = None
    ) -> RideView | None:
        """The bike's latest ride; points from index `since` when `ride_id` is the one the
        caller already has, else all of them."""
        with self.lock:
            bike = self.bikes.get(serial)
            if bike is None or bike.ride is None:
                return None
            ride = bike.ride
            start = since if ride_id == ride.ride_id and 0 <= since <= len(ride.elapsed) else 0
            hr = ride.heart_rate[start:]
            points = Points(
                start=start,
                elapsed_s=ride.elapsed[start:].tolist(),
                heart_rate=[h or None for h in hr],
                power=ride.power[start:].tolist(),
                resistance=ride.resistance[start:].tolist(),
            )
            n = len(ride.elapsed)
            last_hr = ride.heart_rate[-1] if n else 0
            ep = ride.episode
            return RideView(
                bike_serial=serial,
                model=ride.model,
                in_use=self._in_use(bike, now),
                ride_id=ride.ride_id,
                user_id=ride.user_id,
                first_name=ride.first_name,
                gender=ride.gender,
                age=age_on(ride.date_of_birth, today),
                limits=ride.limits,
                started_at=ride.started_at,
                ended=ride.ended_at is not None,
                elapsed_s=ride.last_elapsed if n else 0,
                heart_rate=last_hr or None,
                rpm=ride.rpm,
                power=ride.power[-1] if n else 0.0,
                resistance=ride.resistance[-1] if n else 0,
                energy_kj=ride.energy_j / 1000.0,
                avg_power=ride.energy_j / n if n else None,
                avg_resistance=ride.resistance_sum / n if n else None,
                avg_heart_rate=ride.heart_rate_sum / ride.heart_rate_n
                if ride.heart_rate_n
                else None,
                max_heart_rate=ride.max_heart_rate or None,
                readings=n,
                alert=Episode(**vars(ep)) if ep is not None and ep.active else None,
                alerts=ride.alerts,
                points=points,
            )

    def counts(self, now: float) -> tuple[int, int]:
        """(bikes in use now, bikes ever seen)."""
        with self.lock:
            return sum(self._in_use(b, now) for b in self.bikes.values()), len(self.bikes)


def _rider(ride: Ride, today: date) -> Rider:
    n = len(ride.elapsed)
    ep = ride.episode
    return Rider(
        bike_serial=ride.bike_serial,
        user_id=ride.user_id,
        first_name=ride.first_name,
        gender=ride.gender,
        age=age_on(ride.date_of_birth, today),
        elapsed_s=ride.last_elapsed if n else 0,
        energy_kj=ride.energy_j / 1000.0,
        avg_power=ride.energy_j / n if n else None,
        heart_rate=(ride.heart_rate[-1] or None) if n else None,
        in_alert=ep is not None and ep.active,
    )
