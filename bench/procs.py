"""Processes as Linux's /proc shows them: CPU used so far, children."""

from __future__ import annotations

import os
from pathlib import Path


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name; OSError if it is gone."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        fields = _stat(pid)
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(parent: int) -> list[int]:
    """The pids of the processes whose parent is `parent`."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int(_stat(int(proc.name))[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == parent:
                found.append(int(proc.name))
    return found
