"""The offset the alerts worker commits after a rejoin (services/alerts/transport.py)."""

from __future__ import annotations

from collections.abc import Iterator

import faust
import pytest
from faust.types import TP

from services.alerts.transport import Transport

EVENTS = TP("deloton.events", 0)


@pytest.fixture
def consumer() -> Iterator[faust.types.transports.ConsumerT]:
    """The worker's consumer, not connected: only its offset bookkeeping is used."""
    app = faust.App("alerts-offsets", broker="kafka://127.0.0.1:9", web_enabled=False)
    app.transport = Transport(app.conf.broker_consumer, app)
    yield app.consumer


def ack(consumer: faust.types.transports.ConsumerT, *offsets: int) -> None:
    """What Consumer.ack records for each acknowledged message."""
    for offset in offsets:
        if offset not in consumer._acked_index[EVENTS]:  # type: ignore[attr-defined]
            consumer._acked_index[EVENTS].add(offset)  # type: ignore[attr-defined]
            consumer._acked[EVENTS].append(offset)  # type: ignore[attr-defined]


def commit_rounds(consumer: faust.types.transports.ConsumerT, rounds: int) -> list[int | None]:
    """The offset each commit round would commit (and does, as faust would)."""
    out = []
    for _ in range(rounds):
        offset = consumer._new_offset(EVENTS)  # type: ignore[attr-defined]
        out.append(offset)
        if offset is not None:
            consumer._committed_offset[EVENTS] = offset  # type: ignore[attr-defined]
    return out


def test_a_gap_from_a_rejoin_acked_again_commits_all_at_once(
    consumer: faust.types.transports.ConsumerT,
) -> None:
    # Committed up to 100; records of the fetch before the seek jumped the read offset to
    # 110 (a gap 101..109), then 100..120 were delivered again and acked.
    consumer._committed_offset[EVENTS] = 100  # type: ignore[attr-defined]
    consumer._gap[EVENTS].addi(101, 110)  # type: ignore[attr-defined]
    ack(consumer, *range(100, 121))
    # faust alone commits 102, 103, 104, ... one offset a round (2.8 s each).
    assert commit_rounds(consumer, 2) == [121, None]
    assert consumer._acked[EVENTS] == []  # type: ignore[attr-defined]


def test_duplicates_and_offsets_already_committed_do_not_hold_the_commit(
    consumer: faust.types.transports.ConsumerT,
) -> None:
    consumer._committed_offset[EVENTS] = 50  # type: ignore[attr-defined]
    consumer._acked[EVENTS].extend([48, 49, 50, 51, 51, 52, 52, 53])  # type: ignore[attr-defined]
    assert commit_rounds(consumer, 2) == [54, None]


def test_an_event_not_acked_at_the_head_still_holds_the_commit(
    consumer: faust.types.transports.ConsumerT,
) -> None:
    # 200 and 201 are still being handled: nothing past them is committed (at least once).
    consumer._committed_offset[EVENTS] = 200  # type: ignore[attr-defined]
    ack(consumer, *range(202, 210))
    assert commit_rounds(consumer, 1) == [None]
    ack(consumer, 200, 201)
    assert commit_rounds(consumer, 1) == [210]
