"""Structured (JSON) logging for the long-running services."""

from __future__ import annotations

import logging
import sys

import orjson

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(extras(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class PlainFormatter(logging.Formatter):
    """Time, level, logger and message, then any `extra=` fields as key=value."""

    # uvicorn's copy of its message with terminal colours: the message says it already.
    _SKIPPED = frozenset({"color_message"})

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = [f"{k}={v}" for k, v in extras(record).items() if k not in self._SKIPPED]
        return " ".join([line, *fields])


def extras(record: logging.LogRecord) -> dict[str, object]:
    """The fields a call gave with `extra=`."""
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED}


def setup(level: str = "INFO", json: bool = True) -> None:
    """Route the root logger to stderr, as JSON lines unless `json` is false."""
    import time

    handler = logging.StreamHandler(sys.stderr)
    if json:
        fmt: logging.Formatter = JsonFormatter()
        fmt.converter = time.gmtime
    else:
        fmt = PlainFormatter()
    handler.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kafka", "aiokafka", "faust", "mode", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
