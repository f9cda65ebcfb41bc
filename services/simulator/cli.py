"""`deloton simulate` and `deloton replay`: produce a simulated fleet or a capture to Kafka."""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.common.config import Settings
from services.simulator.fleet import Fleet, FleetConfig
from services.simulator.pacing import MAX, parse_speed
from services.simulator.producer import ProduceStats, produce, topic_map
from services.simulator.replay import read_capture

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the simulator's subcommands to the `deloton` parser."""
    sim = subparsers.add_parser(
        "simulate",
        help="produce a simulated fleet of bikes in the raw feed format",
        description="Produce N bikes riding at once, in the exact raw format of the real feed.",
    )
    sim.add_argument("--bikes", type=_positive, default=10, metavar="N", help="bikes (10)")
    sim.add_argument(
        "--rides",
        type=int,
        default=None,
        metavar="R",
        help="rides per bike; 0 rides forever (default: 1 at --speed max, else forever)",
    )
    sim.add_argument(
        "--seconds", type=_positive, default=500, metavar="S", help="ride length (500)"
    )
    sim.add_argument(
        "--speed", type=_speed, default="realtime", help="realtime, max or a factor (realtime)"
    )
    sim.add_argument("--seed", type=int, default=0, metavar="K", help="random seed (0)")
    sim.add_argument(
        "--faults", type=_probability, default=0.0, metavar="P", help="fault rate per line"
    )
    sim.add_argument("--riders", type=_positive, default=None, help="rider population size")
    sim.add_argument(
        "--start", type=_instant, default=None, metavar="ISO", help="simulated start (now)"
    )
    sim.add_argument(
        "--until",
        type=_positive,
        default=None,
        metavar="S",
        help="start no ride after S seconds: every bike finishes its ride, then the run ends",
    )
    sim.add_argument(
        "--truth",
        type=Path,
        default=None,
        metavar="FILE",
        help="write what was sent (good readings, bad lines, alerts due) as JSON lines",
    )
    route = sim.add_mutually_exclusive_group()
    route.add_argument(
        "--split-topics", action="store_true", help="announcements and readings apart"
    )
    route.add_argument("--topic", default=None, metavar="T", help="topic (settings.topic_raw)")
    sim.set_defaults(func=run_simulate)

    rep = subparsers.add_parser(
        "replay",
        help="replay a JSONL capture byte for byte",
        description="Produce each line of a JSONL capture as one message value, unchanged.",
    )
    rep.add_argument("file", type=Path, metavar="FILE")
    rep.add_argument("--topic", default=None, metavar="T", help="topic (settings.topic_raw)")
    rep.add_argument("--speed", type=_speed, default="max", help="realtime, max or a factor (max)")
    rep.add_argument("--key", default=None, help='message key for lines without a "key" field')
    rep.add_argument(
        "--partition",
        type=_partition,
        default=0,
        metavar="P",
        help="partition of the lines left without a key: one stream, as captured (0); "
        "-1 lets the partitioner spread them",
    )
    rep.set_defaults(func=run_replay)


def run_simulate(args: argparse.Namespace) -> int:
    """Produce the simulated fleet and print a one-line summary."""
    settings = Settings()
    config = fleet_config(args)
    truth_file = open(args.truth, "wb") if getattr(args, "truth", None) else None  # noqa: SIM115
    truth = None
    if truth_file is not None:
        from services.alerts.episodes import EpisodeRules
        from services.simulator.truth import Truth

        truth = Truth(truth_file, EpisodeRules.from_settings(settings))
    fleet = Fleet(config, truth)
    topics = topic_map(settings, split_topics=args.split_topics, topic=args.topic)
    log.info(
        "simulating %d bikes from %s",
        config.bikes,
        fleet.start.isoformat(),
        extra={"seed": args.seed},
    )
    try:
        stats = produce(settings, fleet.messages(), args.speed, topics=topics)
    finally:
        if truth is not None and truth_file is not None:
            truth.close()
            truth_file.close()
    faults = f", faults {dict(sorted(fleet.faults.items()))}" if fleet.faults else ""
    _summary("simulate", stats, sorted(set(topics.values())), faults)
    return _exit_code(stats)


def fleet_config(args: argparse.Namespace) -> FleetConfig:
    """The fleet the arguments ask for; rides default to one at max speed, else forever."""
    rides = args.rides if args.rides is not None else (1 if args.speed == MAX else 0)
    return FleetConfig(
        bikes=args.bikes,
        rides=rides or None,
        seconds=args.seconds,
        seed=args.seed,
        start=args.start,
        faults=args.faults,
        riders=args.riders,
        until_s=getattr(args, "until", None),
    )


def run_replay(args: argparse.Namespace) -> int:
    """Replay the capture and print a one-line summary."""
    settings = Settings()
    topic = args.topic or settings.topic_raw
    key = args.key.encode() if args.key is not None else None
    messages = read_capture(args.file, key, timed=args.speed != MAX)
    # An unkeyed capture is one stream (one bike after another): spread over partitions its
    # lines would lose their order and their bike. Keyed lines go where their key sends them.
    stats = produce(
        settings,
        messages,
        args.speed,
        topics=topic_map(settings, topic=topic),
        unkeyed_partition=None if args.partition < 0 else args.partition,
    )
    where = f"partition {args.partition}" if args.partition >= 0 else "every partition"
    _summary("replay", stats, [topic], f", unkeyed lines to {where}")
    return _exit_code(stats)


def _summary(command: str, stats: ProduceStats, topics: list[str], extra: str) -> None:
    failed = f", {stats.failed:,} failed" if stats.failed else ""
    stopped = " (interrupted)" if stats.interrupted else ""
    print(
        f"{command}: {stats.messages:,} messages to {', '.join(topics)} in {stats.seconds:.1f} s "
        f"({stats.rate:,.0f} msg/s){failed}{extra}{stopped}"
    )


def _exit_code(stats: ProduceStats) -> int:
    if stats.interrupted:
        return 130
    return 1 if stats.failed else 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _partition(text: str) -> int:
    value = int(text)
    if value < -1:
        raise argparse.ArgumentTypeError("must be a partition number, or -1")
    return value


def _speed(text: str) -> float:
    try:
        return parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date-time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
