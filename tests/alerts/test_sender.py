"""SES sending retries throttling with backoff and gives up on rejected messages."""

from __future__ import annotations

import base64
import urllib.parse
from email.message import EmailMessage
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError

from services.alerts.sender import (
    OutboxSender,
    SendError,
    SesSender,
    _quote_plus,
    backoff,
    check_override,
    encode_form_once,
)
from services.common.config import ConfigError, Settings


def client_error(code: str, message: str) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message},
                     "ResponseMetadata": {"HTTPStatusCode": 400}}  # fmt: skip
    return ClientError(response, "SendRawEmail")


def throttled() -> ClientError:
    return client_error("Throttling", "Maximum sending rate exceeded.")


def rejected() -> ClientError:
    return client_error("MessageRejected", "Email address is not verified.")


class ScriptedSes:
    """An SES client double that fails as scripted, then accepts."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls: list[dict[str, Any]] = []

    def send_raw_email(self, **kwargs: Any) -> dict[str, str]:
        self.calls.append(kwargs)
        if self.failures:
            raise self.failures.pop(0)
        return {"MessageId": "0100-accepted"}


def message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@deloton.example", "b@example.com", "hi"
    msg["Message-ID"] = "<x.1@deloton.example>"
    msg.set_content("body")
    return msg


def test_throttling_is_retried_with_growing_backoff() -> None:
    sleeps: list[float] = []
    client = ScriptedSes([throttled(), throttled(), throttled()])
    sender = SesSender(client, retries=5, base_delay=0.1, max_delay=5, sleep=sleeps.append)
    assert sender.send(message()) == "0100-accepted"
    assert len(client.calls) == 4 and len(sleeps) == 3
    assert all(0 <= s <= 0.1 * 2**i for i, s in enumerate(sleeps))
    assert client.calls[0]["Source"] == "a@deloton.example"
    assert b"Subject: hi" in client.calls[0]["RawMessage"]["Data"]


def test_gives_up_as_transient_after_the_retries() -> None:
    sender = SesSender(ScriptedSes([throttled()] * 3), retries=2, sleep=lambda _: None)
    with pytest.raises(SendError) as err:
        sender.send(message())
    assert err.value.transient and "Throttling" in str(err.value)


def test_an_outage_is_transient_and_left_to_the_notifier() -> None:
    # Retrying an unreachable endpoint inside the call would hold a sender thread (and the
    # row's lock) for minutes; the notifier retries the row with its own backoff instead.
    client = ScriptedSes([EndpointConnectionError(endpoint_url="http://ses.invalid")])
    with pytest.raises(SendError) as err:
        SesSender(client, sleep=lambda _: None).send(message())
    assert err.value.transient and err.value.code == "EndpointConnectionError"
    assert len(client.calls) == 1


def test_rejected_message_is_not_retried() -> None:
    client = ScriptedSes([rejected()])
    with pytest.raises(SendError) as err:
        SesSender(client, sleep=lambda _: None).send(message())
    assert not err.value.transient and len(client.calls) == 1


def test_backoff_is_capped() -> None:
    assert all(0 <= backoff(30, 0.1, 5.0) <= 5.0 for _ in range(100))


def test_outbox_writes_the_mime_message(tmp_path: Any) -> None:
    msg = message()
    message_id = OutboxSender(tmp_path / "outbox").send(msg)
    assert message_id == "x.1@deloton.example"
    assert (tmp_path / "outbox" / "x.1@deloton.example.eml").read_bytes() == msg.as_bytes()


@pytest.mark.parametrize(
    ("endpoint", "allowed", "refused"),
    [
        (None, False, True),
        ("https://email.eu-west-2.amazonaws.com", False, True),
        ("https://email.eu-west-2.amazonaws.com", True, False),
        ("http://127.0.0.1:5000", False, False),
    ],
)
def test_the_override_is_refused_against_real_ses(
    endpoint: str | None, allowed: bool, refused: bool
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        ses_endpoint_url=endpoint,
        email_override_recipient="ops@deloton.example",
        alert_override_in_production=allowed,
    )
    if refused:
        with pytest.raises(ConfigError, match="ALERT_OVERRIDE_IN_PRODUCTION=true"):
            check_override(settings)
    else:
        check_override(settings)
    check_override(settings.model_copy(update={"email_override_recipient": None}))


@pytest.mark.parametrize(
    "value",
    ["", "plain", "a b+c/d=e&f", "alerts@deloton.example", "Zoë ~_.-* 100%\r\n",
     base64.b64encode(bytes(range(256)) * 8).decode()],
)  # fmt: skip
def test_form_values_are_quoted_as_urllib_quotes_them(value: str) -> None:
    assert _quote_plus(value) == urllib.parse.quote_plus(value)


class Body:
    def stream(self, **_: Any) -> Any:
        yield b"<SendRawEmailResponse><SendRawEmailResult><MessageId>m</MessageId>"
        yield b"</SendRawEmailResult></SendRawEmailResponse>"


def sent_body(encode_once: bool, raw: bytes) -> bytes:
    """The HTTP body botocore would send for SendRawEmail (stopped just before the network)."""
    client = boto3.client(
        "ses", region_name="eu-west-2", endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="k", aws_secret_access_key="s",
    )  # fmt: skip
    bodies: list[bytes] = []

    def encode(request: Any, **kwargs: Any) -> None:
        encode_form_once(request, **kwargs)
        assert isinstance(request.data, str)  # written once, before signing

    if encode_once:
        client.meta.events.register("before-sign.ses", encode)

    def capture(request: Any, **_: Any) -> AWSResponse:
        bodies.append(request.body)
        return AWSResponse(request.url, 200, {}, Body())

    client.meta.events.register("before-send.ses", capture)
    client.send_raw_email(Source="alerts@deloton.example", RawMessage={"Data": raw})
    return bodies[0]


def test_the_form_encoded_once_is_the_body_botocore_writes() -> None:
    raw = "Subject: hi\nTo: zoë@example.com\n\nbody = 100% ~~~\n".encode() * 50
    assert sent_body(True, raw) == sent_body(False, raw)
