"""Write one export to a file: counted first when a progress bar wants a total, then streamed.

The file appears only when complete: rows go to `PATH.partial`, renamed over PATH at the end,
so an interrupted export never leaves a truncated file where a finished one is expected.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from services.common import export_formats
from services.common.export_formats import RowsHook
from services.common.pool import read_only_connection
from services.common.reads import export as reads

Format = Literal["csv", "parquet"]


def count(dsn: str, *, query: reads.ExportQuery) -> int:
    """Rows the export will hold."""
    with read_only_connection(dsn, application_name="deloton-export") as conn:
        return reads.count_rows(conn, query=query)


def export(
    dsn: str,
    *,
    query: reads.ExportQuery,
    fmt: Format,
    out: Path,
    on_rows: RowsHook = lambda _n: None,
) -> int:
    """Stream the export into `out`; return the rows written."""
    written = 0

    def counted(n: int) -> None:
        nonlocal written
        written += n
        on_rows(n)

    partial = out.with_name(out.name + ".partial")
    try:
        with read_only_connection(dsn, application_name="deloton-export") as conn:
            chunks = reads.csv_chunks(conn, query=query)
            stream = (
                export_formats.csv_stream(chunks, counted)
                if fmt == "csv"
                else export_formats.parquet_stream(chunks, reads.columns(query.resolution), counted)
            )
            with partial.open("wb") as f:
                for data in stream:
                    f.write(data)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return written
