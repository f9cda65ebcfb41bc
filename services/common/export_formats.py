"""CSV and Parquet byte streams of an export, shared by `deloton export` and the API download.

Both take the CSV chunks PostgreSQL sends (services.common.reads.export.csv_chunks) and yield
bytes as they go, so memory stays flat whatever the size: CSV passes through; Parquet is
parsed block by block by pyarrow's streaming CSV reader (C++, typed by the export's column
list) and written one row group per block (about 8 MiB of CSV, some 130,000 readings).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from services.common.reads.export import ColumnKind

if TYPE_CHECKING:
    import pyarrow as pa

RowsHook = Callable[[int], None]
BLOCK_BYTES = 8 << 20


def csv_stream(chunks: Iterable[bytes], on_rows: RowsHook) -> Iterator[bytes]:
    """The CSV unchanged, counting rows (lines after the header) as they pass."""
    header = True
    pending = 0
    for chunk in chunks:
        lines = chunk.count(b"\n")
        if header and lines:
            lines -= 1
            header = False
        pending += lines
        if pending >= 10_000:
            on_rows(pending)
            pending = 0
        yield chunk
    if pending:
        on_rows(pending)


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (pyarrow's CSV reader reads from it)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        filled = 0
        while filled < len(view):
            if self._pos >= len(self._buf):
                nxt = next(self._chunks, None)
                if nxt is None:
                    break
                self._buf, self._pos = nxt, 0
            n = min(len(view) - filled, len(self._buf) - self._pos)
            view[filled : filled + n] = self._buf[self._pos : self._pos + n]
            filled += n
            self._pos += n
        return filled


class _Drain(io.RawIOBase):
    """A write-only file whose bytes are taken out after each row group."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._parts.append(data)
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def arrow_type(kind: ColumnKind) -> pa.DataType:
    """The Arrow type of an export column."""
    import pyarrow as pa

    return {
        "int16": pa.int16(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "text": pa.string(),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }[kind]


def parquet_stream(
    chunks: Iterable[bytes], columns: list[tuple[str, ColumnKind]], on_rows: RowsHook
) -> Iterator[bytes]:
    """The CSV chunks as a Parquet file (zstd), yielded a row group at a time."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    schema = pa.schema([(name, arrow_type(kind)) for name, kind in columns])
    reader = pacsv.open_csv(
        io.BufferedReader(_ChunkReader(chunks), buffer_size=BLOCK_BYTES),
        read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
        convert_options=pacsv.ConvertOptions(
            column_types={name: schema.field(name).type for name, _ in columns},
            include_columns=[name for name, _ in columns],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    sink = _Drain()
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for batch in reader:
            if batch.num_rows:
                # write_table closes a row group per call; write_batch would keep appending
                # to a buffered one up to a million rows, so memory would grow to that.
                writer.write_table(pa.Table.from_batches([batch]))
                on_rows(batch.num_rows)
                yield sink.take()
    yield sink.take()
