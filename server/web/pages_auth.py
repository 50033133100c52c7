"""Sign-in pages: ``GET/POST /signin`` (name and password, Argon2), ``POST /signout``, and ``GET/POST /register``
when open registration is on (``MY_LLM_OPEN_REGISTRATION=on``; a 404 page otherwise). Every POST carries the
CSRF token; sign-in attempts are rate-limited per client address (``SIGNIN_RATE``)."""

from __future__ import annotations

from functools import cache

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from limits import parse as parse_limit

from my_llm import MyLLMError
from server.db import User
from server.deps import ServerState, State
from server.security import hash_password, verify_password
from server.users import UserError, add_user, get_user
from server.web.auth import CsrfChecked, MaybeUser, PageError, safe_next, sign_in, sign_out
from server.web.templating import render

router = APIRouter(include_in_schema=False)
SIGNIN_RATE = parse_limit("20/minute")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
WRONG = "Wrong name or password."


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the name is unknown, so both failures take the same time."""
    return hash_password("not the password of anyone")


def _field(form, name: str, max_chars: int = 1024) -> str:
    value = form.get(name)
    return value[:max_chars] if isinstance(value, str) else ""


def _check_password(state: ServerState, name: str, password: str) -> User | None:
    with state.sessions() as session:
        try:
            user = get_user(session, name)
        except UserError:
            verify_password(_dummy_hash(), password)
            return None
        if not user.password_hash or not verify_password(user.password_hash, password) or user.disabled:
            return None
        return user


@router.get("/")
async def home() -> RedirectResponse:
    """The pages start at the history."""
    return RedirectResponse("/history", status_code=303)


@router.get("/signin")
async def signin_page(request: Request, user: MaybeUser, next: str = "/history") -> Response:
    """The sign-in form (a signed-in user goes straight to ``next``)."""
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "signin.html", None, next=safe_next(next), name="", error=None)


@router.post("/signin", dependencies=[CsrfChecked])
async def signin(request: Request, state: State) -> Response:
    """Check name and password: a session and a redirect to ``next``, or the form again with 401."""
    form = await request.form()
    name, password, target = _field(form, "name", 63).strip().lower(), _field(form, "password"), _field(form, "next")
    client = request.client.host if request.client else "unknown"
    if not state.limiter.hit(SIGNIN_RATE, f"signin:{client}"):
        raise PageError(429, "Too many sign-in attempts from your address: wait a minute and try again.")
    user = await anyio.to_thread.run_sync(_check_password, state, name, password) if name and password else None
    if user is None:
        return render(request, "signin.html", None, 401, next=safe_next(target), name=name, error=WRONG)
    sign_in(request, user)
    return RedirectResponse(safe_next(target), status_code=303)


@router.post("/signout", dependencies=[CsrfChecked])
async def signout(request: Request) -> RedirectResponse:
    """End the session and go to the sign-in page."""
    sign_out(request)
    return RedirectResponse("/signin", status_code=303)


def _registration_open(state: ServerState) -> None:
    if not state.config.open_registration:
        raise PageError(404, "Registration is closed: ask an admin for an account (my-llm-server users add NAME).")


@router.get("/register")
async def register_page(request: Request, state: State) -> Response:
    """The registration form (404 page when open registration is off)."""
    _registration_open(state)
    return render(request, "register.html", None, name="", error=None)


@router.post("/register", dependencies=[CsrfChecked])
async def register(request: Request, state: State) -> Response:
    """Create a user (name rules of :func:`server.users.check_name`, password 8+ characters, typed twice) and
    sign them in; the form again with 400 and the reason otherwise."""
    _registration_open(state)
    form = await request.form()
    name, password, again = _field(form, "name", 63).strip(), _field(form, "password"), _field(form, "password2")
    error = None
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        error = f"The password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters."
    elif password != again:
        error = "The two passwords differ."
    if error is None:

        def make() -> User:
            with state.sessions() as session:
                return add_user(session, name, password=password)

        try:
            user = await anyio.to_thread.run_sync(make)
        except MyLLMError as problem:
            error = str(problem)
    if error is not None:
        return render(request, "register.html", None, 400, name=name, error=error)
    sign_in(request, user)
    return RedirectResponse("/history", status_code=303)
