"""One shape for every benchmark's result: figures beside their baseline and target, the
machine and the date, written to bench/results/<name>.json (quick runs: results/quick/)."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def results_dir(quick: bool = False) -> Path:
    """Where results go: BENCH_RESULTS_DIR, else bench/results (quick runs in quick/)."""
    base = Path(os.environ.get("BENCH_RESULTS_DIR") or ROOT / "bench" / "results")
    return base / "quick" if quick else base


@dataclass(frozen=True)
class Figure:
    """One measured figure; `baseline` is measured in the same run, never remembered."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: float | None = None
    higher_is_better: bool = True
    note: str = ""
    ratio_target: float | None = None  # a target on value / baseline (a speed-up, a share)

    @property
    def ratio(self) -> float | None:
        return round(self.value / self.baseline, 3) if self.baseline else None

    @property
    def met(self) -> bool | None:
        checks = []
        if self.target is not None:
            better = (
                self.value >= self.target if self.higher_is_better else self.value <= self.target
            )
            checks.append(better)
        if self.ratio_target is not None and self.ratio is not None:
            checks.append(self.ratio >= self.ratio_target)
        return all(checks) if checks else None

    def target_text(self) -> str:
        """The target as the report shows it."""
        parts = []
        if self.target is not None:
            parts.append(
                f"{'≥' if self.higher_is_better else '≤'} {_number(self.target)} {self.unit}"
            )
        if self.ratio_target is not None:
            parts.append(f"≥ {self.ratio_target:g}x {self.baseline_name}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "ratio": self.ratio,
            "met": self.met,
            "target_text": self.target_text(),
        }


def _number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:g}"


def machine() -> dict[str, Any]:
    """Cores, memory and CPU model of this machine."""
    model, memory_kb = platform.processor() or platform.machine(), 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "cpu": model,
        "python": platform.python_version(),
    }


def write(
    name: str,
    figures: list[Figure],
    *,
    quick: bool,
    params: dict[str, Any] | None = None,
    raw: dict[str, Any] | None = None,
) -> Path:
    """Write bench/results/<name>.json and return its path."""
    doc = {
        "benchmark": name,
        "quick": quick,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "params": params or {},
        "figures": [f.to_dict() for f in figures],
        "raw": raw or {},
    }
    folder = results_dir(quick)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"results written to {path}", flush=True)
    return path
