"""A ride through the real pipeline: ingest -> API -> compress -> API -> DELETE -> replay."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import psycopg2
import pytest

from services.common.config import Settings
from services.compress import run as compress
from tests.api.conftest import api_settings, make_key, serving
from tests.ingest.helpers import produce, run_ingest, sample_messages

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

# The real capture's ride starts 2022-11-03 18:42:00 and its last reading is at 18:50:19:
# ten minutes later it is finished (silent) and still well inside the retention window.
AFTER_THE_RIDE = datetime.fromisoformat("2022-11-03T19:00:00+00:00")


def counts(db: psycopg2.extensions.connection, ride_id: int) -> tuple[int, int, int]:
    with db.cursor() as cur:
        cur.execute(
            """SELECT (SELECT count(*) FROM daily.rides WHERE ride_id = %(id)s),
                      (SELECT count(*) FROM daily.readings WHERE ride_id = %(id)s),
                      (SELECT count(*) FROM historical.rides WHERE ride_id = %(id)s)""",
            {"id": ride_id},
        )
        row = cur.fetchone()
    db.rollback()
    assert row is not None
    return row[0], row[1], row[2]


def test_same_summary_before_and_after_compress_and_delete_survives_a_replay(
    settings: Settings, db: psycopg2.extensions.connection, database_url: str, real_sample: Path
) -> None:
    produce(settings, settings.topic_raw, sample_messages(real_sample), partitions=1)
    assert run_ingest(settings).consumed == 1000
    with db.cursor() as cur:
        cur.execute("SELECT ride_id FROM daily.rides")
        ((ride_id,),) = cur.fetchall()
    db.rollback()
    token = make_key(database_url, "analyst", "read,admin")
    auth = {"Authorization": f"Bearer {token}"}
    import httpx

    with serving(api_settings(database_url)) as url, httpx.Client(base_url=url, headers=auth) as c:
        before = c.get(f"/ride/{ride_id}").json()
        assert not before["summarised"] and before["summary"]["readings_count"] == 498
        assert before["ended_at"] is None  # nothing has closed it yet

        # Ingest, still running, hears nothing more of the bike and closes the ride by silence.
        quiet = settings.model_copy(update={"ride_silence_s": 1})
        assert run_ingest(quiet, until_idle=8).consumed == 0
        closed = c.get(f"/ride/{ride_id}").json()
        assert closed["ended_at"] is not None and not closed["summarised"]
        assert closed["summary"] == before["summary"]

        assert compress(db, now=AFTER_THE_RIDE, settings=settings).rides_summarised == 1
        after = c.get(f"/ride/{ride_id}").json()
        assert after["summarised"]
        for name, value in before["summary"].items():
            assert after["summary"][name] == pytest.approx(value, rel=1e-12), name
        assert after["duration_s"] == before["duration_s"]
        assert after["ended_at"] is not None
        assert counts(db, ride_id) == (1, 498, 1)  # in both schemas now

        deleted = c.delete(f"/ride/{ride_id}")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["readings_deleted"] == 498
        assert counts(db, ride_id) == (0, 0, 0)

        # The same messages again, read by a fresh consumer group from offset 0, then compress.
        replay = settings.model_copy(update={"ingest_group": f"replay-{uuid.uuid4().hex[:8]}"})
        assert run_ingest(replay).consumed == 1000
        compress(db, now=AFTER_THE_RIDE, settings=settings)
        assert counts(db, ride_id) == (0, 0, 0)
        assert c.get(f"/ride/{ride_id}").status_code == 404
        assert c.get("/rider/100/rides").json()["items"] == []
        assert c.delete(f"/ride/{ride_id}").status_code == 404
