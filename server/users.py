"""Users and keys: the operations the admin CLI and the API share (no HTTP, no click here).

Every function takes a SQLAlchemy session and commits its own change. Errors are :class:`UserError`
with a message that says what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from my_llm import MyLLMError
from server.db import ApiKey, User
from server.security import hash_password, key_digest, new_api_key

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class UserError(MyLLMError):
    """A user operation that cannot be done (unknown user, name taken, invalid name)."""


def namespace_of(user_name: str) -> str:
    """The message-log namespace of a user's proxy and API traffic: ``user-<name>``."""
    return f"user-{user_name}"


KEY_NAMESPACE_MARK = ".key-"  # user names may not contain it, so a key namespace names one user
LABEL_PATTERN = re.compile(r"^[a-z0-9_-]{1,40}$")


def key_namespace(user_name: str, label: str | None) -> str:
    """The namespace a key logs to: ``user-<name>``, or ``user-<name>.key-<label>`` for a key made with a
    namespace label (``users key NAME --namespace LABEL``; label: 1-40 of ``a-z0-9_-``)."""
    if not label:
        return namespace_of(user_name)
    if not LABEL_PATTERN.match(label):
        raise UserError(f"Invalid namespace label {label!r}: use 1-40 lowercase letters, digits, '_' or '-'.")
    return f"{namespace_of(user_name)}{KEY_NAMESPACE_MARK}{label}"


def owns_namespace(user_name: str, namespace: str) -> bool:
    """True when ``namespace`` is one of ``user_name``'s: ``user-<name>`` or ``user-<name>.key-<label>``."""
    own = namespace_of(user_name)
    if namespace == own:
        return True
    label = namespace.removeprefix(own + KEY_NAMESPACE_MARK)
    return label != namespace and bool(LABEL_PATTERN.match(label))


def user_of_namespace(namespace: str) -> str | None:
    """The user owning a user namespace (``user-<name>`` or ``user-<name>.key-<label>``); None for another."""
    if not namespace.startswith("user-"):
        return None
    return namespace.removeprefix("user-").partition(KEY_NAMESPACE_MARK)[0] or None


def namespaces_of_user(user_name: str, existing: Iterable[str]) -> list[str]:
    """The user's namespaces among ``existing`` (e.g. :func:`my_llm.list_namespaces`), their main one first
    (always included, even before anything was logged in it)."""
    own = namespace_of(user_name)
    return [own, *sorted(ns for ns in set(existing) if ns != own and owns_namespace(user_name, ns))]


def check_name(name: str) -> str:
    """``name`` if it is a valid user name (lowercase letters, digits, ``_.-``, 1-63, not starting with
    punctuation); raises UserError otherwise."""
    if not NAME_PATTERN.match(name) or ".." in name or KEY_NAMESPACE_MARK in name:
        raise UserError(
            f"Invalid user name {name!r}: use 1-63 lowercase letters, digits, '_', '.', '-' (no '..' or '.key-')."
        )
    return name


def get_user(session: Session, name: str) -> User:
    """The user called ``name``; raises UserError when there is none."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise UserError(f"No user {name!r}: add it with `my-llm-server users add {name}`.")
    return user


def add_user(session: Session, name: str, *, admin: bool = False, password: str | None = None) -> User:
    """Create a user (password hashed with Argon2 when given); raises UserError if the name is taken."""
    check_name(name)
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise UserError(f"User {name!r} exists already.")
    user = User(name=name, is_admin=admin, password_hash=hash_password(password) if password else None)
    session.add(user)
    session.commit()
    return user


def list_users(session: Session) -> list[tuple[User, dict[str | None, int]]]:
    """Every user, by name, with their live (not revoked) keys counted per namespace label (None: keys
    that log to the user's main namespace), e.g. ``(alice, {None: 1, "ci": 2})``."""
    users = session.scalars(select(User).order_by(User.name)).all()
    listed = []
    for user in users:
        labels: dict[str | None, int] = {}
        for key in user.keys:
            if key.revoked_at is None:
                labels[key.namespace_label] = labels.get(key.namespace_label, 0) + 1
        listed.append((user, labels))
    return listed


def disable_user(session: Session, name: str) -> User:
    """Disable a user: their keys stop working at once (they stay in the database)."""
    user = get_user(session, name)
    user.disabled = True
    session.commit()
    return user


def create_key(session: Session, name: str, namespace_label: str | None = None) -> str:
    """A new API key for user ``name``; the key itself is returned once and only its digest is stored.

    With ``namespace_label``, what the key's requests log goes to ``user-<name>.key-<label>`` (see
    :func:`key_namespace`); raises UserError for an unknown user or an invalid label.
    """
    user = get_user(session, name)
    key_namespace(user.name, namespace_label)  # validates the label
    key = new_api_key()
    row = ApiKey(user_id=user.id, digest=key_digest(key), prefix=key[:12], namespace_label=namespace_label or None)
    session.add(row)
    session.commit()
    return key


def revoke_keys(session: Session, name: str, prefix: str | None = None) -> int:
    """Revoke user ``name``'s live keys (only those starting with ``prefix`` when given); returns how many."""
    user = get_user(session, name)
    now, count = datetime.now(timezone.utc), 0
    for key in user.keys:
        if key.revoked_at is None and (prefix is None or key.prefix.startswith(prefix[:12])):
            key.revoked_at, count = now, count + 1
    session.commit()
    return count


def live_key(session: Session, key: str) -> ApiKey | None:
    """The live key row of ``key`` (its ``user`` loaded) when the key is known, not revoked and its user
    enabled; None otherwise."""
    row = session.scalar(select(ApiKey).where(ApiKey.digest == key_digest(key), ApiKey.revoked_at.is_(None)))
    if row is None or row.user.disabled:
        return None
    return row


def user_for_key(session: Session, key: str) -> User | None:
    """The enabled user owning the live key ``key``; None for an unknown, revoked or disabled one."""
    row = live_key(session, key)
    return None if row is None else row.user
