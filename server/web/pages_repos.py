"""The repositories page, ``/repos``: every registered repository (shared by all users, as ``/v1/repos``) with its
indexing state and progress, a form to register a folder under the roots (``MY_LLM_REPO_ROOTS``; a refusal is
shown on the page), and a question box per ready repository. An answer's ``path:Lstart-end`` sources open
``/repos/{id}/file?path=&start=&end=``: the file with the cited lines highlighted (:mod:`server.web.source_view`
decides which files may be shown). ``/repos/progress.json`` gives the rows' progress to ``static/repos.js``,
which updates the table while something is queued or indexing and reloads when a repository finishes. The
user who registered a repository, or an admin, may delete it after a confirmation page (``GET`` then ``POST
/repos/{id}/delete``, as ``DELETE /v1/repos/{id}``: its index goes, never its folder).

The page calls the same services as the API (:mod:`server.repo_paths`, :mod:`server.repo_registry`,
:class:`server.repos.RepoService`); forms are CSRF-checked ``POST``s.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from my_llm import ModelCallError, MyLLMError
from server.deps import ServerState, State
from server.repo_paths import RepoPathError, resolve_repo_path
from server.repo_registry import Repo, get_repo, list_repos, may_remove, register
from server.repos import RepoBusyError, RepoForbiddenError, RepoNotFoundError, RepoNotReadyError, RepoService
from server.web.auth import CsrfChecked, PageError, PageUser
from server.web.source_view import SourceFileError, highlighted, repo_file, style_defs
from server.web.templating import render

router = APIRouter(include_in_schema=False)
RepoId = Annotated[int, Path(ge=1, le=2**62)]
Line = Annotated[int | None, Query(ge=1, le=10_000_000)]
MAX_QUESTION_CHARS = 4000
SOURCES = 6  # chunks retrieved per question, as the API's default
_STYLE = style_defs()


def _service(request: Request) -> RepoService:
    service = getattr(request.app.state, "repo_service", None)
    if service is None:
        raise PageError(503, "The repository indexer is not running on this server.")
    return service


def _repos(state: ServerState) -> list[Repo]:
    with state.sessions() as session:
        return list_repos(session)


def _repo(state: ServerState, repo_id: int) -> Repo:
    with state.sessions() as session:
        repo = get_repo(session, repo_id)
    if repo is None:
        raise PageError(404, f"No repository {repo_id}.")
    return repo


async def _page(request: Request, user, state: ServerState, status: int = 200, **context) -> Response:
    repos = await anyio.to_thread.run_sync(_repos, state)
    values = {"path": "", "error": None, "registered": None, "deleted": None, **context}
    return render(request, "repos.html", user, status, repos=repos, roots=state.config.repo_roots, **values)


@router.get("/repos")
async def repos_page(request: Request, user: PageUser, state: State) -> Response:
    """Every repository, oldest first, with state, files done / total and any error; the forms."""
    registered, deleted = request.query_params.get("registered"), request.query_params.get("deleted")
    return await _page(request, user, state, registered=int(registered) if (registered or "").isdigit() else None,
                       deleted=int(deleted) if (deleted or "").isdigit() else None)  # fmt: skip


@router.get("/repos/progress.json")
async def progress(user: PageUser, state: State) -> JSONResponse:
    """``{"repos": [{"id", "state", "files_done", "files_total", "error"}]}`` for every repository."""
    repos = await anyio.to_thread.run_sync(_repos, state)
    rows = [{"id": r.id, "state": r.state, "files_done": r.files_done, "files_total": r.files_total,
             "error": r.error} for r in repos]  # fmt: skip
    return JSONResponse({"repos": rows}, headers={"Cache-Control": "no-store"})


@router.post("/repos", dependencies=[CsrfChecked])
async def register_repo(request: Request, user: PageUser, state: State) -> Response:
    """Register the form's ``path`` and queue its indexing, then back to the list (303); a path refused (no
    roots configured, outside them once ``..`` and symlinks are followed, not a folder) is shown on the page
    with the status the API gives (403 or 400)."""
    service = _service(request)
    raw = (await request.form()).get("path")
    raw = raw.strip() if isinstance(raw, str) else ""
    try:
        if len(raw) > 4096:
            raise RepoPathError("That path is longer than 4,096 characters.")
        folder = resolve_repo_path(raw, state.config.repo_roots)
    except RepoPathError as error:
        return await _page(request, user, state, error.status, path=raw[:4096], error=str(error))

    def save() -> Repo:
        with state.sessions() as session:
            return register(session, str(folder), folder.name, user.name)[0]

    repo = await anyio.to_thread.run_sync(save)
    if repo.state == "queued":
        service.enqueue(repo.id)
    return RedirectResponse(f"/repos?registered={repo.id}", status_code=303)


@router.post("/repos/{repo_id}/ask", dependencies=[CsrfChecked])
async def ask(request: Request, repo_id: RepoId, user: PageUser, state: State) -> Response:
    """Answer the form's ``question`` from the repository, with its sources linking to the cited lines. A
    repository not ready is a 409 page with its progress; a model that fails 502; one that cannot be loaded 503."""
    service = _service(request)
    repo = await anyio.to_thread.run_sync(_repo, state, repo_id)
    question = (await request.form()).get("question")
    question = question.strip() if isinstance(question, str) else ""
    status, reply, error = 200, None, None
    if not question or len(question) > MAX_QUESTION_CHARS:
        status, error = 400, f"Write a question of 1 to {MAX_QUESTION_CHARS} characters."
    else:
        try:
            reply = await anyio.to_thread.run_sync(service.ask, repo_id, question, SOURCES, user.namespace)
        except RepoNotFoundError as failure:
            raise PageError(404, str(failure)) from failure
        except RepoNotReadyError as failure:
            status, error = 409, str(failure).split(" GET /v1/")[0]
        except ModelCallError as failure:
            status, error = 502, f"The model did not answer: {failure}"
        except MyLLMError as failure:
            status, error = 503, f"The server cannot answer now: {failure}"
    return render(request, "repo_answer.html", user, status, repo=repo, question=question[:MAX_QUESTION_CHARS],
                  reply=reply, error=error)  # fmt: skip


@router.get("/repos/{repo_id}/file")
async def source_file(
    request: Request,
    repo_id: RepoId,
    user: PageUser,
    state: State,
    path: Annotated[str, Query(min_length=1, max_length=4096)],
    start: Line = None,
    end: Line = None,
) -> Response:
    """The file ``path`` of the repository with lines ``start``-``end`` highlighted (and 200 lines around them).
    400 for ``..``, absolute paths, binary or large files, or lines past the end; 403 for a file outside the
    repository once symlinks are followed, or a secrets file; 404 when there is no such file or repository."""
    repo = await anyio.to_thread.run_sync(_repo, state, repo_id)

    def read():
        return highlighted(repo_file(repo.path, state.config.repo_roots, path), start, end)

    try:
        shown = await anyio.to_thread.run_sync(read)
    except SourceFileError as error:
        raise PageError(error.status, str(error)) from error
    return render(request, "repo_file.html", user, repo=repo, path=path, shown=shown, style=_STYLE)


@router.get("/repos/{repo_id}/delete")
async def confirm_delete(request: Request, repo_id: RepoId, user: PageUser, state: State) -> Response:
    """The confirmation page: which repository and what goes (its index, not its folder), Delete and Cancel;
    403 for a user who may not delete it (neither who registered it nor an admin), 404 when unknown."""
    repo = await anyio.to_thread.run_sync(_repo, state, repo_id)
    if not may_remove(repo, user.name, user.is_admin):
        raise PageError(403, f"Only {repo.registered_by} (who registered it) or an admin may delete this repository.")
    return render(request, "repo_delete.html", user, repo=repo)


@router.post("/repos/{repo_id}/delete", dependencies=[CsrfChecked])
async def delete(request: Request, repo_id: RepoId, user: PageUser, state: State) -> Response:
    """Delete the repository (as ``DELETE /v1/repos/{id}``), then back to the list (303); 403, 404 or a 409 page
    (being indexed: try once it is ready), 503 when its index cannot be deleted."""
    service = _service(request)
    try:
        await anyio.to_thread.run_sync(service.remove, repo_id, user.name, user.is_admin)
    except RepoNotFoundError as failure:
        raise PageError(404, str(failure)) from failure
    except RepoForbiddenError as failure:
        raise PageError(403, str(failure)) from failure
    except RepoBusyError as failure:
        raise PageError(409, str(failure).split(" GET /v1/")[0]) from failure
    except MyLLMError as failure:  # the index folder or the Chroma server
        raise PageError(503, f"The repository could not be deleted now: {failure}") from failure
    return RedirectResponse(f"/repos?deleted={repo_id}", status_code=303)
