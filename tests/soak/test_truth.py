"""The simulator's truth file against what ingest's pure core makes of the same feed."""

from __future__ import annotations

import base64
import io
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson

from services.ingest.batch import Batch
from services.ingest.parser import Parser
from services.ingest.sessionizer import Sessionizer, ride_id_for
from services.simulator.fleet import Fleet, FleetConfig
from services.simulator.truth import Truth

START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


def record(faults: float, seed: int, bikes: int = 30) -> tuple[list[dict], list]:
    out = io.BytesIO()
    truth = Truth(out)
    config = FleetConfig(
        bikes=bikes, rides=None, seconds=60, seed=seed, start=START, faults=faults, until_s=150
    )
    messages = list(Fleet(config, truth).messages())
    truth.close()
    return [orjson.loads(line) for line in out.getvalue().splitlines()], messages


def ingest(messages: list) -> Batch:
    """Every message through one sessioniser (4 partitions by key), then silence closes all."""
    s = Sessionizer(Parser(now=datetime.now(UTC) + timedelta(hours=1)))
    batch = Batch()
    offsets: Counter[int] = Counter()
    for m in messages:
        p = int(m.key[2:]) % 4
        s.process(batch, "deloton", p, offsets[p], m.key, m.value)
        offsets[p] += 1
    s.mark_seen(s.bikes, 0.0)
    s.close_silent(batch, dict.fromkeys(range(4), 61.0), 60)
    return batch


def compare(records: list[dict], batch: Batch) -> tuple[dict, Counter, Counter]:
    """(truth reading key -> values, written-but-not-truth, truth-bad-not-rejected)."""
    want = {}
    for r in records:
        if r["t"] == "ride":
            ride_id = ride_id_for(r["bike"], r["started"])
            for n, ts, resistance, hr, rpm, power in r["readings"]:
                want[(ride_id, n)] = (ts, resistance, hr, rpm, float(power))
    got: Counter = Counter()
    for line in batch.readings:
        ride_id, n, ts, resistance, hr, rpm, power = line.rstrip("\n").split("\t")
        key = (int(ride_id), int(n))
        value = (ts[:-3], int(resistance), 0 if hr == r"\N" else int(hr), int(rpm), float(power))
        got[key] += 1
        if want.get(key) is not None and want[key][1:] != value[1:]:
            got[("wrong", *key)] += 1
    bad = Counter(
        (r["bike"].encode(), base64.b64decode(r["raw"])) for r in records if r["t"] == "bad"
    )
    rejected = Counter((r.key, r.raw) for r in batch.rejects)
    return want, got, bad - rejected + (rejected - bad)


def test_without_faults_every_line_is_a_good_reading() -> None:
    records, messages = record(faults=0.0, seed=4)
    want, got, mismatched = compare(records, ingest(messages))
    end = records[-1]
    assert end["t"] == "end" and end["bad"] == 0 and end["readings"] == len(want) > 2000
    assert set(got) == set(want) and set(got.values()) == {1}
    assert not mismatched


def test_faulty_feed_truth_matches_what_ingest_writes_and_rejects() -> None:
    records, messages = record(faults=0.02, seed=9)
    why = Counter(r["why"] for r in records if r["t"] == "bad")
    assert {"truncated", "garbage", "duplicate", "orphan", "unpaired"} <= set(why)
    want, got, mismatched = compare(records, ingest(messages))
    assert set(got) == set(want) and set(got.values()) == {1}  # none lost, doubled or wrong
    assert not mismatched  # every bad line rejected, no intact line rejected


def test_alerts_due_come_from_riders_over_their_maximum_only() -> None:
    records, _ = record(faults=0.0, seed=1, bikes=200)
    rides = [r for r in records if r["t"] == "ride"]
    due = [r for r in rides if r["alerts"]]
    assert due, "some riders push past their maximum"
    assert len(due) < len(rides) / 10
    for ride in due:
        for episode, kind, at in ride["alerts"]:
            assert kind in ("high", "low") and episode >= 1
            assert at in {reading[1] for reading in ride["readings"]}
