"""Paths and tool runners shared by the deploy checks (no AWS, no Docker daemon)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
DOCKER = ROOT / "docker"
BIN = Path(sys.executable).parent

# checkov pins boto3 1.35 while the services need a newer one, so it lives in a virtualenv of
# its own, created from its own lock file the first time a test needs it.
CHECKOV_LOCK = ROOT / "tests" / "deploy" / "checkov.lock"
CHECKOV_VENV = ROOT / ".venv-checkov"


def uv() -> list[str]:
    """The uv command the Makefile uses: on PATH, else as a module of the system Python."""
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def checkov() -> Path:
    """The checkov executable of its own virtualenv, created from checkov.lock when missing."""
    exe = CHECKOV_VENV / "bin" / "checkov"
    stamp = CHECKOV_VENV / ".installed"
    if exe.exists() and stamp.exists() and stamp.stat().st_mtime >= CHECKOV_LOCK.stat().st_mtime:
        return exe
    if not (CHECKOV_VENV / "bin" / "python").exists():
        subprocess.run(
            [*uv(), "venv", "-q", "--python", sys.executable, str(CHECKOV_VENV)], check=True
        )
    subprocess.run(
        [*uv(), "pip", "sync", "-q", "--python", str(CHECKOV_VENV / "bin" / "python"),
         str(CHECKOV_LOCK)],
        check=True,
    )  # fmt: skip
    stamp.touch()
    return exe
