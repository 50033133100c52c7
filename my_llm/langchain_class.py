"""PubSubChatMessageHistory: a LangChain chat history that writes to disk first, then to Pub/Sub.

The seed's import path is kept: ``from my_llm.langchain_class import PubSubChatMessageHistory``.
"""

from __future__ import annotations

import functools
import logging
import uuid
import weakref
from collections.abc import Sequence
from pathlib import Path

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage

from my_llm.config import Settings
from my_llm.costs import usage_for
from my_llm.errors import PublishError
from my_llm.messages import Record, model_of, role_of, text_of
from my_llm.models import get_chat_model, get_embeddings
from my_llm.namespaces import topic_id_for, validate_namespace
from my_llm.outbox import Outbox
from my_llm.publisher import Publisher
from my_llm.store import MessageStore

log = logging.getLogger(__name__)

EXIT_FLUSH_S = 10.0


@functools.cache
def _say_disk_only() -> None:
    # functools.cache makes this a once-per-process notice without module-level mutable flags.
    log.warning(
        "No Google Cloud project is configured: messages are logged to disk only. "
        "Set GOOGLE_CLOUD_PROJECT (or PUBSUB_EMULATOR_HOST for the emulator) to publish them."
    )


class PubSubChatMessageHistory(BaseChatMessageHistory):
    """Chat history of one namespace, logged to ``<MESSAGE_HISTORY>/<namespace>/messages.jsonl``
    and published to the Pub/Sub topic ``my-llm-<namespace>``.

    Every add is written to disk first (the source of truth), then published without blocking;
    a Pub/Sub failure is logged and never raised to the caller, so nothing given is lost.

    Args:
        memory_namespace: letters, digits, ``-_.``; 1 to 200 characters (InvalidNamespaceError otherwise,
            raised before anything is written).
        pubsub_topic: topic id; ``my-llm-<namespace>`` when None.
        project_id: Google Cloud project; from settings when None. No project means disk only.
        session_id: groups the messages of one conversation (the Pub/Sub ordering key); a new uuid4
            hex when None.
        source: the record ``source`` for messages added through this object (``live``, ``read_repo``...).
        settings: defaults to ``Settings.from_env()``.
        store / publisher: hand in your own (tests, other roots); built from settings when None.
        chat / embeddings: the models the memory methods use; built from settings on first use when None.

    Delivery: acknowledged ids are recorded in the namespace's outbox; whatever Pub/Sub has not
    acknowledged (server down, process killed) stays there until ``my-llm replay`` re-publishes it.
    Pending publishes are flushed (for up to 10 s) when the object is collected or the process exits.
    """

    def __init__(
        self,
        memory_namespace: str,
        pubsub_topic: str | None = None,
        project_id: str | None = None,
        *,
        session_id: str | None = None,
        source: str = "live",
        settings: Settings | None = None,
        store: MessageStore | None = None,
        publisher: Publisher | None = None,
        chat: BaseChatModel | None = None,
        embeddings: Embeddings | None = None,
    ) -> None:
        self.namespace = validate_namespace(memory_namespace)
        self.settings = settings = settings or Settings.from_env()
        self._chat, self._embeddings = chat, embeddings
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
    def chat(self) -> BaseChatModel:
        """The chat model for summaries and questions (``get_chat_model`` from settings unless given)."""
        if self._chat is None:
            self._chat = get_chat_model(settings=self.settings)
        return self._chat

    @property
    def embeddings(self) -> Embeddings:
        """The embedder of the memory's vector store (``get_embeddings`` from settings unless given)."""
        if self._embeddings is None:
            self._embeddings = get_embeddings(settings=self.settings)
        return self._embeddings

    def apply_summarise_to_memory(self, n: int | None = None) -> str:
        """Summarise the last ``n`` messages (all when None), log it as a ``summary`` record, return the text.

        See :func:`my_llm.memory.apply_summarise_to_memory`.
        """
        from my_llm import memory

        return memory.apply_summarise_to_memory(self, self.chat, n)

    def save_vectorstore_memory(self) -> int:
        """Embed the messages not embedded yet into ``<namespace>/chroma/``; returns how many were added."""
        from my_llm import memory

        return memory.save_vectorstore_memory(self, self.embeddings)

    def question_memory(self, question: str, k: int = 8):
        """Answer ``question`` from this namespace's messages (hybrid retrieval); returns a MemoryAnswer.

        See :func:`my_llm.memory.question_memory`.
        """
        from my_llm import memory

        return memory.question_memory(self, question, self.chat, self.embeddings, k=k)

    def load_chatgpt_export(
        self, path, *, all_branches: bool = False, include_thoughts: bool = False, on_conversation=None
    ):
        """Import a ChatGPT data export (``conversations.json``, split files, a folder or the ``.zip``) into
        this namespace, published like any other record; returns an ImportReport. Re-importing adds nothing.

        See :func:`my_llm.chatgpt.import_chatgpt_export` (raises ExportError on bad input).
        """
        from my_llm.chatgpt import import_chatgpt_export

        return import_chatgpt_export(
            self, path, all_branches=all_branches, include_thoughts=include_thoughts, on_conversation=on_conversation
        )

    @property
    def memory_namespace(self) -> str:
        return self.namespace

    @property
    def path(self) -> Path:
        """The namespace's JSONL log."""
        return self.store.path

    def records(self) -> list[Record]:
        """Every record of the live log in the order it was logged (all roles, all sessions)."""
        return list(self.store.read())

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The namespace's messages as LangChain messages (``id`` = record id), oldest first."""
        return [record.to_message() for record in self.store.read()]

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
        return Record.new(
            self.namespace,
            self.session_id,
            role_of(message),
            text_of(message),
            source=self.source,
            model=model,
            usage=usage_for(message, model),
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
        tombstone = Record.new(
            self.namespace, self.session_id, "system", "", source=self.source, metadata={"event": "clear"}
        )
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
