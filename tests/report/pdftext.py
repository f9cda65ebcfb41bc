"""Reading a report PDF back: its text (pypdf) and its pages as PNGs (pdftoppm)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

from pypdf import PdfReader

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "report"


def pages(pdf: bytes) -> list[str]:
    """The text of each page."""
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def headline(text: str, label: str) -> tuple[str, str, str]:
    """A headline card's figure, previous day and 7-day average, as printed."""
    m = re.search(
        rf"{re.escape(label)}\s*\n([\d,.]+)(?: \w+)?\s*\nPrevious day\s*([\d,.]+)(?: \w+)?.*?"
        rf"7-day avg\s*([\d,.]+)",
        text,
        re.S,
    )
    assert m, f"no card {label!r} in:\n{text}"
    return m[1], m[2], m[3]


def render_pngs(pdf: bytes, name: str) -> list[Path]:
    """Each page as a PNG under test-artifacts/report/ (kept for people to look at)."""
    assert shutil.which("pdftoppm"), "pdftoppm missing: `make system-deps` installs poppler-utils"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    source = ARTIFACTS / f"{name}.pdf"
    source.write_bytes(pdf)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(source), str(ARTIFACTS / name)], check=True)
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))
