"""Namespace validation and the Pub/Sub topic a namespace maps to.

A namespace names a folder under ``MESSAGE_HISTORY`` and a Pub/Sub topic, so it is held to the
intersection of both rules: letters, digits, ``-``, ``_`` and ``.``; 1 to 200 characters; no ``..``.
Pub/Sub topic ids must start with a letter and be 3 to 255 characters long, hence the ``my-llm-``
prefix (https://cloud.google.com/pubsub/docs/pubsub-basics#resource_names).
"""

from __future__ import annotations

import re

from my_llm.errors import InvalidNamespaceError

MAX_NAMESPACE_LENGTH = 200
TOPIC_PREFIX = "my-llm-"
_ALLOWED = re.compile(r"[A-Za-z0-9._-]+")
_DISALLOWED_RUN = re.compile(r"[^A-Za-z0-9._-]+")


def validate_namespace(namespace: object) -> str:
    """Return ``namespace`` unchanged if it is a safe namespace.

    Raises:
        InvalidNamespaceError: empty, longer than 200 characters, a character outside
            ``[A-Za-z0-9._-]`` (a path separator, for example), ``..`` anywhere, or ``.`` alone.
    """
    if not isinstance(namespace, str) or not namespace:
        raise InvalidNamespaceError("The namespace is empty: give a name such as 'debugger' or 'team-notes'.")
    if len(namespace) > MAX_NAMESPACE_LENGTH:
        raise InvalidNamespaceError(
            f"The namespace is {len(namespace)} characters long; the limit is {MAX_NAMESPACE_LENGTH}."
        )
    if not _ALLOWED.fullmatch(namespace):
        bad = sorted(set(_DISALLOWED_RUN.findall(namespace)[0]))
        raise InvalidNamespaceError(
            f"The namespace {namespace!r} contains {''.join(bad)!r}: use only letters, digits, '-', '_' and '.'."
        )
    if ".." in namespace or namespace == ".":
        raise InvalidNamespaceError(
            f"The namespace {namespace!r} contains '..' or is '.', which would point outside its folder."
        )
    return namespace


def namespace_from_name(name: str) -> str:
    """Turn any label (a repository folder name, say) into a valid namespace.

    Runs of characters that are not allowed become ``-``; ``..`` collapses to ``.``; the result is
    cut to the length limit. Raises InvalidNamespaceError if nothing usable is left.
    """
    cleaned = _DISALLOWED_RUN.sub("-", name).strip("-.")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)[:MAX_NAMESPACE_LENGTH]
    return validate_namespace(cleaned)


def topic_id_for(namespace: str) -> str:
    """The Pub/Sub topic id of a namespace: ``my-llm-<namespace>``."""
    return TOPIC_PREFIX + validate_namespace(namespace)
