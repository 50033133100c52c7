"""Who is signed in to the pages, and CSRF protection of their forms: the dependencies every page module uses.

- ``PageUser``: the signed-in user as a :class:`server.deps.CurrentUser`, re-read from the database on every
  request (a disabled user's cookie stops working at once); anyone else is redirected to
  ``/signin?next=<this page>`` (:class:`SignInRequired`).
- ``csrf_token(request)``: the session's CSRF token (made on first use) for a form's hidden ``csrf_token``
  field; ``CsrfChecked`` on a POST route refuses, with a 403 page, a form whose field does not match it
  (compared in constant time). The token lives in the signed session cookie (synchronizer token pattern,
  OWASP's CSRF cheat sheet); SameSite=Lax cookies are a second line.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote, urlsplit

import anyio
from fastapi import Depends, Request

from server.db import User
from server.deps import CurrentUser, ServerState, State
from server.users import namespace_of, namespaces_of_user

CSRF_FIELD = "csrf_token"
DEFAULT_PAGE = "/history"


class PageError(Exception):
    """A page that cannot be shown: rendered as ``error.html`` with ``status`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignInRequired(Exception):
    """No valid session: answered with a redirect to ``/signin?next=<next_path>``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site (``/...``, no scheme, no host, no ``//`` or ``/\\`` start,
    no control characters), else ``/history``: a sign-in never redirects to another site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return DEFAULT_PAGE
    if any(ord(char) < 32 or char == "\x7f" for char in target):
        return DEFAULT_PAGE
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else DEFAULT_PAGE


def signin_url(next_path: str) -> str:
    """``/signin?next=...`` for ``next_path`` (URL-encoded)."""
    return "/signin?next=" + quote(safe_next(next_path), safe="")


def csrf_token(request: Request) -> str:
    """The session's CSRF token (43 URL-safe characters), made and stored in the session on first use."""
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = request.session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


async def check_csrf(request: Request) -> None:
    """Refuse (403 page) a form POST whose ``csrf_token`` field is missing or is not the session's token."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get(CSRF_FIELD)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PageError(403, "This form has expired or did not come from this site (CSRF check failed). "
                             "Go back, reload the page and try again.")  # fmt: skip


CsrfChecked = Depends(check_csrf)


def sign_in(request: Request, user: User) -> None:
    """Start a fresh session for ``user`` (a new CSRF token too: nothing from before sign-in is kept)."""
    request.session.clear()
    request.session.update({"uid": user.id, "name": user.name})
    csrf_token(request)


def sign_out(request: Request) -> None:
    """End the session (the cookie is cleared)."""
    request.session.clear()


def _load(state: ServerState, user_id: int) -> User | None:
    with state.sessions() as session:
        return session.get(User, user_id)


async def get_page_user(request: Request, state: State) -> CurrentUser:
    """The user of the session cookie; raises :class:`SignInRequired` when there is none, or when the user
    was disabled, deleted or renamed since signing in (the session is then ended)."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    user_id, name = request.session.get("uid"), request.session.get("name")
    if not isinstance(user_id, int):
        raise SignInRequired(here)
    user = await anyio.to_thread.run_sync(_load, state, user_id)
    if user is None or user.disabled or user.name != name:
        sign_out(request)
        raise SignInRequired(here)
    return CurrentUser(user.id, user.name, user.is_admin, f"web-session-{user.id}")


async def get_optional_user(request: Request, state: State) -> CurrentUser | None:
    """The signed-in user, or None (for pages anyone may see, such as ``/signin``)."""
    try:
        return await get_page_user(request, state)
    except SignInRequired:
        return None


def user_namespaces(state: ServerState, user: CurrentUser) -> list[str]:
    """The user's namespaces on disk (``user-<name>`` first, then its ``user-<name>.key-<label>`` ones): what
    their pages read."""
    return namespaces_of_user(user.name, state.logbook.user_namespaces(prefix=namespace_of(user.name)))


PageUser = Annotated[CurrentUser, Depends(get_page_user)]
MaybeUser = Annotated[CurrentUser | None, Depends(get_optional_user)]
