"""Events in the shapes ingest and alerts publish, for the dashboard's tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from confluent_kafka import Producer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def started(
    ride_id: int,
    bike: str,
    *,
    user_id: int = 7,
    first_name: str = "Ada",
    gender: str = "female",
    dob: date = date(1990, 5, 1),
    at: datetime = T0,
    slim: bool = True,
) -> dict[str, Any]:
    """A ride_started event: the slim rider (what the dashboard may rely on) or the full one
    ingest published before personal data was trimmed from the events."""
    rider = {
        "user_id": user_id,
        "first_name": first_name,
        "gender": gender,
        "date_of_birth": dob.isoformat(),
    }
    head = {
        "type": "ride_started",
        "ride_id": ride_id,
        "bike_serial": bike,
        "model": "mendoza v9",
        "started_at": iso(at),
    }
    if slim:
        return head | {"rider": rider}
    extra = {"last_name": "L", "title": None, "email_address": "a@b.example", "city": "Leeds"}
    return head | {"rider": rider | extra}


def reading(
    ride_id: int,
    bike: str,
    elapsed: int,
    *,
    hr: int | None = 120,
    power: float = 100.0,
    resistance: int = 40,
    rpm: int = 70,
    user_id: int = 7,
    at: datetime = T0,
) -> dict[str, Any]:
    return {
        "type": "reading",
        "ride_id": ride_id,
        "bike_serial": bike,
        "user_id": user_id,
        "recorded_at": iso(at + timedelta(seconds=elapsed)),
        "elapsed_s": elapsed,
        "resistance": resistance,
        "heart_rate": hr,
        "rpm": rpm,
        "power": power,
    }


def ended(ride_id: int, bike: str, at: datetime) -> dict[str, Any]:
    return {
        "type": "ride_ended",
        "ride_id": ride_id,
        "bike_serial": bike,
        "ended_at": iso(at),
        "reason": "silence",
    }


def alert(
    ride_id: int, bike: str, *, episode: int = 1, high: int = 187, low: int = 45
) -> dict[str, Any]:
    return {
        "ride_id": ride_id,
        "episode": episode,
        "user_id": 7,
        "bike_serial": bike,
        "kind": "high",
        "detected_at": iso(T0),
        "heart_rates": [190, 191, 192],
        "limit_low": low,
        "limit_high": high,
    }


def send(producer: Producer, topic: str, docs: list[dict[str, Any]]) -> None:
    """Produce each event keyed by its bike, as ingest does, and wait for the acks."""
    for doc in docs:
        producer.produce(topic, orjson.dumps(doc), key=doc["bike_serial"].encode())
    producer.flush(10)
