"""Benchmark `deloton report`: a day of 20,000 rides (10M readings), still in daily or
summarised, generated, stored and sent through a local SES (moto).

    python -m bench.report            # 20,000 rides x 500 readings in one day
    python -m bench.report --quick    # 1,000 rides x 500 readings (a smoke run)
    DATABASE_URL=postgresql://... python -m bench.report   # else an embedded PostgreSQL

Each case runs `deloton report` as its own process, so its peak RSS is the report's alone,
and prints the time split (queries, charts, PDF, store, send) beside the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

from pydantic import SecretStr

from bench import results
from bench.compress import RETENTION_HOURS, Workload, count, generate
from services.common.config import Settings
from services.compress import run as compress
from tests import harness
from tests.alerts.support import Ses, running_moto

TARGET_S = 10.0
TARGET_RSS_MB = 400.0
DAY = date(2026, 11, 26)  # London is on GMT: the business day is the UTC day
SENDER = "reports@deloton.example"


def _report(dsn: str, ses_url: str, workdir: Path) -> tuple[dict, float, float]:
    """One `deloton report` process: its JSON result, wall seconds and peak RSS (MiB)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "PYTHONPATH": str(harness.ROOT),
        "DATABASE_URL": dsn,
        "SES_ENDPOINT_URL": ses_url,
        "REPORT_SENDER": SENDER,
        "REPORT_DIR": str(workdir / "reports"),
        "EMAIL_OUTBOX_DIR": str(workdir / "outbox"),
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "services.report", "--date", DAY.isoformat(), "--resend",
         "--to", "board@deloton.example"],
        env=env, capture_output=True, text=True, check=True, cwd=workdir,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far; the report child is the biggest.
    return json.loads(out.stdout.strip().splitlines()[-1]), wall, max(rss, before) / 1024


def _print(case: str, result: dict, wall: float, rss: float) -> None:
    s = result["seconds"]
    split = ", ".join(
        f"{k} {s.get(k, 0):.2f}" for k in ("queries", "charts", "pdf", "store", "send")
    )
    print(f"{case:>11}: {result['rides']:,} rides, {result['pdf_bytes'] / 1024:,.0f} KiB PDF, "
          f"{result['status']} via {result['transport']}")  # fmt: skip
    print(f"{'':>11}  run {s['total']:.2f} s ({split}); process wall {wall:.2f} s "
          f"(target <= {TARGET_S:.0f} s); peak RSS {rss:,.0f} MiB (target <= {TARGET_RSS_MB:.0f})")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1,000 rides: a smoke run")
    p.add_argument("--rides", type=int, default=None)
    args = p.parse_args(argv)
    rides = args.rides or (1_000 if args.quick else 20_000)
    workload = Workload(rides=rides, readings_per_ride=500, hours=23, riders=max(rides // 10, 10),
                        bikes=max(rides // 40, 5), in_progress=10)  # fmt: skip
    day_start = datetime.combine(DAY, dtime(0), tzinfo=UTC)
    # bench.compress places the rides in the `hours` before now - retention - 1 h: 00:30-23:30.
    now = day_start + timedelta(minutes=30, hours=RETENTION_HOURS + workload.hours + 1)
    print(f"report bench: {workload.rides:,} rides x {workload.readings_per_ride} readings "
          f"({workload.readings:,}) on {DAY}; baseline: none before this report existed")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp, \
            harness.running_postgres() as server, harness.scratch_database(server) as dsn, \
            running_moto(Path(tmp) / "moto.log") as ses_url:  # fmt: skip
        workdir = Path(tmp)
        Ses(ses_url).verify(SENDER)
        print(f"  generated in {generate(dsn, workload, now=now):.1f} s")
        result, wall, rss = _report(dsn, ses_url, workdir)
        _print("in daily", result, wall, rss)
        figures = result_figures("rides in daily", result, wall, rss)
        settings = Settings(_env_file=None, database_url=SecretStr(dsn))  # type: ignore[call-arg]
        t0 = time.perf_counter()
        compress(settings, now=now + timedelta(hours=2))
        left = count(dsn, "SELECT count(*) FROM daily.readings")
        print(f"  compress {time.perf_counter() - t0:.1f} s; {left:,} readings left in daily")
        result, wall, rss = _report(dsn, ses_url, workdir)
        _print("summarised", result, wall, rss)
        figures += result_figures("rides summarised", result, wall, rss)
    params = {"rides": rides, "readings_per_ride": workload.readings_per_ride, "day": DAY}
    results.write("report", figures, quick=args.quick, params=params)
    return 0


def result_figures(case: str, result: dict, wall: float, rss: float) -> list[results.Figure]:
    """Process wall time and peak memory of one report (no earlier report: the split is the
    baseline, in the note)."""
    s = result["seconds"]
    split = " / ".join(f"{s.get(k, 0):.2f}" for k in ("queries", "charts", "pdf", "send"))
    return [
        results.Figure(
            f"{case}: report process wall", round(wall, 2), "s", target=TARGET_S,
            higher_is_better=False,
            note=f"{result['rides']:,} rides; run {s['total']:.2f} s = queries / charts / pdf / send {split} s",
        ),
        results.Figure(f"{case}: peak RSS", round(rss), "MiB", target=TARGET_RSS_MB, higher_is_better=False),
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
