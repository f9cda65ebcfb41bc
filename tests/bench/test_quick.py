"""Every benchmark's --quick mode, at the smallest sizes, so that none of them rots.

No timing is asserted: each run must finish, write its result in the shared shape, with the
figures expected and values that are numbers above zero. The benchmarks run side by side as
processes against the session's broker and PostgreSQL, and the report is made from them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench import report_md
from tests import harness
from tests.dashboard.browser import find_chromium

# module -> (arguments on top of --quick that shrink it further, figures its result must hold)
# (the longest first, so that they do not all end up waiting on the last one)
RUNS: dict[str, tuple[list[str], set[str]]] = {
    "dashboard": (
        ["--bikes", "5", "--measure-seconds", "4", "--load-seconds", "2"],
        {"produce -> screen, p99", "dashboard database reads/s, 50 viewers"},
    ),
    "alerts": (
        ["--bikes", "10", "--duration", "10"],
        {"third abnormal reading -> SES accepted, p99", "emails sent, one per rider in danger"},
    ),
    "report": (
        ["--rides", "40"],
        {"rides in daily: report process wall", "rides summarised: peak RSS"},
    ),
    "api": (
        [
            "--scale",
            "0.005",
            "--seconds",
            "1",
            "--rate",
            "50",
            "--list-rate",
            "20",
            "--api-workers",
            "1",
        ],
        {"GET /rider/{id}, p99"},
    ),
    "ingest_with_compress": (
        ["--rides", "200", "--readings-per-ride", "20", "--bikes", "10"],
        {"ingest, whole run with compress in it", "compress wall time, alongside ingest"},
    ),
    "ingest": (["--bikes", "20"], {"W3, 1 process", "peak RSS of one process"}),
    "ingest_state": (
        ["--bikes", "300", "--wall-seconds", "4"],
        {"bikes kept in the saved state at the end", "with eviction: state, last / second quarter"},
    ),
    "compress": (
        ["--rides", "300", "--readings-per-ride", "20"],
        {"summarise + retention", "retention by DROP, per million readings"},
    ),
    "quality": (["--bikes", "20"], {"fleet health run", "fleet health: peak RSS"}),
    "export": (["--rides", "20"], {"CSV export, rows/s", "Parquet export: peak RSS, all rows"}),
}
# Figures that may be zero at smoke sizes: no duplicate, nothing left to keep, ingest done
# before compress began, every viewer served from the cache.
MAY_BE_ZERO = {
    "duplicate emails",
    "bikes kept in the saved state at the end",
    "ingest inside the compress window",
    "dashboard database reads/s, 50 viewers",
    "of which pausing for ingest",  # compress alone: no ingest to pause for
}
# The tools some benchmarks drive (Debian packages: make system-deps, and .ci/run for Chromium).
NEEDS = {"api": "wrk", "dashboard": "chromium"}
# Benchmarks run at once: more only fight over two cores while each starts its servers.
AT_ONCE = 3


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_every_benchmark_runs_quick_and_writes_its_result(
    broker: str, pg_server: str, tmp_path: Path
) -> None:
    found = {"wrk": shutil.which("wrk"), "chromium": find_chromium()}
    missing = {n for n, tool in NEEDS.items() if not found[tool]}
    # CI installs both (make system-deps, .ci/run): there a missing tool is a failure.
    assert not (missing and os.environ.get("CI")), f"{missing} cannot run: make system-deps"
    runs = [name for name in RUNS if name not in missing]
    env = {
        **os.environ,
        "PYTHONPATH": str(harness.ROOT),
        "KAFKA_BOOTSTRAP_SERVERS": broker,
        "DATABASE_URL": pg_server,
        "BENCH_RESULTS_DIR": str(tmp_path),
    }

    def quick(name: str) -> tuple[int, float]:
        began = time.monotonic()
        with open(tmp_path / f"{name}.out", "wb") as out:
            code = subprocess.run(
                [sys.executable, "-m", f"bench.{name}", "--quick", *RUNS[name][0]],
                env=env, cwd=harness.ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=300,
            ).returncode  # fmt: skip
        return code, time.monotonic() - began

    with ThreadPoolExecutor(AT_ONCE) as pool:
        done = dict(zip(runs, pool.map(quick, runs), strict=True))
    print({name: f"{seconds:.0f} s" for name, (_, seconds) in done.items()})
    failed = {n: (tmp_path / f"{n}.out").read_text()[-3000:] for n, (rc, _) in done.items() if rc}
    assert not failed, failed

    for name in runs:
        expected = RUNS[name][1]
        doc = json.loads((tmp_path / "quick" / f"{name}.json").read_text())
        assert doc["benchmark"] == name and doc["quick"] is True
        assert doc["machine"]["cores"] >= 1 and doc["machine"]["memory_gb"] > 0
        assert doc["date"] and doc["machine"]["cpu"]
        figures = {f["name"]: f for f in doc["figures"]}
        assert expected <= set(figures), (name, sorted(figures))
        for f in doc["figures"]:
            assert set(f) >= {"value", "unit", "baseline", "ratio", "target_text", "met"}
            assert isinstance(f["value"], int | float) and math.isfinite(f["value"]), f
            assert f["value"] > 0 or f["name"] in MAY_BE_ZERO, (name, f)
            assert f["baseline"] is None or f["baseline"] > 0, (name, f)

    env["BENCH_RESULTS_DIR"] = str(tmp_path)
    made = subprocess.run(
        [sys.executable, "-m", "bench.report_md", "--quick"], env=env, cwd=harness.ROOT,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = (tmp_path / "quick" / "REPORT.md").read_text()
    assert "REPORT.md" in made.stdout
    assert report.count("\n| ") == 1 + sum(  # the header, then a row a figure
        len(json.loads((tmp_path / "quick" / f"{n}.json").read_text())["figures"]) for n in runs
    )
    assert all(f"| {n} (quick) |" in report for n in runs)
    if missing:
        pytest.skip(f"not run: {sorted(missing)} (needs {[NEEDS[n] for n in missing]})")


def test_the_readme_block_is_replaced_and_nothing_else() -> None:
    text = f"intro\n{report_md.START}\nold table\n{report_md.END}\noutro\n"
    assert report_md.embed(text, "| new |") == (
        f"intro\n{report_md.START}\n| new |\n{report_md.END}\noutro\n"
    )
    readme = report_md.README.read_text()
    assert readme.count(report_md.START) == 1 and readme.count(report_md.END) == 1
