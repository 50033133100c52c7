"""Questions over a user's memory: every namespace of theirs (``user-<name>`` and ``user-<name>.key-<label>``)
searched by my_llm's hybrid memory retriever, the hits given to the chat model, the answer citing records.

Freshness: a namespace whose log changed since its last sync is brought up to date
(:func:`my_llm.memory.sync_records`: new records embedded, locally with ONNX MiniLM, about 25 records/s on 2
cores) by :meth:`MemoryAnswers.sync`, called before each question (an unchanged log costs one read there) and
in the background by :class:`MemoryFreshener`: a daemon thread the app starts and stops with itself, which every
``memory_sync_s`` seconds (``MY_LLM_MEMORY_SYNC_S``, default 30; 0: off, and questions sync as they come)
syncs every ``user-*`` namespace whose log file's ``(size, mtime_ns)`` changed since its last sync. An idle round
costs one folder listing and one ``stat`` per namespace; a changed one reads that log and embeds only its new
records, so a question finds the store ready instead of waiting for a long history to be embedded (500 records:
about 8 s on 2 cores). Both hold the namespace's lock, so a question arriving during a background sync waits for
it and nothing is embedded twice. Background failures (embedder missing, ``CHROMA_HOST`` down) are logged once
per cause as warnings and retried the next round. The syncs that embedded records are logged (``INFO``).
Background embedding yields to requests (:class:`_PacedEmbeddings`: its own embedder instance on one CPU thread,
the thread's nice raised to 10, a pause after each batch as long as the batch took). Measured with
``benchmarks/server_load.py`` (50 clients for 60 s against a stub upstream that answers at once, every turn
then waiting to be embedded; 2 cores, 2026-11-30): 316 and 356 requests/s with the freshener (0-2 client
errors, httpx ``ReadError``, in about 20,000 requests; none logged, none lost), 374 and 407 with
``MY_LLM_MEMORY_SYNC_S=0`` (0-1 errors); without the pacing and the lower priority it was 244-254 with 3-4
errors. A real upstream takes seconds per answer, far below that rate.
What is synced is the log *without* deleted conversations (sessions with a tombstone, :mod:`server.logbook`), so
their records leave the vector store at the next sync and are never cited. Earlier memory questions and answers
(``metadata.task = "question_memory"``) are not cited.

The question and its answer are logged in the asker's own namespace as a new conversation (session), with
``metadata.task = "question_memory"`` and the cited ids in the answer's ``metadata.sources``, like
:func:`my_llm.memory.question_memory` does for one namespace.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from langchain_core.embeddings import Embeddings

from my_llm import (
    MyLLMError,
    Record,
    Settings,
    default_chat_spec,
    get_chat_model,
    get_embeddings,
    list_namespaces,
    model_label,
)
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

# A child of uvicorn's logger: served by ``my-llm-server serve``, its lines land in the server's log (uvicorn
# configures only its own loggers); elsewhere it is an ordinary logger.
log = logging.getLogger("uvicorn.error.memory")

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
    stat: tuple[int, int] | None = None  # the log file's (size, mtime_ns), taken before the last sync's read


def _log_stat(path: os.PathLike) -> tuple[int, int] | None:
    """``(size, mtime_ns)`` of a log file; None when there is none."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_size, found.st_mtime_ns


_BACKGROUND = threading.local()  # .stop: the freshener's stop Event, set on its own thread only
PACE_BATCH = 32  # texts embedded between two pauses in the background
BACKGROUND_NICE = 10  # the freshener thread's own nice value (Linux); other threads keep the process's


