"""The riders of a fleet: a population smaller than the rides, each on one bike at a time."""

from __future__ import annotations

from random import Random

from services.simulator.riders import Rider, make_cities, make_rider

# The real capture had 98 rides from 15 riders: about six rides a rider.
RIDES_PER_RIDER = 6


def pool_size(bikes: int, rides_per_bike: int | None) -> int:
    """Enough riders for every bike to be busy at once, few enough that riders come back."""
    # Half a fleet's worth of spare riders leaves a choice whenever a bike starts a ride.
    busy_at_once = bikes + bikes // 2 + 5
    if rides_per_bike is None:
        return max(2 * bikes, 15)
    return max(busy_at_once, -(-bikes * rides_per_bike // RIDES_PER_RIDER))


class RiderPool:
    """Hands out riders who are not on another bike; loyal riders come back more often."""

    def __init__(self, seed: int, size: int, now_ms: int) -> None:
        cities = make_cities(seed)
        self.riders = [make_rider(seed, i, now_ms, cities) for i in range(size)]
        self._free = list(self.riders)
        self._rng = Random(f"{seed}:pool")

    def acquire(self) -> Rider:
        """A free rider, chosen at random and weighted by loyalty."""
        if not self._free:
            raise RuntimeError("every rider is already riding: the pool is smaller than the fleet")
        rand, free = self._rng.random, self._free
        for _ in range(20):
            i = int(rand() * len(free))
            if rand() < free[i].loyalty:
                break
        free[i], free[-1] = free[-1], free[i]
        return free.pop()

    def release(self, rider: Rider) -> None:
        """The rider got off the bike."""
        self._free.append(rider)
