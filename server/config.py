"""Server settings: my_llm's :class:`my_llm.Settings` plus what only the server needs, read from the
environment in one place (``ServerSettings.from_env``)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from my_llm import ConfigError, Settings

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_RATE_LIMIT = "600/minute"
DEFAULT_MEMORY_SYNC_S = 30.0


@dataclass(frozen=True)
class ServerSettings:
    """What the server runs with.

    Attributes:
        settings: my_llm's settings (``MESSAGE_HISTORY``, ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ...).
        database_url: SQLAlchemy URL of the users database (``MY_LLM_DATABASE_URL``); default a SQLite
            file ``server.sqlite3`` in the data folder (the parent of ``MESSAGE_HISTORY``).
        open_registration: ``MY_LLM_OPEN_REGISTRATION=on`` lets anyone create a user; off by default.
        max_body_bytes: larger request bodies get 413 (``MY_LLM_MAX_BODY_BYTES``, default 4 MiB).
        rate_limit: per-key limit in the ``limits`` notation (``MY_LLM_RATE_LIMIT``, default 600/minute).
        upstream_timeout_s: seconds to wait for the upstream's next byte (``MY_LLM_UPSTREAM_TIMEOUT_S``, 300).
        upstream_connect_timeout_s: seconds to connect to the upstream (5).
        auth_cache_s: seconds a key lookup is remembered (``MY_LLM_AUTH_CACHE_S``, default 1; 0: never), so a
            revoked key or disabled user stops working within that time.
        memory_sync_s: seconds between the background syncs of every user namespace's memory store
            (``MY_LLM_MEMORY_SYNC_S``, default 30; 0: off, questions sync as they come); see
            :mod:`server.memory_answers`.
        prompt_guard: ``/v1/code``'s guard (``MY_LLM_PROMPT_GUARD``): ``rules`` (default), ``model`` (rules,
            then the chat model as a classifier) or ``off``; see :mod:`server.guard`.
        repo_roots: folders under which users may register repositories (``MY_LLM_REPO_ROOTS``, absolute
            paths separated by ``os.pathsep``, resolved); empty (the default): registration is refused.
        secret_key: signs the web pages' session cookies (``MY_LLM_SECRET_KEY``, 32+ characters); None: a
            random key kept in ``web_secret_key`` (mode 0600) in the data folder (see :mod:`server.web.sessions`).
    """

    settings: Settings
    database_url: str
    open_registration: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rate_limit: str = DEFAULT_RATE_LIMIT
    upstream_timeout_s: float = 300.0
    upstream_connect_timeout_s: float = 5.0
    auth_cache_s: float = 1.0
    memory_sync_s: float = DEFAULT_MEMORY_SYNC_S
    prompt_guard: str = "rules"
    repo_roots: tuple[Path, ...] = ()
    secret_key: str | None = field(default=None, repr=False)

    @property
    def upstream_base_url(self) -> str:
        """The upstream's OpenAI base URL (``OPENAI_BASE_URL``, else OpenAI's), without a trailing slash."""
        return (self.settings.openai_base_url or "https://api.openai.com/v1").rstrip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """Build from ``environ`` (default ``os.environ``).

        Raises:
            ConfigError: a number or switch that does not parse.
        """
        env = os.environ if environ is None else environ
        settings = Settings.from_env(env)

        def get(name: str) -> str | None:
            return env.get(name, "").strip() or None

        default_db = settings.message_history.parent / "server.sqlite3"
        try:
            max_body = int(get("MY_LLM_MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES)
            timeout = float(get("MY_LLM_UPSTREAM_TIMEOUT_S") or 300.0)
            auth_cache = float(get("MY_LLM_AUTH_CACHE_S") or 1.0)
        except ValueError as error:
            raise ConfigError(
                f"MY_LLM_MAX_BODY_BYTES, MY_LLM_UPSTREAM_TIMEOUT_S or MY_LLM_AUTH_CACHE_S is not a number: {error}"
            ) from error
        memory_sync = _seconds(get("MY_LLM_MEMORY_SYNC_S"), DEFAULT_MEMORY_SYNC_S, "MY_LLM_MEMORY_SYNC_S")
        registration = (get("MY_LLM_OPEN_REGISTRATION") or "off").lower()
        if registration not in {"on", "off", "1", "0", "true", "false"}:
            raise ConfigError(f"MY_LLM_OPEN_REGISTRATION={registration!r} is not one of on, off.")
        guard = (get("MY_LLM_PROMPT_GUARD") or "rules").lower()
        if guard not in ("off", "rules", "model"):
            raise ConfigError(f"MY_LLM_PROMPT_GUARD={guard!r} is not one of off, rules, model.")
        secret_key = get("MY_LLM_SECRET_KEY")
        if secret_key is not None and len(secret_key) < 32:
            raise ConfigError("MY_LLM_SECRET_KEY is shorter than 32 characters: use a long random string.")
        roots = [Path(part.strip()) for part in (get("MY_LLM_REPO_ROOTS") or "").split(os.pathsep) if part.strip()]
        if any(not root.is_absolute() for root in roots):
            raise ConfigError(f"MY_LLM_REPO_ROOTS must name absolute folders separated by {os.pathsep!r}.")
        return cls(
            settings=settings,
            repo_roots=tuple(root.resolve() for root in roots),
            secret_key=secret_key,
            prompt_guard=guard,
            database_url=get("MY_LLM_DATABASE_URL") or f"sqlite:///{default_db}",
            open_registration=registration in {"on", "1", "true"},
            max_body_bytes=max_body,
            rate_limit=get("MY_LLM_RATE_LIMIT") or DEFAULT_RATE_LIMIT,
            upstream_timeout_s=timeout,
            auth_cache_s=auth_cache,
            memory_sync_s=memory_sync,
        )


def _seconds(value: str | None, default: float, name: str) -> float:
    """``value`` as a finite number of seconds >= 0 (``default`` when unset).

    Raises:
        ConfigError: not a number, negative, or not finite (the message names ``name``).
    """
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{name}={value!r} is not a number of seconds >= 0 (0 turns it off).")
    return seconds
