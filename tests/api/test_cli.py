"""`deloton api-key create|list|revoke` and `deloton api` as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from services.cli import main
from services.common import infra
from tests.harness import ROOT

pytestmark = pytest.mark.postgres


def test_key_lifecycle_stores_only_a_hash(database_url: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["api-key", "create", "--name", "ana", "--scopes", "pii"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("dlt_") and len(token) > 40
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT scopes, token_hash, prefix FROM api.keys").fetchone()
    assert row is not None
    assert row[0] == ["read", "pii"]  # read is implied
    assert token.encode() not in bytes(row[1]) and token.startswith(row[2])
    assert main(["api-key", "list"]) == 0
    listing = capsys.readouterr().out
    assert "ana" in listing and "read,pii" in listing and token not in listing
    # a name is never reused; unknown scopes and unknown keys are one-line errors (exit 2)
    assert main(["api-key", "create", "--name", "ana"]) == 2
    assert main(["api-key", "create", "--name", "bob", "--scopes", "read,root"]) == 2
    assert "unknown scope" in capsys.readouterr().err
    assert main(["api-key", "revoke", "ana"]) == 0
    assert main(["api-key", "revoke", "ana"]) == 2
    assert main(["api-key", "list"]) == 0
    assert "ana" in capsys.readouterr().out


def test_api_process_serves_and_stops_on_sigint(database_url: str) -> None:
    port = infra.free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/daily").status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0
