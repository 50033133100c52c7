"""How far ``my-llm bigquery sync`` has read a namespace's logs into one table: a byte offset per log file.

``<namespace>/bigquery/<project.dataset.table>.json`` is ``{"table": "p.d.t", "files": {"<fingerprint>": offset}}``.
A log file is known by a fingerprint of its first line (a record with its own uuid4), not by its name, so a
log that ``clear()`` moved to ``archive/`` keeps its offset, and a new live log starts at 0. The offset is
always the end of a whole line that was loaded and MERGEd; a file shorter than its offset (replaced by
hand) is read again from 0. The cursor only saves work: the MERGE on ``id`` is what makes a sync exactly
once, so a lost or stale cursor costs a re-read, never a duplicate.

The cursor file is replaced atomically; a lock beside it keeps two syncs of one namespace into one table
from running at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from filelock import FileLock, Timeout

from my_llm.bigquery.target import BigQueryError

log = logging.getLogger(__name__)

CURSOR_FOLDER = "bigquery"
FINGERPRINT_BYTES = 64 * 1024
LOCK_TIMEOUT_S = 10.0


def fingerprint(path: Path) -> str | None:
    """A hex digest of the file's first line (or its first 64 KiB when the line is longer); None while the
    file has no whole first line yet (or is missing)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(FINGERPRINT_BYTES)
    except FileNotFoundError:
        return None
    end = head.find(b"\n")
    if end >= 0:
        head = head[: end + 1]
    elif len(head) < FINGERPRINT_BYTES:
        return None
    return hashlib.sha256(head).hexdigest()[:32]


class Cursor:
    """The offsets of one namespace's log files in one table (see the module docstring).

    Args:
        folder: the namespace's folder (``MESSAGE_HISTORY/<namespace>``).
        table_id: ``project.dataset.table``.

    Use as a context manager: it holds the lock while open.

    Raises (on enter):
        BigQueryError: another sync of this namespace into this table holds the lock for more than 10 s.
    """

    def __init__(self, folder: Path, table_id: str) -> None:
        self.path = Path(folder) / CURSOR_FOLDER / f"{table_id}.json"
        self.table_id = table_id
        self._lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_S)
        self.files: dict[str, int] = {}

    def __enter__(self) -> Cursor:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise BigQueryError(
                f"Another `my-llm bigquery sync` is loading {self.path.parent.parent.name} into {self.table_id} "
                f"(lock {self._lock.lock_file}); wait for it to finish."
            ) from None
        self.files = self.load()
        return self

    def __exit__(self, *exc_info) -> None:
        self._lock.release()

    def start(self, path: Path) -> tuple[str | None, int]:
        """``(fingerprint, offset)`` to read ``path`` from: 0 for a file not seen, or shorter than its offset."""
        key = fingerprint(path)
        offset = self.files.get(key, 0) if key else 0
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return key, 0
        return key, offset if offset <= size else 0

    def advance(self, key: str, offset: int) -> None:
        """Record that the file ``key`` is loaded up to byte ``offset`` (replaces the cursor file atomically).

        Raises:
            BigQueryError: the cursor file could not be written (the rows are in the table; the next sync
                re-reads them and adds nothing).
        """
        self.files[key] = offset
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            temporary.write_text(json.dumps({"table": self.table_id, "files": self.files}), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as error:
            raise BigQueryError(f"Could not write the sync cursor {self.path}: {error}") from error

    def load(self) -> dict[str, int]:
        """The offsets in the cursor file (``{}`` when it is missing; unreadable: logged, ``{}``)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(key): int(value) for key, value in data["files"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning(
                "Ignoring the unreadable sync cursor %s (%s): the logs are read from the start.", self.path, error
            )
            return {}
