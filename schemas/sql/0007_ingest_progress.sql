-- Compress decides that a silent ride is finished from ingest's progress, not the wall clock.
--
-- Each partition's committed event time (the latest reading time ingest had read on it) is
-- written in the same transaction as its next offset, so it never runs ahead of the rows.
ALTER TABLE daily.ingest_offsets ADD COLUMN event_time timestamptz;

-- Which consumer group and partition number feed each ride: its progress is that group's
-- event time on that partition (over every topic it reads, for split topics). Kept beside
-- daily.rides rather than in it; compress deletes a ride's row with the ride. No foreign
-- key, so that TRUNCATE daily.rides (tests, benchmarks, resets) keeps working.
CREATE TABLE daily.ride_feeds (
    ride_id         bigint PRIMARY KEY,
    consumer_group  text NOT NULL,
    kafka_partition integer NOT NULL
);

-- The highest elapsed second a summary counts. Ingest writes a ride's readings in increasing
-- elapsed_s, so readings above it arrived after the summary: compress adds them to it, and
-- retention removes only readings at or below it.
ALTER TABLE historical.rides ADD COLUMN last_elapsed_s integer;
UPDATE historical.rides h SET last_elapsed_s = r.last_elapsed_s
FROM (SELECT ride_id, max(elapsed_s) AS last_elapsed_s FROM daily.readings GROUP BY ride_id) r
WHERE r.ride_id = h.ride_id;
