"""`deloton demo`: the child plan and supervision with plain processes, then the real thing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from services.common import infra, infra_cli
from services.common.config import ConfigError, Settings
from services.demo import report, repository, supervisor
from services.demo.cli import preflight, speed_env, speed_notes

ROOT = Path(__file__).resolve().parents[1]


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(_env_file=None, state_dir=tmp_path / ".deloton", **values)  # type: ignore[call-arg]


# --- the plan and the supervision, with plain Python processes ------------------------------


def test_plan_starts_consumers_first_and_stops_the_simulator_first(tmp_path: Path) -> None:
    specs = supervisor.plan(_settings(tmp_path), bikes=7, speed="5", faults=0.01)
    names = ["api", "compress", "quality", "alerts", "dashboard", "ingest", "simulator"]
    assert [s.name for s in specs] == names
    assert [s.name for s in supervisor.stop_order(specs)] == [
        "simulator",
        "ingest",
        "dashboard",
        "alerts",
        "quality",
        "compress",
        "api",
    ]
    sim = specs[-1].args
    assert sim[0] == "simulate"
    assert sim[sim.index("--rides") + 1] == "0"  # rides for ever
    assert sim[sim.index("--bikes") + 1] == "7" and sim[sim.index("--speed") + 1] == "5"
    assert specs[1].args == ("compress", "--loop")
    assert {s.name: s.metrics_port for s in specs} == {
        "api": 8000,
        "compress": 9103,
        "quality": 9104,
        "alerts": 9102,
        "dashboard": 8050,
        "ingest": 9101,
        "simulator": None,
    }


def test_plan_without_alerts(tmp_path: Path) -> None:
    specs = supervisor.plan(
        _settings(tmp_path), bikes=1, speed="realtime", faults=0, alerts=False, dashboard=False
    )
    assert [s.name for s in specs] == ["api", "compress", "quality", "ingest", "simulator"]


def test_preflight_refuses_a_metrics_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        specs = supervisor.plan(
            _settings(
                tmp_path,
                ingest_metrics_port=port,
                # the others on free ports: the defaults may be taken on a shared machine
                alerts_metrics_port=infra.free_port(),
                compress_metrics_port=infra.free_port(),
                quality_metrics_port=infra.free_port(),
                api_port=infra.free_port(),
                dashboard_port=infra.free_port(),
            ),
            bikes=1,
            speed="1",
            faults=0,
        )
        with pytest.raises(ConfigError, match="INGEST_METRICS_PORT"):
            preflight(specs)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[supervisor.Child]]:
    children: list[supervisor.Child] = []
    yield children
    supervisor.stop_all(children, timeout_s=0.5)


def _start(children: list[supervisor.Child], name: str, code: str, log_dir: Path) -> None:
    spec = supervisor.Spec(name, ())
    children.append(supervisor.start(spec, _python(code), env=dict(os.environ), log_dir=log_dir))


SLEEPER = "import time\nwhile True: time.sleep(1)"
STUBBORN = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('up', flush=True)\nwhile True: time.sleep(1)"


def test_watch_reports_the_child_that_exits(
    tmp_path: Path, started: list[supervisor.Child]
) -> None:
    _start(started, "steady", SLEEPER, tmp_path)
    _start(
        started, "flaky", "import sys, time; time.sleep(0.3); print('boom'); sys.exit(3)", tmp_path
    )
    ticks: list[float] = []
    dead = supervisor.watch(
        started, stop=threading.Event(), tick_s=0.1, on_tick=lambda: ticks.append(1), poll_s=0.02
    )
    assert dead is not None and dead.name == "flaky" and dead.proc.returncode == 3
    assert ticks  # progress kept being printed while waiting
    lines = supervisor.tail(dead.log_path, start=dead.log_start)
    assert lines == ["boom"]
    message = report.failure(dead, lines)
    assert "flaky" in message and "exit 3" in message and "    boom" in message
    assert started[0].proc.poll() is None


def test_watch_returns_none_when_asked_to_stop(
    tmp_path: Path, started: list[supervisor.Child]
) -> None:
    _start(started, "steady", SLEEPER, tmp_path)
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert supervisor.watch(started, stop=stop, tick_s=60, on_tick=lambda: None) is None


def test_stop_all_goes_in_reverse_start_order_and_kills_stragglers(
    tmp_path: Path, started: list[supervisor.Child]
) -> None:
    _start(started, "first", SLEEPER, tmp_path)
    _start(started, "stubborn", STUBBORN, tmp_path)
    _start(started, "last", SLEEPER, tmp_path)
    deadline = time.monotonic() + 10
    stubborn = started[1]
    while supervisor.tail(stubborn.log_path, start=stubborn.log_start) != ["up"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)  # its SIGINT handler is in place once it has printed
    ended: list[tuple[str, bool]] = []
    supervisor.stop_all(
        started, timeout_s=0.5, on_stopped=lambda c, _s, killed: ended.append((c.name, killed))
    )
    assert ended == [("last", False), ("stubborn", True), ("first", False)]
    assert all(not infra.pid_alive(c.pid) for c in started)
    assert supervisor.describe_exit(started[1].proc.returncode) == "killed by SIGKILL"


def test_a_second_signal_stops_without_waiting(
    tmp_path: Path, started: list[supervisor.Child]
) -> None:
    _start(started, "stubborn", STUBBORN, tmp_path)
    hurry = threading.Event()
    hurry.set()
    began = time.monotonic()
    supervisor.stop_all(started, timeout_s=30, hurry=hurry)
    assert time.monotonic() - began < 5
    assert started[0].proc.returncode is not None


def test_the_table_redacts_the_password(tmp_path: Path, started: list[supervisor.Child]) -> None:
    _start(started, "ingest", SLEEPER, tmp_path)
    from services.common.db import redact

    text = report.table(
        started,
        kafka="k:9092",
        database=redact("postgresql://u:s3cret@db:5432/deloton"),
        email="outbox x",
        down=False,
        tick_s=10,
        notes=["look out"],
    )
    assert "s3cret" not in text and "u@db:5432/deloton" in text
    assert re.search(rf"^  ingest\s+{started[0].pid}\s", text, re.MULTILINE)
    assert "  note       look out" in text


def test_speed_above_real_time_lets_ingest_accept_the_simulated_future() -> None:
    assert speed_notes("realtime") == [] and speed_notes("0.5") == []
    assert speed_env("realtime") == {} and speed_env("0.5") == {}
    (note,) = speed_notes("5")
    assert "366 days ahead" in note
    assert float(speed_env("5")["INGEST_MAX_FUTURE_S"]) >= 366 * 86_400


# --- the real demo: embedded broker and PostgreSQL, every service, Ctrl-C ------------------

METRICS_PORTS = ("INGEST_METRICS_PORT", "ALERTS_METRICS_PORT")
ROW = re.compile(
    r"^  (simulator|ingest|alerts|dashboard|compress|quality|api)\s+(\d+)\s", re.MULTILINE
)
API_LINE = re.compile(r"^  api +(http://\S+)  key (\S+)", re.MULTILINE)


def _demo_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL") and not k.startswith("AWS_")
    }
    return env | {
        "PYTHONPATH": str(ROOT),
        "EMBEDDED_KAFKA_PORT": str(infra.free_port()),
        "EMBEDDED_POSTGRES_PORT": str(infra.free_port()),
        "INGEST_METRICS_PORT": str(infra.free_port()),
        "ALERTS_METRICS_PORT": str(infra.free_port()),
        "COMPRESS_METRICS_PORT": str(infra.free_port()),
        "QUALITY_METRICS_PORT": str(infra.free_port()),
        "DASHBOARD_PORT": str(infra.free_port()),
        "API_PORT": str(infra.free_port()),
        # No AWS credentials from anywhere: alert emails go to the outbox folder.
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _wait_for_rides(url: str, token: str) -> None:
    """The rider's view through the API: today's rides, once the API has started."""
    import httpx

    deadline = time.monotonic() + 30
    while True:
        try:
            r = httpx.get(f"{url}/daily", headers={"Authorization": f"Bearer {token}"}, timeout=5)
            if r.status_code == 200 and r.json()["items"]:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the demo's API did not answer with rides"
        time.sleep(0.5)


def _read_dsn(state_dir: Path) -> str | None:
    try:
        lines = (state_dir / "env").read_text().splitlines()
    except OSError:
        return None
    return next((ln.split("=", 1)[1] for ln in lines if ln.startswith("DATABASE_URL=")), None)


def _personal_strings(dsn: str) -> set[str]:
    """Every rider's full name, email, street address and postcode in the database."""
    conn = psycopg2.connect(dsn, connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT first_name || ' ' || last_name, email_address, address_line, postcode"
                " FROM daily.riders"
            )
            return {v for row in cur.fetchall() for v in row if v and len(v) >= 5}
    finally:
        conn.close()


