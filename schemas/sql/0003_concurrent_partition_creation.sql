-- Two ingest processes may need the same new hourly partition at once. CREATE TABLE IF NOT
-- EXISTS does not protect against a concurrent create: the later one fails on the catalogue
-- (duplicate_table once the first committed, unique_violation while it is in flight).
-- Either means the partition exists, which is all the caller asked for.
CREATE OR REPLACE FUNCTION daily.ensure_readings_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    h timestamptz := date_trunc('hour', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    created integer := 0;
    name text;
BEGIN
    WHILE h <= to_ts LOOP
        name := 'readings_' || to_char(h AT TIME ZONE 'UTC', 'YYYYMMDD"h"HH24');
        IF to_regclass('daily.' || name) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE daily.%I PARTITION OF daily.readings '
                    'FOR VALUES FROM (%L) TO (%L)', name, h, h + interval '1 hour');
                created := created + 1;
            EXCEPTION WHEN duplicate_table OR unique_violation THEN
                NULL;  -- created by a concurrent transaction
            END;
        END IF;
        h := h + interval '1 hour';
    END LOOP;
    RETURN created;
END $$;
