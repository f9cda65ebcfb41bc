"""A small shared cache: one computation per key per `ttl_s`, whatever the number of viewers.

Concurrent callers of a stale key wait for the one caller that recomputes it (single flight),
so 50 viewers refreshing at once still mean one database query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any


class TtlCache:
    """Values by key, each recomputed at most once per `ttl_s`."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.values: dict[Hashable, tuple[float, Any]] = {}
        self.locks: dict[Hashable, threading.Lock] = {}
        self.guard = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The cached value, or `compute()` when it is missing or older than the ttl."""
        hit = self.values.get(key)
        if hit is not None and self.clock() - hit[0] < self.ttl_s:
            return hit[1]
        with self.guard:
            lock = self.locks.setdefault(key, threading.Lock())
        with lock:
            hit = self.values.get(key)
            if hit is not None and self.clock() - hit[0] < self.ttl_s:
                return hit[1]
            value = compute()
            self.values[key] = (self.clock(), value)
            if len(self.values) > 256:  # per-filter results: keep the recent ones only
                oldest = min(self.values, key=lambda k: self.values[k][0])
                self.values.pop(oldest, None)
            return value
