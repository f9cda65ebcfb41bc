-- Aggregates at four resolutions (hourly and daily, per bike and per city, plus the fleet),
-- kept for ever in historical and maintained by compress from the readings it summarises.
--
-- Meaning of a bucket (an hour or a UTC day): its readings are those recorded in it; `rides`
-- counts the rides with at least one reading in it (a ride over two hours counts in both),
-- `riders` the distinct riders of those rides, `riding_s` the readings (one a second).
--
-- Distinct riders cannot be kept by adding numbers up (a rider riding twice in one hour
-- would count twice, and a deleted ride cannot be subtracted from a distinct count), so the
-- ground truth is one row per ride and hour (historical.ride_hours), written by compress
-- with the ride's summary and grown as late readings come. Each bucket a change touches is
-- recomputed from those rows (a bucket holds at most a day of one scope's rides), exactly,
-- distinct riders and maxima included, and for a deleted ride too.

CREATE TABLE historical.ride_hours (
    ride_id      bigint NOT NULL,
    hour         timestamptz NOT NULL,      -- UTC hour of the readings
    user_id      bigint NOT NULL,
    bike_serial  text NOT NULL,
    city         text NOT NULL,             -- the rider's city at the roll-up; '' unknown
    readings     integer NOT NULL,
    hr_readings  integer NOT NULL,          -- readings with heart-rate contact
    hr_sum       double precision NOT NULL,
    hr_max       smallint,
    power_sum    double precision NOT NULL,
    power_max    double precision,
    PRIMARY KEY (ride_id, hour)
);
CREATE INDEX ride_hours_hour_idx ON historical.ride_hours (hour);
CREATE INDEX ride_hours_bike_idx ON historical.ride_hours (bike_serial, hour);
CREATE INDEX ride_hours_city_idx ON historical.ride_hours (city, hour);

-- Which summarised rides ride_hours follows, and the highest elapsed second it counts for
-- each (NULL: none yet). Readings above it are the ones to add. A ride summarised before
-- this migration whose readings had partly left daily is not followed (see the backfill).
CREATE TABLE historical.ride_hours_progress (
    ride_id        bigint PRIMARY KEY,
    last_elapsed_s integer
);

CREATE TABLE historical.stats (
    resolution     text NOT NULL CHECK (resolution IN ('hour', 'day')),
    scope          text NOT NULL CHECK (scope IN ('fleet', 'bike', 'city')),
    key            text NOT NULL,            -- '' for the fleet, else the serial or the city
    bucket         timestamptz NOT NULL,     -- start of the UTC hour or day
    rides          integer NOT NULL,
    riders         integer NOT NULL,
    riding_s       bigint NOT NULL,
    hr_readings    bigint NOT NULL,
    avg_heart_rate double precision,
    max_heart_rate smallint,
    avg_power      double precision,
    max_power      double precision,
    energy_kj      double precision NOT NULL,
    PRIMARY KEY (scope, key, resolution, bucket)
);
CREATE INDEX stats_city_fold_idx ON historical.stats (public.deloton_fold(key), resolution, bucket)
    WHERE scope = 'city';

-- Recompute the hourly and daily buckets of every scope that the given (hour, bike, city)
-- triples fall in, from historical.ride_hours. Callers change ride_hours first.
--
-- The transaction lock makes recomputes of one bucket take turns; each reads ride_hours in a
-- statement that starts after the lock is granted, so under READ COMMITTED it sees every
-- change committed by whoever recomputed before: the last recompute of a bucket is exact.
CREATE FUNCTION historical.stats_recompute(hours timestamptz[], bikes text[], cities text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7238157012375352164);  -- 'deloston'
    WITH touched AS (
        SELECT DISTINCT t.hour, t.bike_serial, t.city
        FROM unnest(hours, bikes, cities) AS t (hour, bike_serial, city)
    ), spans AS (
        SELECT 'hour'::text AS resolution, interval '1 hour' AS width, t.hour AS bucket,
               t.bike_serial, t.city FROM touched t
        UNION
        SELECT 'day', interval '1 day', date_trunc('day', t.hour, 'UTC'), t.bike_serial, t.city
        FROM touched t
    ), buckets AS (
        SELECT DISTINCT resolution, width, bucket, 'fleet'::text AS scope, ''::text AS key
        FROM spans
        UNION SELECT resolution, width, bucket, 'bike', bike_serial FROM spans
        UNION SELECT resolution, width, bucket, 'city', city FROM spans
    ), fresh AS (
        -- one index-friendly query per scope rather than one with ORs
        SELECT b.resolution, b.scope, b.key, b.bucket, f.*
        FROM buckets b CROSS JOIN LATERAL (
            SELECT count(DISTINCT r.ride_id) AS rides, count(DISTINCT r.user_id) AS riders,
                   coalesce(sum(r.readings), 0) AS riding_s,
                   coalesce(sum(r.hr_readings), 0) AS hr_readings,
                   sum(r.hr_sum) / nullif(sum(r.hr_readings), 0) AS avg_heart_rate,
                   max(r.hr_max) AS max_heart_rate,
                   sum(r.power_sum) / nullif(sum(r.readings), 0) AS avg_power,
                   max(r.power_max) AS max_power,
                   coalesce(sum(r.power_sum), 0) / 1000.0 AS energy_kj
            FROM historical.ride_hours r
            WHERE r.hour >= b.bucket AND r.hour < b.bucket + b.width
        ) f WHERE b.scope = 'fleet'
        UNION ALL
        SELECT b.resolution, b.scope, b.key, b.bucket, f.*
        FROM buckets b CROSS JOIN LATERAL (
            SELECT count(DISTINCT r.ride_id), count(DISTINCT r.user_id),
                   coalesce(sum(r.readings), 0), coalesce(sum(r.hr_readings), 0),
                   sum(r.hr_sum) / nullif(sum(r.hr_readings), 0), max(r.hr_max),
                   sum(r.power_sum) / nullif(sum(r.readings), 0), max(r.power_max),
                   coalesce(sum(r.power_sum), 0) / 1000.0
            FROM historical.ride_hours r
            WHERE r.bike_serial = b.key AND r.hour >= b.bucket AND r.hour < b.bucket + b.width
        ) f WHERE b.scope = 'bike'
        UNION ALL
        SELECT b.resolution, b.scope, b.key, b.bucket, f.*
        FROM buckets b CROSS JOIN LATERAL (
            SELECT count(DISTINCT r.ride_id), count(DISTINCT r.user_id),
                   coalesce(sum(r.readings), 0), coalesce(sum(r.hr_readings), 0),
                   sum(r.hr_sum) / nullif(sum(r.hr_readings), 0), max(r.hr_max),
                   sum(r.power_sum) / nullif(sum(r.readings), 0), max(r.power_max),
                   coalesce(sum(r.power_sum), 0) / 1000.0
            FROM historical.ride_hours r
            WHERE r.city = b.key AND r.hour >= b.bucket AND r.hour < b.bucket + b.width
        ) f WHERE b.scope = 'city'
    ), emptied AS (
        DELETE FROM historical.stats s USING fresh f
        WHERE f.rides = 0 AND s.scope = f.scope AND s.key = f.key
          AND s.resolution = f.resolution AND s.bucket = f.bucket
    )
    INSERT INTO historical.stats AS s (resolution, scope, key, bucket, rides, riders, riding_s,
        hr_readings, avg_heart_rate, max_heart_rate, avg_power, max_power, energy_kj)
    SELECT resolution, scope, key, bucket, rides, riders, riding_s, hr_readings, avg_heart_rate,
           max_heart_rate, avg_power, max_power, energy_kj
    FROM fresh WHERE rides > 0
    ORDER BY scope, key, resolution, bucket
    ON CONFLICT (scope, key, resolution, bucket) DO UPDATE SET
        rides = EXCLUDED.rides, riders = EXCLUDED.riders, riding_s = EXCLUDED.riding_s,
        hr_readings = EXCLUDED.hr_readings, avg_heart_rate = EXCLUDED.avg_heart_rate,
        max_heart_rate = EXCLUDED.max_heart_rate, avg_power = EXCLUDED.avg_power,
        max_power = EXCLUDED.max_power, energy_kj = EXCLUDED.energy_kj;
END $$;

-- A summary that goes (DELETE /ride, or compress purging one tombstoned meanwhile) takes its
-- hours out of the aggregates in the same transaction, whoever deletes it.
CREATE FUNCTION historical.stats_ride_removed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    h timestamptz[];
    b text[];
    c text[];
BEGIN
    DELETE FROM historical.ride_hours_progress p USING removed o WHERE p.ride_id = o.ride_id;
    WITH gone AS (
        DELETE FROM historical.ride_hours r USING removed o WHERE r.ride_id = o.ride_id
        RETURNING r.hour, r.bike_serial, r.city
    )
    SELECT array_agg(hour), array_agg(bike_serial), array_agg(city) INTO h, b, c FROM gone;
    IF h IS NOT NULL THEN
        PERFORM historical.stats_recompute(h, b, c);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER stats_ride_delete AFTER DELETE ON historical.rides
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION historical.stats_ride_removed();

-- Backfill: summarised rides whose counted readings are all still in daily are followed from
-- now on, exactly. One whose readings retention already removed (some or all) cannot be put
-- into hours any more and stays out of the aggregates (the ride summary itself is kept).
WITH counted AS (
    SELECT r.ride_id, count(*) AS n FROM daily.readings r
    JOIN historical.rides h ON h.ride_id = r.ride_id
    WHERE r.elapsed_s <= h.last_elapsed_s
    GROUP BY r.ride_id
)
INSERT INTO historical.ride_hours_progress (ride_id, last_elapsed_s)
SELECT h.ride_id, h.last_elapsed_s FROM historical.rides h
LEFT JOIN counted c ON c.ride_id = h.ride_id
WHERE coalesce(c.n, 0) = h.readings_count;

INSERT INTO historical.ride_hours (ride_id, hour, user_id, bike_serial, city, readings,
    hr_readings, hr_sum, hr_max, power_sum, power_max)
SELECT r.ride_id, date_bin('1 hour', r.recorded_at, timestamptz '2000-01-01 00:00+00'), h.user_id, h.bike_serial,
       coalesce(hr.city, ''), count(*), count(nullif(r.heart_rate, 0)),
       coalesce(sum(nullif(r.heart_rate, 0)), 0), max(nullif(r.heart_rate, 0)),
       sum(r.power), max(r.power)
FROM daily.readings r
JOIN historical.ride_hours_progress p ON p.ride_id = r.ride_id
JOIN historical.rides h ON h.ride_id = r.ride_id
LEFT JOIN historical.riders hr ON hr.user_id = h.user_id
WHERE r.elapsed_s <= p.last_elapsed_s
GROUP BY r.ride_id, date_bin('1 hour', r.recorded_at, timestamptz '2000-01-01 00:00+00'), h.user_id, h.bike_serial, hr.city;

SELECT historical.stats_recompute(array_agg(hour), array_agg(bike_serial), array_agg(city))
FROM historical.ride_hours;

-- Exports by admin keys are audited like deletes: who took which rows, when.
ALTER TABLE api.audit_log DROP CONSTRAINT audit_log_action_check,
    ADD CONSTRAINT audit_log_action_check CHECK (action IN ('delete', 'pii_read', 'export'));
