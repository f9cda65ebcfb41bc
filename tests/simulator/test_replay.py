"""Reading a capture for replay: bytes unchanged, optional keys, timestamps for pacing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.simulator.models import BIKES, TELEMETRY
from services.simulator.replay import line_time, read_capture, split_key


def test_values_are_the_lines_byte_for_byte(real_sample: Path) -> None:
    messages = list(read_capture(real_sample))
    assert [m.value for m in messages] == real_sample.read_bytes().splitlines()
    assert all(m.key is None for m in messages)
    assert [m.kind for m in messages[:6]] == [BIKES] * 4 + [TELEMETRY] * 2


def test_default_key(real_sample: Path) -> None:
    assert {m.key for m in read_capture(real_sample, b"SN0000")} == {b"SN0000"}


def test_banners_are_due_with_the_first_timestamp(real_sample: Path) -> None:
    messages = list(read_capture(real_sample))
    first = line_time(messages[2].value)
    assert first is not None
    assert messages[0].at == messages[1].at == first
    ats = [m.at for m in messages]
    assert ats == sorted(ats)
    assert ats[-1] - ats[0] == pytest.approx(498.517004)


def test_untimed_replay_skips_parsing(real_sample: Path) -> None:
    assert {m.at for m in read_capture(real_sample, timed=False)} == {0.0}


def test_line_time_with_and_without_microseconds() -> None:
    with_micros = b'{"log": "2022-11-03 18:42:00.422392 mendoza v9: Getting user data\\n"}'
    without = b'{"log": "2022-11-03 18:42:00 mendoza v9: Getting user data\\n"}'
    assert line_time(with_micros) == 1667500920.422392
    assert line_time(without) == 1667500920.0
    assert line_time(b'{"log": "--------- beginning of main\\n"}') is None
    assert line_time(b"\xff\xfe garbage") is None


def test_a_key_field_becomes_the_message_key(tmp_path: Path) -> None:
    capture = tmp_path / "keyed.jsonl"
    lines = [
        json.dumps({"key": "SN0007", "log": "--------- beginning of main\n"}),
        json.dumps({"log": "--------- beginning of a new ride\n"}),
        "not json at all",
    ]
    capture.write_text("\n".join(lines) + "\n")
    messages = list(read_capture(capture, b"SN0001", timed=False))
    assert [m.key for m in messages] == [b"SN0007", b"SN0001", b"SN0001"]
    assert messages[0].value == b'{"log": "--------- beginning of main\\n"}'
    assert messages[2].value == b"not json at all"


def test_split_key_leaves_other_values_alone() -> None:
    assert split_key(b'{"log": "x \\"key\\" y"}', None) == (None, b'{"log": "x \\"key\\" y"}')
    assert split_key(b'["key"]', b"k") == (b"k", b'["key"]')
    assert split_key(b'{"key": 42, "log": "x"}', None) == (b"42", b'{"log": "x"}')
