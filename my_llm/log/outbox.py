"""The outbox: which records of a namespace Pub/Sub has not acknowledged yet.

Records are written once, to the log; the outbox only keeps the ids Pub/Sub acknowledged, in
``<namespace>/outbox/acked.ids`` (append-only, one id a line). What is pending is every record of the
log and its archives whose id is not there. So a record is in the outbox from the moment it is on
disk until Pub/Sub acknowledges it, whatever happens to the process in between, and nothing is
written twice on the hot path.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from datetime import datetime

from my_llm.errors import StoreError
from my_llm.log.store import MessageStore
from my_llm.record import Record, parse_time

ACKED_NAME = "acked.ids"


class Outbox:
    """The outbox of one namespace.

    Args:
        store: the namespace's log; the outbox lives in ``<store.folder>/outbox/``.
    """

    def __init__(self, store: MessageStore) -> None:
        self.store = store
        self.folder = store.folder / "outbox"
        self.path = self.folder / ACKED_NAME
        self._lock = threading.Lock()
        self._fd: int | None = None

    def mark_acked(self, ids: Iterable[str]) -> None:
        """Record that Pub/Sub acknowledged these record ids.

        Safe from any thread and any process: each call is one ``write`` to an ``O_APPEND`` file,
        so lines from concurrent writers never interleave.

        Raises:
            StoreError: the outbox folder cannot be written.
        """
        data = "".join(f"{record_id}\n" for record_id in ids).encode("ascii")
        if not data:
            return
        with self._lock:
            try:
                if self._fd is None:
                    self.folder.mkdir(parents=True, exist_ok=True)
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.write(self._fd, data)
            except OSError as error:
                raise StoreError(f"Could not record acknowledgements in {self.path}: {error}") from error

    def acked_ids(self) -> set[str]:
        """Every id acknowledged so far."""
        if not self.path.exists():
            return set()
        with open(self.path, encoding="ascii", errors="replace") as handle:
            return {line.strip() for line in handle if line.strip()}

    def pending(self) -> list[Record]:
        """Records (archives first, then the live log, in order) that Pub/Sub has not acknowledged."""
        acked = self.acked_ids()
        return [record for record in self.store.read_all() if record.id not in acked]

    def since(self, moment: datetime) -> list[Record]:
        """Every record created at or after ``moment`` (an aware datetime), acknowledged or not."""
        return [record for record in self.store.read_all() if parse_time(record.created_at) >= moment]

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
