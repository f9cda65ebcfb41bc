"""The alert email: what was seen, the rider's own limits, when, and what to do."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, cast

import pytest

from services.alerts.message import RawEmail, build_message, build_mime
from services.alerts.repository import PendingAlert


def pending(**changes: object) -> PendingAlert:
    values: dict[str, object] = {
        "alert_id": 1, "ride_id": 77, "episode": 2, "user_id": 5, "bike_serial": "SN0042",
        "kind": "high", "detected_at": datetime(2022, 11, 3, 10, 0, 3, tzinfo=UTC),
        "heart_rates": [191, 196, 203], "limit_low": 45, "limit_high": 177,
        "recipient": "ada@example.com", "rider_name": "Ada",
        "readings": [
            {"elapsed_s": 1, "recorded_at": "2022-11-03T10:00:01Z", "heart_rate": 191},
            {"elapsed_s": 2, "recorded_at": "2022-11-03T10:00:02Z", "heart_rate": 196},
            {"elapsed_s": 3, "recorded_at": "2022-11-03T10:00:03Z", "heart_rate": 203},
        ],
        "observed_at": None, "attempts": 0, "rider_known": True, "email_invalid": None,
        "last_error": None,
    }  # fmt: skip
    values.update(changes)
    return PendingAlert(**values)  # type: ignore[arg-type]


def build(alert: PendingAlert, **kwargs: Any) -> EmailMessage:
    """The message as a mail client reads it: parsed back from the bytes that are sent."""
    msg = build_message(alert, **kwargs)
    return cast(EmailMessage, email.message_from_bytes(msg.as_bytes(), policy=email.policy.default))


def test_text_and_html_parts_say_what_when_limits_and_advice() -> None:
    msg = build(pending(), sender="alerts@deloton.example", recipient="ada@example.com")
    assert msg["To"] == "ada@example.com" and msg["From"] == "alerts@deloton.example"
    assert "too high" in msg["Subject"]
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for body in (text, html):
        assert "Dear Ada," in body
        assert "10:00:01 UTC" in body and "191 bpm" in body
        assert "10:00:03 UTC" in body and "203 bpm" in body
        assert "above your safe maximum of 177" in body
        assert "45 to 177 beats per minute" in body
        assert "Thursday 03 November 2022 at 10:00:03 UTC" in body
        assert "stop exercising" in body and "seek medical advice" in body
        assert "SN0042" in body


def test_low_alert_names_the_minimum() -> None:
    msg = build(pending(kind="low", heart_rates=[30, 31, 32], readings=[]),
                sender="a@deloton.example", recipient="b@example.com")  # fmt: skip
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "too low" in msg["Subject"]
    assert "below your safe minimum of 45" in text and "31 bpm" in text


def test_reply_to_and_html_escaping() -> None:
    msg = build(
        pending(rider_name="<b>Ada</b>"),
        sender="alerts@deloton.example",
        recipient="ada@example.com",
        reply_to="care@deloton.example",
    )
    assert msg["Reply-To"] == "care@deloton.example"
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<b>Ada</b>" not in html and "&lt;b&gt;Ada&lt;/b&gt;" in html


@pytest.mark.parametrize("name", ["Ada", "Zoë Ørsted-Łukasz", "a = b  ", None])
@pytest.mark.parametrize("reply_to", [None, "care@deloton.example"])
def test_the_direct_message_reads_as_the_email_package_would_write_it(
    name: str | None, reply_to: str | None
) -> None:
    alert = pending(rider_name=name)
    kwargs: dict[str, Any] = {"sender": "alerts@deloton.example",
                              "recipient": "ada@example.com", "reply_to": reply_to}  # fmt: skip
    assert isinstance(build_message(alert, **kwargs), RawEmail)
    fast, mime = build(alert, **kwargs), build_mime(alert, **kwargs)
    assert fast.defects == [] and fast.get_content_type() == "multipart/alternative"
    for header in ("Subject", "From", "To", "Reply-To", "X-Deloton-Alert"):
        assert fast[header] == mime[header]
    assert fast["Date"] and fast["Message-ID"] and fast["Message-ID"] != mime["Message-ID"]
    for kind in ("plain", "html"):
        got = fast.get_body((kind,)).get_content()  # type: ignore[union-attr]
        assert got == mime.get_body((kind,)).get_content()  # type: ignore[union-attr]
    # Body lines stay within quoted-printable's 76 characters (the HTML is one long line).
    body = build_message(alert, **kwargs).as_bytes().split(b"\n\n", 1)[1]
    assert max(len(line) for line in body.splitlines()) <= 76


@pytest.mark.parametrize(
    "recipient", ["José@example.com", "Ada <ada@example.com>", "a@example.com, b@example.com"]
)
def test_unusual_addresses_are_written_by_the_email_package(recipient: str) -> None:
    msg = build_message(pending(), sender="alerts@deloton.example", recipient=recipient)
    assert isinstance(msg, EmailMessage)


def test_an_address_with_a_line_break_is_refused() -> None:
    # Header injection: the email package refuses it, and the fast path never writes it.
    with pytest.raises(ValueError):
        build_message(pending(), sender="alerts@deloton.example",
                      recipient="ada@example.com\r\nBcc: eve@example.com").as_bytes()  # fmt: skip
