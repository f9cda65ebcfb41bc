-- Heart-rate alerts: what the email shows, latency, and when a failed send may be retried.
ALTER TABLE daily.alerts
    ADD COLUMN rider_name      text,          -- first name, for the greeting
    ADD COLUMN readings        jsonb,         -- [{"elapsed_s", "recorded_at", "heart_rate"}] that raised it
    ADD COLUMN observed_at     timestamptz,   -- Kafka timestamp of the confirming reading (latency)
    ADD COLUMN next_attempt_at timestamptz;   -- backoff after a transient send failure
