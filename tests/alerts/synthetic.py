"""Synthetic ride events (schemas/messages) for the alerts tests and bench/alerts.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from confluent_kafka import Producer

from services.alerts.codec import iso


def rider(
    user_id: int,
    *,
    gender: str = "male",
    date_of_birth: date = date(1990, 5, 17),
    email: str | None = None,
    first_name: str = "Sam",
) -> dict[str, Any]:
    """A rider as ingest knows them (a 30-something man by default: 40-18x bpm); the
    ride_started event carries part of it, register_riders writes it to daily.riders."""
    return {
        "user_id": user_id, "title": None, "first_name": first_name, "last_name": "Rider",
        "gender": gender, "date_of_birth": date_of_birth.isoformat(),
        "email_address": email if email is not None else f"rider{user_id}@example.com",
        "height_cm": 180, "weight_kg": 80, "city": "London",
    }  # fmt: skip


def ride_started(
    ride_id: int, bike: str, who: dict[str, Any], started_at: datetime | None = None
) -> dict[str, Any]:
    """A ride_started event: of the rider, only what the event carries (no address)."""
    rider_fields = ("user_id", "first_name", "gender", "date_of_birth")
    return {
        "type": "ride_started", "ride_id": ride_id, "bike_serial": bike, "model": "mendoza v9",
        "started_at": iso(started_at or datetime.now(UTC)),
        "rider": {k: who[k] for k in rider_fields},
    }  # fmt: skip


def reading(
    ride_id: int,
    bike: str,
    user_id: int,
    elapsed_s: int,
    heart_rate: int | None,
    recorded_at: datetime | None = None,
) -> dict[str, Any]:
    """A reading event."""
    return {
        "type": "reading", "ride_id": ride_id, "bike_serial": bike, "user_id": user_id,
        "recorded_at": iso(recorded_at or datetime.now(UTC)), "elapsed_s": elapsed_s,
        "resistance": 40, "heart_rate": heart_rate, "rpm": 60, "power": 120.5,
    }  # fmt: skip


def ride_ended(ride_id: int, bike: str, ended_at: datetime | None = None) -> dict[str, Any]:
    """A ride_ended event."""
    return {
        "type": "ride_ended", "ride_id": ride_id, "bike_serial": bike,
        "ended_at": iso(ended_at or datetime.now(UTC)), "reason": "next_ride",
    }  # fmt: skip


def ride(
    ride_id: int, bike: str, who: dict[str, Any], heart_rates: Sequence[int | None]
) -> list[dict[str, Any]]:
    """A ride_started followed by one reading a second with these heart rates, ending now."""
    start = datetime.now(UTC) - timedelta(seconds=len(heart_rates))
    events = [ride_started(ride_id, bike, who, start)]
    for s, hr in enumerate(heart_rates, start=1):
        at = start + timedelta(seconds=s)
        events.append(reading(ride_id, bike, who["user_id"], s, hr, at))
    return events


def produce(producer: Producer, topic: str, events: list[dict[str, Any]]) -> None:
    """Produce events keyed by bike serial and wait until the broker has them all."""
    for event in events:
        producer.produce(topic, key=event["bike_serial"].encode(), value=orjson.dumps(event))
        producer.poll(0)
    producer.flush(30)


def register_riders(conn: Any, *riders: dict[str, Any]) -> None:
    """Write the riders to daily.riders, as ingest would before publishing their rides: the
    notifier reads each address there when it sends."""
    with conn.cursor() as cur:
        for who in riders:
            cur.execute(
                """INSERT INTO daily.riders (user_id, first_name, last_name, gender,
                       date_of_birth, email_address, details_at)
                   VALUES (%s, %s, %s, %s, %s, %s, now())
                   ON CONFLICT (user_id) DO UPDATE SET email_address = EXCLUDED.email_address""",
                (
                    who["user_id"], who["first_name"], who.get("last_name", "Rider"),
                    who["gender"], who["date_of_birth"], who.get("email_address"),
                ),
            )  # fmt: skip
    conn.commit()
