"""Questions over a user's memory: every namespace of theirs (``user-<name>`` and ``user-<name>.key-<label>``)
searched by my_llm's hybrid memory retriever, the hits given to the chat model, the answer citing records.

Freshness: before each question, a namespace whose log changed since its last sync is brought up to date
(:func:`my_llm.memory.sync_records`: new records embedded, locally with ONNX MiniLM, about 25 records/s on 2
cores; unchanged logs cost one read). What is synced is the log *without* deleted conversations (sessions
with a tombstone, :mod:`server.logbook`), so their records leave the vector store at the next question and
are never cited. Earlier memory questions and answers (``metadata.task = "question_memory"``) are not cited.

The question and its answer are logged in the asker's own namespace as a new conversation (session), with
``metadata.task = "question_memory"`` and the cited ids in the answer's ``metadata.sources``, like
:func:`my_llm.memory.question_memory` does for one namespace.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from langchain_core.embeddings import Embeddings

from my_llm import Record, Settings, default_chat_spec, get_chat_model, get_embeddings, list_namespaces, model_label
from my_llm.memory import (
    ANSWER_PROMPT,
    QUESTION_TASK,
    answer_from_context,
    memory_retriever,
    sync_records,
    transcript_line,
)
from my_llm.retrieval import HybridRetriever, ScoredDocument
from server.conversation_log import ConversationLog
from server.logbook import DELETE_EVENT, Logbook
from server.users import namespaces_of_user

EXCERPT_CHARS = 300
NO_RECORDS_ANSWER = (
    "There are no conversation records to answer from yet: talk through the proxy (/v1/chat/completions) or "
    "/v1/code first, then ask again."
)


@dataclass(frozen=True)
class CitedRecord:
    """A record the answer was given: its id, namespace, session (conversation id), role, time, text excerpt
    (the first ``EXCERPT_CHARS`` characters)."""

    id: str
    namespace: str
    session: str
    role: str
    created_at: str
    excerpt: str

    @classmethod
    def of(cls, record: Record) -> CitedRecord:
        text = record.content if len(record.content) <= EXCERPT_CHARS else record.content[:EXCERPT_CHARS] + "..."
        return cls(record.id, record.namespace, record.session_id, record.role, record.created_at, text)


@dataclass(frozen=True)
class MemoryReply:
    """The answer, the records it cites (oldest first), and the logged conversation with the answer's model and
    usage (``input_tokens``, ``output_tokens``, ``cost_usd``; None when nothing was asked of the model)."""

    answer: str
    sources: list[CitedRecord]
    conversation: str | None = None
    model: str | None = None
    usage: dict | None = None


@dataclass
class _Namespace:
    retriever: HybridRetriever
    lock: threading.Lock = field(default_factory=threading.Lock)
    synced: tuple[int, str] | None = None  # (records in the log, last record id) at the last sync


class MemoryAnswers:
    """The server's memory questions: one per request, from many threads; the embedder is loaded at the first
    question and kept, and so is each namespace's retriever (its BM25 index lives in memory)."""

    def __init__(self, logbook: Logbook, settings: Settings) -> None:
        self.logbook, self.settings = logbook, settings
        self._embeddings: Embeddings | None = None
        self._namespaces: dict[str, _Namespace] = {}
        self._lock = threading.Lock()

    def embeddings(self) -> Embeddings:
        """The embedder (``MY_LLM_EMBEDDINGS``, default local ONNX MiniLM), loaded once.

        Raises:
            ModelUnavailableError: the embedder cannot be loaded.
        """
        with self._lock:
            if self._embeddings is None:
                self._embeddings = get_embeddings(settings=self.settings)
            return self._embeddings

    def _namespace(self, namespace: str) -> _Namespace:
        embeddings = self.embeddings()
        with self._lock:
            state = self._namespaces.get(namespace)
            if state is None:
                retriever = memory_retriever(self.logbook.history(namespace), embeddings)
                state = self._namespaces[namespace] = _Namespace(retriever)
            return state

    def search(self, namespace: str, question: str, k: int) -> list[tuple[ScoredDocument, Record]]:
        """The ``k`` best live records of ``namespace`` for ``question`` (after syncing its store), best first.

        Raises:
            VectorStoreUnavailableError: ``CHROMA_HOST`` is set and its server does not answer.
        """
        state = self._namespace(namespace)
        with state.lock:
            records = self.logbook.history(namespace).records()
            deleted = {r.session_id for r in records if r.metadata.get("event") == DELETE_EVENT}
            live = {r.id: r for r in records if r.session_id not in deleted}
            mark = (len(records), records[-1].id if records else "")
            if state.synced != mark:
                # A local store drops every id not in ``live`` by itself; a shared one only the ids named.
                gone = {r.id for r in records if r.session_id in deleted} if state.retriever.chroma_host else None
                sync_records(state.retriever, list(live.values()), cleared=gone)
                state.synced = mark
            hits = state.retriever.search(question, k=k, where={"task": {"$ne": QUESTION_TASK}})
        return [(hit, live[hit.id]) for hit in hits if hit.id in live]

    def ask(self, log_namespace: str, owner: str, question: str, k: int = 8, *, as_admin: bool = False) -> MemoryReply:
        """Answer ``question`` from user ``owner``'s namespaces; the question and answer are logged in
        ``log_namespace`` (the asker's key's namespace), with ``metadata.as_user`` when ``as_admin`` (an admin
        asking another user's memory).

        Raises:
            ModelCallError: the chat model did not answer (the question is logged with the error).
            ModelUnavailableError: the chat model or embedder cannot be loaded.
            VectorStoreUnavailableError: ``CHROMA_HOST`` is set and its server does not answer.
        """
        existing = set(list_namespaces(self.settings.message_history))
        namespaces = [ns for ns in namespaces_of_user(owner, existing) if ns in existing]
        found = [hit for ns in namespaces for hit in self.search(ns, question, k)]
        found.sort(key=lambda pair: pair[0].score, reverse=True)
        used = sorted((record for _, record in found[:k]), key=lambda r: (r.created_at, r.id))
        if not used:
            return MemoryReply(answer=NO_RECORDS_ANSWER, sources=[])
        spec = default_chat_spec(self.settings)
        log = ConversationLog(self.logbook, log_namespace)
        asked = {"task": QUESTION_TASK, **({"as_user": owner} if as_admin else {})}
        answer = answer_from_context(
            get_chat_model(spec, self.settings),
            ANSWER_PROMPT,
            "\n".join(transcript_line(r) for r in used),
            question,
            history=log,
            question_metadata=asked,
            answer_metadata={**asked, "sources": [r.id for r in used]},
            model_name=model_label(spec),
        )
        logged = log.last_answer()
        return MemoryReply(
            answer=answer.text,
            sources=[CitedRecord.of(r) for r in used],
            conversation=log.session_id,
            model=logged.model if logged else None,
            usage=logged.usage if logged else None,
        )
