"""ChatHistory: a LangChain chat history that writes to disk first, then to Pub/Sub.

The plain history that memory and the importers take; the seed's :class:`PubSubChatMessageHistory`
(``my_llm.langchain_class``) is this class plus the seed's convenience methods.
"""

from __future__ import annotations

import functools
import itertools
import logging
import uuid
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from my_llm.config import Settings
from my_llm.history.conversions import message_data, role_of, to_message
from my_llm.log import Delivery, MessageStore, Publisher, is_turn
from my_llm.models import model_of, text_of, usage_for
from my_llm.record import Record, validate_namespace

log = logging.getLogger(__name__)

EXIT_FLUSH_S = 10.0


def is_turn_of(record: Record, session_id: str) -> bool:
    """Whether ``record`` is a conversation turn of ``session_id`` (see :attr:`ChatHistory.messages`): the
    log's rule (:func:`my_llm.log.is_turn`) for this session."""
    return record.session_id == session_id and is_turn(record)


@functools.cache
def _say_disk_only(turned_off: bool = False) -> None:
    # functools.cache makes this a once-per-process notice without module-level mutable flags.
    if turned_off:
        log.warning("Publishing is turned off (MY_LLM_PUBLISH=off): messages are logged to disk only.")
        return
    log.warning(
        "No Google Cloud project is configured: messages are logged to disk only. "
        "Set GOOGLE_CLOUD_PROJECT (or PUBSUB_EMULATOR_HOST for the emulator) to publish them."
    )


