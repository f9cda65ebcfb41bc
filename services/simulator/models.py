"""The simulator's small value types: messages and bikes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

# What a message announces (banners, user data, SYSTEM) or measures (Ride, Telemetry);
# `--split-topics` routes the two kinds to different topics.
BIKES = "bikes"
TELEMETRY = "telemetry"
KINDS = (BIKES, TELEMETRY)

MODEL_RE = re.compile(r"[A-Za-z0-9_]+ v\d+")


class Message(NamedTuple):
    """One Kafka record: its kind, key and value, and the simulated time it is due (epoch s)."""

    kind: str
    key: bytes | None
    value: bytes
    at: float


@dataclass(frozen=True, slots=True)
class Bike:
    """One bike of the fleet: serial, model and where in each half-second it reports."""

    serial: str
    model: str
    phase_us: int

    def __post_init__(self) -> None:
        # Ride and Telemetry values are formatted without JSON escaping: keep the model plain.
        if not MODEL_RE.fullmatch(self.model):
            raise ValueError(f"bike model must look like 'mendoza v9', got {self.model!r}")

    @property
    def key(self) -> bytes:
        """The Kafka message key: the serial as bytes."""
        return self.serial.encode()
