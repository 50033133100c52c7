"""Repositories: ``POST /v1/repos`` registers a folder under the admin's roots (``MY_LLM_REPO_ROOTS``) and
queues its indexing, ``GET /v1/repos`` and ``GET /v1/repos/{id}`` show state and progress, ``POST
/v1/repos/{id}/ask`` answers with ``path:Lstart-end`` sources (409 with the progress before the index is ready),
``DELETE /v1/repos/{id}`` removes one (its index; never the folder itself).

Repositories are shared: any user may register one (only under the admin's roots) and every user sees and
asks every registered repository; ``registered_by`` names who registered it, and only that user or an admin
may remove it. See :mod:`server.repos`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, FastAPI, HTTPException, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from my_llm import ModelCallError, MyLLMError
from server.deps import State, User
from server.errors import ErrorBody, ErrorResponse
from server.repo_paths import RepoPathError, resolve_repo_path
from server.repo_registry import Repo, get_repo, list_repos, register
from server.repos import (
    RepoBusyError,
    RepoForbiddenError,
    RepoNotFoundError,
    RepoNotReadyError,
    RepoRemovalError,
    RepoService,
)


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Start the indexing worker with the app (queuing what a stopped server left unfinished); stop it after."""
    state = app.state.server
    service = RepoService(state.sessions, state.logbook, state.config)
    Repo.metadata.create_all(state.sessions.kw["bind"], tables=[Repo.__table__])  # a database older than repos
    await anyio.to_thread.run_sync(service.start)
    app.state.repo_service = service
    try:
        yield
    finally:
        await anyio.to_thread.run_sync(service.stop)


router = APIRouter(prefix="/repos", tags=["repos"], lifespan=lifespan)
FAILURES = {status: {"model": ErrorResponse} for status in (400, 502, 503)}
RepoId = Annotated[int, Path(ge=1, le=2**62)]


class RepoRegistration(BaseModel):
    """The folder to register: an absolute path under one of the server's repository roots."""

    path: Annotated[str, Field(min_length=1, max_length=4096)]


class RepoOut(BaseModel):
    """A registered repository and its indexing progress: ``state`` queued | indexing | ready | failed,
    ``files_done`` of ``files_total`` (null until the files are listed), ``chunks`` indexed, ``error`` why it
    failed (or which files were skipped), times in UTC."""

    id: int
    name: str
    path: str
    registered_by: str
    state: Literal["queued", "indexing", "ready", "failed"]
    files_done: int
    files_total: int | None
    chunks: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None


class RepoList(BaseModel):
    """Every registered repository, oldest first."""

    data: list[RepoOut]


class RepoQuestion(BaseModel):
    """A question, and how many chunks to retrieve for it (1-50, default 6)."""

    question: Annotated[str, Field(min_length=1, max_length=4000)]
    k: Annotated[int, Field(ge=1, le=50)] = 6


class RepoSource(BaseModel):
    """A chunk the answer was given: ``citation`` is ``path:Lstart-end`` (lines 1-based, inclusive); ``kind``
    is ``code`` or ``summary``; ``score`` the fused retrieval score (higher is better)."""

    citation: str
    path: str
    start_line: int
    end_line: int
    kind: str
    score: float


class RepoAnswer(BaseModel):
    """The answer, its sources in citation order, the conversation it was logged in (the asker's namespace),
    the model and the usage (tokens, ``cost_usd`` null for an unknown price)."""

    answer: str
    sources: list[RepoSource]
    conversation: str
    model: str | None
    usage: dict | None


class RepoNotReady(BaseModel):
    """409: the error, and the repository with its progress."""

    error: ErrorBody
    repo: RepoOut


def _out(repo: Repo) -> RepoOut:
    return RepoOut.model_validate(repo, from_attributes=True)


def service_of(request: Request) -> RepoService:
    """The app's :class:`RepoService` (made by this router's lifespan); 503 when the app runs without it."""
    service = getattr(request.app.state, "repo_service", None)
    if service is None:
        raise HTTPException(503, "The repository indexer is not running (the app was started without its lifespan).")
    return service


@router.post("", response_model=RepoOut, status_code=201, responses={200: {"model": RepoOut}, **FAILURES},
             summary="Register a folder (under the admin's roots) and index it in the background")  # fmt: skip
