"""The README's benchmark table: re-running some benchmarks keeps the rows of the others."""

from __future__ import annotations

from bench.report_md import END, START, embed, merged

HEAD = "| Benchmark | Figure |\n|---|---|"


def _readme(rows: list[str]) -> str:
    return f"intro\n{START}\n" + "\n".join([HEAD, *rows]) + f"\n{END}\nafter\n"


def test_rerun_replaces_its_own_rows_and_keeps_the_others_in_bench_order() -> None:
    readme = _readme(
        [
            "| ingest | W3 | old |",
            "| ingest | RSS | old |",
            "| compress | wall | kept |",
            "| export (quick) | rows | kept too |",
        ]
    )
    block = "\n".join([HEAD, "| ingest | W3 | new |", "| alerts | p99 | new |"])
    table = merged(readme, block)
    assert table.splitlines() == [
        *HEAD.splitlines(),
        "| ingest | W3 | new |",
        "| compress | wall | kept |",
        "| alerts | p99 | new |",
        "| export (quick) | rows | kept too |",
    ]
    out = embed(readme, table)
    assert out.startswith("intro\n") and out.endswith(f"{END}\nafter\n")
    assert "old" not in out