def _listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses a local TCP socket listens on for `port` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def _counts(dsn: str) -> dict[str, int]:
    try:
        conn = psycopg2.connect(dsn, connect_timeout=3)
    except psycopg2.Error:
        return {}
    try:
        return repository.row_counts(conn)
    except psycopg2.Error:  # tables not there yet
        return {}
    finally:
        conn.close()


def _answers(url: str, timeout: float = 30.0) -> bool:
    """Whether the URL answers 200 before the deadline (the dashboard may still be starting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.timeout(150)
def test_demo_runs_everything_and_ctrl_c_leaves_nothing_behind(tmp_path: Path) -> None:
    env = _demo_env(tmp_path)
    state_dir = tmp_path / ".deloton"
    # Faults make rejects (SYSTEM lines among them): their riders' details must not reach logs.
    argv = ["--plain-logs", "demo", "--bikes", "5", "--speed", "5", "--faults", "0.02", "--down"]
    with open(tmp_path / "demo.stderr", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *argv],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout or ()), daemon=True)
    reader.start()
    pids: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 60
        counts: dict[str, int] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            pids = {name: int(pid) for name, pid in ROW.findall("".join(out))}
            dsn = _read_dsn(state_dir)
            counts = _counts(dsn) if dsn and len(pids) == 7 else {}
            serving = all(_listening_addresses(int(env[v])) for v in METRICS_PORTS)
            if counts.get("rides") and counts.get("readings") and serving:
                break
            time.sleep(0.5)
        assert proc.poll() is None, "".join(out) + (tmp_path / "demo.stderr").read_text()
        services = {"simulator", "ingest", "alerts", "dashboard", "compress", "quality", "api"}
        assert set(pids) == services, "".join(out)
        dashboard = f"http://127.0.0.1:{env['DASHBOARD_PORT']}/"
        assert f"dashboard  {dashboard}" in "".join(out)
        assert _answers(dashboard + "health"), "".join(out)
        assert counts.get("rides") and counts.get("readings"), counts
        # The printed API answers with the printed key.
        api = API_LINE.search("".join(out))
        assert api is not None, "".join(out)
        url, token = api.groups()
        _wait_for_rides(url, token)
        assert all(infra.pid_alive(pid) for pid in pids.values())
        # /metrics is served on loopback only (METRICS_BIND unset).
        for var in METRICS_PORTS:
            assert _listening_addresses(int(env[var])) == {"127.0.0.1"}, var
        personal = _personal_strings(str(dsn))
        assert personal, "no rider was recorded"
        broker_pid = int(infra.read_state(state_dir)["broker"]["pid"])  # type: ignore[call-overload]

        # The executive report of the demo's data: one command, as the README says.
        made = subprocess.run(
            [sys.executable, "-m", "services.cli", "report", "--date", "today",
             "--out", "report.pdf", "--to", "exec@deloton.example"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        result = json.loads(made.stdout.strip().splitlines()[-1])
        assert result["status"] == "sent" and result["transport"] == "outbox", result
        assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, "".join(out) + (tmp_path / "demo.stderr").read_text()
        reader.join(5)
        text = "".join(out)
        # No rider's name, email or address in anything the run logged.
        logs = [tmp_path / "demo.stderr", *sorted((state_dir / "logs").rglob("*.log"))]
        texts = {str(p): p.read_text(errors="replace") for p in logs} | {"stdout": text}
        leaks = {(where, s) for where, body in texts.items() for s in personal if s in body}
        assert not leaks, sorted(leaks)[:10]
        assert "stopped simulator" in text and "stopped broker" in text
        assert text.index("stopped simulator") < text.index("stopped ingest")
        assert not [name for name, pid in pids.items() if infra.pid_alive(pid)]
        assert not infra.pid_alive(broker_pid)
        assert infra.read_state(state_dir) == {}
        assert infra_cli.status(_settings(tmp_path)) == ["kafka     stopped", "postgres  stopped"]
        ports = ("EMBEDDED_KAFKA_PORT", "EMBEDDED_POSTGRES_PORT")
        for var in (
            *ports,
            "INGEST_METRICS_PORT",
            "ALERTS_METRICS_PORT",
            "DASHBOARD_PORT",
            "API_PORT",
        ):
            assert not infra.port_in_use(int(env[var])), var
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids.values():
            if infra.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        infra_cli.down(_settings(tmp_path))
