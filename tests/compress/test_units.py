"""Pure parts of compress: partition names, argument parsing."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from services.compress import cli, repository


def test_partition_hour_reads_the_utc_hour_from_the_name():
    assert repository.partition_hour("readings_20261119h07") == datetime(
        2026, 11, 19, 7, tzinfo=UTC
    )
    assert repository.partition_hour("readings_default") is None
    assert repository.partition_hour("readings_20261119h07_old") is None


def test_partition_end_is_one_hour_later():
    p = repository.Partition("readings_20261231h23", datetime(2026, 12, 31, 23, tzinfo=UTC))
    assert p.end == datetime(2027, 1, 1, 0, tzinfo=UTC)


def test_now_argument():
    assert cli._iso("2026-11-20T12:00:30+01:00").hour == 12
    with pytest.raises(argparse.ArgumentTypeError):
        cli._iso("yesterday")
