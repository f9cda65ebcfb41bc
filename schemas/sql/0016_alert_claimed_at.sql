-- When the notifier claimed the row for the attempt that delivered it. Between created_at and
-- sent_at it splits the email's share of an alert's latency into waiting for a sender and the
-- send itself (building the message and SES accepting it).
ALTER TABLE daily.alerts ADD COLUMN claimed_at timestamptz;
