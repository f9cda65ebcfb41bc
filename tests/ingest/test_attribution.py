"""Pairing and attribution: whole-second clocks, interleaved rides, serials, per-bike silence."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from services.ingest.sessionizer import ride_id_for
from tests.ingest.test_sessionizer import (
    SAMPLE_START,
    T0,
    Run,
    ride,
    sample_copy_lines,
)


@pytest.fixture(scope="module")
def sample(real_sample: Path) -> list[bytes]:
    """The real capture's message values, byte for byte."""
    return real_sample.read_bytes().splitlines()


_FRACTION = re.compile(rb"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.\d{1,6}")


def whole_seconds(value: bytes) -> bytes:
    """The line as a bike whose clock has only whole seconds prints it."""
    return _FRACTION.sub(rb"\1", value)


# --- whole-second clocks -------------------------------------------------------------------------


def test_whole_second_capture_pairs_every_ride_line_with_its_own_telemetry(
    sample: list[bytes],
) -> None:
    """In the capture each Ride line and its Telemetry line fall in the same second: with the
    fractions gone they carry the same timestamp, and feed order pairs them."""
    fed = [whole_seconds(v) for v in sample]
    run = Run().feed(fed, None)
    assert run.batch.rejects == []
    ride_id = ride_id_for("SN0000", SAMPLE_START[:19])
    want = [
        line.replace(str(ride_id_for("SN0000", SAMPLE_START)), str(ride_id), 1)
        for line in sample_copy_lines(fed)
    ]
    assert run.batch.readings == want
    assert len(want) == 498


def test_whole_second_swapped_neighbours_keep_their_order(sample: list[bytes]) -> None:
    """Feed order decides a tie: a Telemetry line before its Ride line is not its pair."""
    fed = [whole_seconds(v) for v in sample[:20]]
    fed[6], fed[7] = fed[7], fed[6]  # Telemetry 2 before Ride 2, same second
    run = Run().feed(fed, None)
    assert [r.elapsed for r in run.rows()] == [1, 3, 4, 5, 6, 7, 8]
    assert Counter(r.reason for r in run.batch.rejects) == {"unpaired": 1}
    run.feed(ride(T0, 1), None)
    assert Counter(r.reason for r in run.batch.rejects) == {"unpaired": 2}


# --- the SYSTEM line's serial against the message key --------------------------------------------


def test_system_serial_other_than_the_key_is_recorded_and_the_key_wins(
    sample: list[bytes],
) -> None:
    run = Run().feed(sample[:10], b"SN0042")
    (row,) = run.batch.rides
    assert row.bike_serial == "SN0042"  # the key names the bike
    assert row.announced_serial == "SN0000"  # what the SYSTEM line said, kept
    assert row.ride_id == ride_id_for("SN0042", SAMPLE_START)


def test_system_serial_equal_to_the_key_records_nothing(sample: list[bytes]) -> None:
    run = Run().feed(sample[:10], b"SN0000")
    assert [r.announced_serial for r in run.batch.rides] == [None]


def test_unkeyed_stream_takes_the_serial_of_its_system_line(sample: list[bytes]) -> None:
    run = Run().feed(sample[:10], None)
    assert [(r.bike_serial, r.announced_serial) for r in run.batch.rides] == [("SN0000", None)]
