"""The soak's fault schedule, its email-outage proxy and its verdict arithmetic."""

from __future__ import annotations

import itertools
import socket
import threading
from collections import Counter
from datetime import UTC, datetime

import pytest

from services.common import infra
from services.soak import check, schedule
from services.soak.proxy import Proxy


@pytest.mark.parametrize("seconds", [60.0, 300.0])
def test_schedule_injects_each_fault_as_asked_one_after_another(seconds: float) -> None:
    plan = schedule.plan(seconds)
    counts = Counter(i.fault for i in plan)
    assert counts == {
        schedule.INGEST_KILL: 3,
        schedule.ALERTS_KILL: 1,
        schedule.PG_RESTART: 1,
        schedule.BROKER_FREEZE: 1,
        schedule.SES_DOWN: 1,
    }
    assert {i.target for i in plan if i.fault == schedule.INGEST_KILL} == {0, 1}
    lengths = {i.fault: i.for_s for i in plan if i.for_s}
    if seconds == 300.0:
        assert lengths == {schedule.SES_DOWN: 60.0, schedule.BROKER_FREEZE: 10.0}
    ses = next(i for i in plan if i.fault == schedule.SES_DOWN)
    alerts = next(i for i in plan if i.fault == schedule.ALERTS_KILL)
    assert ses.at_s < alerts.at_s < ses.at_s + ses.for_s  # the worker restarts into the outage
    others = [i for i in plan if i.fault != schedule.SES_DOWN]
    for before, after in itertools.pairwise(others):
        assert before.at_s + before.for_s <= after.at_s
    assert plan[-1].at_s + plan[-1].for_s < seconds


def _echo_server() -> int:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            conn, _ = server.accept()
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return int(server.getsockname()[1])


def _ask(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"ping")
        return s.recv(1024)


def test_proxy_forwards_refuses_while_down_and_comes_back_on_the_same_port() -> None:
    proxy = Proxy(infra.free_port(), _echo_server())
    proxy.up()
    try:
        assert _ask(proxy.port) == b"ping"
        held = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        proxy.down()
        with pytest.raises(OSError):
            _ask(proxy.port)
        try:  # an open connection is cut too: reset, or closed without an answer
            held.sendall(b"x")
            assert held.recv(1024) == b""
        except OSError:
            pass
        held.close()
        proxy.up()
        assert _ask(proxy.port) == b"ping"
    finally:
        proxy.down()


def _ride(readings: list, alerts: list | None = None) -> dict:
    return {
        "bike": "SN0001",
        "started": "2026-01-02 10:00:00.000000",
        "readings": readings,
        "alerts": alerts or [],
    }


def test_verdict_counts_lost_doubled_wrong_and_unsent_readings() -> None:
    at = datetime(2026, 1, 2, 10, 0, 1, 500000, tzinfo=UTC)
    ts = "2026-01-02 10:00:01.500000"
    ride = _ride(
        [[1, ts, 10, 120, 60, "50.5"], [2, ts, 10, 0, 60, "50.5"], [3, ts, 1, 1, 1, "1.0"]]
    )
    rows = [
        (7, 1, at, 10, 120, 60, 50.5),
        (7, 2, at, 10, None, 60, 50.5),  # no contact is stored as NULL
        (7, 2, at, 10, None, 60, 50.5),  # doubled
        (7, 9, at, 10, 120, 60, 50.5),  # never sent
    ]
    v = check.Verdict()
    check.check_readings(v, [ride], {0: 7}, rows)
    assert (v.readings_expected, v.readings_lost, v.readings_duplicated, v.readings_wrong) == (
        3,
        1,
        1,
        1,
    )
    rows[0] = (7, 1, at, 10, 121, 60, 50.5)
    v = check.Verdict()
    check.check_readings(v, [ride], {0: 7}, rows)
    assert v.readings_wrong == 2


def test_verdict_counts_missed_doubled_and_spurious_alerts_and_rejects() -> None:
    rides = [_ride([], [[1, "high", "x"], [2, "low", "y"]])]
    v = check.Verdict()
    check.check_alerts(v, rides, {0: 7}, ["7/1", "7/1", "8/1"])
    assert (v.alerts_expected, v.alerts_missed, v.alerts_duplicated, v.alerts_spurious) == (
        2,
        1,
        1,
        1,
    )
    v = check.Verdict()
    bad = [{"bike": "SN0001", "raw": b"garbage"}, {"bike": "SN0001", "raw": b"cut"}]
    reasons = check.check_rejects(
        v, bad, [(b"SN0001", b"garbage", "bad_json"), (b"SN0001", b"good", "orphan")]
    )
    assert (v.bad_expected, v.bad_not_rejected, v.good_rejected) == (2, 1, 1)
    assert reasons == {"bad_json": 1, "orphan": 1}
    assert set(v.failures()) == {"bad_not_rejected", "good_rejected"}


def test_summary_is_recomputed_from_the_readings_sent() -> None:
    ts = "2026-01-02 10:00:01.500000"
    ride = _ride([[1, ts, 10, 120, 60, "50.5"], [2, ts, 20, 0, 80, "100.5"]], [[1, "high", ts]])
    want = check.expected_summary(ride)
    assert want == {
        "readings_count": 2,
        "heart_rate_readings": 1,
        "avg_heart_rate": 120.0,
        "max_heart_rate": 120,
        "avg_power": 75.5,
        "max_power": 100.5,
        "total_energy_kj": 0.151,
        "avg_rpm": 70.0,
        "avg_resistance": 15.0,
        "alert_count": 1,
    }
    v = check.Verdict()
    check.check_api_ride(v, 5, {"ride_id": 5, "summarised": True, "summary": want}, want)
    check.check_api_ride(v, 6, {"error": "HTTP Error 503"}, want)
    assert (v.api_checked, v.api_wrong) == (2, 1)


def test_soak_refuses_to_empty_a_folder_that_is_not_its_own(tmp_path) -> None:
    import argparse

    from services.common.config import ConfigError
    from services.soak import cli

    (tmp_path / "precious.txt").write_text("keep me")
    args = argparse.Namespace(minutes=1.0, bikes=1, faults=0.0, seed=1, dir=tmp_path, keep=False)
    with pytest.raises(ConfigError, match="not a soak's folder"):
        cli.run(args)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
