"""ChatHistory: a LangChain chat history that writes to disk first, then to Pub/Sub.

The plain history that memory and the importers take; the seed's :class:`PubSubChatMessageHistory`
(``my_llm.langchain_class``) is this class plus the seed's convenience methods.
"""

from __future__ import annotations

import functools
import logging
import uuid
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from my_llm.config import Settings
from my_llm.errors import PublishError
from my_llm.history.conversions import message_data, role_of, to_message
from my_llm.log import MessageStore, Outbox, Publisher
from my_llm.models import model_of, text_of, usage_for
from my_llm.record import Record, topic_id_for, validate_namespace

log = logging.getLogger(__name__)

EXIT_FLUSH_S = 10.0
CONVERSATION_ROLES = frozenset({"human", "ai", "system", "tool"})


def is_turn_of(record: Record, session_id: str) -> bool:
    """Whether ``record`` is a conversation turn of ``session_id`` (see :attr:`ChatHistory.messages`)."""
    return (
        record.session_id == session_id
        and record.role in CONVERSATION_ROLES
        and "task" not in record.metadata
        and "event" not in record.metadata
    )


@functools.cache
def _say_disk_only() -> None:
    # functools.cache makes this a once-per-process notice without module-level mutable flags.
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

    Delivery: acknowledged ids are recorded in the namespace's outbox; whatever Pub/Sub has not
    acknowledged (server down, process killed) stays there until ``my-llm replay`` re-publishes it.
    Pending publishes are flushed (for up to 10 s) when the object is collected or the process exits.
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
        project = project_id or settings.google_cloud_project
        if publisher is None and project:
            publisher = Publisher(project, pubsub_topic or topic_id_for(self.namespace))
        self.publisher = publisher
        self.outbox = Outbox(self.store)
        self._in_outage = False  # warn once per Pub/Sub outage, not once per message
        if self.publisher is None:
            _say_disk_only()
        # The exit hook: holds the publisher and outbox, not self, so it never keeps this object alive.
        self._finalizer = weakref.finalize(self, _flush_and_close, self.publisher, self.outbox, EXIT_FLUSH_S)

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

    def session_records(self) -> list[Record]:
        """This session's conversation records, oldest first: see :attr:`messages` for which."""
        return [record for record in self.store.read() if is_turn_of(record, self.session_id)]

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
        self.store.append(records)
        if self.publisher is not None:
            self._publish(records)

    def _publish(self, records: Sequence[Record]) -> None:
        try:
            self.publisher.publish(records, on_acked=self.outbox.mark_acked)
        except PublishError as error:
            if not self._in_outage:
                log.warning("%s Records stay safe in %s.", error, self.store.path)
            self._in_outage = True
        else:
            self._in_outage = False

    def clear(self) -> None:
        """Move the log to ``archive/`` (nothing is deleted) and publish a tombstone record.

        The tombstone is a ``system`` record with empty content and ``metadata = {"event": "clear"}``,
        written as the archived log's last line, so downstream consumers know the namespace was
        cleared at that time. ``messages`` is empty afterwards.
        """
        tombstone = self.new_record("system", "", metadata={"event": "clear"})
        archived = self.store.archive(tombstone)
        if archived is not None and self.publisher is not None:
            self._publish([tombstone])

    def flush(self, timeout: float | None = 30.0) -> int:
        """Wait for pending publishes; returns how many are still pending (0 without Pub/Sub)."""
        return self.publisher.flush(timeout) if self.publisher else 0

    def close(self, timeout: float | None = 30.0) -> int:
        """Flush and release the Pub/Sub client; returns how many publishes never finished.

        Those records stay in the outbox (``my-llm replay`` sends them).
        """
        self._finalizer.detach()
        return _flush_and_close(self.publisher, self.outbox, timeout)


def _flush_and_close(publisher: Publisher | None, outbox: Outbox, timeout: float | None) -> int:
    left = publisher.close(timeout) if publisher is not None else 0
    outbox.close()
    return left
