"""Ride summaries computed with pandas from the readings the test wrote, independently of SQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compress.builders import Ride


def expected_summary(ride: Ride, *, alerts: int = 0) -> dict[str, Any]:
    """What historical.rides should hold for this ride."""
    f = ride.readings
    hr = f.heart_rate.dropna()
    hr = hr[hr != 0]
    end = ride.ended_at if ride.ended_at is not None else f.recorded_at.max().to_pydatetime()
    return {
        "ride_id": ride.ride_id,
        "user_id": ride.user_id,
        "started_at": ride.started_at,
        "ended_at": end,
        "duration_s": round((end - ride.started_at).total_seconds()),
        "readings_count": len(f),
        "heart_rate_readings": len(hr),
        "avg_heart_rate": float(hr.mean()) if len(hr) else None,
        "max_heart_rate": int(hr.max()) if len(hr) else None,
        "avg_power": float(f.power.mean()) if len(f) else None,
        "max_power": float(f.power.max()) if len(f) else None,
        "total_energy_kj": float(f.power.sum()) / 1000 if len(f) else None,
        "avg_rpm": float(f.rpm.mean()) if len(f) else None,
        "avg_resistance": float(f.resistance.mean()) if len(f) else None,
        "alert_count": alerts,
    }


def stored_summaries(cur: Any) -> dict[int, dict[str, Any]]:
    """historical.rides as {ride_id: {column: value}}."""
    cur.execute("SELECT * FROM historical.rides")
    names = [c.name for c in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def assert_summary(stored: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every expected column matches; floats to 1e-9 relative (SQL and pandas sum differently)."""
    for column, want in expected.items():
        got = stored[column]
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-9), column
        else:
            assert got == want, column
