"""The record: one JSON object per message, the same on disk, in Pub/Sub and in BigQuery; its times and namespaces.

No LangChain and no I/O here: the conversions to and from LangChain messages are in :mod:`my_llm.history`.

Schema 2 (``../shared/DESIGN.md``; also the BigQuery table's columns)::

    {"schema": 2, "id": "<uuid4 hex>", "namespace": "debugger", "session_id": "...",
     "role": "human|ai|system|tool|summary", "content": "...",
     "created_at": "2026-11-21T10:00:00.123456Z", "source": "live|chatgpt_export|read_repo|create_script",
     "model": "openai:gpt-4o-mini" | null,
     "usage": {"input_tokens": 1, "output_tokens": 2, "cost_usd": 0.0001} | null, "metadata": {...},
     "message": {"type": "ai", "data": {...}} | null}

The flat fields are for analytics (``content`` is the message's text). ``message`` is the whole LangChain
message as ``langchain_core.messages.message_to_dict`` serialises it, so tool calls, the message's own id,
name, additional_kwargs, response and usage metadata, artifacts and content blocks round-trip; it is null
for records that are not a LangChain message (summaries, tombstones, imports of plain text). Schema 1 is
schema 2 without ``message``; its lines are still read.

The record's ``id`` is its own uuid4, never the message's id: consumers de-duplicate on the record id
(Pub/Sub delivers at least once), so a message legitimately added twice is two records and neither vanishes.

Namespaces: a namespace names a folder under ``MESSAGE_HISTORY`` and a Pub/Sub topic, so it is held to the
intersection of both rules: letters, digits, ``-``, ``_`` and ``.``; 1 to 200 characters; no ``..``.
Pub/Sub topic ids must start with a letter and be 3 to 255 characters long, hence the ``my-llm-``
prefix (https://cloud.google.com/pubsub/docs/pubsub-basics#resource_names).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from my_llm.errors import InvalidNamespaceError

SCHEMA_VERSION = 2
ROLES = ("human", "ai", "system", "tool", "summary")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
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


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def format_time(moment: datetime) -> str:
    """``2026-11-21T10:00:00.123456Z``; a naive datetime is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(_TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (``Z`` or an offset) into an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class Record:
    """One message as schema 2 describes it (see the module docstring). Build new ones with :meth:`new`."""

    id: str
    namespace: str
    session_id: str
    role: str
    content: str
    created_at: str
    source: str = "live"
    model: str | None = None
    usage: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    message: dict[str, Any] | None = None
    schema: int = SCHEMA_VERSION

    @classmethod
    def new(
        cls,
        namespace: str,
        session_id: str,
        role: str,
        content: str,
        *,
        source: str = "live",
        model: str | None = None,
        usage: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        created_at: datetime | None = None,
        message: dict[str, Any] | None = None,
    ) -> Record:
        """A record with a fresh uuid4 id, stamped now unless ``created_at`` is given.

        Raises:
            InvalidNamespaceError: see :func:`validate_namespace`.
            ValueError: ``role`` is not one of ROLES.
        """
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
        return cls(
            id=uuid.uuid4().hex,
            namespace=validate_namespace(namespace),
            session_id=session_id,
            role=role,
            content=content,
            created_at=format_time(created_at or utc_now()),
            source=source,
            model=model,
            usage=usage,
            metadata=dict(metadata or {}),
            message=message,
        )

    def to_json(self) -> str:
        """One line of JSON (no newline), keys in schema order, non-ASCII kept as is.

        A value JSON cannot hold (bytes in ``additional_kwargs``, say) is written as its ``str``, so a
        record is never refused for an odd field.
        """
        return json.dumps(
            {"schema": self.schema, **asdict(self)}, ensure_ascii=False, separators=(",", ":"), default=str
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """Rebuild a record from its JSON object.

        Raises:
            ValueError: a required field is missing or the schema is newer than this code reads.
        """
        schema = data.get("schema", SCHEMA_VERSION)
        if not isinstance(schema, int) or schema > SCHEMA_VERSION:
            raise ValueError(f"record schema {schema!r} is newer than this version of my_llm reads")
        try:
            return cls(
                id=data["id"],
                namespace=data["namespace"],
                session_id=data["session_id"],
                role=data["role"],
                content=data["content"],
                created_at=data["created_at"],
                source=data.get("source", "live"),
                model=data.get("model"),
                usage=data.get("usage"),
                metadata=data.get("metadata") or {},
                message=data.get("message"),
                schema=schema,
            )
        except KeyError as missing:
            raise ValueError(f"record is missing the field {missing.args[0]!r}") from None

    @classmethod
    def from_json(cls, line: str | bytes) -> Record:
        """Parse one JSON line. Raises ValueError (json.JSONDecodeError included) on bad input."""
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("a record must be a JSON object")
        return cls.from_dict(data)

    def pubsub_attributes(self) -> dict[str, str]:
        """The Pub/Sub attributes consumers filter and de-duplicate on."""
        return {"namespace": self.namespace, "role": self.role, "id": self.id, "schema": str(self.schema)}
