"""What `deloton demo` prints: where everything runs, progress lines and what went wrong."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from services.demo.supervisor import Child, describe_exit, stop_order


def table(
    children: Sequence[Child],
    *,
    kafka: str,
    database: str,
    email: str,
    down: bool,
    tick_s: float,
    notes: Sequence[str] = (),
    api: str | None = None,
) -> str:
    """The summary printed once everything runs; `database` must already be redacted."""
    after = "then the broker and database" if down else "the broker and database keep running"
    rows = [("service", "pid", "metrics", "log")]
    for c in stop_order(children):  # pipeline order: simulator -> ingest -> alerts -> compress
        metrics = f"http://localhost:{c.spec.metrics_port}/metrics" if c.spec.metrics_port else "-"
        log = f"{_shown(c.log_path)}  ({c.spec.note})" if c.spec.note else _shown(c.log_path)
        rows.append((c.name, str(c.pid), metrics, log))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        f"deloton demo is running. Ctrl-C stops the services, {after}.",
        "",
        f"  kafka      {kafka}",
        f"  database   {database}",
        f"  email      {email}",
        *([f"  api        {api}"] if api else []),
        "",
        *(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows),
        "",
        f"  progress   a line every {tick_s:.0f} s below (rows in daily.readings, rides, rejects, "
        "alerts; summarised = historical.rides)",
    ]
    if children:
        lines.append(f"  logs       tail -f {_shown(children[0].log_path.parent)}/*.log")
    lines += [f"  note       {note}" for note in notes]
    return "\n".join(lines)


def progress(now: datetime, counts: Mapping[str, int], previous: Mapping[str, int] | None) -> str:
    """One line of row counts, with the change since the previous line where it moved."""
    parts = []
    for name, n in counts.items():
        delta = n - previous[name] if previous is not None and name in previous else 0
        parts.append(f"{name} {n:,}" + (f" (+{delta:,})" if delta > 0 else ""))
    return f"{now:%H:%M:%S}  " + "  ".join(parts)


def failure(child: Child, log_tail: Sequence[str]) -> str:
    """Which child exited when it should not have, with the end of its log."""
    head = (
        f"deloton demo: {child.name} (pid {child.pid}) ended unexpectedly "
        f"({describe_exit(child.proc.returncode)}); stopping everything."
    )
    if not log_tail:
        return f"{head}\n  (nothing in {_shown(child.log_path)})"
    body = "\n".join(f"    {line}" for line in log_tail)
    return f"{head}\n  last lines of {_shown(child.log_path)}:\n{body}"


def stopped(child: Child, seconds: float, killed: bool) -> str:
    """How one child ended during the shutdown."""
    how = "killed" if killed else describe_exit(child.proc.returncode)
    return f"  stopped {child.name} (pid {child.pid}): {how}, {seconds:.1f} s"


def _shown(path: Path) -> str:
    """A path relative to the working directory when it lies under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
