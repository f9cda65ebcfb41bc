-- /city/{city} takes each resident's newest rides through the index on (user_id, started_at)
-- and /rider/{id} totals a rider's rides through it. Without ride_id in it, each of those
-- rides cost a read of its table page: a city of 100 riders with ten rides each read about
-- 1,000 pages scattered over a year of rides, most of the route's database time. With ride_id
-- and the rider totals' figures in the index both are index-only scans once vacuum has marked
-- the pages all-visible. It replaces the plain index, which it covers (same leading columns).
--
-- The folded-city indexes stay as they are: carrying the city in them as well (so that the
-- residents too are found index-only) would double an entry that is already up to ~2 KB for
-- the longest city an address may hold, past PostgreSQL's 2,704-byte limit, and the rider's
-- row would be refused.
CREATE INDEX hist_rides_user_cover_idx ON historical.rides (user_id, started_at, ride_id)
    INCLUDE (duration_s, heart_rate_readings, avg_heart_rate);
DROP INDEX historical.hist_rides_user_idx;
