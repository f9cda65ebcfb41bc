-- /city/{city} takes each resident's newest rides through the index on (user_id, started_at)
-- and /rider/{id} totals a rider's rides through it. Without ride_id in it, each of those
-- rides cost a read of its table page: a city of 100 riders with ten rides each read about
-- 1,000 pages scattered over a year of rides, most of the route's database time. With ride_id
-- and the rider totals' figures in the index both are index-only scans once vacuum has marked
-- the pages all-visible. It replaces the plain index, which it covers (same leading columns).
CREATE INDEX hist_rides_user_cover_idx ON historical.rides (user_id, started_at, ride_id)
    INCLUDE (duration_s, heart_rate_readings, avg_heart_rate);
DROP INDEX historical.hist_rides_user_idx;

-- The residents of a city, from the folded-city indexes without reading the riders' rows.
-- city is carried too: PostgreSQL plans an index-only scan of an expression index only when
-- the columns the expression reads are in the index.
CREATE INDEX hist_riders_city_cover_idx ON historical.riders (public.deloton_fold(city))
    INCLUDE (user_id, city);
DROP INDEX historical.hist_riders_city_fold_idx;
CREATE INDEX riders_city_cover_idx ON daily.riders (public.deloton_fold(city))
    INCLUDE (user_id, city);
DROP INDEX daily.riders_city_fold_idx;
