"""`deloton compress` and the Lambda handler run the same job and report it as JSON."""

from __future__ import annotations

import json
import logging

import pytest

from services import cli
from services.compress import handler
from tests.compress.builders import NOW, write_scenario

pytestmark = pytest.mark.postgres


@pytest.fixture
def env(monkeypatch, tmp_path, database_url):
    monkeypatch.chdir(tmp_path)  # no .deloton/env here
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("COMPRESS_BATCH_RIDES", "3")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level  # both entrypoints reconfigure logging


def test_cli_prints_one_json_result(conn, env, capsys):
    with conn, conn.cursor() as cur:
        write_scenario(cur)

    code = cli.main(["compress", "--now", "2026-11-20T12:00:30"])  # no zone: UTC

    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert result["status"] == "ok" and result["now"] == NOW.isoformat()
    assert result["rides_summarised"] == 5 and result["partitions_dropped"] == 3
    assert set(result["seconds"]) >= {"summarise", "drop_partitions", "delete_rows", "total"}


def test_cli_refuses_now_with_loop(env, capsys):
    assert cli.main(["compress", "--now", "2026-11-20T12:00:30", "--loop"]) == 2
    assert "--loop" in capsys.readouterr().err


def test_lambda_handler_returns_and_logs_json(conn, env, capfd):
    with conn, conn.cursor() as cur:
        write_scenario(cur)

    class Context:
        aws_request_id = "req-1"

    result = handler({"now": NOW.isoformat()}, Context())

    assert result["status"] == "ok" and result["rides_summarised"] == 5
    json.dumps(result)  # what Lambda returns must serialise
    lines = [json.loads(line) for line in capfd.readouterr().err.strip().splitlines()]
    final = [line for line in lines if line.get("logger") == "services.compress.handler"]
    assert final and final[-1]["result"] == result and final[-1]["request_id"] == "req-1"
