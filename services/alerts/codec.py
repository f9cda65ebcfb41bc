"""Bytes <-> typed values for the alerts service: events in, bike state, alert out (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson

from services.alerts.episodes import BikeState, Event
from services.alerts.models import Alert, Reading, RideEnded, Rider, RideStarted, Seen

IGNORED = None  # an event type this service has no use for
MAX_HEART_RATE = 400  # above any human rate: a corrupt value, not a reading (fits smallint)


class BadEvent(ValueError):
    """A message that is not a valid event; the reason is a short machine-readable word."""


def ts(text: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime (naive input is taken as UTC)."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime) -> str:
    """An aware datetime as RFC 3339 UTC with a Z suffix."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_event(raw: bytes) -> Event | None:
    """The typed event in a message value; None for event types alerts ignore."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadEvent("not_json") from exc
    if not isinstance(doc, dict):
        raise BadEvent("not_object")
    try:
        kind = doc.get("type")
        if kind == "reading":
            hr = doc["heart_rate"]
            if hr is not None and not 0 <= int(hr) <= MAX_HEART_RATE:
                raise ValueError(f"heart_rate {hr} out of bounds")
            return Reading(
                ride_id=int(doc["ride_id"]),
                bike_serial=str(doc["bike_serial"]),
                user_id=int(doc["user_id"]),
                recorded_at=ts(doc["recorded_at"]),
                elapsed_s=int(doc["elapsed_s"]),
                heart_rate=None if hr is None else int(hr),
            )
        if kind == "ride_started":
            return RideStarted(
                ride_id=int(doc["ride_id"]),
                bike_serial=str(doc["bike_serial"]),
                started_at=ts(doc["started_at"]),
                rider=_rider(doc["rider"]),
            )
        if kind == "ride_ended":
            return RideEnded(
                ride_id=int(doc["ride_id"]),
                bike_serial=str(doc["bike_serial"]),
                ended_at=ts(doc["ended_at"]),
            )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise BadEvent(f"invalid_{kind}") from exc
    return IGNORED


def _rider(doc: dict[str, Any]) -> Rider:
    gender = doc["gender"]
    return Rider(
        user_id=int(doc["user_id"]),
        gender=gender if gender in ("male", "female") else "other",
        date_of_birth=date.fromisoformat(doc["date_of_birth"]),
    )


def alert_payload(alert: Alert) -> bytes:
    """The alert as the JSON value of schemas/messages/alert.schema.json."""
    return orjson.dumps(
        {
            "ride_id": alert.ride_id,
            "episode": alert.episode,
            "user_id": alert.user_id,
            "bike_serial": alert.bike_serial,
            "kind": alert.kind,
            "detected_at": iso(alert.detected_at),
            "heart_rates": alert.heart_rates,
            "limit_low": alert.limits.low,
            "limit_high": alert.limits.high,
        }
    )


def state_to_dict(state: BikeState) -> dict[str, Any]:
    """A bike's state as JSON-ready values (kept in the faust table)."""
    rider = state.rider
    return {
        "ride_id": state.ride_id,
        "bike_serial": state.bike_serial,
        "started_at": iso(state.started_at),
        "rider": None
        if rider is None
        else {
            "user_id": rider.user_id,
            "gender": rider.gender,
            "date_of_birth": rider.date_of_birth.isoformat(),
        },
        "ended": state.ended,
        "last_elapsed_s": state.last_elapsed_s,
        "run": [[s.elapsed_s, iso(s.recorded_at), s.heart_rate, s.kind] for s in state.run],
        "in_episode": state.in_episode,
        "episode": state.episode,
        "recovery": state.recovery,
    }


def state_from_dict(doc: dict[str, Any]) -> BikeState:
    """The inverse of state_to_dict."""
    return BikeState(
        ride_id=doc["ride_id"],
        bike_serial=doc["bike_serial"],
        started_at=ts(doc["started_at"]),
        rider=None if doc["rider"] is None else _rider(doc["rider"]),
        ended=doc["ended"],
        last_elapsed_s=doc["last_elapsed_s"],
        run=tuple(Seen(e, ts(at), hr, k) for e, at, hr, k in doc["run"]),
        in_episode=doc["in_episode"],
        episode=doc["episode"],
        recovery=doc["recovery"],
    )
