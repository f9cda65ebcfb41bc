"""The day-level read agrees ride for ride with the shared ride read (reads/rides.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.pool import read_only_connection
from services.common.reads import day, rides


def test_day_summaries_equal_the_shared_ride_summaries(seeded):
    start = datetime(2026, 11, 19, tzinfo=UTC)
    with read_only_connection(seeded.dsn) as conn:
        whole_days = day.ride_summaries(conn, start=start, end=start + timedelta(days=8))
        by_id = {
            r.ride_id: r for r in rides.rides_by_ids(conn, ride_ids=[r.ride_id for r in whole_days])
        }
    assert {r.source for r in whole_days} == {"daily", "historical"}
    assert len(by_id) == len(whole_days) > 0
    for mine in whole_days:
        theirs = by_id[mine.ride_id]
        s = theirs.summary
        assert (mine.user_id, mine.bike_serial, mine.started_at, mine.duration_s) == (
            theirs.user_id, theirs.bike_serial, theirs.started_at, theirs.duration_s
        )  # fmt: skip
        assert (mine.readings_count, mine.heart_rate_readings, mine.alert_count) == (
            s.readings_count, s.heart_rate_readings, s.alert_count
        )  # fmt: skip
        for a, b in ((mine.avg_heart_rate, s.avg_heart_rate), (mine.avg_power, s.avg_power),
                     (mine.total_energy_kj, s.total_energy_kj)):  # fmt: skip
            assert a == pytest.approx(b, rel=1e-12)
        assert mine.source == ("historical" if theirs.summarised else "daily")
