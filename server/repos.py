"""Repositories the server indexes and answers questions about, through qna (read-repo's library).

Registration (:mod:`server.repo_paths` checks the folder, :mod:`server.repo_registry` stores it) queues the
repository; one background thread indexes queued repositories one at a time with :class:`qna.index.RepoIndex`
(structural summaries, no model; the index lives in ``$CHROMA_DB_PATH/<repo-name>-<hash>/`` as for
``read-repo``) and records ``files_done`` / ``files_total`` as it goes. Questions are answered with
:func:`qna.answer.answer_question`, citing ``path:Lstart-end``, and logged in the asker's namespace as a new
conversation (``source = "read_repo"``). Repositories are shared by every user of the server.

:meth:`RepoService.remove` takes one away (the user who registered it, or an admin): its index folder (and,
with ``CHROMA_HOST``, its collection on the Chroma server) is deleted, then its registry row; the repository's
own folder is never touched. A repository being indexed cannot be removed (:class:`RepoBusyError`, 409): the
worker moves a row from ``queued`` to ``indexing`` under the same lock as removal, so it never writes to the
index of a removed repository, and an index is only opened for a row that still exists.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from langchain_core.embeddings import Embeddings
from sqlalchemy.orm import sessionmaker

from my_llm import MyLLMError, default_chat_spec, get_chat_model, model_label, redact_secrets
from my_llm.retrieval import HybridRetriever
from qna.answer import answer_question
from qna.files import discover
from qna.index import COLLECTION, ChunkHit, RepoIndex, index_folder, repo_embeddings
from server.config import ServerSettings
from server.conversation_log import ConversationLog
from server.logbook import Logbook
from server.repo_paths import RepoPathError, under_roots
from server.repo_registry import Repo, delete_repo, get_repo, may_remove, set_progress, unfinished

logger = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.5  # how often the indexing run writes files_done to the database


class RepoNotFoundError(MyLLMError):
    """No repository has the id asked for."""


class RepoNotReadyError(MyLLMError):
    """A question to a repository whose index is not ready; ``repo`` is its registry row (state, progress)."""

    def __init__(self, repo: Repo) -> None:
        done = f"{repo.files_done}/{repo.files_total} files" if repo.files_total is not None else "not started"
        why = f": {repo.error}" if repo.error else ""
        super().__init__(
            f"Repository {repo.id} is not ready to answer: {repo.state} ({done}){why}. "
            f"GET /v1/repos/{repo.id} shows the progress; ask again once its state is ready."
        )
        self.repo = repo


class RepoBusyError(RepoNotReadyError):
    """A repository cannot be removed while it is being indexed; ``repo`` is its registry row."""

    def __init__(self, repo: Repo) -> None:
        MyLLMError.__init__(
            self,
            f"Repository {repo.id} is being indexed ({repo.files_done}/{repo.files_total or '?'} files) and cannot "
            f"be removed now. GET /v1/repos/{repo.id} shows the progress; remove it once it is ready or failed.",
        )
        self.repo = repo


class RepoForbiddenError(MyLLMError):
    """The user may not remove this repository: only the user who registered it or an admin may."""


class RepoRemovalError(MyLLMError):
    """The repository's index could not be deleted (a file system or vector store failure); nothing of the
    registry was changed, so removing it again retries."""


@dataclass
class _Open:
    """A repository's open index, the lock its writes and searches take, and whether it was removed."""

    index: RepoIndex
    lock: threading.Lock = field(default_factory=threading.Lock)
    removed: bool = False


@dataclass(frozen=True)
class RepoReply:
    """The answer, the chunks it was given (citation order), the logged conversation, model and usage."""

    answer: str
    sources: list[ChunkHit]
    conversation: str
    model: str | None
    usage: dict | None


@dataclass
class _Progress:
    """Counts files as the index reports them, writing to the database at most every PROGRESS_EVERY_S."""

    write: Callable[[int], None]
    done: int = 0
    written_at: float = field(default_factory=time.monotonic)

    def __call__(self, _relpath: str) -> None:
        self.done += 1
        if time.monotonic() - self.written_at >= PROGRESS_EVERY_S:
            self.write(self.done)
            self.written_at = time.monotonic()


