"""What every route needs, declared once: the server's state and the current user from
``Authorization: Bearer <key>`` (also rate-limited per key here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

import anyio
import httpx
from fastapi import Depends, HTTPException, Request
from limits import parse as parse_limit
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.orm import sessionmaker

from my_llm import list_namespaces
from server.config import ServerSettings
from server.logbook import Logbook
from server.security import key_digest
from server.users import key_namespace, live_key, namespace_of, namespaces_of_user

AUTH_CACHE_SIZE = 10_000


@dataclass
class ServerState:
    """The server's long-lived parts, built once by :func:`server.app.create_app`."""

    config: ServerSettings
    sessions: sessionmaker
    logbook: Logbook
    limiter: MovingWindowRateLimiter
    rate: object  # a limits RateLimitItem
    http: httpx.AsyncClient | None = None  # the upstream client, opened and closed by the app's lifespan
    auth_cache: dict = field(default_factory=dict)  # key digest -> (expires at, CurrentUser | None)

    @classmethod
    def build(cls, config: ServerSettings, sessions: sessionmaker) -> ServerState:
        """Parts from settings (the logbook writes under ``MESSAGE_HISTORY``)."""
        return cls(
            config,
            sessions,
            Logbook(config.settings),
            MovingWindowRateLimiter(MemoryStorage()),
            parse_limit(config.rate_limit),
        )


@dataclass(frozen=True)
class CurrentUser:
    """The signed-in user as routes see it (a plain value, no database session attached).

    Attributes:
        key_id: the first 16 hex digits of the key's digest (the rate limit's key).
        namespace: where this request's records are logged: the key's namespace (``user-<name>``, or
            ``user-<name>.key-<label>`` for a key made with ``--namespace``); ``user-<name>`` when empty.
            Reads cover all of the user's namespaces (:func:`readable_namespaces`).
    """

    id: int
    name: str
    is_admin: bool
    key_id: str
    namespace: str = ""

    def __post_init__(self) -> None:
        if not self.namespace:
            object.__setattr__(self, "namespace", namespace_of(self.name))


def readable_namespaces(state: ServerState, user_name: str) -> list[str]:
    """Every namespace of ``user_name`` that reads cover: ``user-<name>`` first (even before anything was
    logged in it), then the ``user-<name>.key-<label>`` namespaces on disk, sorted. Lists one folder."""
    return namespaces_of_user(user_name, list_namespaces(state.config.settings.message_history))


async def get_state(request: Request) -> ServerState:
    """The :class:`ServerState` of the app serving ``request``."""
    return request.app.state.server


State = Annotated[ServerState, Depends(get_state)]


def _lookup(state: ServerState, key: str, digest: str) -> CurrentUser | None:
    with state.sessions() as session:
        row = live_key(session, key)
        if row is None:
            return None
        user = row.user
        namespace = key_namespace(user.name, row.namespace_label)
        return CurrentUser(user.id, user.name, user.is_admin, digest[:16], namespace)


async def get_current_user(request: Request, state: State) -> CurrentUser:
    """The user owning the request's bearer key; 401 when it is missing, unknown, revoked or the user is
    disabled; 429 when the key is over its rate limit.

    A lookup is remembered for ``auth_cache_s`` seconds (default 1), so a revoked key or a disabled user
    stops working within that time.
    """
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise HTTPException(401, "Missing API key: send 'Authorization: Bearer <key>'.", {"WWW-Authenticate": "Bearer"})
    digest, now = key_digest(key), time.monotonic()
    cached = state.auth_cache.get(digest)
    if cached is not None and cached[0] > now:
        current = cached[1]
    else:
        current = await anyio.to_thread.run_sync(_lookup, state, key, digest)
        if state.config.auth_cache_s > 0:
            if len(state.auth_cache) > AUTH_CACHE_SIZE:
                state.auth_cache.clear()
            state.auth_cache[digest] = (now + state.config.auth_cache_s, current)
    if current is None:
        raise HTTPException(401, "Invalid, revoked or disabled API key.", {"WWW-Authenticate": "Bearer"})
    if not state.limiter.hit(state.rate, current.key_id):
        raise HTTPException(429, f"Rate limit exceeded ({state.config.rate_limit} per key); retry later.")
    return current


User = Annotated[CurrentUser, Depends(get_current_user)]
