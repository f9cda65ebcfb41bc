-- /leaderboard?since= aggregates every summarised ride started since a day (tens of
-- thousands for a week at a million rides a year). With the figures it ranks by in the
-- index on started_at, that is an index-only scan: no table page is read once vacuum has
-- marked them all-visible. It replaces the plain index on started_at, which it covers.
CREATE INDEX hist_rides_started_cover_idx ON historical.rides (started_at)
    INCLUDE (ride_id, user_id, duration_s, max_power, total_energy_kj);
DROP INDEX historical.hist_rides_started_at_idx;
