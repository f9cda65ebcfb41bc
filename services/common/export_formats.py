"""CSV and Parquet byte streams of an export, shared by `deloton export` and the API download.

Both take the CSV chunks PostgreSQL sends (services.common.reads.export.csv_chunks) and yield
bytes as they go, so memory stays flat whatever the size: CSV passes through; for Parquet the
chunks are regrouped into blocks of whole rows (about 8 MiB of CSV, some 110,000 readings),
fetched on a thread at most one block ahead, each parsed by pyarrow's CSV reader (C++, typed
by the export's column list) and written as one row group.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

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


def row_blocks(chunks: Iterable[bytes], block_bytes: int) -> Iterator[bytes]:
    """The CSV regrouped into blocks of about `block_bytes`, each ending at the end of a row
    whatever the chunks' boundaries: once `block_bytes` are gathered, cut at the last row end.

    A row ends at a newline outside quotes: PostgreSQL quotes a field holding a newline and
    doubles the quotes inside it, so a newline ends a row when the quotes before it, counted
    from the start of the block (itself a row start), are even.
    """
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size < block_bytes:
            continue
        buf = b"".join(parts)
        cut = buf.rfind(b"\n")
        while cut >= 0 and buf.count(b'"', 0, cut) % 2:
            cut = buf.rfind(b"\n", 0, cut)
        if cut < 0:  # no whole row yet (one very long quoted field): keep gathering
            parts = [buf]
            continue
        yield buf[: cut + 1]
        rest = buf[cut + 1 :]
        parts = [rest] if rest else []
        size = len(rest)
    if size:
        yield b"".join(parts)


_DONE = object()


def _read_ahead(items: Iterator[bytes], depth: int) -> Generator[bytes, None, None]:
    """`items`, pulled on a thread of its own at most `depth` items ahead of the caller.

    Fetching from PostgreSQL (Python, holding the GIL) then overlaps with pyarrow's parsing
    and writing (C++, without it), and the bytes waiting stay bounded whatever the rows.
    Closing this generator stops the thread before it returns, so the connection behind
    `items` is free again when the caller's `with` block ends.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def pull() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(_DONE)
        except BaseException as exc:  # handed to the caller, raised there
            ready.put(exc)

    thread = threading.Thread(target=pull, name="export-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(bytes, item)
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):  # a put waiting for room sees `stop`
                ready.get(timeout=0.1)
        thread.join()


def parquet_stream(
    chunks: Iterable[bytes],
    columns: list[tuple[str, ColumnKind]],
    on_rows: RowsHook,
    block_bytes: int | None = None,
) -> Iterator[bytes]:
    """The CSV chunks as a Parquet file (zstd), yielded a row group at a time.

    Each block of whole rows is parsed on its own (pyarrow's CSV reader, typed by the
    column list) into one row group. pyarrow's streaming CSV reader is not used: its
    background reader runs up to 32 blocks ahead of the writer, 256 MiB of CSV held when
    PostgreSQL sends faster than Parquet is written. Here one block waits at most.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    schema = pa.schema([(name, arrow_type(kind)) for name, kind in columns])
    convert = pacsv.ConvertOptions(
        column_types={name: schema.field(name).type for name, _ in columns},
        include_columns=[name for name, _ in columns],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    block_bytes = block_bytes or BLOCK_BYTES
    blocks = _read_ahead(iter(row_blocks(chunks, block_bytes)), depth=1)
    sink = _Drain()
    try:
        first = next(blocks, b"")
        header, _, first = first.partition(b"\n")
        names = (
            pacsv.read_csv(pa.py_buffer(header + b"\n")).column_names
            if header.strip()
            else [name for name, _ in columns]
        )
        # block_size past the block: one batch per block (one row group per block)
        read = pacsv.ReadOptions(
            column_names=names, use_threads=False, block_size=max(2 * block_bytes, 1 << 20)
        )
        with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
            for block in itertools.chain((first,), blocks):
                if not block:
                    continue
                table = pacsv.read_csv(
                    pa.py_buffer(block), read_options=read, convert_options=convert
                )
                if table.num_rows:
                    writer.write_table(table)
                    on_rows(table.num_rows)
                    yield sink.take()
        yield sink.take()
    finally:
        blocks.close()  # the read-ahead thread has ended when this returns
        close = getattr(chunks, "close", None)
        if close is not None:  # a COPY cut short ends before its connection is given back
            close()
