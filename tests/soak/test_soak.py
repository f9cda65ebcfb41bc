"""`deloton soak` for one minute: the whole stack under every scheduled fault, checked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import harness


@pytest.mark.slow
def test_one_minute_soak_loses_doubles_and_misses_nothing(tmp_path: Path) -> None:
    work = tmp_path / "soak"
    env = {**os.environ, "PYTHONPATH": str(harness.ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "--log-level", "WARNING", "soak",
         "--minutes", "1", "--bikes", "100", "--dir", str(work)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert "soak: passed: every count is 0" in out
    table = out[out.index("  fault ") :]
    for fault in ("ingest", "alerts worker", "PostgreSQL", "broker", "SES"):
        line = next(x for x in table.splitlines() if fault in x)
        assert line.endswith("yes"), line
    due = next(x for x in table.splitlines() if x.strip().startswith("alerts due"))
    assert int(due.split()[-1].replace(",", "")) > 0  # the alert checks were not vacuous
    assert not (work / "pgdata").exists()  # the soak's own database is removed
