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
from my_llm.messages import Record, format_time, utc_now
from my_llm.namespaces import validate_namespace

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

    def _lock(self) -> FileLock:
        return FileLock(str(self.folder / f"{LOG_NAME}.lock"), timeout=60)

    def append(self, records: Iterable[Record]) -> int:
        """Append records as lines; returns how many were written.

        Raises:
            StoreError: the folder or file cannot be written (the message says which path).
        """
        lines = [record.to_json() + "\n" for record in records]
        if not lines:
            return 0
        data = "".join(lines).encode("utf-8")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with self._lock(), open(self.path, "ab") as handle:
                if handle.tell() and not self._ends_with_newline():
                    data = b"\n" + data  # keep a torn tail from a killed writer on its own line
                handle.write(data)
                handle.flush()
                self._maybe_fsync(handle.fileno())
        except OSError as error:
            raise StoreError(f"Could not append to {self.path}: {error.strerror or error}.") from error
        return len(lines)

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def _maybe_fsync(self, fileno: int) -> None:
        now = time.monotonic()
        if self.fsync == "always" or (self.fsync == "interval" and now - self._last_fsync >= FSYNC_INTERVAL_S):
            os.fsync(fileno)
            self._last_fsync = now

    def read(self) -> Iterator[Record]:
        """Yield every readable record in file order; unreadable lines are skipped with a warning.

        A missing log reads as empty. The file is never modified.
        """
        if not self.path.exists():
            return
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield Record.from_json(line)
                except ValueError as error:
                    torn = not line.endswith(b"\n")
                    log.warning(
                        "Skipping %s line %d of %s: %s",
                        "the torn last" if torn else "unreadable",
                        number,
                        self.path,
                        error,
                    )

    def archive(self) -> Path | None:
        """Move the log to ``archive/messages-<UTC time>.jsonl`` (nothing is deleted); returns the new path.

        Returns None when there was no log.
        """
        if not self.path.exists():
            return None
        archive = self.folder / "archive"
        stamp = format_time(utc_now()).replace(":", "").replace(".", "-")
        target = archive / f"messages-{stamp}.jsonl"
        try:
            archive.mkdir(parents=True, exist_ok=True)
            with self._lock():
                os.replace(self.path, target)
        except OSError as error:
            raise StoreError(f"Could not move {self.path} to {target}: {error.strerror or error}.") from error
        return target


def list_namespaces(root: Path) -> list[str]:
    """Names of the namespaces that have a log under ``root``, sorted."""
    if not Path(root).is_dir():
        return []
    return sorted(entry.name for entry in Path(root).iterdir() if (entry / LOG_NAME).is_file())
