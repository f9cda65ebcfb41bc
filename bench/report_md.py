"""bench/results/*.json -> bench/results/REPORT.md, and the table in the README's Benchmarks
section (`python -m bench.report_md [--quick] [--readme]`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.results import ROOT, results_dir

README = ROOT / "README.md"
START = "<!-- bench-report:start (python -m bench.report_md --readme) -->"
END = "<!-- bench-report:end -->"
ORDER = [
    "ingest", "ingest_with_compress", "ingest_state", "compress", "alerts", "alerts_burst",
    "dashboard", "api", "report", "quality", "export",
]  # fmt: skip


def load(folder: Path) -> list[dict[str, Any]]:
    """Every result in the folder, in the order of `make bench`."""
    docs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(docs, key=lambda d: (rank.get(d["benchmark"], len(ORDER)), d["benchmark"]))


def _num(x: float | None) -> str:
    if x is None:
        return ""
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.3f}".rstrip("0").rstrip(".") if abs(x) < 100 else f"{x:,.0f}"
    return f"{x:,.0f}"


def table(docs: list[dict[str, Any]]) -> str:
    """One markdown table: every figure, its baseline and ratio, target, machine and date."""
    lines = [
        "| Benchmark | Figure | Value | Baseline (same run) | Ratio | Target | Met | Machine, date |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for doc in docs:
        m = doc["machine"]
        where = f"{m['cores']} cores, {m['memory_gb']} GB, {m['cpu']}; {doc['date'][:10]}"
        name = doc["benchmark"] + (" (quick)" if doc["quick"] else "")
        for f in doc["figures"]:
            base = (
                f"{_num(f['baseline'])} {f['unit']} ({f['baseline_name']})"
                if f["baseline"] is not None
                else "none"
            )
            met = {True: "yes", False: "**no**", None: ""}[f["met"]]
            ratio = f"{f['ratio']:.2f}x" if f["ratio"] is not None else ""
            figure = f["name"] + (f" ({f['note']})" if f["note"] else "")
            lines.append(
                f"| {name} | {figure} | **{_num(f['value'])} {f['unit']}** | {base} | {ratio}"
                f" | {f['target_text']} | {met} | {where} |"
            )
    return "\n".join(lines)


def report(docs: list[dict[str, Any]], folder: Path) -> str:
    quick = any(d["quick"] for d in docs)
    head = "# Benchmark report\n\n"
    head += "Written by `python -m bench.report_md` from the JSON results beside this file"
    head += (
        " (smoke-sized `--quick` runs: the figures say nothing about speed).\n\n"
        if quick
        else ".\n\n"
    )
    return head + table(docs) + "\n"


def embed(readme: str, block: str) -> str:
    """The README with the text between the markers replaced by `block`."""
    start, end = readme.index(START) + len(START), readme.index(END)
    return readme[:start] + "\n" + block + "\n" + readme[end:]


def merged(readme: str, block: str) -> str:
    """`block` with the rows of the README's table whose benchmark `block` does not have:
    re-running one benchmark replaces its own rows and keeps the others' (each row keeps its
    date)."""
    start, end = readme.index(START) + len(START), readme.index(END)
    new_rows = block.splitlines()[2:]
    fresh = {_benchmark(r) for r in new_rows}
    kept = [
        r
        for r in readme[start:end].splitlines()[3:]
        if r.startswith("| ") and _benchmark(r) not in fresh
    ]
    rank = {name: i for i, name in enumerate(ORDER)}
    rows = sorted(new_rows + kept, key=lambda r: rank.get(_benchmark(r), len(ORDER)))
    return "\n".join(block.splitlines()[:2] + rows)


def _benchmark(row: str) -> str:
    return row.split("|")[1].strip().removesuffix(" (quick)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.report_md", description=__doc__.split("\n")[0]
    )
    p.add_argument("--quick", action="store_true", help="the results of --quick runs")
    p.add_argument("--readme", action="store_true", help="also replace the README's table")
    args = p.parse_args(argv)
    folder = results_dir(args.quick)
    docs = load(folder)
    if not docs:
        print(f"no results in {folder}: run make bench first", file=sys.stderr)
        return 1
    (folder / "REPORT.md").write_text(report(docs, folder))
    print(f"report written to {folder / 'REPORT.md'}")
    if args.readme:
        text = README.read_text()
        README.write_text(embed(text, merged(text, table(docs))))
        print(f"table written into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
