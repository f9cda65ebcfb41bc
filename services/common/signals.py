"""SIGTERM (ECS, `docker stop`, systemd) stops a server the way Ctrl-C does."""

from __future__ import annotations

import signal
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def sigterm_as_interrupt() -> None:
    """Make SIGTERM raise KeyboardInterrupt, so a graceful stop exits 0 instead of by signal.

    uvicorn restores this handler after its own graceful shutdown and raises the signal
    again; waitress has no handler of its own. Either way the server's stop path runs.
    """
    signal.signal(signal.SIGTERM, _interrupt)
