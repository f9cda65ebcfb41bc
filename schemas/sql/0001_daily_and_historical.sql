-- Deloton Stream core schema.
--   daily:      recent, full-resolution data written by ingest (one reading a second).
--   historical: one summary row per finished ride, and the riders, kept for ever.

CREATE SCHEMA IF NOT EXISTS daily;
CREATE SCHEMA IF NOT EXISTS historical;

-- Riders, de-duplicated by user_id; the details of the latest SYSTEM line win
-- (details_at is that line's timestamp, so a replay of older lines never overwrites newer ones).
CREATE TABLE daily.riders (
    user_id            bigint PRIMARY KEY,
    title              text,
    first_name         text NOT NULL,
    last_name          text NOT NULL,
    gender             text NOT NULL CHECK (gender IN ('male', 'female', 'other')),
    address_line       text,
    city               text,
    postcode           text,
    date_of_birth      date NOT NULL,
    email_address      text,
    height_cm          smallint,
    weight_kg          smallint,
    account_created_at timestamptz,
    original_source    text,
    details_at         timestamptz NOT NULL
);
CREATE INDEX riders_city_idx ON daily.riders (lower(city));

CREATE TABLE daily.bikes (
    bike_serial   text PRIMARY KEY,
    model         text,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL
);

-- ride_id is derived from the natural key (bike_serial, started_at) by ingest, so a replay
-- or a second ingest process computes the same id without asking the database.
CREATE TABLE daily.rides (
    ride_id     bigint PRIMARY KEY,
    bike_serial text NOT NULL,
    user_id     bigint NOT NULL REFERENCES daily.riders (user_id),
    model       text,
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,          -- set when the next ride on the bike starts
    UNIQUE (bike_serial, started_at)
);
CREATE INDEX rides_started_at_idx ON daily.rides (started_at);
CREATE INDEX rides_user_idx ON daily.rides (user_id, started_at);
CREATE INDEX rides_open_idx ON daily.rides (bike_serial) WHERE ended_at IS NULL;

-- One row per Ride+Telemetry pair. Partitioned by hour of recorded_at so retention drops
-- whole partitions instead of deleting rows. No foreign key to rides: it halves COPY speed,
-- and ingest writes a ride in the same transaction as (and before) its first reading.
CREATE TABLE daily.readings (
    ride_id     bigint NOT NULL,
    elapsed_s   integer NOT NULL,
    recorded_at timestamptz NOT NULL,
    resistance  smallint NOT NULL,
    heart_rate  smallint,             -- NULL: no heart-rate contact (the feed sends hrt = 0)
    rpm         smallint NOT NULL,
    power       double precision NOT NULL,
    PRIMARY KEY (ride_id, elapsed_s, recorded_at)
) PARTITION BY RANGE (recorded_at);

-- Creates the hourly partitions covering [from_ts, to_ts]; cheap when they exist.
CREATE FUNCTION daily.ensure_readings_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    h timestamptz := date_trunc('hour', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    created integer := 0;
    name text;
BEGIN
    WHILE h <= to_ts LOOP
        name := 'readings_' || to_char(h AT TIME ZONE 'UTC', 'YYYYMMDD"h"HH24');
        IF to_regclass('daily.' || name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS daily.%I PARTITION OF daily.readings '
                'FOR VALUES FROM (%L) TO (%L)', name, h, h + interval '1 hour');
            created := created + 1;
        END IF;
        h := h + interval '1 hour';
    END LOOP;
    RETURN created;
END $$;

-- Every line that could not become a row, with where it came from and why.
CREATE TABLE daily.rejects (
    reject_id       bigserial PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    message_key     bytea,
    raw             bytea NOT NULL,
    reason          text NOT NULL,
    detail          text,
    bike_serial     text,
    UNIQUE (topic, kafka_partition, kafka_offset)
);
CREATE INDEX rejects_reason_idx ON daily.rejects (reason, received_at);

-- Heart-rate alerts: one row per ride and episode, so a replay or a restart never sends twice.
CREATE TABLE daily.alerts (
    alert_id    bigserial PRIMARY KEY,
    ride_id     bigint NOT NULL,
    episode     integer NOT NULL,
    user_id     bigint NOT NULL,
    bike_serial text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('high', 'low')),
    detected_at timestamptz NOT NULL,     -- event time of the reading that confirmed the episode
    heart_rates smallint[] NOT NULL,      -- the out-of-range readings that raised it
    limit_low   smallint NOT NULL,
    limit_high  smallint NOT NULL,
    recipient   text,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    sent_at     timestamptz,
    message_id  text,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (ride_id, episode)
);
CREATE INDEX alerts_pending_idx ON daily.alerts (created_at) WHERE status = 'pending';

-- Exactly-once ingest: each partition's next offset is written in the same transaction as
-- the rows it produced; on assignment the consumer seeks there.
CREATE TABLE daily.ingest_offsets (
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset     bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);

-- Per-partition sessioniser state (open ride and half-read pair of each bike), saved with
-- the offsets so a restart or a rebalance resumes mid-ride exactly.
CREATE TABLE daily.ingest_state (
    consumer_group  text NOT NULL,
    kafka_partition integer NOT NULL,
    state           jsonb NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, kafka_partition)
);

-- Historical: riders and one summary row per finished ride.
CREATE TABLE historical.riders (LIKE daily.riders INCLUDING ALL);

CREATE TABLE historical.rides (
    ride_id             bigint PRIMARY KEY,
    user_id             bigint NOT NULL REFERENCES historical.riders (user_id),
    bike_serial         text NOT NULL,
    model               text,
    started_at          timestamptz NOT NULL,
    ended_at            timestamptz NOT NULL,
    duration_s          integer NOT NULL,
    readings_count      integer NOT NULL,
    heart_rate_readings integer NOT NULL,
    avg_heart_rate      double precision,
    max_heart_rate      smallint,
    avg_power           double precision,
    max_power           double precision,
    total_energy_kj     double precision,
    avg_rpm             double precision,
    avg_resistance      double precision,
    alert_count         integer NOT NULL DEFAULT 0,
    summarised_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hist_rides_started_at_idx ON historical.rides (started_at);
CREATE INDEX hist_rides_user_idx ON historical.rides (user_id, started_at);

-- Rides removed by an analyst (DELETE /ride/{id}); a tombstone keeps them from coming back
-- through a later roll-up or replay.
CREATE TABLE historical.deleted_rides (
    ride_id    bigint PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
