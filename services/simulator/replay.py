"""Replaying a JSONL capture (one Kafka value a line) exactly as it was recorded."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from services.simulator.models import BIKES, TELEMETRY, Message

_STAMP = re.compile(rb"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(\.\d{1,6})? ")
_READING = b"[INFO]: "


def line_time(value: bytes) -> float | None:
    """The epoch seconds of the timestamp inside a log line, or None (banners, garbage)."""
    found = _STAMP.search(value)
    if found is None:
        return None
    try:
        whole = datetime.strptime(found[1].decode(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return whole.timestamp() + (float(found[2]) if found[2] else 0.0)


def split_key(value: bytes, default: bytes | None) -> tuple[bytes | None, bytes]:
    """The key and value of a captured line: a "key" field, when present, becomes the key."""
    if b'"key"' not in value:
        return default, value
    try:
        obj = json.loads(value)
    except ValueError:
        return default, value
    if not isinstance(obj, dict) or "key" not in obj:
        return default, value
    key = obj.pop("key")
    return str(key).encode(), json.dumps(obj).encode()


def read_capture(path: Path, key: bytes | None = None, *, timed: bool = True) -> Iterator[Message]:
    """The capture's messages in file order; `timed` reads each line's timestamp for pacing."""
    # A line without a timestamp (a banner) is due with the line before it, or with the first
    # timestamped line when it comes before any (else pacing would wait from the epoch).
    at: float | None = None if timed else 0.0
    waiting: list[tuple[bytes | None, bytes]] = []
    with path.open("rb") as lines:
        for raw in lines:
            value = raw.removesuffix(b"\n").removesuffix(b"\r")
            if not value:
                continue
            msg_key, value = split_key(value, key)
            if timed:
                at = line_time(value) or at
                if at is None:
                    waiting.append((msg_key, value))
                    continue
            if waiting:
                yield from (_message(k, v, at or 0.0) for k, v in waiting)
                waiting.clear()
            yield _message(msg_key, value, at or 0.0)
    yield from (_message(k, v, 0.0) for k, v in waiting)


def _message(key: bytes | None, value: bytes, at: float) -> Message:
    return Message(TELEMETRY if _READING in value else BIKES, key, value, at)
