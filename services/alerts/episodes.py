"""The per-bike episode state machine: events in, new state and at most one alert out (pure).

A bike carries one ride at a time. Within a ride:
- a reading without heart-rate contact (null or 0) neither counts nor resets anything;
- `episode_readings` consecutive out-of-range readings (above the maximum or below the
  minimum, in any mix) start an episode and raise exactly one alert, whose kind is the
  majority kind of those readings (ties go to the reading that confirmed it);
- the episode ends after `recovery_readings` consecutive in-range readings, and a later run
  of out-of-range readings starts (and alerts for) the next episode.
Events arrive at least once: a reading whose elapsed_s is not past the last one seen on the
ride is a duplicate and is dropped, so a replay never advances the machine twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.alerts.models import Alert, Reading, RideEnded, Rider, RideStarted, Seen
from services.alerts.rules import Thresholds, limits_for
from services.common.config import Settings

Event = RideStarted | Reading | RideEnded


@dataclass(frozen=True)
class EpisodeRules:
    """How many readings make and end an episode, and the heart-rate thresholds."""

    @classmethod
    def from_settings(cls, settings: Settings) -> EpisodeRules:
        """The rules configured in Settings."""
        return cls(
            episode_readings=settings.alert_episode_readings,
            recovery_readings=settings.alert_recovery_readings,
            thresholds=Thresholds.from_settings(settings),
        )

    episode_readings: int = 3
    recovery_readings: int = 3
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class BikeState:
    """What one bike's current ride has shown so far."""

    ride_id: int
    bike_serial: str
    started_at: datetime
    rider: Rider | None
    ended: bool = False
    last_elapsed_s: int = -1
    run: tuple[Seen, ...] = ()
    in_episode: bool = False
    episode: int = 0
    recovery: int = 0


@dataclass(frozen=True)
class Outcome:
    """The result of one event: the state to keep, an alert to raise, and what happened."""

    state: BikeState | None
    alert: Alert | None
    what: str  # for metrics: started, reading, duplicate, no_ride, ended, replayed_start


def apply(state: BikeState | None, event: Event, rules: EpisodeRules) -> Outcome:
    """Advance one bike's state by one event."""
    if isinstance(event, RideStarted):
        return _on_start(state, event)
    if isinstance(event, RideEnded):
        if state is None or state.ride_id != event.ride_id or state.ended:
            return Outcome(state, None, "no_ride")
        return Outcome(replace(state, ended=True, rider=None, run=()), None, "ended")
    return _on_reading(state, event, rules)


def _on_start(state: BikeState | None, event: RideStarted) -> Outcome:
    if state is not None and (
        state.ride_id == event.ride_id or state.started_at > event.started_at
    ):
        # A replayed announcement of this ride, or of an older one: keep what we have.
        return Outcome(state, None, "replayed_start")
    fresh = BikeState(
        ride_id=event.ride_id,
        bike_serial=event.bike_serial,
        started_at=event.started_at,
        rider=event.rider,
    )
    return Outcome(fresh, None, "started")


def _on_reading(state: BikeState | None, r: Reading, rules: EpisodeRules) -> Outcome:
    if state is None or state.ride_id != r.ride_id or state.ended or state.rider is None:
        return Outcome(state, None, "no_ride")
    if r.elapsed_s <= state.last_elapsed_s:
        return Outcome(state, None, "duplicate")
    state = replace(state, last_elapsed_s=r.elapsed_s)
    if r.heart_rate is None or r.heart_rate <= 0:
        return Outcome(state, None, "reading")
    rider = state.rider
    assert rider is not None  # checked above; mypy loses it through replace()
    limits = limits_for(rider.gender, rider.date_of_birth, r.recorded_at.date(), rules.thresholds)
    kind = limits.classify(r.heart_rate)

    if state.in_episode:
        if kind is not None:
            return Outcome(replace(state, recovery=0), None, "reading")
        recovery = state.recovery + 1
        if recovery >= rules.recovery_readings:
            return Outcome(replace(state, in_episode=False, recovery=0, run=()), None, "reading")
        return Outcome(replace(state, recovery=recovery), None, "reading")

    if kind is None:
        return Outcome(replace(state, run=()), None, "reading")
    seen = Seen(r.elapsed_s, r.recorded_at, r.heart_rate, kind)
    run = (*state.run, seen)
    if len(run) < rules.episode_readings:
        return Outcome(replace(state, run=run), None, "reading")

    episode = state.episode + 1
    alert = Alert(
        ride_id=state.ride_id,
        episode=episode,
        user_id=rider.user_id,
        bike_serial=state.bike_serial,
        kind=_majority(run),
        detected_at=r.recorded_at,
        readings=run,
        limits=limits,
        rider=rider,
    )
    after = replace(state, run=(), in_episode=True, episode=episode, recovery=0)
    return Outcome(after, alert, "reading")


def _majority(run: tuple[Seen, ...]) -> str:
    counts = Counter(s.kind for s in run)
    best = max(counts.values())
    if counts[run[-1].kind] == best:
        return run[-1].kind
    return next(k for k, n in counts.items() if n == best)
