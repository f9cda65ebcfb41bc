"""Helpers shared by the alerts tests and bench/alerts.py: a moto SES server, reading back
what it sent, and `deloton alerts` run as a real child process."""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import boto3
import orjson
from prometheus_client.parser import text_string_to_metric_families

from services.common import infra
from services.common.config import Settings

BIN = Path(sys.executable).parent
SENDER = "alerts@deloton.example"


@contextlib.contextmanager
def running_moto(log: Path, port: int | None = None) -> Iterator[str]:
    """A moto server (SES and friends over HTTP) on `port` (default a free one); yields its URL."""
    port = port or infra.free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        infra.wait_for_port(port, 30.0, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class SentEmail:
    """One message SES accepted, as moto recorded it."""

    message_id: str
    source: str
    destinations: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return cast(EmailMessage, part).get_content() if part else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        return cast(EmailMessage, part).get_content() if part else ""


class Ses:
    """The moto SES endpoint: verify the sender, read back what was sent."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = boto3.client(
            "ses",
            region_name="eu-west-2",
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def reset(self) -> None:
        """Forget every identity and message."""
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"))

    def verify(self, address: str) -> None:
        self.client.verify_email_identity(EmailAddress=address)

    def sent(self) -> list[SentEmail]:
        """Every raw email accepted so far, from moto's /moto-api/data.json."""
        with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=30) as resp:
            data = orjson.loads(resp.read())
        out = []
        for m in data.get("ses", {}).get("RawMessage", []):
            parsed = email.message_from_string(m["raw_data"], policy=email.policy.default)
            out.append(
                SentEmail(m["id"], m["source"], m["destinations"], cast(EmailMessage, parsed))
            )
        return out

    def wait_for(self, count: int, timeout: float = 90.0) -> list[SentEmail]:
        """Poll until at least `count` emails were sent (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        while True:
            sent = self.sent()
            if len(sent) >= count or time.monotonic() > deadline:
                return sent
            time.sleep(0.25)


def settings_env(settings: Settings, metrics_port: int) -> dict[str, str]:
    """The environment that makes `deloton alerts` read exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KAFKA_"))}
    values: dict[str, Any] = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.require_database(),
        "KAFKA_SESSION_TIMEOUT_MS": settings.kafka_session_timeout_ms,
        "KAFKA_HEARTBEAT_INTERVAL_MS": settings.kafka_heartbeat_interval_ms,
        "KAFKA_TOPIC_PARTITIONS": settings.kafka_topic_partitions,
        "TOPIC_EVENTS": settings.topic_events,
        "TOPIC_ALERTS": settings.topic_alerts,
        "ALERTS_APP_ID": settings.alerts_app_id,
        "ALERTS_METRICS_PORT": metrics_port,
        "ALERT_EPISODE_READINGS": settings.alert_episode_readings,
        "ALERT_RECOVERY_READINGS": settings.alert_recovery_readings,
        "EMAIL_SENDER": settings.email_sender,
        "EMAIL_OVERRIDE_RECIPIENT": settings.email_override_recipient,
        "ALERT_STALE_AFTER_S": settings.alert_stale_after_s,
        "EMAIL_OUTBOX_DIR": settings.email_outbox_dir,
        "STATE_DIR": settings.state_dir,
        "SES_ENDPOINT_URL": settings.ses_endpoint_url,
        "AWS_REGION": settings.aws_region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.update({k: str(v) for k, v in values.items() if v is not None})
    return env


class Worker:
    """`deloton alerts` in a child process of its own, with its /metrics port."""

    def __init__(self, settings: Settings, workdir: Path, args: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.args = args
        self.workdir = workdir
        self.port = infra.free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log = self.workdir / f"alerts-{self.starts}.log"
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "deloton"), "--plain-logs", "alerts", *self.args],
                env=settings_env(self.settings, self.port),
                cwd=self.workdir,  # no developer's .deloton/env is read
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no commit, no flush."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def metrics(self) -> dict[str, float]:
        """Sample name (with labels) -> value, from the worker's /metrics ({} before it serves)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out

    def events_seen(self) -> float:
        """Events the agent has handled since this process started."""
        return sum(
            v for k, v in self.metrics().items() if k.startswith("deloton_alerts_events_total")
        )

    def wait_until(self, check: Callable[[], bool], timeout: float = 90.0) -> bool:
        """Poll `check` until true; fail fast with the log when the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return True
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"deloton alerts exited:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        return False

    def tail(self) -> str:
        return self.log.read_text()[-3000:] if self.starts else ""
