"""The demo's child processes: which ones, started in what order, watched, stopped in order."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from services.common.config import Settings

STOP_TIMEOUT_S = 15.0
_PR_SET_PDEATHSIG = 1
T = TypeVar("T")
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


@dataclass(frozen=True)
class Spec:
    """One service the demo runs: a `deloton` subcommand with its options."""

    name: str
    args: tuple[str, ...]
    metrics_port: int | None = None
    note: str = ""
    port_var: str = ""  # the setting that moves metrics_port, when not <NAME>_METRICS_PORT


@dataclass
class Child:
    """A started service."""

    spec: Spec
    proc: subprocess.Popen[bytes]
    log_path: Path
    log_start: int = 0  # where this run's lines begin in the (appended) log

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self.proc.pid


def plan(
    settings: Settings,
    *,
    bikes: int,
    speed: str,
    faults: float,
    alerts: bool = True,
    dashboard: bool = True,
) -> list[Spec]:
    """The services in start order: each consumer before what feeds it, the simulator last."""
    specs = [
        Spec(
            "api",
            ("api",),
            settings.api_port,
            note=f"REST API: http://localhost:{settings.api_port}/docs",
            port_var="API_PORT",
        ),
        Spec(
            "compress",
            ("compress", "--loop"),
            settings.compress_metrics_port,
            note=f"runs every {settings.compress_interval_s} s",
        ),
        Spec(
            "quality",
            ("quality", "--loop"),
            settings.quality_metrics_port,
            note=f"fleet health every {settings.quality_interval_s} s",
        ),
    ]
    if alerts:
        specs.append(Spec("alerts", ("alerts",), settings.alerts_metrics_port))
    if dashboard:
        # The dashboard serves /metrics on its own port, beside the pages.
        url = dashboard_url(settings)
        specs.append(
            Spec(
                "dashboard",
                ("dashboard",),
                settings.dashboard_port,
                note=f"open {url}",
                port_var="DASHBOARD_PORT",
            )
        )
    specs.append(Spec("ingest", ("ingest",), settings.ingest_metrics_port))
    simulate = ("simulate", "--bikes", str(bikes), "--speed", speed, "--rides", "0")
    specs.append(Spec("simulator", (*simulate, "--faults", str(faults))))
    return specs


def dashboard_url(settings: Settings) -> str:
    """Where the demo's dashboard answers."""
    return f"http://{settings.dashboard_host}:{settings.dashboard_port}/"


def stop_order(started: Sequence[T]) -> list[T]:
    """Reverse start order: the simulator stops first, so ingest and alerts can drain behind it."""
    return list(reversed(started))


def command(spec: Spec, *, log_level: str, plain_logs: bool) -> list[str]:
    """The child's command line: this same Python running the `deloton` CLI."""
    plain = ["--plain-logs"] if plain_logs else []
    return [sys.executable, "-m", "services.cli", "--log-level", log_level, *plain, *spec.args]


def start(spec: Spec, argv: list[str], *, env: dict[str, str], log_dir: Path) -> Child:
    """Start one child with stdout and stderr appended to <log_dir>/<name>.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{spec.name}.log"
    parent = os.getpid()
    with open(log_path, "ab") as out:
        out.write(
            f"--- deloton demo started {spec.name} at {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}\n".encode()
        )
        out.flush()
        log_start = out.tell()
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            # Its own process group: a terminal's Ctrl-C reaches only the demo, which then
            # stops the children one by one in a chosen order.
            process_group=0,
            preexec_fn=lambda: _die_with_parent(parent),
        )
    return Child(spec, proc, log_path, log_start)


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: be interrupted when the demo dies, even by SIGKILL."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGINT)
    if os.getppid() != parent:  # the demo died before prctl took effect
        os._exit(1)


def first_exited(children: Sequence[Child]) -> Child | None:
    """The first child (in start order) that has exited, if any."""
    return next((c for c in children if c.proc.poll() is not None), None)


def watch(
    children: Sequence[Child],
    *,
    stop: threading.Event,
    tick_s: float,
    on_tick: Callable[[], None],
    poll_s: float = 0.2,
) -> Child | None:
    """Wait until `stop` is set (None) or a child exits (that child); call on_tick every tick_s."""
    next_tick = time.monotonic() + tick_s
    while not stop.is_set():
        dead = first_exited(children)
        if dead is not None:
            return dead
        if time.monotonic() >= next_tick:
            on_tick()
            next_tick = time.monotonic() + tick_s
        stop.wait(poll_s)
    return None


def stop_all(
    started: Sequence[Child],
    *,
    timeout_s: float = STOP_TIMEOUT_S,
    hurry: threading.Event | None = None,
    on_stopped: Callable[[Child, float, bool], None] = lambda child, seconds, killed: None,
) -> None:
    """Interrupt each running child in stop order, wait up to timeout_s, SIGKILL stragglers.

    SIGINT, not SIGTERM: each command's Ctrl-C path is its clean one (the simulator flushes
    its producer only on KeyboardInterrupt, compress has no SIGTERM handler). Setting
    `hurry` (a second Ctrl-C) kills whatever is still running without waiting.
    """
    for child in stop_order(started):
        began = time.monotonic()
        if child.proc.poll() is not None:
            continue
        _signal_group(child, signal.SIGINT)
        deadline = began + timeout_s
        while child.proc.poll() is None and time.monotonic() < deadline:
            if hurry is not None and hurry.is_set():
                break
            time.sleep(0.05)
        killed = child.proc.poll() is None
        if killed:
            _signal_group(child, signal.SIGKILL)
            child.proc.wait()
        on_stopped(child, time.monotonic() - began, killed)


def _signal_group(child: Child, sig: signal.Signals) -> None:
    # Only while the child is unreaped: its pid (and group id) cannot have been reused.
    if child.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, sig)


def tail(path: Path, lines: int = 20, *, start: int = 0) -> list[str]:
    """The last lines of a log file after byte `start` ([] when it is missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(start, f.tell() - 64 * 1024))
            data = f.read()
    except OSError:
        return []
    return data.decode(errors="replace").splitlines()[-lines:]


def describe_exit(returncode: int | None) -> str:
    """'exit 1', 'killed by SIGKILL' or 'running'."""
    if returncode is None:
        return "running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"
