"""Tool records into the namespace logs, through :class:`my_llm.history.ChatHistory` (disk first, then Pub/Sub)."""

from __future__ import annotations

from my_llm.config import Settings
from my_llm.history import ChatHistory
from my_llm.log import MessageStore
from my_llm.record import Record


class HistoryWriter:
    """Appends tool records to their namespace's log and publishes them, one :class:`ChatHistory` per
    namespace (records keep the session id they carry). Close it to flush what Pub/Sub has not acknowledged.

    Args:
        settings: where the logs are and whether (and where) to publish.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._histories: dict[str, ChatHistory] = {}

    def _history(self, namespace: str, session_id: str) -> ChatHistory:
        if namespace not in self._histories:
            self._histories[namespace] = ChatHistory(namespace, session_id=session_id, settings=self.settings)
        return self._histories[namespace]

    def write(self, record: Record) -> None:
        """Append ``record`` (disk first; then a non-blocking publish). Raises StoreError if the disk write fails."""
        self._history(record.namespace, record.session_id).add_records([record])

    def contains(self, record: Record) -> bool:
        """Whether the namespace's logs (archives included) hold ``record.id``: reads them all; used only to
        finish a match a stopped runner had decided but maybe not logged."""
        store = MessageStore(self.settings.message_history, record.namespace, self.settings.fsync)
        return any(logged.id == record.id for logged in store.read_all())

    def close(self, timeout: float = 30.0) -> int:
        """Flush and close every history; returns how many publishes never finished (they stay in the outbox)."""
        pending = sum(history.close(timeout) for history in self._histories.values())
        self._histories.clear()
        return pending
