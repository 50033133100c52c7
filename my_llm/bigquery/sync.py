"""``my-llm bigquery sync``: load what is on disk and not yet in the table, exactly once.

For each log of a namespace (archives oldest first, then the live log), from the cursor's offset
(:mod:`my_llm.bigquery.cursor`) to the last whole line: each line is validated into a row
(:func:`my_llm.bigquery.schema.to_row`), rows go into batches of up to 100,000, and each batch is loaded
into a staging table and MERGEd on ``id`` (:mod:`my_llm.bigquery.merge`); the cursor moves past a batch
only once its MERGE is done. One batch is written (in a thread) while the next is read. The log is
streamed (one line and two batches' ids in memory at most; a batch's NDJSON spills to a temporary file past
8 MB) and never modified.

This is also how records that never went through Pub/Sub reach the table: an imported ChatGPT export, a
laptop that was offline, a namespace older than its subscription.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from my_llm.bigquery.cursor import Cursor
from my_llm.bigquery.merge import Batch, Writer
from my_llm.bigquery.schema import to_row
from my_llm.bigquery.target import Target
from my_llm.log import MessageStore

log = logging.getLogger(__name__)

BATCH_ROWS = 100_000


@dataclass
class SyncReport:
    """What one namespace's sync did.

    Attributes:
        namespace: the namespace.
        read: record lines read (blank lines are not counted).
        rejected: lines that are not valid records: skipped (each one logged with its file and byte offset).
        inserted: rows the MERGEs added; ``read - rejected - inserted`` were in the table already.
        bytes: bytes of log read.
    """

    namespace: str
    read: int = 0
    rejected: int = 0
    inserted: int = 0
    bytes: int = 0

    @property
    def present(self) -> int:
        """Valid records that were in the table already (delivered before, or a duplicate line)."""
        return self.read - self.rejected - self.inserted


def log_files(store: MessageStore) -> list[Path]:
    """A namespace's logs in the order they were written: the archives, oldest first, then the live log."""
    return [*store.archives(), store.path]


def pending_bytes(store: MessageStore, target: Target) -> int:
    """Bytes of the namespace's logs past the cursor: what a sync into ``target`` would read (for a progress
    bar; read without the cursor's lock)."""
    cursor = Cursor(store.folder, target.table_id)
    cursor.files = cursor.load()
    total = 0
    for path in log_files(store):
        if path.exists():
            total += path.stat().st_size - cursor.start(path)[1]
    return total


def sync_namespace(
    client,
    target: Target,
    store: MessageStore,
    *,
    batch_rows: int = BATCH_ROWS,
    on_progress: Callable[[int], None] | None = None,
) -> SyncReport:
    """Load the namespace's records that are past its cursor into ``target``'s table, exactly once.

    Args:
        client: a ``google.cloud.bigquery.Client`` for ``target`` (see :func:`bigquery_client`).
        target: the table (made by :func:`my_llm.bigquery.setup`).
        store: the namespace's log.
        batch_rows: rows per load job and MERGE.
        on_progress: called with the bytes of log just loaded, after each batch.

    Returns:
        a :class:`SyncReport`.

    Raises:
        BigQueryError: a load or MERGE failed (the cursor stays at the last batch that was written; run
            again), the cursor is locked by another sync or cannot be written.
    """
    report = SyncReport(store.namespace)
    writer = Writer(client, target, "sync")
    try:
        with Cursor(store.folder, target.table_id) as cursor:
            loader = _Loader(writer, cursor, report, on_progress or (lambda done: None))
            try:
                for path in log_files(store):
                    _sync_file(path, cursor, loader, report, batch_rows)
                loader.finish()
            finally:
                loader.shutdown()
    finally:
        writer.close()
    return report


class _Loader:
    """Writes one batch in a background thread while the next one is read (the wait on BigQuery overlaps
    the parsing), and moves the cursor past each batch, in order, once its MERGE is done."""

    def __init__(self, writer: Writer, cursor: Cursor, report: SyncReport, on_progress: Callable[[int], None]) -> None:
        self.writer, self.cursor, self.report, self.on_progress = writer, cursor, report, on_progress
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bigquery-sync")
        self._pending: tuple[Future, Batch, str, int, int] | None = None

    def submit(self, batch: Batch, key: str, start: int, end: int) -> None:
        """Write ``batch``, the records of bytes ``start..end`` of the log ``key``, after the one before it."""
        self.finish()
        self._pending = (self._pool.submit(self.writer.write, batch), batch, key, start, end)

    def finish(self) -> None:
        """Wait for the batch being written, then move the cursor past it.

        Raises:
            BigQueryError: its load or MERGE failed (the cursor stays before it).
        """
        if self._pending is None:
            return
        future, batch, key, start, end = self._pending
        self._pending = None
        try:
            self.report.inserted += future.result()
        finally:
            batch.close()
        self.cursor.advance(key, end)
        self.report.bytes += end - start
        self.on_progress(end - start)

    def shutdown(self) -> None:
        """Wait for the thread; a batch not finished (after an error) is dropped, its cursor not moved."""
        self._pool.shutdown(wait=True)
        if self._pending is not None:
            self._pending[1].close()
            self._pending = None


def _sync_file(path: Path, cursor: Cursor, loader: _Loader, report: SyncReport, batch_rows: int) -> None:
    """Read one log file from the cursor's offset into batches of ``batch_rows`` for ``loader``."""
    key, start = cursor.start(path)
    if key is None:  # missing, or no whole line yet
        return
    batch, batch_start, offset = Batch(), start, start
    try:
        for line, offset in _lines(path, start):
            if not line.strip():
                continue
            report.read += 1
            try:
                batch.add(to_row(json.loads(line)))
            except ValueError as error:  # json.JSONDecodeError and RowError are ValueErrors
                report.rejected += 1
                log.warning("Skipping the invalid record at byte %d of %s: %s", offset - len(line), path, error)
            if len(batch) >= batch_rows:
                loader.submit(batch, key, batch_start, offset)
                batch, batch_start = Batch(), offset
    except BaseException:
        batch.close()
        raise
    if offset == batch_start:
        batch.close()
    else:
        loader.submit(batch, key, batch_start, offset)


def _lines(path: Path, start: int) -> Iterator[tuple[bytes, int]]:
    """``(line, offset just past it)`` for each whole line of ``path`` from byte ``start``; a last line
    without its newline (being written, or torn) is left for a later sync."""
    with open(path, "rb") as handle:
        handle.seek(start)
        offset = start
        for line in handle:
            if not line.endswith(b"\n"):
                return
            offset += len(line)
            yield line, offset
