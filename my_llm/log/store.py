"""Append-only JSONL message log, one file per namespace.

Unlike LangChain's ``FileChatMessageHistory`` (which rewrites the whole file on every add: O(n) per
message and not crash-safe), an append here writes only the new lines, under a cross-process lock
(``filelock``), in one ``write`` call. A process killed mid-write can leave at most one torn line at
the end; readers skip it with a warning and never rewrite the file, and the next append starts on a
fresh line so the torn bytes never merge with a good record.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from filelock import FileLock

from my_llm.errors import StoreError
from my_llm.record import Record, format_time, utc_now, validate_namespace

log = logging.getLogger(__name__)

LOG_NAME = "messages.jsonl"
FSYNC_INTERVAL_S = 1.0


class MessageStore:
    """The log of one namespace: ``<root>/<namespace>/messages.jsonl``.

    Args:
        root: the ``MESSAGE_HISTORY`` folder.
        namespace: validated before any path is built (InvalidNamespaceError otherwise).
        fsync: ``always`` (every append), ``interval`` (at most once a second) or ``never``.
    """

    def __init__(self, root: Path, namespace: str, fsync: str = "interval") -> None:
        self.namespace = validate_namespace(namespace)
        self.folder = Path(root) / self.namespace
        self.path = self.folder / LOG_NAME
        self.fsync = fsync
        self._last_fsync = 0.0
        self._folder_ready = False
        self._lock = FileLock(str(self.folder / f"{LOG_NAME}.lock"), timeout=60)

    def append(self, records: Iterable[Record]) -> int:
        """Append records as lines; returns how many were written.

        Raises:
            StoreError: the folder or file cannot be written (the message says which path).
        """
        lines = [record.to_json() + "\n" for record in records]
        if not lines:
            return 0
        try:
            if not self._folder_ready:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._folder_ready = True
            with self._lock:
                self._append_locked("".join(lines).encode("utf-8"))
        except OSError as error:
            raise StoreError(f"Could not append to {self.path}: {error.strerror or error}.") from error
        return len(lines)

    def _append_locked(self, data: bytes) -> None:
        # "a+b": writes always land at the end (O_APPEND), and the last byte can be read first.
        with open(self.path, "a+b") as handle:
            if handle.seek(0, os.SEEK_END):
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    data = b"\n" + data  # keep a torn tail from a killed writer on its own line
            handle.write(data)
            handle.flush()
            self._maybe_fsync(handle.fileno())

    def _maybe_fsync(self, fileno: int) -> None:
        now = time.monotonic()
        if self.fsync == "always" or (self.fsync == "interval" and now - self._last_fsync >= FSYNC_INTERVAL_S):
            os.fsync(fileno)
            self._last_fsync = now

    def read(self) -> Iterator[Record]:
        """Yield every readable record of the live log in file order (see :func:`read_records`)."""
        return read_records(self.path)

    @property
    def archive_folder(self) -> Path:
        return self.folder / "archive"

    def archives(self) -> list[Path]:
        """The archived logs, oldest first."""
        if not self.archive_folder.is_dir():
            return []
        return sorted(self.archive_folder.glob("messages-*.jsonl"))

    def read_all(self) -> Iterator[Record]:
        """Every record ever logged in this namespace: the archives (oldest first), then the live log."""
        for path in self.archives():
            yield from read_records(path)
        yield from self.read()

    def archive(self, tombstone: Record | None = None) -> Path | None:
        """Move the log to ``archive/messages-<UTC time>.jsonl`` (nothing is deleted); returns the new path.

        ``tombstone``, when given, is appended as the archived log's last line, so the event that
        cleared the log is kept with what it cleared. Returns None when there was no log (the
        tombstone is then not written).

        Raises:
            StoreError: the log could not be moved.
        """
        stamp = format_time(utc_now()).replace(":", "").replace(".", "-")
        target = self.archive_folder / f"messages-{stamp}.jsonl"
        if not self.path.exists():
            return None
        try:
            with self._lock:
                if not self.path.exists():  # another process archived it first
                    return None
                if tombstone is not None:
                    self._append_locked((tombstone.to_json() + "\n").encode("utf-8"))
                self.archive_folder.mkdir(parents=True, exist_ok=True)
                os.replace(self.path, target)
        except OSError as error:
            raise StoreError(f"Could not move {self.path} to {target}: {error.strerror or error}.") from error
        return target


def read_records(path: Path) -> Iterator[Record]:
    """Yield every readable record of a JSONL log in file order.

    Unreadable lines (a torn last line from a killed writer, say) are skipped with a warning naming
    the file and line. A missing file reads as empty. The file is never modified.
    """
    if not path.exists():
        return
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield Record.from_json(line)
            except ValueError as error:
                torn = not line.endswith(b"\n")
                log.warning(
                    "Skipping %s line %d of %s: %s", "the torn last" if torn else "unreadable", number, path, error
                )


def list_namespaces(root: Path) -> list[str]:
    """Names of the namespaces that have a log under ``root``, sorted."""
    if not Path(root).is_dir():
        return []
    return sorted(entry.name for entry in Path(root).iterdir() if (entry / LOG_NAME).is_file())
