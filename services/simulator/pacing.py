"""How fast to produce: real time, a multiple of it, or as fast as possible."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

REALTIME = 1.0
MAX = math.inf


def parse_speed(text: str) -> float:
    """'realtime' is 1.0, 'max' is infinite, anything else a factor of real time ('10', '2.5x')."""
    word = text.strip().lower()
    if word == "realtime":
        return REALTIME
    if word == "max":
        return MAX
    try:
        factor = float(word.removesuffix("x"))
    except ValueError:
        raise ValueError(f"speed must be realtime, max or a number, not {text!r}") from None
    if not factor > 0 or math.isnan(factor):
        raise ValueError(f"speed factor must be positive, not {text!r}")
    return factor


class Pacer:
    """Holds messages back until their simulated time, scaled by `speed`, has come."""

    def __init__(
        self,
        speed: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._origin: tuple[float, float] | None = None
        self.behind_s = 0.0

    def wait(self, at: float) -> None:
        """Return once simulated time `at` is due; the first call sets the origin."""
        if self.speed == MAX:
            return
        now = self._clock()
        if self._origin is None:
            self._origin = (at, now)
            return
        sim0, wall0 = self._origin
        due = wall0 + (at - sim0) / self.speed
        # `sleep` may return early (a producer's poll does when it serves a callback).
        while now < due:
            self._sleep(due - now)
            now = self._clock()
        self.behind_s = now - due
