"""Row counts that show the demo's pipeline moving (read-only)."""

from __future__ import annotations

import psycopg2.extensions

# Exact counts are cheap at demo sizes (a few bikes, hours of readings at one a second).
_COUNTS_SQL = """
SELECT (SELECT count(*) FROM daily.readings),
       (SELECT count(*) FROM daily.rides),
       (SELECT count(*) FROM daily.rejects),
       (SELECT count(*) FROM daily.alerts),
       (SELECT count(*) FROM historical.rides)
"""
COUNTED = ("readings", "rides", "rejects", "alerts", "summarised")


def row_counts(conn: psycopg2.extensions.connection) -> dict[str, int]:
    """Rows in daily.readings, rides, rejects, alerts and historical.rides ("summarised")."""
    with conn.cursor() as cur:
        cur.execute(_COUNTS_SQL)
        row = cur.fetchone()
    conn.rollback()  # end the read transaction so the next count sees new rows
    assert row is not None
    return dict(zip(COUNTED, (int(n) for n in row), strict=True))
