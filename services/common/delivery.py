"""Emails sent exactly once: claim, send, confirm (ops.email_deliveries).

A send that SES accepted and a crash before the database recorded it would otherwise be sent
again by the next run. So each email is first *claimed* in a transaction the caller commits
before sending: a random token, a lease, and the Message-ID the email will carry, the same
on every try (the marker a sender can be asked about). The caller then sends outside any
transaction and *confirms* with its token in the transaction that records the outcome.

A claim found unconfirmed after its lease ran out belongs to a process that died (or hung)
between the two. It is resolved without sending blindly: a sender that keeps a record of
what it accepted (`Recorded`: the outbox) is asked about the Message-ID, and the email is
`sent` or claimed again accordingly; a sender that cannot tell (SES has no lookup) leaves it
`unconfirmed`, never sent a second time. A claimer that outlived its lease and confirms late
still turns `unconfirmed` into `sent`.

Delivery keys name what an email is about (`incident/42/opened`); any table's emails can
use the ledger. Functions take a psycopg2 cursor inside the caller's transaction.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from email.utils import make_msgid
from typing import Literal, Protocol, runtime_checkable

from psycopg2.extensions import cursor as Cursor

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # longer than the longest send (SES retries and timeouts)

State = Literal["claimed", "held", "sent", "unconfirmed"]


@runtime_checkable
class Recorded(Protocol):
    """A sender that can tell whether it accepted the message with this Message-ID."""

    def accepted(self, message_id: str) -> bool: ...


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming one email.

    `claimed`: this caller holds it, and sends the email with `message_id`, then confirms.
    `held`: another live claim holds it; leave it. `sent`: an earlier send was accepted (found
    on resolving a dead claim, or confirmed already). `unconfirmed`: a dead claim whose send
    cannot be known; not sent again."""

    key: str
    state: State
    message_id: str
    token: str | None = None


def claim(
    cur: Cursor,
    *,
    key: str,
    domain: str,
    lease: timedelta = LEASE,
    sender: object = None,
) -> Claim:
    """Claim the email `key` (see Claim). `sender` resolves a dead claim when it is
    `Recorded`. The caller commits before sending."""
    token = str(uuid.uuid4())
    cur.execute(
        """INSERT INTO ops.email_deliveries (delivery_key, message_id, state, claim_token,
               lease_until)
           VALUES (%s, %s, 'claimed', %s, now() + %s)
           ON CONFLICT (delivery_key) DO NOTHING""",
        (key, make_msgid(idstring=key.replace("/", "."), domain=domain), token, lease),
    )
    cur.execute(
        """SELECT message_id, state, claim_token::text, lease_until < now()
           FROM ops.email_deliveries WHERE delivery_key = %s FOR UPDATE""",
        (key,),
    )
    row = cur.fetchone()
    assert row is not None
    message_id, state, held_by, expired = row
    if held_by == token:
        return Claim(key, "claimed", message_id, token)
    if state in ("sent", "unconfirmed"):
        return Claim(key, state, message_id)
    if not expired:
        return Claim(key, "held", message_id)
    # The claimer died (or hung) between claiming and confirming: did its send go out?
    accepted = sender.accepted(message_id) if isinstance(sender, Recorded) else None
    if accepted is False:
        cur.execute(
            """UPDATE ops.email_deliveries SET claim_token = %s, lease_until = now() + %s,
                   claims = claims + 1, claimed_at = now()
               WHERE delivery_key = %s""",
            (token, lease, key),
        )
        log.warning("email claim expired unsent: sending again", extra={"delivery": key})
        return Claim(key, "claimed", message_id, token)
    resolved: State = "sent" if accepted else "unconfirmed"
    _resolve(cur, key=key, state=resolved)
    if resolved == "unconfirmed":
        log.error(
            "email claim expired unconfirmed: not sent again",
            extra={"delivery": key, "message_id": message_id},
        )
    return Claim(key, resolved, message_id)


def confirm(cur: Cursor, claimed: Claim, *, provider_id: str) -> bool:
    """The email was accepted: record it. False when the claim was resolved by another run
    meanwhile (the lease ran out) and was not `unconfirmed` (then it is left as it is)."""
    cur.execute(
        """UPDATE ops.email_deliveries SET state = 'sent', claim_token = NULL,
               lease_until = NULL, resolved_at = now(), provider_id = %s
           WHERE delivery_key = %s AND (claim_token = %s OR state = 'unconfirmed')
           RETURNING delivery_key""",
        (provider_id, claimed.key, claimed.token),
    )
    if cur.fetchone() is None:
        log.error("email confirmed after its claim was taken over", extra={"delivery": claimed.key})
        return False
    return True


def release(cur: Cursor, claimed: Claim) -> None:
    """The email was not accepted (the sender said so): forget the claim, so a later try
    claims it afresh."""
    cur.execute(
        "DELETE FROM ops.email_deliveries WHERE delivery_key = %s AND claim_token = %s",
        (claimed.key, claimed.token),
    )


def _resolve(cur: Cursor, *, key: str, state: State) -> None:
    cur.execute(
        """UPDATE ops.email_deliveries SET state = %s, claim_token = NULL, lease_until = NULL,
               resolved_at = now()
           WHERE delivery_key = %s""",
        (state, key),
    )
