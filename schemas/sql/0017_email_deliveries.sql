-- Emails sent exactly once across crashes. Before an email is handed to SES (or the outbox)
-- it is claimed here in a committed transaction: a token, a lease, and the Message-ID it will
-- carry (the marker a sender can be asked about). It is confirmed, with the token, in the
-- transaction that records the send. A claim left unconfirmed by a process that died
-- between the two is resolved once its lease has run out, never by sending blindly again:
-- a sender that keeps a record of what it accepted (the outbox) is asked; otherwise the
-- email is `unconfirmed` (it may have gone; an operator can tell from the provider's logs).
CREATE TABLE ops.email_deliveries (
    delivery_key text PRIMARY KEY,        -- what the email is about, e.g. incident/42/opened
    message_id   text NOT NULL,           -- its Message-ID header, the same on every try
    state        text NOT NULL CHECK (state IN ('claimed', 'sent', 'unconfirmed')),
    claim_token  uuid,                    -- the claimer's; NULL once resolved
    lease_until  timestamptz,             -- until then the claim is its claimer's
    claims       integer NOT NULL DEFAULT 1,
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    provider_id  text                     -- the id the provider gave (SES MessageId)
);

-- An incident email whose claim died unconfirmed is not sent again: `unconfirmed`.
ALTER TABLE ops.bike_incidents
    DROP CONSTRAINT bike_incidents_opened_email_check,
    ADD CONSTRAINT bike_incidents_opened_email_check
        CHECK (opened_email IN ('pending', 'sent', 'failed', 'unconfirmed')),
    DROP CONSTRAINT bike_incidents_cleared_email_check,
    ADD CONSTRAINT bike_incidents_cleared_email_check
        CHECK (cleared_email IN ('pending', 'sent', 'failed', 'unconfirmed'));
