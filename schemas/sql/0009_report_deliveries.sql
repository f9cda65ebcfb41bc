-- The daily executive report: one row per report date once its email went out, so a re-run
-- for the same date sends nothing unless asked to resend (each resend bumps `sends`).
CREATE TABLE historical.report_deliveries (
    report_date   date PRIMARY KEY,
    first_sent_at timestamptz NOT NULL,
    last_sent_at  timestamptz NOT NULL,
    sends         integer NOT NULL DEFAULT 1,
    recipients    text[] NOT NULL,
    transport     text NOT NULL CHECK (transport IN ('ses', 'outbox')),
    message_id    text NOT NULL,
    pdf_sha256    text NOT NULL
);

-- How many of a ride's alert emails went out. Compress removes a drained ride's alert rows
-- from daily; without this the report could no longer say how many alerts reached riders.
ALTER TABLE historical.rides ADD COLUMN alerts_sent integer NOT NULL DEFAULT 0;
