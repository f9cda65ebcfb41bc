-- REST API: keys, audit trail, and what the read side needs to answer without scanning.

CREATE SCHEMA IF NOT EXISTS api;

-- API keys: only a SHA-256 of the token is kept (tokens are 256-bit random, so a fast hash is
-- enough; nothing to brute-force). The prefix identifies a key in listings and logs.
CREATE TABLE api.keys (
    key_id     bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    prefix     text NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    scopes     text[] NOT NULL CHECK (scopes <@ ARRAY['read', 'pii', 'admin']::text[]),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Every DELETE and every read that returned personal data: who, what, when.
CREATE TABLE api.audit_log (
    audit_id    bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    key_id      bigint REFERENCES api.keys (key_id),
    key_name    text NOT NULL,
    action      text NOT NULL CHECK (action IN ('delete', 'pii_read')),
    route       text NOT NULL,
    resource_id text NOT NULL
);
CREATE INDEX audit_log_at_idx ON api.audit_log (at);

-- City search is case- and accent-insensitive: fold both sides the same way, index the fold.
-- unaccent() is only STABLE (its dictionary could change); naming the dictionary makes the
-- wrapper safe to declare IMMUTABLE, which an index needs.
CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public;
CREATE FUNCTION public.deloton_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$;
CREATE INDEX riders_city_fold_idx ON daily.riders (public.deloton_fold(city));
CREATE INDEX hist_riders_city_fold_idx ON historical.riders (public.deloton_fold(city));

-- Rides of a day: those whose [start, end] overlaps it, found without reading earlier days.
CREATE INDEX hist_rides_span_idx ON historical.rides
    USING gist (tstzrange(started_at, ended_at, '[]'));

-- Leaderboard over all time: one row per rider, kept by triggers on historical.rides, so
-- ranking 100,000 riders reads an index instead of aggregating every ride.
CREATE TABLE historical.rider_totals (
    user_id        bigint PRIMARY KEY,
    rides          integer NOT NULL,
    duration_s     bigint NOT NULL,
    longest_ride_s integer NOT NULL,
    max_power      double precision,
    energy_kj      double precision NOT NULL
);
CREATE INDEX rider_totals_rides_idx ON historical.rider_totals (rides DESC, user_id);
CREATE INDEX rider_totals_duration_idx ON historical.rider_totals (duration_s DESC, user_id);
CREATE INDEX rider_totals_longest_idx ON historical.rider_totals (longest_ride_s DESC, user_id);
CREATE INDEX rider_totals_power_idx ON historical.rider_totals (max_power DESC NULLS LAST, user_id);
CREATE INDEX rider_totals_energy_idx ON historical.rider_totals (energy_kj DESC, user_id);

-- Added rides: sums grow, maxima rise; ON CONFLICT row locks make concurrent writers add up.
CREATE FUNCTION historical.rider_totals_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO historical.rider_totals AS t
        (user_id, rides, duration_s, longest_ride_s, max_power, energy_kj)
    SELECT user_id, count(*), sum(duration_s), max(duration_s), max(max_power),
           coalesce(sum(total_energy_kj), 0)
    FROM added GROUP BY user_id ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE SET
        rides = t.rides + EXCLUDED.rides,
        duration_s = t.duration_s + EXCLUDED.duration_s,
        longest_ride_s = greatest(t.longest_ride_s, EXCLUDED.longest_ride_s),
        max_power = greatest(t.max_power, EXCLUDED.max_power),
        energy_kj = t.energy_kj + EXCLUDED.energy_kj;
    RETURN NULL;
END $$;

-- Removed or changed rides: recount the riders concerned from their (indexed) rides.
CREATE FUNCTION historical.rider_totals_recount(users bigint[]) RETURNS void
LANGUAGE sql AS $$
    WITH fresh AS (
        SELECT u.user_id, count(h.ride_id) AS rides, coalesce(sum(h.duration_s), 0) AS duration_s,
               coalesce(max(h.duration_s), 0) AS longest_ride_s, max(h.max_power) AS max_power,
               coalesce(sum(h.total_energy_kj), 0) AS energy_kj
        FROM unnest(users) AS u (user_id)
        LEFT JOIN historical.rides h ON h.user_id = u.user_id
        GROUP BY u.user_id
    ), gone AS (
        DELETE FROM historical.rider_totals r USING fresh f
        WHERE r.user_id = f.user_id AND f.rides = 0
    )
    INSERT INTO historical.rider_totals AS r
        (user_id, rides, duration_s, longest_ride_s, max_power, energy_kj)
    SELECT user_id, rides, duration_s, longest_ride_s, max_power, energy_kj
    FROM fresh WHERE rides > 0 ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE SET
        rides = EXCLUDED.rides, duration_s = EXCLUDED.duration_s,
        longest_ride_s = EXCLUDED.longest_ride_s, max_power = EXCLUDED.max_power,
        energy_kj = EXCLUDED.energy_kj;
$$;

CREATE FUNCTION historical.rider_totals_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM historical.rider_totals_recount(ARRAY(SELECT DISTINCT user_id FROM removed));
    RETURN NULL;
END $$;

CREATE FUNCTION historical.rider_totals_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- compress updates alert_count only; that changes no total, so nothing to recount.
    PERFORM historical.rider_totals_recount(ARRAY(
        SELECT o.user_id FROM removed o JOIN added n USING (ride_id)
        WHERE (o.user_id, o.duration_s, o.max_power, o.total_energy_kj)
              IS DISTINCT FROM (n.user_id, n.duration_s, n.max_power, n.total_energy_kj)
        UNION
        SELECT n.user_id FROM removed o JOIN added n USING (ride_id)
        WHERE o.user_id <> n.user_id));
    RETURN NULL;
END $$;

CREATE TRIGGER rider_totals_insert AFTER INSERT ON historical.rides
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION historical.rider_totals_add();
CREATE TRIGGER rider_totals_delete AFTER DELETE ON historical.rides
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION historical.rider_totals_removed();
CREATE TRIGGER rider_totals_update AFTER UPDATE ON historical.rides
    REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION historical.rider_totals_changed();

INSERT INTO historical.rider_totals (user_id, rides, duration_s, longest_ride_s, max_power, energy_kj)
SELECT user_id, count(*), sum(duration_s), max(duration_s), max(max_power),
       coalesce(sum(total_energy_kj), 0)
FROM historical.rides GROUP BY user_id;
