"""PubSubChatMessageHistory: the seed's chat history, at the seed's import path.

``from my_llm.langchain_class import PubSubChatMessageHistory`` keeps working. The class is
:class:`my_llm.history.ChatHistory` (disk first, then Pub/Sub) plus the seed's convenience methods,
which hand the history to :mod:`my_llm.memory` and :mod:`my_llm.importers.chatgpt`. Memory and the
importers take the plain history, so nothing below this module imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel

from my_llm import memory
from my_llm.history import ChatHistory
from my_llm.importers.chatgpt import ImportReport, import_chatgpt_export
from my_llm.models import get_chat_model, get_embeddings


class PubSubChatMessageHistory(ChatHistory):
    """:class:`my_llm.history.ChatHistory` with the seed's memory and import methods.

    Args:
        chat / embeddings: the models the memory methods use; built from settings on first use when None.
        Everything else: see :class:`my_llm.history.ChatHistory`.
    """

    def __init__(
        self,
        memory_namespace: str,
        session_id: str | None = None,
        pubsub_topic: str | None = None,
        project_id: str | None = None,
        *,
        chat: BaseChatModel | None = None,
        embeddings: Embeddings | None = None,
        **options,
    ) -> None:
        super().__init__(memory_namespace, session_id, pubsub_topic, project_id, **options)
        self._chat, self._embeddings = chat, embeddings

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
        return memory.apply_summarise_to_memory(self, self.chat, n)

    def save_vectorstore_memory(self) -> int:
        """Embed the messages not embedded yet into ``<namespace>/chroma/``; returns how many were added."""
        return memory.save_vectorstore_memory(self, self.embeddings)

    def question_memory(self, question: str, k: int = 8) -> memory.MemoryAnswer:
        """Answer ``question`` from this namespace's messages (hybrid retrieval); returns a MemoryAnswer.

        See :func:`my_llm.memory.question_memory`.
        """
        return memory.question_memory(self, question, self.chat, self.embeddings, k=k)

    def load_chatgpt_export(
        self,
        path: str | Path,
        *,
        all_branches: bool = False,
        include_thoughts: bool = False,
        include_user_context: bool = False,
        on_conversation: Callable[[int, int, int], None] | None = None,
    ) -> ImportReport:
        """Import a ChatGPT data export (``conversations.json``, split files, a folder or the ``.zip``) into
        this namespace, published like any other record; returns an ImportReport. Re-importing adds nothing.

        ``include_user_context`` keeps personal data (custom instructions, ChatGPT's memory writes); off by
        default. ``on_conversation(conversations done, bytes read, total bytes)`` reports progress.
        See :func:`my_llm.importers.chatgpt.import_chatgpt_export` (raises ExportError on bad input).
        """
        return import_chatgpt_export(
            self,
            path,
            all_branches=all_branches,
            include_thoughts=include_thoughts,
            include_user_context=include_user_context,
            on_conversation=on_conversation,
        )
