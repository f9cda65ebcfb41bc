-- When the alerts service read the event that confirmed the episode. With observed_at (the
-- event's Kafka timestamp), created_at (the insert) and sent_at it splits an alert's latency
-- into the stream's share, the service's own and the email's.
ALTER TABLE daily.alerts ADD COLUMN received_at timestamptz;
