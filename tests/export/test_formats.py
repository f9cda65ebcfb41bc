"""The Parquet stream on its own (no database): whole rows per row group whatever the chunks'
boundaries, and the CSV it holds waiting bounded by a block or two, not by the export's size."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest

from services.common import export_formats
from services.common.reads.export import RAW_COLUMNS

HEADER = b"ride_id,bike_serial,user_id,elapsed_s,recorded_at,resistance,heart_rate,rpm,power\n"


def row(i: int, serial: str = "SN000001") -> bytes:
    """One raw reading as PostgreSQL's COPY writes it; fixed width for a plain serial."""
    return (
        f"{1000 + i // 500:08d},{serial},{i % 97:06d},{i % 500:04d},"
        f"2026-11-20 10:{i // 60 % 60:02d}:{i % 60:02d}+00,{i % 50:03d},{60 + i % 100:03d},"
        f"{i % 120:03d},{i % 400:03d}.5\n"
    ).encode()


def split(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_blocks_end_at_rows_even_inside_quoted_newlines_and_quotes() -> None:
    odd = ['"SN\n""7""\n"', '"a,b"', '"\n"', "SN9"]
    lines = [row(i, odd[i % 4] if i % 7 == 0 else "SN000001") for i in range(3000)]
    data = HEADER + b"".join(lines)
    for chunk in (1, 13, 4096, 1 << 20):
        blocks = list(export_formats.row_blocks(split(data, chunk), 2048))
        assert b"".join(blocks) == data
        assert all(blocks) and (len(blocks) > 50 or chunk > len(data))
        # each block parses on its own into whole rows
        parsed = [r for b in blocks for r in csv.reader(io.StringIO(b.decode()))]
        assert parsed == list(csv.reader(io.StringIO(data.decode())))


def test_parquet_holds_every_row_in_row_groups_of_whole_rows(tmp_path) -> None:
    lines = [row(i, '"SN\n""7"""' if i % 11 == 0 else "SN000001") for i in range(20_000)]
    counted: list[int] = []
    out = tmp_path / "x.parquet"
    with out.open("wb") as f:
        for data in export_formats.parquet_stream(
            split(HEADER + b"".join(lines), 1000), RAW_COLUMNS, counted.append, 64 << 10
        ):
            f.write(data)
    parquet = pq.ParquetFile(out)
    assert parquet.metadata.num_row_groups == len(counted) > 5
    table = parquet.read()
    assert sum(counted) == table.num_rows == 20_000
    serials = table.column("bike_serial").to_pylist()
    assert serials[0] == 'SN\n"7"' and serials[1] == "SN000001"
    assert table.column("elapsed_s").to_pylist() == [i % 500 for i in range(20_000)]
    assert table.column("power").to_pylist()[:3] == [0.5, 1.5, 2.5]


def test_csv_waiting_to_be_written_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL can send faster than Parquet is written: what waits must not pile up.

    Rows are of one width, so the bytes behind the rows reported written are known exactly;
    each pull records how far it runs ahead of them. After the first row group the writer
    pauses until the reader has run 8 blocks ahead (or 2 s passed, when it cannot)."""
    block = 256 << 10
    monkeypatch.setattr(export_formats, "BLOCK_BYTES", block)
    width = len(row(0))
    one = b"".join(row(i) for i in range(block // width))
    state = {"pulled": 0, "written": 0, "lead": 0}
    far_ahead = threading.Event()

    def chunks() -> Iterator[bytes]:
        yield HEADER
        for _ in range(64):
            for part in split(one, 16 << 10):
                state["pulled"] += len(part)
                state["lead"] = max(state["lead"], state["pulled"] - state["written"])
                if state["lead"] > 8 * block:
                    far_ahead.set()
                yield part

    def on_rows(n: int) -> None:
        first = state["written"] == 0
        state["written"] += n * width
        if first:
            far_ahead.wait(2.0)

    rows = 0
    for _ in export_formats.parquet_stream(chunks(), RAW_COLUMNS, on_rows):
        rows = state["written"] // width
    assert rows == 64 * (block // width)
    # a block being parsed, one queued, one being gathered: each cut at the first row end
    # past `block`, so at most a chunk longer (the header is pulled but is no row)
    assert state["lead"] <= 3 * (block + (16 << 10)) + len(HEADER)
