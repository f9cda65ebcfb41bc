"""Every service's log searched for the personal data that was sent and for secrets."""

from __future__ import annotations

import re
from pathlib import Path

from bench.hostile.checks import Row, row


def _pattern(needles: set[str]) -> re.Pattern[str]:
    # Longest first, so a name is reported rather than its surname alone.
    return re.compile("|".join(re.escape(s) for s in sorted(needles, key=len, reverse=True)))


def scan(logs: dict[str, Path], personal: set[str], secrets: dict[str, str]) -> list[Row]:
    """One row per service: the personal strings and the secrets found in its log."""
    people = _pattern(personal)
    hidden = _pattern(set(secrets.values()))
    names = {v: k for k, v in secrets.items()}
    rows = []
    for service, path in sorted(logs.items()):
        text = path.read_text(errors="replace") if path.exists() else ""
        found = sorted({m.group(0) for m in people.finditer(text)})
        leaked = sorted({names[m.group(0)] for m in hidden.finditer(text)})
        size = f"{len(text.encode()) // 1024} KiB log"
        rows.append(row(f"log of {service}: personal data", 0, len(found), f"{size}; {found[:3]}" if found else size))  # fmt: skip
        rows.append(row(f"log of {service}: secrets", [], leaked))
    return rows
