"""Clock skew end to end: a bike whose clock is minutes off, through the real broker and
ingest (which records when it wrote each bike's latest line), is the one the job flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2.extensions
import pytest

from services.alerts.sender import OutboxSender
from services.common.config import Settings
from services.quality import job
from services.simulator import faults
from tests.ingest.helpers import produce, run_ingest
from tests.quality.pipeline import fleet_by_bike, with_fault

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def test_the_bike_whose_clock_is_off_is_flagged_and_only_it(
    settings: Settings, db: psycopg2.extensions.connection, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    streams = fleet_by_bike(4, 300, seed=5, start=now - timedelta(minutes=10))
    streams["SN0001"] = with_fault(streams["SN0001"], faults.CLOCK_SKEW, 0.5)
    produce(settings, settings.topic_raw,
            ((m.key, m.value) for msgs in streams.values() for m in msgs))  # fmt: skip
    run_ingest(settings)

    result = job.run(settings, now=now, sender=OutboxSender(tmp_path / "outbox"))
    assert (result.judged, result.opened, result.emails_sent) == (4, ["SN0001"], 1)
    with db, db.cursor() as cur:
        cur.execute("SELECT bike_serial, measures, problems FROM ops.bike_quality ORDER BY 1")
        rows = cur.fetchall()
    skews = {bike: measures["clock_skew"] for bike, measures, _ in rows}
    assert skews["SN0001"] >= 90 - 5  # the fault moves the clock 90-240 s
    # The others differ by when their partition's batch was written (seconds at full speed).
    assert all(skew < 30 for bike, skew in skews.items() if bike != "SN0001"), skews
    assert {bike: problems for bike, _, problems in rows} == {
        "SN0000": [], "SN0001": ["clock_skew"], "SN0002": [], "SN0003": [],
    }  # fmt: skip
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