class _PacedEmbeddings(Embeddings):
    """The server's embedder: two instances of one spec, the same vectors. Questions (any thread but the
    freshener's) use the first at full speed. The freshener's thread uses its own, made on that thread with one
    CPU thread (onnxruntime's ``threads``, when the embedder has it), at that thread's lowered priority, and
    embeds :data:`PACE_BATCH` documents at a time, each batch followed by a pause as long as it took: syncing in
    the background then leaves a busy proxy its throughput (``benchmarks/server_load.py``; see the module's
    docstring). Other attributes (``model_name``) are the first instance's."""

    def __init__(self, make: Callable[[], Embeddings]) -> None:
        self.make = make
        self.inner = make()
        self._background: Embeddings | None = None

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        stop: threading.Event | None = getattr(_BACKGROUND, "stop", None)
        if stop is None:
            return self.inner.embed_documents(texts)
        if self._background is None:  # only the freshener's thread gets here
            self._background = self.make()
            if hasattr(self._background, "threads"):
                self._background.threads = 1  # read when it loads, i.e. at its first embedding below
        vectors: list[list[float]] = []
        for start in range(0, len(texts), PACE_BATCH):
            began = time.monotonic()
            vectors.extend(self._background.embed_documents(texts[start : start + PACE_BATCH]))
            stop.wait(time.monotonic() - began)  # no pause once the server stops: finish the sync quickly
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


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
                self._embeddings = _PacedEmbeddings(lambda: get_embeddings(settings=self.settings))
            return self._embeddings

    def _namespace(self, namespace: str) -> _Namespace:
        embeddings = self.embeddings()
        with self._lock:
            state = self._namespaces.get(namespace)
            if state is None:
                retriever = memory_retriever(self.logbook.history(namespace), embeddings)
                state = self._namespaces[namespace] = _Namespace(retriever)
            return state

    def sync(self, namespace: str, *, reason: str = "question") -> dict[str, Record]:
        """Bring ``namespace``'s store up to date with its live log (under the namespace's lock: a second caller
        waits, nothing is embedded twice) and return its live records by id. Syncs only when the log's
        ``(count, last id)`` changed since the last sync; ``reason`` (``question``, ``background``) is logged
        with the syncs that embedded records.

        Raises:
            ModelUnavailableError: the embedder cannot be loaded.
            VectorStoreUnavailableError: ``CHROMA_HOST`` is set and its server does not answer.
        """
        state = self._namespace(namespace)
        with state.lock:
            return self._sync_locked(namespace, state, reason)

    def _sync_locked(self, namespace: str, state: _Namespace, reason: str) -> dict[str, Record]:
        history = self.logbook.history(namespace)
        stat = _log_stat(history.path)  # before the read: a write during it shows as a change next time
        records = history.records()
        deleted = {r.session_id for r in records if r.metadata.get("event") == DELETE_EVENT}
        live = {r.id: r for r in records if r.session_id not in deleted}
        mark = (len(records), records[-1].id if records else "")
        if state.synced != mark:
            started = time.monotonic()
            # A local store drops every id not in ``live`` by itself; a shared one only the ids named.
            gone = {r.id for r in records if r.session_id in deleted} if state.retriever.chroma_host else None
            added = sync_records(state.retriever, list(live.values()), cleared=gone)
            state.synced = mark
            if added:
                log.info(
                    "memory: %s: %d records embedded in %.1f s (%s)",
                    namespace,
                    added,
                    time.monotonic() - started,
                    reason,
                )
        state.stat = stat
        return live

    def sync_changed(self, stop: threading.Event | None = None) -> list[str]:
        """Sync every ``user-*`` namespace on disk whose log file's ``(size, mtime_ns)`` changed since its last
        sync (or that was never synced); returns those namespaces. An unchanged one costs one ``stat`` and is not
        read. Stops before the next namespace once ``stop`` is set.

        Raises:
            MemorySyncErrors: some namespaces failed (the others were synced).
        """
        changed, failed = [], {}
        for namespace in self.logbook.user_namespaces():
            if stop is not None and stop.is_set():
                break
            with self._lock:
                state = self._namespaces.get(namespace)
            if state is not None and state.synced is not None:
                if state.stat == _log_stat(self.logbook.history(namespace).path):
                    continue
            try:
                self.sync(namespace, reason="background")
            except Exception as error:  # noqa: BLE001 - one namespace's failure must not stop the others
                failed[namespace] = error
                continue
            changed.append(namespace)
        if failed:
            raise MemorySyncErrors(failed)
        return changed

    def search(self, namespace: str, question: str, k: int) -> list[tuple[ScoredDocument, Record]]:
        """The ``k`` best live records of ``namespace`` for ``question`` (after :meth:`sync`), best first.

        Raises:
            ModelUnavailableError: the embedder cannot be loaded.
            VectorStoreUnavailableError: ``CHROMA_HOST`` is set and its server does not answer.
        """
        state = self._namespace(namespace)
        with state.lock:
            live = self._sync_locked(namespace, state, "question")
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


class MemorySyncErrors(Exception):
    """Some namespaces could not be synced: ``errors`` maps each to its exception."""

    def __init__(self, errors: dict[str, Exception]) -> None:
        super().__init__(f"{len(errors)} namespaces failed to sync")
        self.errors = errors


class MemoryFreshener:
    """A daemon thread that calls :meth:`MemoryAnswers.sync_changed` every ``interval_s`` seconds (the first
    round right after :meth:`start`) until :meth:`stop`.

    A failure is logged as a warning once per cause (its type and message) and retried the next round; a cause
    is warned about again only after a round without it. Nothing it raises stops the thread.

    Args:
        answers: the server's memory (shared with the question path: same per-namespace locks).
        interval_s: seconds between the end of one round and the start of the next; 0: off (no thread).

    Raises:
        ValueError: a negative ``interval_s``.
    """

    def __init__(self, answers: MemoryAnswers, interval_s: float) -> None:
        if not interval_s >= 0:
            raise ValueError(f"interval_s must be >= 0, not {interval_s!r}.")
        self.answers, self.interval_s = answers, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[tuple[str, str]] = set()

    def start(self) -> None:
        """Start the thread (once; never when off)."""
        if not self.interval_s:
            log.info("memory: background sync off (MY_LLM_MEMORY_SYNC_S=0): each question syncs first")
        elif self._thread is None:
            self._thread = threading.Thread(target=self._run, name="memory-freshener", daemon=True)
            self._thread.start()
            log.info("memory: background sync every %g s (MY_LLM_MEMORY_SYNC_S)", self.interval_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to stop and wait up to ``timeout_s`` for it: it stops between namespaces, or at once
        when waiting for the next round; a namespace being embedded is finished first (past the timeout the
        daemon thread is left to die with the process; an unfinished sync is redone by the next start)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        _BACKGROUND.stop = self._stop  # this thread's embedding is paced (_PacedEmbeddings)
        try:  # and yields the CPU to requests (Linux: a thread's own nice value)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
        except (AttributeError, OSError):
            pass  # not Linux, or not permitted: pacing alone
        while not self._stop.is_set():
            self.round()
            self._stop.wait(self.interval_s)

    def round(self) -> None:
        """One round: sync what changed; warn about each new cause of failure."""
        try:
            self.answers.sync_changed(self._stop)
            errors: list[Exception] = []
        except MemorySyncErrors as failed:
            errors = list(failed.errors.values())
        except Exception as error:  # noqa: BLE001 - e.g. the data folder unreadable: retried next round
            errors = [error]
        causes = {(type(error).__name__, str(error)): error for error in errors}
        for cause, error in causes.items():
            if cause not in self._warned:
                detail = error if isinstance(error, MyLLMError) else repr(error)
                log.warning("memory: background sync failed, retrying every %g s: %s", self.interval_s, detail)
        self._warned = set(causes)
