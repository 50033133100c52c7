"""The web pages of my-llm-server, on the same app as the API: server-rendered Jinja2 templates
(``templates/``), one stylesheet (``static/``, no CDN: the pages work offline), signed-cookie sessions with
CSRF-checked forms (:mod:`server.web.auth`).

Pages: ``/signin``, ``/signout``, ``/register`` (when open registration is on), ``/history`` and
``/conversation``, ``/usage``, ``/memory``, ``/repos`` (and ``/repos/{id}/file``), ``/eval`` (and ``/eval/run``),
``/code`` (New code, streaming) and ``/code/{id}`` (a code conversation's versions).
A page module declares an ``APIRouter(include_in_schema=False)`` and uses ``PageUser`` (the signed-in user),
``CsrfChecked`` (on POST routes), ``csrf_token(request)`` and :func:`server.web.templating.render`;
:func:`install_web` mounts it.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from server.deps import ServerState
from server.web import pages_auth, pages_code, pages_eval, pages_history, pages_memory, pages_repos, pages_usage
from server.web.auth import PageError, SignInRequired, get_optional_user, signin_url
from server.web.sessions import SessionCookies, secret_key
from server.web.templating import STATIC_DIR, render

PAGE_ROUTERS = (pages_auth.router, pages_history.router, pages_usage.router)
PAGE_ROUTERS += (pages_memory.router, pages_repos.router, pages_eval.router)
PAGE_ROUTERS += (pages_code.router,)  # /code: the New code page and code conversations


def install_web(app: FastAPI, state: ServerState) -> None:
    """Add the pages to ``app``: their routers, ``/static``, the session middleware and the handlers that
    turn :class:`SignInRequired` into a redirect to ``/signin?next=...`` and :class:`PageError` into a page.

    Raises:
        ConfigError: no session key can be had (see :func:`server.web.sessions.secret_key`).
    """
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SessionCookies, secret_key=secret_key(state.config))

    @app.exception_handler(SignInRequired)
    async def _sign_in(_request: Request, error: SignInRequired) -> Response:
        return RedirectResponse(signin_url(error.next_path), status_code=303)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, error: PageError) -> Response:
        user = await get_optional_user(request, request.app.state.server)
        return render(request, "error.html", user, error.status, status=error.status, message=error.message)