class RepoService:
    """The indexing worker and the questions. :meth:`start` launches the worker (and queues again what a
    stopped server left unfinished), :meth:`stop` ends it after the current repository."""

    def __init__(self, sessions: sessionmaker, logbook: Logbook, config: ServerSettings) -> None:
        self.sessions, self.logbook, self.config = sessions, logbook, config
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards _indexes and the queued -> indexing move against removal
        self._embeddings: Embeddings | None = None
        self._indexes: dict[int, _Open] = {}

    def start(self) -> None:
        """Start the worker thread and queue the repositories left queued or half-indexed."""
        with self.sessions() as session:
            for repo_id in unfinished(session):
                self._queue.put(repo_id)
        self._thread = threading.Thread(target=self._run, name="repo-indexer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the worker to stop after the repository it is indexing, and wait up to ``timeout`` seconds."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def enqueue(self, repo_id: int) -> None:
        """Index ``repo_id`` (a queued registry row) in the background."""
        self._queue.put(repo_id)

    def _run(self) -> None:
        while (repo_id := self._queue.get()) is not None:
            self._index_one(repo_id)

    def _index(self, repo: Repo) -> _Open:
        """The repository's index (made once, kept: its BM25 index lives in memory) and its lock.

        Raises:
            RepoNotFoundError: the repository was removed (its index is not made again).
        """
        with self._lock:
            if repo.id not in self._indexes:
                with self.sessions() as session:
                    row = get_repo(session, repo.id)
                if row is None or row.path != repo.path:
                    raise RepoNotFoundError(f"No repository {repo.id}.")
                if self._embeddings is None:
                    self._embeddings = repo_embeddings(self.config.settings)
                path = Path(repo.path)
                index = RepoIndex(path, index_folder(self.config.settings.chroma_db_path, path), self._embeddings)
                self._indexes[repo.id] = _Open(index)
            return self._indexes[repo.id]

    def _index_one(self, repo_id: int) -> None:
        """Index one queued repository, recording its progress and how it ended."""
        with self.sessions() as session:
            with self._lock:  # a removal sees either the queued row (and deletes it) or the indexing one (409)
                repo = get_repo(session, repo_id)
                if repo is None or repo.state != "queued":
                    return  # removed, queued twice, or already done
                set_progress(session, repo_id, "indexing", files_done=0, files_total=None, error=None)

            def write(done: int) -> None:
                set_progress(session, repo_id, "indexing", files_done=done)

            try:
                self._update(repo, write)
            except MyLLMError as error:
                set_progress(session, repo_id, "failed", error=str(error))
            except Exception as error:  # recorded in the registry (the API shows it) and logged with its traceback
                logger.exception("Indexing repository %s (%s) failed", repo_id, repo.path)
                set_progress(session, repo_id, "failed", error=f"{type(error).__name__}: {error}")

    def _update(self, repo: Repo, write: Callable[[int], None]) -> None:
        path = Path(repo.path)
        # Checked again: the roots may have changed, or a folder on the path been replaced by a symlink.
        if path.resolve() != path or not under_roots(path, self.config.repo_roots) or not path.is_dir():
            raise RepoPathError(f"{repo.path} is no longer a folder under the repository roots (MY_LLM_REPO_ROOTS).")
        found = discover(path)
        if not found.files:
            skipped = ", ".join(f"{len(paths)} {reason}" for reason, paths in sorted(found.skipped.items()))
            raise RepoPathError(f"No files to index in {repo.path}" + (f" (skipped: {skipped})." if skipped else "."))
        total = len(found.files)
        with self.sessions() as session:
            set_progress(session, repo.id, "indexing", files_total=total)
        opened = self._index(repo)
        with opened.lock:
            report = opened.index.update(found.files, on_file=_Progress(write))
            chunks = opened.index.retriever.count()
        failed = "; ".join(f"{p} ({why})" for p, why in sorted(report.failed.items()))
        if not chunks:
            raise RepoPathError(f"Nothing in {repo.path} could be indexed: {failed or 'no chunks'}.")
        with self.sessions() as session:
            set_progress(session, repo.id, "ready", files_done=total, chunks=chunks, indexed_at=_now(),
                         error=f"Not indexed: {failed}" if failed else None)  # fmt: skip

    def ask(self, repo_id: int, question: str, k: int, log_namespace: str) -> RepoReply:
        """Answer ``question`` from repository ``repo_id``'s ``k`` best chunks, logged in ``log_namespace`` (the
        asker's key's namespace) as a new conversation.

        Raises:
            RepoNotFoundError: no repository ``repo_id``.
            RepoNotReadyError: its index is not ready (queued, indexing or failed).
            ModelCallError: the chat model did not answer.
            ModelUnavailableError: the chat model or embedder cannot be loaded.
        """
        with self.sessions() as session:
            repo = get_repo(session, repo_id)
        if repo is None:
            raise RepoNotFoundError(f"No repository {repo_id}.")
        if repo.state != "ready":
            raise RepoNotReadyError(repo)
        opened = self._index(repo)
        with opened.lock:
            if opened.removed:  # removed while this question waited for the index
                raise RepoNotFoundError(f"No repository {repo_id}.")
            hits = opened.index.search(redact_secrets(question), k=k)
        spec = default_chat_spec(self.config.settings)
        log = ConversationLog(self.logbook, log_namespace, source="read_repo")
        chat = get_chat_model(spec, self.config.settings)
        answer = answer_question(question, hits, chat, log, model_label(spec))
        logged = log.last_answer()
        return RepoReply(
            answer=answer.text,
            sources=answer.sources,
            conversation=log.session_id,
            model=logged.model if logged else None,
            usage=logged.usage if logged else None,
        )

    def remove(self, repo_id: int, user_name: str, is_admin: bool) -> Repo:
        """Remove repository ``repo_id``: drop its open index, delete its index folder (and, with
        ``CHROMA_HOST``, empty and delete its collection on the Chroma server), then its registry row. The
        repository's folder is never touched. Returns the removed row.

        Raises:
            RepoNotFoundError: no repository ``repo_id``.
            RepoForbiddenError: ``user_name`` neither registered it nor is an admin.
            RepoBusyError: it is being indexed (a queued one is removed; the worker then skips it).
            RepoRemovalError: the index could not be deleted; the registry row is kept (try again).
            VectorStoreUnavailableError: the Chroma server does not answer; the registry row is kept.
        """
        with self._lock, self.sessions() as session:
            repo = get_repo(session, repo_id)
            if repo is None:
                raise RepoNotFoundError(f"No repository {repo_id}.")
            if not may_remove(repo, user_name, is_admin):
                raise RepoForbiddenError(
                    f"Only {repo.registered_by} (who registered repository {repo_id}) or an admin may remove it."
                )
            if repo.state == "indexing":
                raise RepoBusyError(repo)
            session.expunge(repo)
            folder = index_folder(self.config.settings.chroma_db_path, Path(repo.path))
            if Path(repo.path).resolve().is_relative_to(folder.resolve()):
                raise RepoRemovalError(f"The index folder {folder} holds the repository itself: it is not deleted.")
            opened = self._indexes.pop(repo_id, None)
            if opened is not None:
                with opened.lock:  # waits for a search in progress
                    opened.removed = True
                    opened.index.retriever.drop()
                    opened.index.manifest.close()
            elif self.config.settings.chroma_host:  # not open here, but its vectors live on the server
                # as RepoIndex makes it; the embedder is never called (delete and ids embed nothing)
                retriever = HybridRetriever(folder / "chroma", self._embeddings, collection=COLLECTION)
                retriever.drop()
            try:
                if folder.exists():
                    shutil.rmtree(folder)
            except OSError as error:
                raise RepoRemovalError(f"Could not delete the index folder {folder}: {error}") from error
            delete_repo(session, repo_id)
        logger.info("Repository %s (%s) removed by %s; index folder %s deleted", repo_id, repo.path, user_name, folder)
        return repo


def _now() -> datetime:
    return datetime.now(timezone.utc)
