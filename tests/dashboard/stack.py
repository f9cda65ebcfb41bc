"""The whole live path as real processes: simulator -> ingest -> alerts -> dashboard."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from services.common import infra
from services.common.config import Settings
from tests import harness

BIN = Path(harness.ROOT) / ".venv" / "bin"


@dataclass
class Stack:
    """Child processes of one test, stopped in reverse start order."""

    settings: Settings
    workdir: Path
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    dashboard_url: str = ""

    def env(self, **extra: str) -> dict[str, str]:
        return harness.service_env(self.settings, **extra) | {"PYTHONUNBUFFERED": "1"}

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                [str(BIN / "deloton"), "--plain-logs", *args],
                env=self.env(**env),
                cwd=self.workdir,  # no developer's .deloton/env is read
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs.append((name, proc))
        return proc

    def start_dashboard(self, idle_s: float = 30.0, **env: str) -> str:
        port = infra.free_port()
        settings = {"DASHBOARD_IDLE_S": str(idle_s), "DASHBOARD_CACHE_S": "1"} | env
        self.start("dashboard", "dashboard", "--port", str(port), **settings)
        self.dashboard_url = f"http://127.0.0.1:{port}"
        wait_http(self.dashboard_url + "/health", self)
        return self.dashboard_url

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()


def wait_http(url: str, stack: Stack, timeout: float = 60.0) -> None:
    """Wait until the URL answers 200 (fails with the dashboard's log otherwise)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer:\n{stack.log('dashboard')[-3000:]}")


@contextlib.contextmanager
def running_stack(settings: Settings, workdir: Path) -> Iterator[Stack]:
    """A Stack whose processes are all stopped when the block ends."""
    stack = Stack(settings, workdir)
    try:
        yield stack
    finally:
        stack.stop()
