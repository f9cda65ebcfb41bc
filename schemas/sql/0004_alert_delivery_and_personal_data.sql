-- Alerts delivered exactly once through outages and bad addresses; personal data only where
-- it is needed.

-- An alert SES could not take before it went stale (ALERT_STALE_AFTER_S) is 'expired': the
-- rider has likely stopped riding, and an operator's alarm needs it apart from 'failed'
-- (a permanent error, such as a rejected or invalid address).
ALTER TABLE daily.alerts DROP CONSTRAINT alerts_status_check;
ALTER TABLE daily.alerts ADD CONSTRAINT alerts_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'expired'));

-- The notifier reads the rider's address from daily.riders when it sends; alert rows and
-- events no longer carry it. Old rows keep what they had.
COMMENT ON COLUMN daily.alerts.recipient IS 'no longer written: the address is read from daily.riders at send time';

-- Ingest keeps an unusable address as data and says why here (NULL: valid, or none given).
ALTER TABLE daily.riders ADD COLUMN email_invalid text;
-- historical.riders was created LIKE daily.riders: keep the two alike.
ALTER TABLE historical.riders ADD COLUMN email_invalid text;

-- Compress purges rejects (raw lines, which may hold a rider's details) by age.
CREATE INDEX rejects_received_at_idx ON daily.rejects (received_at);
