"""Personal data at ingest: addresses validated and kept as data, events that carry only what
their consumers use, schemas that say which fields are personal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import psycopg2
import pytest
from prometheus_client import REGISTRY

from services.common.config import Settings
from services.ingest.batch import Batch
from services.ingest.models import EMAIL_PROBLEMS
from services.ingest.parser import Parser, email_problem, parse_rider
from services.ingest.sessionizer import Sessionizer
from tests.ingest.helpers import produce, run_ingest, sample_messages

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "messages"
STEVEN = {
    "user_id": 100, "name": "Dr Steven Pearce", "gender": "male",
    "address": "0 Simpson locks,Wilkinsonshire,E68 8SH", "date_of_birth": 273715200000,
    "email_address": "steven.p@gmail.example", "height_cm": 167, "weight_kg": 83,
    "account_create_date": 1647993600000, "bike_serial": "SN0000", "original_source": "direct",
}  # fmt: skip


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("steven.p@gmail.example", None),
        ("o'brien+bikes@mail.example.co.uk", None),
        ("bad@x.com\r\nBcc: y@z.example", "control_characters"),
        ("bad@x.com\nBcc: y@z.example", "control_characters"),
        ("tab\t@x.example", "control_characters"),
        ("v@x.com, attacker@evil.com", "several_addresses"),
        ("v@x.com;attacker@evil.com", "several_addresses"),
        ("v@x.com attacker@evil.com", "several_addresses"),
        ("friends: a@x.example, b@y.example;", "several_addresses"),
        ("a@b@x.example", "several_addresses"),
        ("Steven Pearce <steven@x.example>", "display_name"),
        ("<steven@x.example>", "display_name"),
        ('"Steven" steven@x.example', "display_name"),
        ("steven", "syntax"),
        ("steven@localhost", "syntax"),
        ("steven@-x.example", "syntax"),
        ("steven..p@x.example", "syntax"),
        ("stéven@x.example", "syntax"),
        ("s" * 65 + "@x.example", "syntax"),
    ],
)
def test_exactly_one_bare_address_is_usable(address: str, problem: str | None) -> None:
    assert email_problem(address) == problem
    assert problem is None or problem in EMAIL_PROBLEMS


def test_an_unusable_address_is_kept_and_marked_not_rejected() -> None:
    from datetime import UTC, datetime

    now = datetime(2024, 3, 1, tzinfo=UTC)
    rider = parse_rider(json.dumps({**STEVEN, "email_address": "v@x.com, a@evil.com"}), now)
    assert not isinstance(rider, tuple) or hasattr(rider, "user_id")
    assert rider.email_address == "v@x.com, a@evil.com"
    assert rider.email_invalid == "several_addresses"
    good = parse_rider(json.dumps(STEVEN), now)
    assert good.email_invalid is None
    nul = parse_rider(json.dumps({**STEVEN, "email_address": "a\x00@x.example"}), now)
    assert nul.email_invalid == "control_characters"
    assert "\x00" not in nul.email_address


def _sample_with_address(real_sample: Path, address: str) -> list[tuple[bytes | None, bytes]]:
    out = []
    for key, value in sample_messages(real_sample):
        line = orjson.loads(value)["log"]
        if "[SYSTEM] data = " in line:
            head, _, payload = line.partition("[SYSTEM] data = ")
            data = json.loads(payload)
            data["email_address"] = address
            line = head + "[SYSTEM] data = " + json.dumps(data, separators=(",", ":")) + "\n"
            value = json.dumps({"log": line}).encode()
        out.append((key, value))
    return out


@pytest.mark.kafka
@pytest.mark.postgres
def test_ingest_records_an_unusable_address_as_invalid_and_counts_it(
    settings: Settings, real_sample: Path, db: psycopg2.extensions.connection
) -> None:
    def count() -> float:
        sample = REGISTRY.get_sample_value(
            "deloton_ingest_invalid_email_addresses_total", {"reason": "several_addresses"}
        )
        return sample or 0.0

    before = count()
    messages = _sample_with_address(real_sample, "v@x.com, a@evil.com")
    produce(settings, settings.topic_raw, messages, partitions=1)
    run_ingest(settings)
    with db.cursor() as cur:
        cur.execute("SELECT user_id, email_address, email_invalid FROM daily.riders")
        assert cur.fetchall() == [(100, "v@x.com, a@evil.com", "several_addresses")]
        cur.execute("SELECT count(*) FROM daily.readings")
        assert cur.fetchone() == (498,)  # the ride itself is good data
    assert count() == before + 1


def _events(real_sample: Path) -> list[dict[str, Any]]:
    s = Sessionizer(Parser(max_future_s=10**9))
    batch = Batch()
    for offset, (key, value) in enumerate(sample_messages(real_sample)):
        s.process(batch, "deloton", 0, offset, key, value)
    return [orjson.loads(v) for _, v in batch.events]


def test_ride_started_carries_only_what_its_consumers_use(real_sample: Path) -> None:
    [started] = [e for e in _events(real_sample) if e["type"] == "ride_started"]
    assert set(started) == {"type", "ride_id", "bike_serial", "model", "started_at", "rider"}
    assert started["rider"] == {
        "user_id": 100,
        "first_name": "Steven",
        "gender": "male",
        "date_of_birth": "1978-09-04",
    }


def _unclassified(schema: dict[str, Any], path: str) -> list[str]:
    missing = []
    for name, spec in schema.get("properties", {}).items():
        if not isinstance(spec.get("x-personal"), bool):
            missing.append(f"{path}.{name}")
        missing += _unclassified(spec, f"{path}.{name}")
    return missing


def test_every_message_schema_says_which_fields_are_personal() -> None:
    schemas = sorted(SCHEMAS.glob("*.schema.json"))
    assert len(schemas) >= 6
    for path in schemas:
        schema = json.loads(path.read_text())
        assert _unclassified(schema, path.name) == []
    started = json.loads((SCHEMAS / "ride-started.schema.json").read_text())
    rider = started["properties"]["rider"]
    assert rider["additionalProperties"] is False
    assert set(rider["properties"]) == {"user_id", "first_name", "gender", "date_of_birth"}
