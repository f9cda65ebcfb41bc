"""Through the real broker: replay is byte for byte, simulate routes lines to the right topics."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.common.config import Settings
from services.simulator import __main__ as simulator_main
from services.simulator.fleet import Fleet, FleetConfig
from services.simulator.models import Message
from services.simulator.pacing import MAX
from services.simulator.producer import produce, topic_map
from services.simulator.replay import read_capture
from tests import harness
from tests.simulator import grammar
from tests.simulator.conftest import START

pytestmark = pytest.mark.kafka

ANNOUNCEMENTS = {"main", "ride_banner", "getting", "system"}


def _use_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Settings) -> None:
    """Point the CLI (which reads the environment) at this test's broker and topics."""
    monkeypatch.chdir(tmp_path)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.require_kafka(),
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "TOPIC_RAW": settings.topic_raw,
        "TOPIC_BIKES": settings.topic_bikes,
        "TOPIC_TELEMETRY": settings.topic_telemetry,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _by_key(records: list[tuple[bytes | None, bytes, int, int]]) -> dict[bytes | None, list[bytes]]:
    """Values per key in offset order (a key lives in one partition)."""
    out: dict[bytes | None, list[bytes]] = {}
    for key, value, _, _ in sorted(records, key=lambda r: (r[2], r[3])):
        out.setdefault(key, []).append(value)
    return out


def test_real_sample_replays_byte_for_byte(kafka_settings: Settings, real_sample: Path) -> None:
    topic = kafka_settings.topic_raw
    stats = produce(
        kafka_settings,
        read_capture(real_sample, b"SN0000", timed=False),
        MAX,
        topics=topic_map(kafka_settings, topic=topic),
    )
    assert stats.messages == 1000 and stats.failed == 0
    records = harness.consume_all(kafka_settings.require_kafka(), topic, 1000)
    assert len(records) == 1000
    assert {key for key, *_ in records} == {b"SN0000"}
    assert [value for _, value, *_ in sorted(records, key=lambda r: r[3])] == (
        real_sample.read_bytes().splitlines()
    )


def test_replay_command_keeps_bytes_and_order(
    kafka_settings: Settings,
    real_sample: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use_settings(monkeypatch, tmp_path, kafka_settings)
    topic = kafka_settings.topic_raw + ".cli"
    code = simulator_main.main(["replay", str(real_sample), "--topic", topic, "--key", "SN0000"])
    assert code == 0
    assert "replay: 1,000 messages" in capsys.readouterr().out
    records = harness.consume_all(kafka_settings.require_kafka(), topic, 1000)
    assert _by_key(records) == {b"SN0000": real_sample.read_bytes().splitlines()}


@pytest.mark.parametrize(("extra", "partition"), [((), 0), (("--partition", "2"), 2)])
def test_replay_keeps_an_unkeyed_capture_in_one_partition(
    kafka_settings: Settings,
    real_sample: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    partition: int,
) -> None:
    """Without a key the partitioner would spread the lines over the topic's 4 partitions."""
    _use_settings(monkeypatch, tmp_path, kafka_settings)
    topic = kafka_settings.topic_raw + ".unkeyed"
    assert simulator_main.main(["replay", str(real_sample), "--topic", topic, *extra]) == 0
    assert f"unkeyed lines to partition {partition}" in capsys.readouterr().out
    records = harness.consume_all(kafka_settings.require_kafka(), topic, 1000)
    assert {(key, p) for key, _, p, _ in records} == {(None, partition)}
    assert [value for _, value, *_ in sorted(records, key=lambda r: r[3])] == (
        real_sample.read_bytes().splitlines()
    )


def test_simulate_split_topics_routes_lines(
    kafka_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use_settings(monkeypatch, tmp_path, kafka_settings)
    args = "--bikes 4 --rides 2 --seconds 10 --seed 3 --start 2022-11-03T18:42:00Z"
    code = simulator_main.main(["simulate", *args.split(), "--speed", "max", "--split-topics"])
    assert code == 0
    expected = list(
        Fleet(FleetConfig(bikes=4, rides=2, seconds=10, seed=3, start=START)).messages()
    )
    assert f"simulate: {len(expected)} messages" in capsys.readouterr().out
    bootstrap = kafka_settings.require_kafka()
    announcements = _by_key(harness.consume_all(bootstrap, kafka_settings.topic_bikes, 4 * 7))
    readings = _by_key(harness.consume_all(bootstrap, kafka_settings.topic_telemetry, 4 * 40))
    for key in {m.key for m in expected}:
        own = [m.value for m in expected if m.key == key]
        kinds = [grammar.classify(grammar.parse_value(v))[0] for v in own]
        assert announcements[key] == [
            v for v, k in zip(own, kinds, strict=True) if k in ANNOUNCEMENTS
        ]
        assert readings[key] == [
            v for v, k in zip(own, kinds, strict=True) if k not in ANNOUNCEMENTS
        ]
    assert sum(map(len, announcements.values())) == 4 * 7
    assert sum(map(len, readings.values())) == 4 * 40


def test_simulate_to_one_topic_keeps_each_bikes_order(kafka_settings: Settings) -> None:
    fleet = Fleet(FleetConfig(bikes=6, rides=1, seconds=20, seed=5, start=START, faults=0.05))
    expected = list(fleet.messages())
    topic = kafka_settings.topic_raw
    stats = produce(kafka_settings, iter(expected), MAX, topics=topic_map(kafka_settings))
    assert stats.messages == len(expected)
    records = harness.consume_all(kafka_settings.require_kafka(), topic, len(expected))
    got = _by_key(records)
    for key in got:
        assert got[key] == [m.value for m in expected if m.key == key]


def test_a_full_local_queue_is_waited_out(kafka_settings: Settings) -> None:
    from services.common.kafka import make_producer

    small = make_producer(kafka_settings, **{"queue.buffering.max.messages": 50})
    messages = [Message("telemetry", b"SN0001", b"%d" % i, 0.0) for i in range(3000)]
    stats = produce(
        kafka_settings, iter(messages), MAX, topics=topic_map(kafka_settings), producer=small
    )
    assert stats.messages == 3000
    records = harness.consume_all(kafka_settings.require_kafka(), kafka_settings.topic_raw, 3000)
    assert _by_key(records)[b"SN0001"] == [m.value for m in messages]


def test_speed_factor_paces_production(kafka_settings: Settings) -> None:
    fleet = Fleet(FleetConfig(bikes=2, rides=1, seconds=4, seed=1, start=START))
    messages = list(fleet.messages())
    span = messages[-1].at - messages[0].at
    started = time.monotonic()
    produce(kafka_settings, iter(messages), 10.0, topics=topic_map(kafka_settings))
    assert time.monotonic() - started >= span / 10.0 * 0.95
