"""Secrets never leave create-script: what a test run printed is redacted before anyone sees it.

A run's output becomes the retry prompt (sent to the model and logged to ``messages.jsonl``, which is
published), so it passes through :func:`redact_output` first: the values of this process's environment
variables whose names say secret (``OPENAI_API_KEY``, ``GH_PAT``, ``SENTRY_DSN``, ``DB_PASSWORD``...) are
replaced wherever they appear, then everything :func:`my_llm.redact_secrets` finds (API keys, tokens, private
keys, passwords in URLs; detect-secrets' rules) becomes ``[REDACTED:<kind>]``. The sandbox never has those
variables (its environment is an allow-list), but a file in the user's folder may hold the same values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from my_llm import redact_secrets

MIN_SECRET_CHARS = 8
# Whole words of a name (split on "_"), or any part of it for the long ones: GH_PAT, SENTRY_DSN, APIKEY.
_SECRET_WORDS = frozenset({"PAT", "DSN", "PASS", "PWD", "AUTH", "PRIVATE", "CREDENTIALS", "COOKIE", "SESSION"})
_SECRET_PARTS = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE")
_NOT_SECRET = frozenset({"PWD", "OLDPWD"})  # the working directory, not a password


def is_secret_name(name: str) -> bool:
    """True for environment names that may hold credentials (``GH_PAT``, ``AWS_SECRET_ACCESS_KEY``, ...)."""
    upper = name.upper()
    if upper in _NOT_SECRET:
        return False
    return bool(_SECRET_PARTS.search(upper)) or any(word in _SECRET_WORDS for word in upper.split("_"))


def redact_output(text: str, environ: Mapping[str, str]) -> str:
    """``text`` without secrets: secret environment values (at least 8 characters) become
    ``[REDACTED:environment]``, then :func:`my_llm.redact_secrets` runs on the rest."""
    values = sorted(
        {value for name, value in environ.items() if is_secret_name(name) and len(value) >= MIN_SECRET_CHARS},
        key=len,
        reverse=True,
    )
    for value in values:
        text = text.replace(value, "[REDACTED:environment]")
    return redact_secrets(text)
