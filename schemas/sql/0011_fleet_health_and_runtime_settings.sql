-- Fleet health (per-bike data quality and incidents) and settings changed at run time.

CREATE SCHEMA IF NOT EXISTS ops;

-- Settings an admin key changes through the API; services read them every few seconds and
-- fall back to their environment value for a setting without a row.
CREATE TABLE ops.settings (
    name       text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL
);

-- Every change: which key, when, the value before (NULL: the environment's) and after.
CREATE TABLE ops.settings_audit (
    audit_id  bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    key_id    bigint REFERENCES api.keys (key_id),
    key_name  text NOT NULL,
    name      text NOT NULL,
    old_value jsonb,
    new_value jsonb NOT NULL
);
CREATE INDEX settings_audit_name_idx ON ops.settings_audit (name, at);

-- The latest quality measurement of each bike (one row per bike, rewritten by each run).
CREATE TABLE ops.bike_quality (
    bike_serial  text PRIMARY KEY,
    computed_at  timestamptz NOT NULL,
    window_from  timestamptz NOT NULL,
    window_to    timestamptz NOT NULL,
    score        double precision NOT NULL,
    readings     integer NOT NULL,
    measures     jsonb NOT NULL,       -- each detector's figure
    problems     text[] NOT NULL       -- detectors over their threshold
);

-- A bike whose score fell below the threshold, until it recovers. One open incident per bike.
CREATE TABLE ops.bike_incidents (
    incident_id     bigserial PRIMARY KEY,
    bike_serial     text NOT NULL,
    opened_at       timestamptz NOT NULL DEFAULT now(),
    cleared_at      timestamptz,
    score           double precision NOT NULL,      -- at opening
    worst_score     double precision NOT NULL,
    problems        text[] NOT NULL,
    opened_email    text NOT NULL DEFAULT 'pending'
        CHECK (opened_email IN ('pending', 'sent', 'failed')),
    cleared_email   text CHECK (cleared_email IN ('pending', 'sent', 'failed')),
    email_attempts  integer NOT NULL DEFAULT 0,
    last_error      text
);
CREATE UNIQUE INDEX bike_incidents_open_idx ON ops.bike_incidents (bike_serial)
    WHERE cleared_at IS NULL;
CREATE INDEX bike_incidents_opened_idx ON ops.bike_incidents (opened_at);

-- Clock skew: when ingest last wrote each bike (the database's clock at the batch), beside the
-- event time of its latest line. Their difference, less the fleet's median (ingest's own lag),
-- is the bike's clock skew. Set in the statement ingest already runs for each batch's bikes.
ALTER TABLE daily.bikes ADD COLUMN written_at timestamptz;
