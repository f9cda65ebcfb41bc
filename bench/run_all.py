"""Run every benchmark in turn: `make bench`. Each prints its figures beside its baseline."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    "bench.ingest",
    "bench.ingest_with_compress",
    "bench.ingest_state",
    "bench.compress",
    "bench.alerts",
    "bench.dashboard",
    "bench.api",
    "bench.report",
    "bench.export",
]


def main() -> int:
    """Run each benchmark module as its own process; return non-zero if any failed."""
    failed = []
    for module in BENCHMARKS:
        print(f"\n=== {module} ===", flush=True)
        if subprocess.run([sys.executable, "-m", module], check=False).returncode != 0:
            failed.append(module)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
