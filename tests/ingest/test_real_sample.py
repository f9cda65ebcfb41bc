"""The real capture through the real broker into real PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import psycopg2

from services.common.config import Settings
from tests.harness import consume_all
from tests.ingest.helpers import produce, run_ingest, sample_messages


def _expected_readings(path: Path) -> list[tuple[int, int, int | None, int, float, str]]:
    rides, out = {}, []
    for raw in path.read_text().splitlines():
        line = json.loads(raw)["log"].rstrip("\n")
        if "[INFO]: Ride" in line:
            body = line.split("Ride - ", 1)[1]
            d, r = (part.split(" = ")[1] for part in body.split("; "))
            rides["last"] = (int(float(d)), int(r))
        elif "[INFO]: Telemetry" in line:
            body = line.split("Telemetry - ", 1)[1]
            h, rpm, p = (part.split(" = ")[1] for part in body.split("; "))
            elapsed, resistance = rides.pop("last")
            out.append((elapsed, resistance, int(h) or None, int(rpm), float(p), line[:26]))
    return out


def test_real_capture_lands_exactly(
    settings: Settings, db: psycopg2.extensions.connection, real_sample: Path
) -> None:
    produce(settings, settings.topic_raw, sample_messages(real_sample), partitions=1)
    stats = run_ingest(settings)
    assert stats.consumed == 1000
    with db.cursor() as cur:
        cur.execute(
            "SELECT user_id, title, first_name, last_name, gender, address_line, city, postcode, "
            "date_of_birth, email_address, height_cm, weight_kg, original_source FROM daily.riders"
        )
        assert cur.fetchall() == [
            (100, None, "Steven", "Pearce", "male", "0 Simpson locks", "Wilkinsonshire",
             "E68 8SH", date(1978, 9, 4), "steven.p@gmail.com", 167, 83, "direct")
        ]  # fmt: skip
        cur.execute(
            "SELECT ride_id, bike_serial, user_id, model, started_at::text FROM daily.rides"
        )
        rides = cur.fetchall()
        assert len(rides) == 1
        ride_id, bike, user, model, started = rides[0]
        assert (bike, user, model) == ("SN0000", 100, "mendoza v9")
        assert started == "2022-11-03 18:42:00.922427+00"
        cur.execute(
            "SELECT elapsed_s, resistance, heart_rate, rpm, power, "
            "to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') "
            "FROM daily.readings WHERE ride_id = %s ORDER BY elapsed_s",
            (ride_id,),
        )
        readings = cur.fetchall()
        cur.execute("SELECT count(*) FROM daily.rejects")
        assert cur.fetchone() == (0,)
    assert readings == _expected_readings(real_sample)
    assert len(readings) == 498
    events = consume_all(settings.kafka_bootstrap_servers or "", settings.topic_events, 499)
    kinds = [json.loads(v)["type"] for _, v, _, _ in events]
    assert kinds.count("ride_started") == 1 and kinds.count("reading") == 498


def test_replaying_the_same_data_changes_nothing(
    settings: Settings, db: psycopg2.extensions.connection, real_sample: Path
) -> None:
    messages = sample_messages(real_sample)
    produce(settings, settings.topic_raw, messages, partitions=1)
    run_ingest(settings)
    snapshot = _snapshot(db)
    # The same data again, as a producer retry or a re-sent capture would deliver it ...
    produce(settings, settings.topic_raw, messages, partitions=1)
    run_ingest(settings)
    after_resend = _snapshot(db)
    # ... and a fresh consumer group re-reading the whole topic from offset 0.
    settings.ingest_group = settings.ingest_group + "-replay"
    run_ingest(settings)
    after_replay = _snapshot(db)
    assert after_resend["readings"] == snapshot["readings"]
    assert after_resend["rides"] == snapshot["rides"] == after_replay["rides"]
    assert after_replay["readings"] == snapshot["readings"]
    assert after_replay["riders"] == snapshot["riders"]


def _snapshot(db: psycopg2.extensions.connection) -> dict[str, list[tuple[object, ...]]]:
    out = {}
    with db.cursor() as cur:
        for table, order in (
            ("readings", "ride_id, elapsed_s"),
            ("rides", "ride_id"),
            ("riders", "user_id"),
        ):
            cur.execute(f"SELECT * FROM daily.{table} ORDER BY {order}")
            out[table] = cur.fetchall()
    db.rollback()
    return out
