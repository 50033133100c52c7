"""The outbox: which records of a namespace Pub/Sub has not acknowledged yet.

Records are written once, to the log; the outbox keeps only what Pub/Sub acknowledged, compacted:

- ``<namespace>/outbox/cursor.json``: ``{"position": N, "last_id": ..., "above": [[first_id, last_id], ...]}``:
  every record up to log position N (see :mod:`my_llm.log.index`; ``last_id`` is the record there, so the
  cursor survives a rebuilt index) is acknowledged, and so are the few runs of records above it (listed
  by their first and last ids), acknowledged out of order;
- ``<namespace>/outbox/acked.ids``: ids acknowledged since the last compaction, one a line, appended in
  batches (a write per 1,000 acks or per second, and on flush), folded into the cursor and emptied by
  :meth:`Outbox.compact` (when pending records are asked for, and on close past 1 MB).

Pending is every record of the log and its archives above the cursor and outside those runs. A record is
in the outbox from the moment it is on disk until its acknowledgement is written, whatever happens to
the process in between; an acknowledgement not yet written when a process is killed only means the
record is sent again (consumers de-duplicate on ``id``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from my_llm.errors import StoreError
from my_llm.log.index import Entry, LogIndex
from my_llm.log.locks import InterProcessLock
from my_llm.record import Record

log = logging.getLogger(__name__)

ACKED_NAME = "acked.ids"
CURSOR_NAME = "cursor.json"
ACK_BATCH = 1000
ACK_INTERVAL_S = 1.0
COMPACT_ON_CLOSE_BYTES = 1_000_000


class Outbox:
    """The outbox of one namespace.

    Args:
        index: the namespace's log index; the outbox lives in ``<store folder>/outbox/``.
    """

    def __init__(self, index: LogIndex) -> None:
        self.index = index
        self.store = index.store
        self.folder = self.store.folder / "outbox"
        self.path = self.folder / ACKED_NAME
        self.cursor_path = self.folder / CURSOR_NAME
        self._buffer: list[str] = []
        self._buffer_lock = threading.Lock()
        self._last_write = float("-inf")  # the first acknowledgement is written at once
        self._file_lock = InterProcessLock(self.folder / "outbox.lock")

    # -- acknowledgements -------------------------------------------------------------------------

    def mark_acked(self, ids: Iterable[str]) -> None:
        """Record that Pub/Sub acknowledged these record ids (from any thread).

        Buffered: written when 1,000 are waiting or a second has passed since the last write, and by
        :meth:`write_acks` (flush, close, pending).

        Raises:
            StoreError: the outbox folder cannot be written.
        """
        with self._buffer_lock:
            self._buffer.extend(ids)
            due = len(self._buffer) >= ACK_BATCH or time.monotonic() - self._last_write >= ACK_INTERVAL_S
        if due:
            self.write_acks()

    def write_acks(self) -> None:
        """Write the buffered acknowledgements (one append under the outbox lock).

        Raises:
            StoreError: the outbox folder cannot be written (the acknowledgements stay buffered).
        """
        with self._buffer_lock:
            ids, self._buffer = self._buffer, []
            self._last_write = time.monotonic()
        if not ids:
            return
        data = "".join(f"{record_id}\n" for record_id in ids).encode("utf-8")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with self._file_lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
        except OSError as error:
            with self._buffer_lock:
                self._buffer[:0] = ids
            raise StoreError(f"Could not record acknowledgements in {self.path}: {error}") from error

    # -- the cursor --------------------------------------------------------------------------------

    def compact(self) -> tuple[int, list[tuple[int, int]]]:
        """Fold the written acknowledgements into the cursor and empty ``acked.ids``.

        Returns ``(position, runs)``: everything up to log position ``position`` is acknowledged, and so
        are the inclusive position ranges in ``runs`` (sorted, above ``position + 1``).

        Raises:
            StoreError: the outbox or the index cannot be read or written.
        """
        self.write_acks()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with self._file_lock:
                journal = _read_ids(self.path)  # before the index catches up: every id in it is in the log
                position, runs = self._load_cursor()
                acked = sorted(set(self.index.seqs_of(journal).values()))
                position, runs = _fold(position, runs, acked)
                if journal:  # written first, then the journal emptied: a kill in between only re-folds it
                    self._save_cursor(position, runs)
                    os.truncate(self.path, 0)
        except OSError as error:
            raise StoreError(f"Could not compact the outbox in {self.folder}: {error}") from error
        return position, runs

    def _load_cursor(self) -> tuple[int, list[tuple[int, int]]]:
        try:
            state = json.loads(self.cursor_path.read_text(encoding="utf-8"))
            position, last_id, above = int(state["position"]), state["last_id"], state["above"]
        except FileNotFoundError:
            return 0, []
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning(
                "Ignoring the unreadable %s (%s): acknowledged records will be sent again.", self.cursor_path, error
            )
            return 0, []
        ids = [last_id] if last_id else []
        ids += [record_id for run in above for record_id in run]
        seqs = self.index.seqs_of(ids)
        if last_id:
            position = seqs.get(last_id, position)  # the id wins: positions move if the files were edited
        runs = [(seqs[first], seqs[last]) for first, last in above if first in seqs and last in seqs]
        return position, sorted(runs)

    def _save_cursor(self, position: int, runs: list[tuple[int, int]]) -> None:
        ids = self.index.ids_at([position, *(seq for run in runs for seq in run)])
        state = {
            "position": position,
            "last_id": ids.get(position),
            "above": [[ids[first], ids[last]] for first, last in runs if first in ids and last in ids],
        }
        temporary = self.cursor_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state), encoding="utf-8")
        os.replace(temporary, self.cursor_path)

    # -- what is pending ---------------------------------------------------------------------------

    def pending_entries(self) -> list[Entry]:
        """Where the unacknowledged records are, in log order (archives first)."""
        position, runs = self.compact()
        entries = []
        for first, last in _gaps(position, runs):
            entries += self.index.entries_between(first, last)
        return entries

    def pending(self) -> list[Record]:
        """Records (archives first, then the live log, in order) that Pub/Sub has not acknowledged."""
        return self.index.records(self.pending_entries())

    def pending_count(self) -> int:
        """How many records are pending, without reading them."""
        position, runs = self.compact()
        return sum(self.index.count_between(first, last) for first, last in _gaps(position, runs))

    def acked_ids(self) -> set[str]:
        """Ids acknowledged but not yet folded into the cursor (written and buffered)."""
        with self._buffer_lock:
            buffered = set(self._buffer)
        return buffered | set(_read_ids(self.path))

    def close(self) -> None:
        """Write the buffered acknowledgements; compact when ``acked.ids`` passed 1 MB."""
        self.write_acks()
        try:
            big = self.path.stat().st_size > COMPACT_ON_CLOSE_BYTES
        except FileNotFoundError:
            big = False
        if big:
            self.compact()
        self._file_lock.close()


def _read_ids(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [line.strip() for line in handle if line.strip()]
    except FileNotFoundError:
        return []


def _fold(position: int, runs: list[tuple[int, int]], acked: list[int]) -> tuple[int, list[tuple[int, int]]]:
    """Merge sorted positions ``acked`` into the runs, then advance ``position`` over the run touching it."""
    merged: list[list[int]] = []
    points = [(seq, seq) for seq in acked if seq > position]
    for first, last in sorted([*runs, *points]):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    if merged and merged[0][0] <= position + 1:
        position = max(position, merged.pop(0)[1])
    return position, [(first, last) for first, last in merged]


def _gaps(position: int, runs: list[tuple[int, int]]) -> list[tuple[int, int | None]]:
    """The position ranges not acknowledged: between the cursor, the runs and the end (None: no end)."""
    gaps: list[tuple[int, int | None]] = []
    start = position + 1
    for first, last in runs:
        if first > start:
            gaps.append((start, first - 1))
        start = max(start, last + 1)
    gaps.append((start, None))
    return gaps
