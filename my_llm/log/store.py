"""Append-only JSONL message log, one file per namespace.

Unlike LangChain's ``FileChatMessageHistory`` (which rewrites the whole file on every add: O(n) per
message and not crash-safe), an append here writes only the new lines, under a cross-process lock
(``flock`` on ``messages.jsonl.lock``, see :mod:`my_llm.log.locks`), in one ``write`` call. A process
killed mid-write can leave at most one torn line at the end; readers skip it with a warning and never
rewrite the file, and the next append starts on a fresh line so the torn bytes never merge with a good
record. Reads that must not cost the whole log go through the namespace's index (:mod:`my_llm.log.index`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from my_llm.errors import StoreError
from my_llm.log.locks import InterProcessLock
from my_llm.record import Record, format_time, utc_now, validate_namespace

log = logging.getLogger(__name__)

LOG_NAME = "messages.jsonl"
FSYNC_INTERVAL_S = 1.0
_RECORD_FIELDS = tuple(field.name for field in dataclasses.fields(Record))


def _json_default(value: object) -> object:
    # What Record.to_json does for values JSON cannot hold: dataclasses as dicts (asdict), the rest as str.
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def encode(record: Record) -> bytes:
    """The record's log line without its newline: UTF-8 bytes equal to ``record.to_json()``.

    About 5 times faster than ``to_json`` (which deep-copies the record with ``dataclasses.asdict``);
    the append path and the publisher share these bytes, so a record is serialised once.
    """
    data: dict = {"schema": record.schema}
    for name in _RECORD_FIELDS:
        data[name] = getattr(record, name)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode("utf-8")


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
        self._lock = InterProcessLock(self.folder / f"{LOG_NAME}.lock", timeout=60)

    def append(self, records: Iterable[Record]) -> int:
        """Append records as lines; returns how many were written.

        Raises:
            StoreError: the folder or file cannot be written (the message says which path).
        """
        return self.append_encoded([encode(record) for record in records])

    def append_encoded(self, lines: Sequence[bytes]) -> int:
        """Append lines made by :func:`encode` (no newlines inside), in one locked ``write``; returns how
        many were written.

        Raises:
            StoreError: the folder or file cannot be written (the message says which path).
        """
        if not lines:
            return 0
        data = b"\n".join(lines) + b"\n"
        try:
            if not self._folder_ready:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._folder_ready = True
            with self._lock:
                self._append_locked(data)
        except OSError as error:
            raise StoreError(f"Could not append to {self.path}: {error.strerror or error}.") from error
        return len(lines)

    def _append_locked(self, data: bytes) -> None:
        # O_APPEND: writes always land at the end; the file is opened per append because clear() may have
        # moved it away since the last one. The last byte is read first to keep a torn tail on its own line.
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # keep a torn tail from a killed writer on its own line
            view = memoryview(data)
            while view:  # a regular file takes it all in one call but for errors such as a full disk
                view = view[os.write(fd, view) :]
            self._maybe_fsync(fd)
        finally:
            os.close(fd)

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
                    self._append_locked(encode(tombstone) + b"\n")
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
