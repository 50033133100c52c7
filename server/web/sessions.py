"""The web pages' session: a signed cookie (Starlette's ``SessionMiddleware``, itsdangerous) that is HttpOnly,
SameSite=Lax, and Secure when the request came over https; its signing key from ``MY_LLM_SECRET_KEY`` or a
random key kept in a file of the data folder, so a restart keeps everyone signed in.

The cookie is signed, not encrypted: it holds only the user's id and name and the CSRF token, which the
browser may read. Every page request re-reads the user from the database (:mod:`server.web.auth`), so a
disabled user's cookie stops working at once.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from my_llm import ConfigError
from server.config import ServerSettings

COOKIE_NAME = "my_llm_session"
MAX_AGE_S = 14 * 24 * 3600  # a session lasts two weeks from sign-in
KEY_FILE = "web_secret_key"
MIN_KEY_CHARS = 32


def key_file(config: ServerSettings) -> Path:
    """Where the generated key is kept: ``web_secret_key`` in the data folder (the parent of ``MESSAGE_HISTORY``)."""
    return config.settings.message_history.parent / KEY_FILE


def secret_key(config: ServerSettings) -> str:
    """The session signing key: ``MY_LLM_SECRET_KEY`` when set, else the key in :func:`key_file`, made once
    (64 random URL-safe characters, file mode 0600; a looser mode found later is tightened).

    Raises:
        ConfigError: the key file cannot be made or read, or holds fewer than 32 characters.
    """
    if config.secret_key:
        return config.secret_key
    path = key_file(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(0o600)
            key = path.read_text(encoding="utf-8").strip()
        else:
            key = secrets.token_urlsafe(48)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(key + "\n")
    except OSError as error:
        raise ConfigError(
            f"Cannot keep the web session key in {path}: {error}. Set MY_LLM_SECRET_KEY instead."
        ) from error
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(f"{path} holds a key shorter than {MIN_KEY_CHARS} characters: delete it to make a new one.")
    return key


class SessionCookies:
    """ASGI middleware: Starlette's ``SessionMiddleware`` with the cookie marked Secure on https requests
    (``scope["scheme"]``, which uvicorn sets from ``X-Forwarded-Proto`` behind a trusted proxy) and not on
    plain http (a local server without TLS must still be able to sign in)."""

    def __init__(self, app: ASGIApp, secret_key: str) -> None:
        options = {"secret_key": secret_key, "session_cookie": COOKIE_NAME, "max_age": MAX_AGE_S, "same_site": "lax"}
        self._plain = SessionMiddleware(app, https_only=False, **options)
        self._secure = SessionMiddleware(app, https_only=True, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secure = scope.get("scheme") in ("https", "wss")
        await (self._secure if secure else self._plain)(scope, receive, send)
