"""A line delivered twice changes no row, on the single raw topic or on split topics."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from random import Random

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.batch import Batch
from services.ingest.parser import Parser
from services.ingest.sessionizer import Sessionizer
from services.simulator.models import BIKES, Message
from tests.ingest.test_properties import FAR_FUTURE, FAST, NOW, Routed, fleet, route
from tests.ingest.test_sessionizer import T0, announce, pairs

_EARLY_HALF = re.compile(rb"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.[0-4]\d{5} ")
_ANY = re.compile(rb"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.\d{6} ")


def drop_fractions(messages: Sequence[Message], rng: Random, share: float) -> list[Message]:
    """Lines stamped without microseconds. A share below 1: some lines in the first half of
    their second, which then read up to half a second early (never before their bike's
    previous line). A share of 1: a clock with whole seconds only, so a Ride line and its
    Telemetry line, or a Telemetry line and the next Ride line, often carry the same stamp."""
    stamp = _ANY if share >= 1 else _EARLY_HALF
    out = []
    for m in messages:
        if rng.random() < share:
            m = m._replace(value=stamp.sub(rb"\1 ", m.value, count=1))
        out.append(m)
    return out


def duplicate(messages: Sequence[Message], rng: Random, share: float) -> list[Message]:
    """Each message delivered again with probability `share`: right after itself, or for a
    reading's line, after the next line of its bike (a producer's retry that lands late).

    A late copy of an announcement is left out: banners carry no time, so a copy after the
    SYSTEM line is a new announcement to anyone reading the stream.
    """
    out: list[Message] = []
    late: dict[bytes | None, Message] = {}
    for m in messages:
        out.append(m)
        if m.key in late:
            out.append(late.pop(m.key))
        if rng.random() < share:
            if m.kind == BIKES or rng.random() < 0.5:
                out.append(m)
            else:
                late[m.key] = m
    out.extend(late.values())
    return out


def run(routed: Sequence[Routed], split: bool, restart_at: int | None = None) -> Batch:
    """The sessioniser over the routed messages; optionally restarted (state through JSON)."""
    s = Sessionizer(Parser(now=NOW), split_topics=split)
    batch = Batch()
    offsets: Counter[tuple[str, int]] = Counter()
    for n, (topic, partition, key, value) in enumerate(routed):
        if n == restart_at:
            partitions = {p for _, p, _, _ in routed}
            saved = {p: orjson.loads(orjson.dumps(s.dump_partition(p))) for p in partitions}
            s = Sessionizer(Parser(now=NOW), split_topics=split)
            for p, state in saved.items():
                s.load_partition(p, state)
        s.process(batch, topic, partition, offsets[(topic, partition)], key, value)
        offsets[(topic, partition)] += 1
    s.expire_held(batch, dict.fromkeys(range(8), FAR_FUTURE))
    return batch


def rows(batch: Batch) -> tuple[list[str], list[object]]:
    return sorted(batch.readings), sorted(r[:5] for r in batch.rides)


@FAST
@given(
    seed=st.integers(0, 10**6),
    bikes=st.integers(1, 4),
    rides=st.integers(1, 2),
    # Rides of at least 6 s: on split topics a reading whose SYSTEM line is late fits the
    # previous ride's timeline when that ride and the gap after it are shorter than the
    # clock tolerance (10 s), with or without duplicates (README, Limits).
    seconds=st.integers(6, 40),
    partitions=st.integers(1, 3),
    lag=st.integers(0, 60),
    share=st.sampled_from([0.0, 0.02, 0.1, 0.5, 1.0]),
    no_fraction=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
    cut=st.floats(0, 1),
)
def test_duplicated_lines_land_the_same_rows_on_single_and_split_topics(
    seed: int,
    bikes: int,
    rides: int,
    seconds: int,
    partitions: int,
    lag: int,
    share: float,
    no_fraction: float,
    cut: float,
) -> None:
    rng = Random(seed)
    clean = drop_fractions(list(fleet(seed, bikes, rides, seconds).messages()), rng, no_fraction)
    doubled = duplicate(clean, rng, share)
    want = rows(run(list(route(clean, "keyed", partitions, 0)), split=False))
    assert len(want[0]) == bikes * rides * seconds
    single = list(route(doubled, "keyed", partitions, 0))
    split = list(route(doubled, "split", partitions, lag))
    one, two = run(single, split=False), run(split, split=True)
    assert rows(one) == want
    assert rows(two) == want
    # Every copy is rejected the same way on both paths.
    assert Counter(r.reason for r in one.rejects) == Counter(r.reason for r in two.rejects)
    assert rows(run(split, split=True, restart_at=int(cut * len(split)))) == want
    assert rows(run(single, split=False, restart_at=int(cut * len(single)))) == want


# --- where the copy falls ------------------------------------------------------------------------

TELEMETRY_TOPIC, BIKES_TOPIC = "deloton.telemetry", "deloton.bikes"


def split_feed(readings: list[bytes], copy_at: int, late: bool) -> list[Routed]:
    """A ride whose SYSTEM line is read after its readings (held), with reading line
    `copy_at` delivered twice: right after itself, or after the next line."""
    lines = list(readings)
    lines.insert(copy_at + (2 if late else 1), lines[copy_at])
    routed: list[Routed] = [(TELEMETRY_TOPIC, 0, b"SN0007", v) for v in lines]
    return routed + [(BIKES_TOPIC, 0, b"SN0007", v) for v in announce(T0)]


@pytest.mark.parametrize("late", [False, True])
@pytest.mark.parametrize("copy_at", [0, 1, 20, 21, 38, 39])  # first, middle and last pair
@pytest.mark.parametrize("whole_seconds", [False, True])
def test_a_repeated_reading_line_is_a_duplicate_wherever_it_falls(
    copy_at: int, late: bool, whole_seconds: bool
) -> None:
    readings = pairs(T0, 1, 20)
    if whole_seconds:
        readings = [_ANY.sub(rb"\1 ", v, count=1) for v in readings]
    want = sorted(run([(TELEMETRY_TOPIC, 0, b"SN0007", v) for v in readings]
                      + [(BIKES_TOPIC, 0, b"SN0007", v) for v in announce(T0)], split=True).readings)  # fmt: skip
    assert len(want) == 20
    feed = split_feed(readings, copy_at, late)
    single = [("deloton", 0, key, v) for _, _, key, v in feed[-3:] + feed[:-3]]
    for batch in (
        run(feed, split=True),
        run(single, split=False),
        *(run(feed, split=True, restart_at=n) for n in range(copy_at, copy_at + 4)),
    ):
        assert sorted(batch.readings) == want
        assert [(r.reason, r.raw) for r in batch.rejects] == [("duplicate", readings[copy_at])]
