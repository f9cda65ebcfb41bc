"""A short-lived cache of computed answers, one computation at a time per key."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class AnswerCache(Generic[T]):
    """Answers kept `ttl_s` seconds from the start of the computation that made them.

    One computation at a time per key: under load one query per key and period reaches the
    database. While it runs, other requests for the key get the previous answer if it is
    less than twice `ttl_s` old (so no request waits behind a refresh), else they wait for
    it. `clear()` drops everything, and an answer whose computation started before it is not
    kept (a DELETE in this process shows at once). `ttl_s` 0 computes every time.
    """

    MAX_ENTRIES = 1_000  # keys come from query parameters: bounded whatever clients send

    def __init__(
        self,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._answers: dict[Hashable, tuple[float, T]] = {}
        self._gates: dict[Hashable, threading.Lock] = {}
        self._generation = 0

    def _fresh(self, key: Hashable) -> tuple[bool, T | None]:
        hit = self._answers.get(key)
        if hit is not None and self.clock() - hit[0] <= self.ttl_s:
            return True, hit[1]
        return False, None

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The answer for `key`, computed (in the calling thread) if none is fresh."""
        if self.ttl_s <= 0:
            return compute()
        with self._lock:
            found, answer = self._fresh(key)
            if found:
                return answer  # type: ignore[return-value]
            gate = self._gates.setdefault(key, threading.Lock())
            previous = self._answers.get(key)
        if previous is not None and self.clock() - previous[0] <= 2 * self.ttl_s:
            if not gate.acquire(blocking=False):
                return previous[1]  # being refreshed: the previous answer meanwhile
            gate.release()
        with gate:
            with self._lock:
                found, answer = self._fresh(key)
                if found:
                    return answer  # type: ignore[return-value]
                generation = self._generation
            started = self.clock()
            value = compute()
            with self._lock:
                if generation == self._generation:
                    if len(self._answers) >= self.max_entries:
                        self._answers.clear()
                    self._answers[key] = (started, value)
                if len(self._gates) > self.max_entries:
                    self._gates.clear()  # waiters hold their own reference
            return value

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self._generation += 1
