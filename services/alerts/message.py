"""The alert email as a MIME message with text and HTML parts (pure: no sending)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from services.alerts.codec import ts
from services.alerts.repository import PendingAlert

ADVICE = (
    "Please stop exercising now and rest. If you have chest pain, shortness of breath, "
    "dizziness, palpitations or feel faint, call 999 (or your local emergency number) "
    "straight away. Even if you feel well, please seek medical advice from your GP or "
    "NHS 111 before you ride again."
)
FOOTER = (
    "This is an automatic message from your Deloton bike's heart-rate monitor. A loose or "
    "damp chest strap can give false readings, but please do not ignore this message."
)


def subject(alert: PendingAlert) -> str:
    """The subject line."""
    word = "too high" if alert.kind == "high" else "too low"
    return f"Deloton health alert: your heart rate was {word} during your ride"


def _clock(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M:%S UTC")


def _seen(alert: PendingAlert) -> list[tuple[str, int]]:
    """(time, heart rate) of each reading that raised the alert."""
    if alert.readings:
        return [(_clock(ts(r["recorded_at"])), int(r["heart_rate"])) for r in alert.readings]
    return [("", hr) for hr in alert.heart_rates]


def _lines(alert: PendingAlert) -> tuple[str, str, str]:
    """The greeting, what was seen, and the rider's limits, as plain sentences."""
    greeting = f"Dear {alert.rider_name}," if alert.rider_name else "Dear rider,"
    if alert.kind == "high":
        what = f"above your safe maximum of {alert.limit_high} beats per minute"
    else:
        what = f"below your safe minimum of {alert.limit_low} beats per minute"
    when = alert.detected_at.astimezone(UTC).strftime("%A %d %B %Y at %H:%M:%S UTC")
    seen = (
        f"During your ride on bike {alert.bike_serial}, on {when}, your heart rate was "
        f"{what} for {len(alert.heart_rates)} readings in a row:"
    )
    limits = (
        f"Your own safe range, worked out from your age and sex, is "
        f"{alert.limit_low} to {alert.limit_high} beats per minute."
    )
    return greeting, seen, limits


def text_body(alert: PendingAlert) -> str:
    """The plain-text part."""
    greeting, seen, limits = _lines(alert)
    rows = [f"  {t:>12}  {hr} bpm" for t, hr in _seen(alert)]
    ref = f"Ride {alert.ride_id}, alert {alert.episode}."
    return "\n".join([greeting, "", seen, "", *rows, "", limits, "", ADVICE, "", FOOTER, ref, ""])


def html_body(alert: PendingAlert) -> str:
    """The HTML part (same content as the text part)."""
    greeting, seen, limits = (html.escape(s) for s in _lines(alert))
    rows = "".join(
        f"<tr><td>{html.escape(t)}</td><td><strong>{hr} bpm</strong></td></tr>"
        for t, hr in _seen(alert)
    )
    return (
        '<!DOCTYPE html><html><body style="font-family: sans-serif">'
        f"<p>{greeting}</p><p>{seen}</p>"
        f'<table cellpadding="4"><tr><th>Time</th><th>Heart rate</th></tr>{rows}</table>'
        f"<p>{limits}</p><p><strong>{html.escape(ADVICE)}</strong></p>"
        f'<p style="color: #666">{html.escape(FOOTER)} Ride {alert.ride_id}, '
        f"alert {alert.episode}.</p></body></html>"
    )


def build_message(
    alert: PendingAlert, *, sender: str, recipient: str, reply_to: str | None = None
) -> EmailMessage:
    """The complete MIME message: text part first, HTML alternative second."""
    msg = EmailMessage()
    msg["Subject"] = subject(alert)
    msg["From"] = sender
    msg["To"] = recipient
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(f"alert-{alert.ride_id}-{alert.episode}", _domain(sender))
    msg["X-Deloton-Alert"] = f"{alert.ride_id}/{alert.episode}"
    msg.set_content(text_body(alert))
    msg.add_alternative(html_body(alert), subtype="html")
    return msg


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip("> ") or "deloton.example"
