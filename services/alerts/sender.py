"""Delivering one MIME message: through SES (retrying throttling), or into a local outbox."""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from services.alerts import metrics
from services.common.config import ConfigError, Settings

log = logging.getLogger(__name__)

# Error codes that mean "slow down": retried within the call, briefly.
THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
}
# Error codes that mean "try again later", not "this message is wrong".
TRANSIENT_CODES = THROTTLING_CODES | {"ServiceUnavailable", "InternalFailure", "RequestTimeout"}


class SendError(Exception):
    """A message that was not accepted; `transient` says whether a later try may succeed.
    `code` is safe to log; the message may quote an address and is not."""

    def __init__(self, message: str, *, transient: bool, code: str = "") -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code or ("transient" if transient else "rejected")


class Mail(Protocol):
    """A finished message as the senders read it: an EmailMessage, or the alerts' RawEmail."""

    def __getitem__(self, name: str) -> Any: ...

    def as_bytes(self) -> bytes: ...


class Sender(Protocol):
    """Anything that delivers a message and returns its provider message id."""

    def send(self, msg: Mail) -> str: ...


def backoff(attempt: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff for the attempt-th retry (1-based)."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


class SesSender:
    """SES SendRawEmail, retrying throttling in the call with jittered exponential backoff.
    Outages (5xx, timeouts, no connection) raise at once: the notifier retries the row later,
    so no sender thread sits for minutes on one message."""

    def __init__(
        self,
        client: Any,
        *,
        retries: int = 4,
        base_delay: float = 0.1,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.retries = retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep

    def send(self, msg: Mail) -> str:
        """Send and return SES's MessageId, or raise SendError."""
        from botocore.exceptions import BotoCoreError, ClientError

        raw = msg.as_bytes()
        for attempt in range(self.retries + 1):
            try:
                # Recipients come from the To header, so envelope and header cannot differ.
                response = self.client.send_raw_email(
                    Source=str(msg["From"]), RawMessage={"Data": raw}
                )
                return str(response["MessageId"])
            except ClientError as exc:
                err = exc.response.get("Error", {})
                code = str(err.get("Code", ""))
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
                transient = code in TRANSIENT_CODES or status >= 500
                reason = f"{code}: {err.get('Message', '')}"
                retry_now = code in THROTTLING_CODES
            except BotoCoreError as exc:  # connection refused, timeouts
                code = type(exc).__name__
                transient, reason, retry_now = True, f"{code}: {exc}", False
            if not retry_now or attempt == self.retries:
                raise SendError(reason, transient=transient, code=code or str(status))
            metrics.SEND_RETRIES.inc()
            delay = backoff(attempt + 1, self.base_delay, self.max_delay)
            log.warning("SES send retry", extra={"code": code, "delay_s": round(delay, 3)})
            self.sleep(delay)
        raise AssertionError("unreachable")


class OutboxSender:
    """Writes each message as an .eml file (for machines without AWS credentials)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def send(self, msg: Mail) -> str:
        """Write `<Message-ID>.eml` atomically; the Message-ID is the returned id."""
        message_id = str(msg["Message-ID"]).strip("<>")
        path = self._path(message_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(msg.as_bytes())
        os.replace(tmp, path)
        return message_id

    def accepted(self, message_id: str) -> bool:
        """Whether the message with this Message-ID was written (services.common.delivery)."""
        return self._path(message_id.strip("<>")).exists()

    def _path(self, message_id: str) -> Path:
        return self.directory / f"{message_id}.eml"


# What urllib's quote_plus leaves as it is: letters, digits, "_.-~" (and a space, which
# becomes "+").
_FORM_UNSAFE = re.compile(rb"[^A-Za-z0-9_.~ -]")


def _quote_plus(value: str) -> str:
    """urllib.parse.quote_plus, in C speed for long values: urllib quotes byte by byte in
    Python, 0.4 ms for the 3.5 kB of a base64 email."""
    data = _FORM_UNSAFE.sub(lambda m: b"%%%02X" % m[0][0], value.encode("utf-8"))
    return data.replace(b" ", b"+").decode("ascii")


def encode_form_once(request: Any, **_: Any) -> None:
    """botocore's `before-sign` hook: write a query-protocol request's form body (SES's
    SendRawEmail carries the whole message base64-encoded in it) once, as urlencode would.
    botocore otherwise urlencodes the dict twice per call (to sign it, then to send it), and
    that was a third of the CPU an alert email cost the service."""
    data = request.data
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        request.data = "&".join(f"{_quote_plus(str(k))}={_quote_plus(v)}" for k, v in data.items())


def ses_client(settings: Settings, *, pool: int = 10) -> Any | None:
    """A boto3 SES client, or None when there are no credentials and no local endpoint."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    key_id = secret = None
    if session.get_credentials() is None:
        if not settings.ses_endpoint_url:
            return None
        key_id = secret = "local"  # a local SES endpoint (moto) accepts any signature
    # Our own loop retries throttling; botocore retrying underneath would multiply the waits.
    config = Config(
        retries={"total_max_attempts": 1},
        connect_timeout=5,
        read_timeout=15,
        max_pool_connections=pool,
    )
    client = session.client(
        "ses",
        region_name=settings.aws_region,
        endpoint_url=settings.ses_endpoint_url,
        config=config,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    client.meta.events.register("before-sign.ses", encode_form_once)
    return client


def is_real_aws(settings: Settings) -> bool:
    """Whether SES calls go to Amazon itself (no endpoint override, or an amazonaws host)."""
    if not settings.ses_endpoint_url:
        return True
    host = urlparse(settings.ses_endpoint_url).hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def check_override(settings: Settings) -> None:
    """Refuse EMAIL_OVERRIDE_RECIPIENT against real SES unless explicitly allowed: left over
    from a staging setup it would send every rider's health alert to one mailbox."""
    if (
        settings.email_override_recipient
        and is_real_aws(settings)
        and not settings.alert_override_in_production
    ):
        raise ConfigError(
            "EMAIL_OVERRIDE_RECIPIENT is set and alerts would go through real AWS SES: every "
            "rider's alert would be sent to that one address. Unset it, or set "
            "ALERT_OVERRIDE_IN_PRODUCTION=true if that is really wanted"
        )


def sender_factory(settings: Settings, *, threads: int = 4) -> Callable[[], Sender]:
    """Decide once between SES (credentials or a local endpoint) and the outbox; the factory
    gives each sender thread its sender. boto3 clients are thread-safe, so SES senders share
    one client whose connection pool fits the threads."""
    client = ses_client(settings, pool=max(threads, 1))
    if client is None:
        return lambda: OutboxSender(settings.email_outbox_dir)
    return lambda: SesSender(client)
