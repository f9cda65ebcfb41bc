"""The real services as child processes of the run, each logging to a file of its own."""

from __future__ import annotations

import contextlib
import secrets
import signal
import string
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from services.common import infra
from services.common.config import Settings
from tests import harness


@dataclass(frozen=True)
class Secrets:
    """Values no log may hold."""

    database_password: str
    aws_access_key_id: str
    aws_secret_access_key: str

    @classmethod
    def fresh(cls) -> Secrets:
        upper = string.ascii_uppercase + string.digits
        return cls(
            database_password="pw-" + secrets.token_urlsafe(18),
            aws_access_key_id="AKIA" + "".join(secrets.choice(upper) for _ in range(16)),
            aws_secret_access_key=secrets.token_urlsafe(30),
        )


@dataclass
class Services:
    """Started services, their logs and ports; stopped in reverse start order."""

    settings: Settings
    workdir: Path
    ses_url: str
    secrets: Secrets
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # API keys, by scopes

    def env(self, **extra: object) -> dict[str, str]:
        base = {
            k: v for k, v in harness.service_env(self.settings).items() if not k.startswith("AWS_")
        }
        values = {
            "PYTHONUNBUFFERED": "1",
            "ALERTS_APP_ID": self.settings.alerts_app_id,
            "TOPIC_ALERTS": self.settings.topic_alerts,
            "STATE_DIR": self.workdir / ".deloton",
            "EMAIL_OUTBOX_DIR": self.workdir / "outbox",
            "EMAIL_SENDER": self.settings.email_sender,
            "SES_ENDPOINT_URL": self.ses_url,
            "AWS_REGION": "eu-west-2",
            "AWS_ACCESS_KEY_ID": self.secrets.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secrets.aws_secret_access_key,
            "AWS_EC2_METADATA_DISABLED": "true",
            **extra,
        }
        return base | {k: str(v) for k, v in values.items()}

    def start(self, name: str, *args: str, port_var: str | None = None, **extra: object) -> None:
        """`deloton <args>` with its log in <workdir>/<name>.log."""
        env = self.env(**extra)
        if port_var:
            self.ports[name] = infra.free_port()
            env[port_var] = str(self.ports[name])
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "ab") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "--plain-logs", *args],
                env=env,
                cwd=self.workdir,  # no developer's .deloton/env is read
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def run_once(self, name: str, *args: str, timeout: float = 300) -> int:
        """A run-once command (compress) to its end; returns its exit code."""
        self.start(name, *args)
        proc = self.procs.pop(name)
        self.exit_codes[name] = proc.wait(timeout)
        return self.exit_codes[name]

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def wait_http(self, name: str, path: str, timeout: float = 60.0) -> None:
        """Until the service answers 200 on `path`; fails with its log's tail otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                break
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url(name) + path, timeout=2) as r,
            ):
                if r.status == 200:
                    return
            time.sleep(0.2)
        tail = self.log_path(name).read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{name} did not answer on {path}:\n{tail}")

    def metric(self, name: str, sample: str) -> float:
        """The sum of a sample's values on the service's /metrics (0 when absent)."""
        with urllib.request.urlopen(self.url(name) + "/metrics", timeout=5) as r:
            text = r.read().decode()
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == sample
        )

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.procs.items()}

    def stop(self) -> dict[str, int]:
        """SIGINT to each, newest first; exit codes (-9: had to be killed)."""
        for name, proc in reversed(self.procs.items()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                self.exit_codes[name] = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                self.exit_codes[name] = -9
        self.procs.clear()
        return self.exit_codes
