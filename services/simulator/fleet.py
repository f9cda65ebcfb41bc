"""A fleet of bikes riding at once, interleaved in time order: the simulator's library API."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random
from typing import TYPE_CHECKING

from services.simulator import names
from services.simulator.bike import MAX_JITTER_US, TICK_US, Schedule, bike_stream
from services.simulator.faults import ALL_FAULTS, FaultInjector
from services.simulator.lines import SecondsText
from services.simulator.models import Bike, Message
from services.simulator.pool import RiderPool, pool_size

if TYPE_CHECKING:
    from services.simulator.truth import BikeTruth, Truth

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIRST_START_TICKS = 20  # bikes start their first ride within the first 10 s


@dataclass(frozen=True)
class FleetConfig:
    """What to simulate; `rides=None` rides forever, `start=None` starts now (UTC)."""

    bikes: int = 10
    rides: int | None = 1
    seconds: int = 500
    seed: int = 0
    start: datetime | None = None
    faults: float = 0.0
    riders: int | None = None
    first_serial: int = 0
    fault_kinds: tuple[str, ...] = ALL_FAULTS
    until_s: int | None = None  # no ride starts this many seconds after the start: it ends

    def __post_init__(self) -> None:
        if self.bikes < 1 or self.seconds < 1 or (self.rides is not None and self.rides < 1):
            raise ValueError("bikes, rides and seconds must be at least 1")
        if not 0.0 <= self.faults <= 1.0:
            raise ValueError("faults is a probability between 0 and 1")
        if self.until_s is not None and self.until_s < 1:
            raise ValueError("until_s must be at least 1")


class Fleet:
    """Generates the fleet's messages; `faults` counts the faults injected so far."""

    def __init__(self, config: FleetConfig, truth: Truth | None = None) -> None:
        self.config = config
        self.truth = truth
        start = config.start or datetime.now(UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self.start = start
        self.start_us = (start - EPOCH) // timedelta(microseconds=1)
        self.faults: Counter[str] = Counter()
        size = config.riders or pool_size(config.bikes, config.rides)
        self.pool = RiderPool(config.seed, max(size, config.bikes), self.start_us // 1000)
        self.bikes = self._make_bikes()

    def _make_bikes(self) -> list[Bike]:
        """The bikes, in the order of their phase within each half second."""
        cfg = self.config
        slot = TICK_US // cfg.bikes
        slots = list(range(cfg.bikes))
        Random(f"{cfg.seed}:fleet").shuffle(slots)
        bikes = []
        for i, position in enumerate(slots):
            serial = f"SN{cfg.first_serial + i:04d}"
            rng = Random(f"{cfg.seed}:bike:{serial}")
            model = rng.choices(names.BIKE_MODELS, names.BIKE_MODEL_WEIGHTS)[0]
            phase = position * slot + rng.randrange(max(1, slot - self._jitter_us()))
            bikes.append(Bike(serial, model, phase))
        return sorted(bikes, key=lambda b: b.phase_us)

    def _jitter_us(self) -> int:
        return min(MAX_JITTER_US, TICK_US // self.config.bikes // 4)

    def messages(self) -> Iterator[Message]:
        """Every bike's messages, tick by tick: all lines of one half second before the next."""
        seconds_text = SecondsText()
        streams = [self._stream(bike, seconds_text) for bike in self.bikes]
        while streams:
            alive = []
            for stream in streams:
                step = stream.__next__
                try:
                    msg = step()
                    while msg is not None:
                        yield msg
                        msg = step()
                except StopIteration:
                    continue
                alive.append(stream)
            streams = alive

    def _stream(self, bike: Bike, seconds_text: SecondsText) -> Iterator[Message | None]:
        cfg = self.config
        rng = Random(f"{cfg.seed}:ride:{bike.serial}")
        injector = None
        join_at = 0
        if cfg.faults > 0:
            injector = FaultInjector(
                cfg.faults, Random(f"{cfg.seed}:faults:{bike.serial}"), self.faults, cfg.fault_kinds
            )
            if injector.joins_mid_ride() and cfg.seconds > 1:
                join_at = rng.randrange(1, cfg.seconds)
        last = None if cfg.until_s is None else cfg.until_s * 1_000_000 // TICK_US
        schedule = Schedule(
            cfg.rides, cfg.seconds, rng.randrange(FIRST_START_TICKS), join_at, last_start_tick=last
        )
        stream = bike_stream(
            bike, schedule, self.pool, seconds_text, self.start_us, self._jitter_us(), rng
        )
        if self.truth is None:
            return injector.wrap(stream) if injector else stream
        truth = self.truth.bike(bike.serial)
        tapped = _tap(stream, truth)
        return injector.wrap(tapped, truth) if injector else _sent(tapped, truth)


def _tap(stream: Iterator[Message | None], truth: BikeTruth) -> Iterator[Message | None]:
    """The bike's lines, each told to the truth as produced, before any fault."""
    for msg in stream:
        if msg is not None:
            truth.clean(msg)
        yield msg


def _sent(stream: Iterator[Message | None], truth: BikeTruth) -> Iterator[Message | None]:
    """Without faults every line is sent as produced."""
    for msg in stream:
        if msg is not None:
            truth.sent(msg)
        yield msg
