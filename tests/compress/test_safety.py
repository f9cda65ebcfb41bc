"""Runs that repeat, overlap or die half-way all end in the state one clean run reaches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from services.compress import repository, run
from tests.compress.builders import (
    NOW,
    at,
    insert_readings,
    readings_frame,
    table_state,
    write_scenario,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def clean_state(reference_conn, compress_settings):
    """The table state after one uninterrupted run over the scenario."""
    with reference_conn, reference_conn.cursor() as cur:
        write_scenario(cur)
    run(reference_conn, now=NOW, settings=compress_settings)
    with reference_conn.cursor() as cur:
        return table_state(cur)


def _state(conn):
    with conn, conn.cursor() as cur:  # ends the transaction: its locks would block drops
        return table_state(cur)


def test_second_run_is_a_no_op(conn, compress_settings, clean_state):
    with conn, conn.cursor() as cur:
        write_scenario(cur)
    run(conn, now=NOW, settings=compress_settings)
    assert _state(conn) == clean_state

    again = run(conn, now=NOW, settings=compress_settings)

    assert _state(conn) == clean_state
    changed = {
        k: v
        for k, v in again.as_dict().items()
        if isinstance(v, int)
        and k not in ("summary_batches", "delete_batches", "pauses", "pauses_skipped")
        and v != 0
    }
    # the ride straddling the cutoff is looked at again, but nothing is written
    assert changed == {"partitions_kept_unsettled": 1}


class Crash(Exception):
    pass


@pytest.mark.parametrize(
    ("step", "after_calls"),
    [
        ("summarise", 1),
        ("summarise", 2),
        ("detach_partition", 1),  # between the detach and the drop
        ("drop_partition", 1),
        ("delete_rows", 1),
    ],
)
def test_exception_between_batches_then_rerun(
    conn, compress_settings, clean_state, step, after_calls
):
    with conn, conn.cursor() as cur:
        write_scenario(cur)
    calls = {"n": 0}

    def crash_after(name: str, _rows: int) -> None:
        if name == step:
            calls["n"] += 1
            if calls["n"] == after_calls:
                raise Crash(name)

    with pytest.raises(Crash):
        run(conn, now=NOW, settings=compress_settings, on_batch=crash_after)
    assert _state(conn) != clean_state  # it really stopped half-way
    # the lock went with the failed run
    with conn, conn.cursor() as cur:
        assert repository.try_lock(cur)
        repository.unlock(cur)

    run(conn, now=NOW, settings=compress_settings)

    assert _state(conn) == clean_state


def _add_tails(cur) -> None:
    """Readings that arrive after a run summarised the recent and the silent ride."""
    insert_readings(
        cur, readings_frame(106, at("2026-11-20 10:00:00"), 30, seed=1060, first_reading_s=601)
    )
    insert_readings(
        cur, readings_frame(105, at("2026-11-20 11:50:00"), 10, seed=1050, first_reading_s=421)
    )


def test_exception_between_refresh_batches_then_rerun(conn, reference_conn, compress_settings):
    # A first run refreshes nothing (it wrote every summary itself): the refresh that can
    # be cut half-way is a later run's, folding in readings that arrived since.
    settings = compress_settings.model_copy(update={"compress_batch_rides": 1})
    for c in (reference_conn, conn):
        with c, c.cursor() as cur:
            write_scenario(cur)
        assert run(c, now=NOW, settings=settings).summaries_updated == 0
        with c, c.cursor() as cur:
            _add_tails(cur)
    assert run(reference_conn, now=NOW, settings=settings).summaries_updated == 2
    clean = _state(reference_conn)

    def crash_after(name: str, _rows: int) -> None:
        if name == "refresh":
            raise Crash(name)

    with pytest.raises(Crash):
        run(conn, now=NOW, settings=settings, on_batch=crash_after)
    assert _state(conn) != clean  # one ride's tail folded in, not the other's

    run(conn, now=NOW, settings=settings)

    assert _state(conn) == clean


def test_second_concurrent_run_exits_saying_so(conn, compress_settings, database_url):
    with conn, conn.cursor() as cur:
        write_scenario(cur)
        before = table_state(cur)
    holder = psycopg2.connect(database_url)
    try:
        with holder, holder.cursor() as hcur:
            assert repository.try_lock(hcur)
        result = run(conn, now=NOW, settings=compress_settings)
    finally:
        holder.close()
    assert result.status == "skipped" and result.rides_summarised == 0
    assert "another compress run holds the lock" in (result.reason or "")
    assert _state(conn) == before
    assert run(conn, now=NOW, settings=compress_settings).status == "ok"


def _compress_process(database_url: str, workdir: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "COMPRESS_BATCH_RIDES": "1",
        "RETENTION_HOURS": "12",
        "RIDE_SILENCE_S": "60",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.compress", "--now", NOW.isoformat()],
        cwd=workdir,  # no .deloton/env there to override the environment
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_blocked(conn, pid: int, timeout: float = 30.0) -> None:
    """Wait until the compress process's backend waits on a lock we hold."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with conn, conn.cursor() as cur:
            cur.execute(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE application_name = 'deloton-compress' AND wait_event_type = 'Lock'"""
            )
            if cur.fetchone()[0]:
                return
        time.sleep(0.05)
    raise AssertionError(f"compress process {pid} never blocked")


def _wait_for_no_compress_backend(conn, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with conn, conn.cursor() as cur:
            cur.execute(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE application_name = 'deloton-compress'"""
            )
            if cur.fetchone()[0] == 0:
                return
        time.sleep(0.05)
    raise AssertionError("the killed run's backend is still there")


@pytest.mark.parametrize(
    "blocker",
    [
        # ride 106 is summarised in the 4th one-ride batch: its rider row is locked by us
        "SELECT 1 FROM historical.riders WHERE user_id = 5 FOR UPDATE",
        # retention has dropped partitions and removed some rides when it reaches ride 107
        "SELECT 1 FROM daily.rides WHERE ride_id = 107 FOR UPDATE",
    ],
)
def test_sigkilled_process_then_rerun(
    conn, compress_settings, clean_state, database_url, tmp_path, blocker
):
    with conn, conn.cursor() as cur:
        write_scenario(cur)
        cur.execute(
            """INSERT INTO historical.riders SELECT * FROM daily.riders WHERE user_id = 5"""
        )
    blocking = psycopg2.connect(database_url)
    proc = None
    try:
        with blocking.cursor() as bcur:
            bcur.execute(blocker)
            proc = _compress_process(database_url, tmp_path)
            _wait_until_blocked(conn, proc.pid)
            half_way = _state(conn)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        blocking.rollback()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        blocking.close()
    assert proc.returncode == -signal.SIGKILL
    assert half_way != clean_state
    assert half_way["historical.rides"], "some batches had committed before the kill"

    # The killed client's backend ends (and frees the advisory lock) once it next talks to
    # the client; until then a new run would rightly say another run holds the lock.
    _wait_for_no_compress_backend(conn)
    rerun = _compress_process(database_url, tmp_path)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err

    assert _state(conn) == clean_state
    assert '"status": "ok"' in out
