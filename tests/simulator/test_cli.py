"""The simulator's command line, parsed without a broker."""

from __future__ import annotations

import argparse
import math
from datetime import UTC, datetime

import pytest

from services.simulator import cli


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_simulate_defaults() -> None:
    args = parse("simulate")
    config = cli.fleet_config(args)
    assert args.speed == 1.0 and args.func is cli.run_simulate
    assert config.bikes == 10 and config.seconds == 500 and config.rides is None
    assert config.faults == 0.0 and config.start is None
    assert not args.split_topics and args.topic is None


def test_max_speed_rides_once_unless_told() -> None:
    assert cli.fleet_config(parse("simulate", "--speed", "max")).rides == 1
    assert cli.fleet_config(parse("simulate", "--speed", "max", "--rides", "3")).rides == 3
    assert cli.fleet_config(parse("simulate", "--speed", "max", "--rides", "0")).rides is None


def test_simulate_options() -> None:
    args = parse(
        "simulate", "--bikes", "1000", "--seconds", "60", "--speed", "25", "--seed", "7",
        "--faults", "0.01", "--start", "2022-11-03T18:42:00", "--topic", "raw",
    )  # fmt: skip
    config = cli.fleet_config(args)
    assert (config.bikes, config.seconds, config.seed, config.faults) == (1000, 60, 7, 0.01)
    assert config.start == datetime(2022, 11, 3, 18, 42, tzinfo=UTC)
    assert args.speed == 25.0 and args.topic == "raw"


def test_replay_options() -> None:
    args = parse("replay", "capture.jsonl", "--key", "SN0000", "--speed", "realtime")
    assert str(args.file) == "capture.jsonl" and args.key == "SN0000" and args.speed == 1.0
    assert parse("replay", "capture.jsonl").speed == math.inf
    assert parse("replay", "capture.jsonl").partition == 0
    assert parse("replay", "capture.jsonl", "--partition", "3").partition == 3


@pytest.mark.parametrize(
    "argv",
    [
        ("simulate", "--bikes", "0"),
        ("simulate", "--speed", "fast"),
        ("simulate", "--faults", "2"),
        ("simulate", "--start", "yesterday"),
        ("simulate", "--split-topics", "--topic", "x"),
    ],
)
def test_bad_arguments_are_usage_errors(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit):
        parse(*argv)
