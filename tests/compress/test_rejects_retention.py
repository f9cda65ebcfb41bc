"""Dead letters (raw lines, which may hold a rider's details) are purged after their retention."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.compress import run
from tests.compress.builders import NOW

pytestmark = pytest.mark.postgres

SYSTEM_LINE = (
    b'{"log": "2026-11-19 20:00:00.000000 mendoza v9: [SYSTEM] data = {\\"name\\": '
    b'\\"Ada Lovelace\\", \\"email_address\\": \\"ada@example.com\\"\\n"}'
)


def test_rejects_older_than_the_retention_are_purged(conn, compress_settings):
    ages = {1: timedelta(days=30), 2: timedelta(days=7, minutes=1), 3: timedelta(days=6, hours=23)}
    with conn, conn.cursor() as cur:
        for offset, age in ages.items():
            cur.execute(
                """INSERT INTO daily.rejects (received_at, topic, kafka_partition, kafka_offset,
                       raw, reason) VALUES (%s, 'deloton', 0, %s, %s, 'truncated')""",
                (NOW - age, offset, SYSTEM_LINE),
            )
    result = run(conn, now=NOW, settings=compress_settings)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT kafka_offset FROM daily.rejects")
        assert [r for (r,) in cur.fetchall()] == [3]
    assert result.rejects_purged == 2

    shorter = compress_settings.model_copy(update={"rejects_retention_days": 1.0})
    assert run(conn, now=NOW, settings=shorter).rejects_purged == 1
