"""A short-lived cache of computed answers, one computation at a time per key."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

# Refreshes of expired answers, off the requests that found them expired.
_REFRESHERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="answer-refresh")


class AnswerCache(Generic[T]):
    """Answers kept `ttl_s` seconds from the start of the computation that made them.

    One computation at a time per key: under load one query per key and period reaches the
    database. An answer that has expired but is less than twice `ttl_s` old is still
    answered at once, and one refresh of it runs meanwhile in the background, so no request
    waits for a refresh: an answer is at most about twice `ttl_s` old. Older, or none, the
    request computes it (others for the key wait for that computation). `compute` must
    therefore take its own connection. `clear()` drops everything, and an answer whose
    computation started before it is not kept (a DELETE in this process shows at once).
    `ttl_s` 0 computes every time.
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
            generation = self._generation
        if previous is not None and self.clock() - previous[0] <= 2 * self.ttl_s:
            if gate.acquire(blocking=False):  # else it is being refreshed already
                try:
                    _REFRESHERS.submit(self._refresh, key, compute, gate, generation)
                except RuntimeError:  # the interpreter is shutting down
                    gate.release()
            return previous[1]
        with gate:
            with self._lock:
                found, answer = self._fresh(key)
                if found:
                    return answer  # type: ignore[return-value]
                generation = self._generation
            return self._computed(key, compute, generation)

    def _computed(self, key: Hashable, compute: Callable[[], T], generation: int) -> T:
        """Compute the answer and keep it, unless `clear()` came since `generation`."""
        started = self.clock()
        value = compute()
        with self._lock:
            if generation == self._generation:
                if key not in self._answers and len(self._answers) >= self.max_entries:
                    self._answers.clear()
                self._answers[key] = (started, value)
            if len(self._gates) > self.max_entries:
                self._gates.clear()  # waiters hold their own reference
        return value

    def _refresh(
        self, key: Hashable, compute: Callable[[], T], gate: threading.Lock, generation: int
    ) -> None:
        try:
            self._computed(key, compute, generation)
        except Exception:  # the expired answer stays; the next request past it tries again
            log.warning("refreshing a cached answer failed", exc_info=True)
        finally:
            gate.release()

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self._generation += 1