class ChatHistory(BaseChatMessageHistory):
    """Chat history of one session in a namespace, logged to ``<MESSAGE_HISTORY>/<namespace>/messages.jsonl``
    and published to the Pub/Sub topic ``my-llm-<namespace>``.

    One object per session, as LangChain's ``RunnableWithMessageHistory`` expects
    (``get_session_history(session_id)``): :attr:`messages` is this session's conversation only. The
    namespace is the unit of storage, publishing and memory: :meth:`records`, :meth:`clear`, summaries,
    memory questions and imports work on the whole namespace.

    Every add is written to disk first (the source of truth), then published without blocking;
    a Pub/Sub failure is logged and never raised to the caller, so nothing given is lost.

    Args:
        memory_namespace: letters, digits, ``-_.``; 1 to 200 characters (InvalidNamespaceError otherwise,
            raised before anything is written).
        session_id: the conversation (the Pub/Sub ordering key); a new uuid4 hex when None, so a
            history made without one starts an empty conversation.
        pubsub_topic: topic id; ``my-llm-<namespace>`` when None.
        project_id: Google Cloud project; from settings when None. No project means disk only.
        source: the record ``source`` for messages added through this object (``live``, ``read_repo``...).
        settings: defaults to ``Settings.from_env()``.
        store / publisher: hand in your own (tests, other roots); built from settings when None.

    Delivery (:class:`my_llm.log.Delivery`, also ``self.delivery``): acknowledged ids are recorded in the
    namespace's outbox; whatever Pub/Sub has not acknowledged (server down, process killed) stays there
    until ``my-llm replay`` re-publishes it, to the topic recorded when the namespace was first published
    (a history given another topic says so once). Pending publishes are flushed (for up to 10 s) when the
    object is collected or the process exits.
    """

    def __init__(
        self,
        memory_namespace: str,
        session_id: str | None = None,
        pubsub_topic: str | None = None,
        project_id: str | None = None,
        *,
        source: str = "live",
        settings: Settings | None = None,
        store: MessageStore | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self.namespace = validate_namespace(memory_namespace)
        self.settings = settings = settings or Settings.from_env()
        self.session_id = session_id or uuid.uuid4().hex
        self.source = source
        self.store = store or MessageStore(settings.message_history, self.namespace, settings.fsync)
        self.delivery = Delivery.for_history(self.store, settings, project_id, pubsub_topic, publisher)
        self.publisher = self.delivery.publisher
        self.outbox = self.delivery.outbox
        if self.publisher is None:
            _say_disk_only(not settings.publish)
        # The exit hook: holds the delivery, not self, so it never keeps this object alive.
        self._finalizer = weakref.finalize(self, self.delivery.close, EXIT_FLUSH_S)

    @property
    def memory_namespace(self) -> str:
        return self.namespace

    @property
    def path(self) -> Path:
        """The namespace's JSONL log."""
        return self.store.path

    def records(self) -> list[Record]:
        """Every record of the namespace's live log in the order it was logged (all roles, all sessions)."""
        return list(self.store.read())

    def session_records(self, limit: int | None = None) -> list[Record]:
        """This session's conversation records, oldest first (see :attr:`messages` for which); with
        ``limit``, only the last ``limit`` of them.

        Read through the namespace's index (:class:`my_llm.log.LogIndex`): the cost is that of the records
        returned (about 20 us each), not of the log; the index first catches up with what was appended.

        Raises:
            StoreError: the index cannot be opened or written (it can be deleted: it is rebuilt from the log).
        """
        newest_first = self.recent_records(page=limit or 256)
        records = list(newest_first if limit is None else itertools.islice(newest_first, limit))
        records.reverse()
        return records

    def recent_records(self, page: int = 16) -> Iterator[Record]:
        """This session's conversation records newest first, read lazily: take from it until a token budget
        is full, and stop; at most ``page`` records past the last one taken are read.

        The index is asked for ``page`` rows at a time (doubling up to 1,024 rows), and their lines are read
        and parsed ``page`` at a time (up to 64).

        Raises:
            StoreError: see :meth:`session_records`.
        """
        index, before, rows, lines = self.delivery.index, None, page, min(page, 64)
        while True:
            entries = index.session_entries(self.session_id, rows, before_seq=before)
            for start in range(0, len(entries), lines):
                for record in index.records(entries[start : start + lines]):
                    if is_turn_of(record, self.session_id):
                        yield record
            if len(entries) < rows:
                return
            before, rows = entries[-1].seq, min(rows * 2, 1024)

    def recent_messages(self) -> Iterator[BaseMessage]:
        """:meth:`recent_records` as LangChain messages (see :attr:`messages`), newest first."""
        for record in self.recent_records():
            yield to_message(record)

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """This session's conversation as LangChain messages, oldest first.

        Exactly: the records of the live log with this ``session_id`` whose role is human, ai, system or
        tool, leaving out records made by the memory's own tasks (``metadata.task``: summaries,
        ``question_memory`` turns) and events (``metadata.event``: the ``clear`` tombstone). Other
        sessions, imports and summaries of the same namespace are not in it. Each message comes back as
        it was added (schema 2: id, tool calls, usage, names, content blocks); see
        :func:`my_llm.history.to_message`.
        """
        return [to_message(record) for record in self.session_records()]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Log messages: one locked append to disk, then a non-blocking publish.

        Raises:
            StoreError: the disk write failed (nothing was published).
            ValueError: a message whose role cannot be logged.
        """
        self.add_records([self.to_record(message) for message in messages])

    def to_record(self, message: BaseMessage) -> Record:
        """The record this history would log for ``message`` (model, tokens and cost for AI replies)."""
        model = model_of(message)
        return self.new_record(
            role_of(message),
            text_of(message),
            model=model,
            usage=usage_for(message, model),
            message=message_data(message),
        )

    def new_record(
        self,
        role: str,
        content: str,
        *,
        model: str | None = None,
        usage: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        message: dict[str, Any] | None = None,
    ) -> Record:
        """A new record of this history's namespace, session and source (not logged: see :meth:`add_records`).

        Raises:
            ValueError: ``role`` is not one of :data:`my_llm.record.ROLES`.
        """
        return Record.new(
            self.namespace,
            self.session_id,
            role,
            content,
            source=self.source,
            model=model,
            usage=usage,
            metadata=metadata,
            message=message,
        )

    def add_records(self, records: Sequence[Record]) -> None:
        """Append ready-made records (an importer's, say) to disk, then publish them."""
        self.delivery.append(records)

    def clear(self) -> None:
        """Move the log to ``archive/`` (nothing is deleted) and publish a tombstone record.

        The tombstone is a ``system`` record with empty content and ``metadata = {"event": "clear"}``,
        written as the archived log's last line, so downstream consumers know the namespace was
        cleared at that time. ``messages`` is empty afterwards.
        """
        self.delivery.archive(self.new_record("system", "", metadata={"event": "clear"}))

    def flush(self, timeout: float | None = 30.0) -> int:
        """Wait for pending publishes and write their acknowledgements; returns how many are still pending
        (0 without Pub/Sub)."""
        return self.delivery.flush(timeout)

    def close(self, timeout: float | None = 30.0) -> int:
        """Flush and release the Pub/Sub client; returns how many publishes never finished.

        Those records stay in the outbox (``my-llm replay`` sends them).
        """
        self._finalizer.detach()
        return self.delivery.close(timeout)
