"""Run every benchmark in turn: `make bench`. Each prints its figures beside its baseline and
writes bench/results/<name>.json; bench/results/REPORT.md gathers them at the end."""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench import report_md

BENCHMARKS = [
    "bench.ingest",
    "bench.ingest_with_compress",
    "bench.ingest_state",
    "bench.compress",
    "bench.alerts",
    "bench.dashboard",
    "bench.api",
    "bench.report",
    "bench.quality",
    "bench.export",
]


def main(argv: list[str] | None = None) -> int:
    """Run each benchmark module as its own process; return non-zero if any failed."""
    p = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="each benchmark's smoke run")
    args = p.parse_args(argv)
    extra = ["--quick"] if args.quick else []
    failed = []
    for module in BENCHMARKS:
        print(f"\n=== {module} ===", flush=True)
        if subprocess.run([sys.executable, "-m", module, *extra], check=False).returncode != 0:
            failed.append(module)
    report_md.main(extra)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
