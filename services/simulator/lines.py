"""The raw log lines of the real feed and their Kafka values, formatted fast."""

from __future__ import annotations

import json
import math
import time

BANNER_MAIN = "--------- beginning of main"
BANNER_RIDE = "--------- beginning of a new ride"
GETTING_USER = "Getting user data from server.."
SYSTEM_PREFIX = "[SYSTEM] data = "

# Power fitted to the real capture: watts = C * resistance^A * rpm^B (within ~25%).
_POWER_C = math.exp(-8.53802419)
_POWER_A = 1.37513866
_POWER_B = 1.65592445
_power_cache: dict[int, str] = {}


def log_value(line: str) -> bytes:
    """The Kafka value of any log line, serialised exactly like the real feed."""
    return json.dumps({"log": line + "\n"}).encode()


def ride_value(prefix: str, duration: int, resistance: int) -> bytes:
    """The value of a Ride line; `prefix` is '<timestamp> <model>: ' (no escaping needed)."""
    return (
        f'{{"log": "{prefix}[INFO]: Ride - duration = {duration}.0; resistance = {resistance}\\n"}}'
    ).encode()


def telemetry_value(prefix: str, hrt: int, rpm: int, power: str) -> bytes:
    """The value of a Telemetry line; `power` is already the float's repr."""
    return (
        f'{{"log": "{prefix}[INFO]: Telemetry - hrt = {hrt}; rpm = {rpm}; power = {power}\\n"}}'
    ).encode()


def power_watts(resistance: int, rpm: int) -> float:
    """Mechanical power for a resistance level and cadence."""
    if resistance <= 0 or rpm <= 0:
        return 0.0
    return float(_POWER_C * resistance**_POWER_A * rpm**_POWER_B)


def power_text(resistance: int, rpm: int) -> str:
    """The power as the feed prints it: 10 significant digits as a raw float repr."""
    key = resistance * 100_000 + rpm
    text = _power_cache.get(key)
    if text is None:
        watts = power_watts(resistance, rpm)
        if watts == 0.0:
            text = "0.0"
        else:
            # Scaling an integer mantissa back reproduces the feed's float noise
            # (9.737739856000001) rather than a tidy rounding.
            places = 9 - math.floor(math.log10(watts))
            text = repr(round(watts * 10**places) * 10.0**-places)
        _power_cache[key] = text
    return text


class SecondsText:
    """'YYYY-MM-DD HH:MM:SS' for whole epoch seconds, cached because many bikes share a second."""

    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def __call__(self, second: int) -> str:
        """The UTC text of one epoch second."""
        text = self._cache.get(second)
        if text is None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
            self._cache[second] = text
        return text
