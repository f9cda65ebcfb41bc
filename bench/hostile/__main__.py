"""`python -m bench.hostile [--lines N]`: hostile input through the running services.

Starts ingest, alerts, the API and the dashboard as real processes on the embedded broker
and PostgreSQL (or KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL), sends N generated lines (good
rides mixed with hostile ones), then checks that every line was stored exactly or rejected
for its reason, that the API keeps its schema and its scopes, and that no log holds personal
data or a secret. Prints a table; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.hostile.checks import exact_summary
from bench.hostile.run import Outcome, run
from tests import harness


def table(outcome: Outcome) -> str:
    """The summary: one line a check, then the time of each phase."""
    rows = [exact_summary(r) for r in outcome.rows]
    width = max(len(r.check) for r in rows)
    out = [f"{'check':<{width}}  {'expected':>12}  {'actual':>16}  ok"]
    for r in rows:
        mark = "ok" if r.ok else "FAIL"
        line = f"{r.check:<{width}}  {_cell(r.expected):>12}  {_cell(r.actual):>16}  {mark}"
        out.append(
            line
            + (
                f"  {r.note}"
                if r.note and (not r.ok or r.note not in ("exact", "as expected"))
                else ""
            )
        )
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in outcome.seconds.items())
    out.append(
        f"\n{'PASSED' if outcome.ok else 'FAILED'}: {sum(not r.ok for r in rows)} failed of {len(rows)} checks ({phases})"
    )
    return "\n".join(out)


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, set, dict)):
        return (
            str(len(value))
            if len(value) > 3
            else str(sorted(value) if isinstance(value, set) else value)
        )
    return str(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.split("\n")[0])
    p.add_argument("--lines", type=int, default=100_000, help="messages to send (100,000)")
    p.add_argument(
        "--examples", type=int, default=25, help="schemathesis examples per operation and mode"
    )
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--keep", type=Path, help="keep the services' logs in this folder")
    args = p.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="deloton-hostile-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"hostile run: {args.lines:,} lines; logs in {workdir}", flush=True)
    with harness.running_broker() as bootstrap, harness.running_postgres() as server:
        outcome = run(
            args.lines, bootstrap=bootstrap, server_dsn=server, workdir=workdir,
            examples=args.examples, seed=args.seed,
        )  # fmt: skip
    print(table(outcome))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
