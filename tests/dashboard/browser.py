"""Debian's chromium driven by Playwright (nothing downloads a browser)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests import harness

# The binary itself first: /usr/bin/chromium is a shell wrapper around it.
CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
ARTIFACTS = Path(os.environ.get("DASHBOARD_ARTIFACTS", harness.ROOT / "artifacts" / "dashboard"))


def find_chromium() -> str | None:
    """The path of a local chromium, or None."""
    for name in CANDIDATES:
        path = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if path:
            return path
    return None
