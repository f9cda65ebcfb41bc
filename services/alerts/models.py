"""Typed events the alerts service reads and the alert it raises."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from services.alerts.rules import Limits


@dataclass(frozen=True)
class Rider:
    """What the safe-range rules need of a rider (from the ride_started event). Nothing more is
    kept: this state goes to the table's changelog topic. The notifier reads the rider's name
    and address from PostgreSQL when it sends."""

    user_id: int
    gender: str  # male, female or other
    date_of_birth: date


@dataclass(frozen=True)
class RideStarted:
    """A ride_started event."""

    ride_id: int
    bike_serial: str
    started_at: datetime
    rider: Rider


@dataclass(frozen=True)
class Reading:
    """The part of a reading event that alerts look at."""

    ride_id: int
    bike_serial: str
    user_id: int
    recorded_at: datetime
    elapsed_s: int
    heart_rate: int | None


@dataclass(frozen=True)
class RideEnded:
    """A ride_ended event."""

    ride_id: int
    bike_serial: str
    ended_at: datetime


@dataclass(frozen=True)
class Seen:
    """One out-of-range reading kept as evidence for an alert."""

    elapsed_s: int
    recorded_at: datetime
    heart_rate: int
    kind: str  # high or low


@dataclass(frozen=True)
class Alert:
    """One episode of out-of-range heart rate on one ride."""

    ride_id: int
    episode: int
    user_id: int
    bike_serial: str
    kind: str
    detected_at: datetime  # event time of the reading that confirmed the episode
    readings: tuple[Seen, ...]
    limits: Limits
    rider: Rider

    @property
    def heart_rates(self) -> list[int]:
        """The out-of-range heart rates that raised the alert, in order."""
        return [s.heart_rate for s in self.readings]
