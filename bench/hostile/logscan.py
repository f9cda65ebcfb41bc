"""Every service's log searched for the personal data that was sent and for secrets."""

from __future__ import annotations

from pathlib import Path

from bench.hostile.checks import Row, row

HEAD = 6  # every needle is at least this long


def find(text: str, needles: set[str]) -> set[str]:
    """The needles that occur in the text: one dictionary look-up a position, whatever the
    number of needles (a regex alternation of 30,000 names takes seconds to compile)."""
    by_head: dict[str, list[str]] = {}
    for needle in needles:
        assert len(needle) >= HEAD, needle
        by_head.setdefault(needle[:HEAD], []).append(needle)
    found: set[str] = set()
    for i in range(len(text) - HEAD + 1):
        candidates = by_head.get(text[i : i + HEAD])
        if candidates:
            found.update(n for n in candidates if text.startswith(n, i))
    return found


def scan(logs: dict[str, Path], personal: set[str], secrets: dict[str, str]) -> list[Row]:
    """One row per service: the personal strings and the secrets found in its log."""
    names = {v: k for k, v in secrets.items()}
    rows = []
    for service, path in sorted(logs.items()):
        text = path.read_text(errors="replace") if path.exists() else ""
        found = sorted(find(text, personal))
        leaked = sorted(names[s] for s in find(text, set(names)))
        size = f"{len(text.encode()) // 1024} KiB log"
        rows.append(row(f"log of {service}: personal data", 0, len(found), f"{size}; {found[:3]}" if found else size))  # fmt: skip
        rows.append(row(f"log of {service}: secrets", [], leaked))
        rows.append(row(f"log of {service}: tracebacks", 0, text.count("Traceback (most recent")))
    return rows
