"""Password hashing (Argon2id, argon2-cffi) and API keys: random, shown once, stored as a SHA-256 digest.

A key has 256 bits of randomness, so a fast digest is enough to store it (a lookup by digest is one index
read); passwords are low-entropy and get Argon2.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

KEY_PREFIX = "mlk_"
_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (PHC string)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; False for a wrong password or a broken hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_api_key() -> str:
    """A new API key: ``mlk_`` and 43 URL-safe characters (32 random bytes)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    """The hex SHA-256 of ``key``: what the database stores and looks keys up by."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
