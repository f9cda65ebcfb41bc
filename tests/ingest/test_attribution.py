"""Pairing and attribution: whole-second clocks, interleaved rides, serials, per-bike silence."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from services.ingest.sessionizer import ride_id_for
from tests.ingest.test_sessionizer import (
    SAMPLE_START,
    T0,
    Run,
    as_expected,
    expected,
    restart_at,
    ride,
    sample_copy_lines,
    stamp,
    uninterrupted,
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


# --- two rides interleaved on one key ------------------------------------------------------------


def as_sent(*streams: list[bytes]) -> list[bytes]:
    """The streams merged in time order; a banner goes with the line after it."""
    timed = []
    for n, stream in enumerate(streams):
        due = "9999"
        for i, v in reversed(list(enumerate(stream))):
            line = json.loads(v)["log"]
            due = line[:26] if line[:1].isdigit() else due
            timed.append((due, n, i, v))
    return [v for *_, v in sorted(timed)]


def interleaved(gap_s: float) -> tuple[list[bytes], datetime, datetime]:
    """Ride A (120 s) and ride B (120 s, starting `gap_s` later) as two bikes send them."""
    a_start, b_start = T0, T0 + timedelta(seconds=gap_s)
    a = ride(a_start, 120, user_id=7, serial="SN0001")
    b = ride(b_start, 120, user_id=8, serial="SN0002")
    return as_sent(a, b), a_start, b_start


def wrong_rows(run: Run, *rides: tuple[str, datetime]) -> list[object]:
    """Rows whose values are not those the ride's own bike sent for that second
    (`rides`: each ride's serial and start)."""
    by_id = {ride_id_for(serial, stamp(start)): start for serial, start in rides}
    return [r for r in run.rows() if as_expected([r])[0] != expected(by_id[r.ride_id], r.elapsed)]


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.5, 0.8])
@pytest.mark.parametrize("gap_s", [3, 8, 20, 60])  # within the clock tolerance, and beyond
def test_two_rides_on_one_key_never_mix_riders(gap_s: int, fraction: float) -> None:
    feed, a_start, b_start = interleaved(gap_s + fraction)
    run = Run().feed(feed, b"GW01")
    assert wrong_rows(run, ("GW01", a_start), ("GW01", b_start)) == []
    assert run.reasons()["ambiguous"] > 0
    per_ride = Counter(r.ride_id for r in run.rows())
    a_id, b_id = ride_id_for("GW01", stamp(a_start)), ride_id_for("GW01", stamp(b_start))
    assert per_ride[a_id] >= gap_s - 1  # A alone until B's announcement
    # B alone from when A stopped, after the clock tolerance: its last seconds are its own.
    assert per_ride[b_id] >= min(gap_s, 120 - 10) - 10 - 1
    assert [r.elapsed for r in run.rows(b_id)] == list(range(121 - per_ride[b_id], 121))


def test_two_rides_on_one_unkeyed_partition_never_mix_riders() -> None:
    feed, a_start, b_start = interleaved(40.3)
    run = Run().feed(feed, None)
    # Unkeyed, each ride takes the serial of its SYSTEM line.
    ids = {ride_id_for("SN0001", stamp(a_start)), ride_id_for("SN0002", stamp(b_start))}
    assert {r.ride_id for r in run.rows()} <= ids
    assert wrong_rows(run, ("SN0001", a_start), ("SN0002", b_start)) == []
    assert run.reasons()["ambiguous"] > 0


def test_ambiguity_survives_a_restart() -> None:
    feed, _, _ = interleaved(30.3)
    messages = [("deloton", 0, b"GW01", v) for v in feed]
    whole, _ = uninterrupted(messages, split=False)
    for cut in range(100, 200, 7):
        got, carried, _ = restart_at(messages, cut, split=False)
        assert got == whole, f"restarted at message {cut}"
    assert any(state.get("ambiguous_until") for state in carried[0].values())


@pytest.mark.parametrize("gap_s", [0.1, 0.3, 0.7, 1.2])
def test_two_rides_on_one_key_that_began_together_are_rejected(gap_s: float) -> None:
    """Their lines fit either timeline; a duration going back right after the second
    ride began gives them away."""
    feed, a_start, b_start = interleaved(gap_s)
    run = Run().feed(feed, b"GW01")
    assert wrong_rows(run, ("GW01", a_start), ("GW01", b_start)) == []
    assert run.reasons()["ambiguous"] >= 2 * 110  # both lines of about every reading
    assert len(run.rows()) <= 2 * 3


def test_a_late_line_now_and_then_is_not_a_second_ride(sample: list[bytes]) -> None:
    """One bike's durations go back once per late line: not a sign of two rides."""
    values = list(sample)
    for i in (100, 140, 180, 220):  # Ride k + 1 before Ride k, 20 s apart
        values[i], values[i + 2] = values[i + 2], values[i]
    run = Run().feed(values, None)
    assert "ambiguous" not in run.reasons()