async def register_repo(body: RepoRegistration, request: Request, response: Response, user: User, state: State):
    """Register ``path``: 201 with the new repository (queued), or 200 with the one already registered there
    (queued again to bring its index up to date unless it is being indexed). 403 when no roots are configured
    or the path resolves (``..``, symlinks) outside them; 400 for a relative path or one that is not a folder."""
    service = service_of(request)
    try:
        folder = resolve_repo_path(body.path, state.config.repo_roots)
    except RepoPathError as error:
        raise HTTPException(error.status, str(error)) from error

    def save() -> tuple[Repo, bool]:
        with state.sessions() as session:
            return register(session, str(folder), folder.name, user.name)

    repo, new = await anyio.to_thread.run_sync(save)
    if repo.state == "queued":
        service.enqueue(repo.id)
    response.status_code = 201 if new else 200
    return _out(repo)


@router.get("", response_model=RepoList, summary="Every registered repository and its progress")
async def repos(user: User, state: State) -> RepoList:
    """Every repository registered on the server (shared by all users), oldest first."""

    def read() -> list[Repo]:
        with state.sessions() as session:
            return list_repos(session)

    return RepoList(data=[_out(repo) for repo in await anyio.to_thread.run_sync(read)])


@router.get("/{repo_id}", response_model=RepoOut, summary="One repository: state and indexing progress")
async def repo(repo_id: RepoId, user: User, state: State) -> RepoOut:
    """State (queued | indexing | ready | failed), files done / total, error; 404 when unknown."""

    def read() -> Repo | None:
        with state.sessions() as session:
            return get_repo(session, repo_id)

    found = await anyio.to_thread.run_sync(read)
    if found is None:
        raise HTTPException(404, f"No repository {repo_id}.")
    return _out(found)


@router.post("/{repo_id}/ask", response_model=RepoAnswer, responses={409: {"model": RepoNotReady}, **FAILURES},
             summary="Ask a repository; sources cited as path:Lstart-end")  # fmt: skip
async def ask_repo(repo_id: RepoId, body: RepoQuestion, request: Request, user: User):
    """Answer from the repository's index with the server's default chat model. 404 when unknown, 409 (with
    the repository's state, progress and error) while it is queued, indexing or failed, 502 when the chat model
    fails, 503 when the model or embedder cannot be loaded."""
    service = service_of(request)
    try:
        reply = await anyio.to_thread.run_sync(service.ask, repo_id, body.question, body.k, user.namespace)
    except RepoNotFoundError as error:
        raise HTTPException(404, str(error)) from error
    except RepoNotReadyError as error:
        conflict = RepoNotReady(error=ErrorBody(message=str(error), type="conflict_error"), repo=_out(error.repo))
        return JSONResponse(conflict.model_dump(mode="json"), status_code=409)
    except ModelCallError as error:
        raise HTTPException(502, str(error)) from error
    sources = [
        RepoSource(
            citation=hit.chunk.citation,
            path=hit.chunk.path,
            start_line=hit.chunk.start_line,
            end_line=hit.chunk.end_line,
            kind=hit.chunk.kind,
            score=hit.score,
        )
        for hit in reply.sources
    ]
    return RepoAnswer(answer=reply.answer, sources=sources, conversation=reply.conversation, model=reply.model,
                      usage=reply.usage)  # fmt: skip


@router.delete("/{repo_id}", status_code=204, response_class=Response,
               responses={403: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
                          409: {"model": RepoNotReady}, 503: {"model": ErrorResponse}},
               summary="Remove a repository and its index (never its folder)")  # fmt: skip
async def delete_repo(repo_id: RepoId, request: Request, user: User) -> Response:
    """Remove the repository: its registry row, its in-memory index and its index folder under
    ``CHROMA_DB_PATH`` (with ``CHROMA_HOST``, its collection on the Chroma server too); the repository's own
    folder is never touched, and registering it again indexes it anew. Only the user who registered it or an
    admin may: 403 for anyone else; 404 when unknown; 409 (with its progress) while it is being indexed (a
    queued one is removed); 503 when its index cannot be deleted (nothing is removed then: try again)."""
    service = service_of(request)
    try:
        await anyio.to_thread.run_sync(service.remove, repo_id, user.name, user.is_admin)
    except RepoNotFoundError as error:
        raise HTTPException(404, str(error)) from error
    except RepoForbiddenError as error:
        raise HTTPException(403, str(error)) from error
    except RepoBusyError as error:
        conflict = RepoNotReady(error=ErrorBody(message=str(error), type="conflict_error"), repo=_out(error.repo))
        return JSONResponse(conflict.model_dump(mode="json"), status_code=409)
    except (RepoRemovalError, MyLLMError) as error:  # MyLLMError: the Chroma server does not answer
        raise HTTPException(503, str(error)) from error
    return Response(status_code=204)
