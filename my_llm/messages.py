"""The record: one JSON object per message, the same on disk, in Pub/Sub and in BigQuery.

Schema 1 (``../shared/DESIGN.md``)::

    {"schema": 1, "id": "<uuid4 hex>", "namespace": "debugger", "session_id": "...",
     "role": "human|ai|system|tool|summary", "content": "...",
     "created_at": "2026-11-21T10:00:00.123456Z", "source": "live|chatgpt_export|read_repo|create_script",
     "model": "openai:gpt-4o-mini" | null,
     "usage": {"input_tokens": 1, "output_tokens": 2, "cost_usd": 0.0001} | null, "metadata": {...}}
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from pydantic import Field

from my_llm.namespaces import validate_namespace

SCHEMA_VERSION = 1
ROLES = ("human", "ai", "system", "tool", "summary")
SOURCES = ("live", "chatgpt_export", "read_repo", "create_script")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


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


class TimedChatMessage(ChatMessage):
    """A LangChain ``ChatMessage`` with the time it was said and free-form metadata (the seed's class).

    ``role`` is a record role (human, ai, system, tool, summary); ``timestamp`` is an aware UTC datetime.
    """

    timestamp: datetime = Field(default_factory=utc_now)
    metadata: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    """One message as schema 1 describes it. Build new ones with :meth:`new`."""

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
    ) -> Record:
        """A record with a fresh uuid4 id, stamped now unless ``created_at`` is given.

        Raises:
            InvalidNamespaceError: see :func:`my_llm.namespaces.validate_namespace`.
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
        )

    def to_json(self) -> str:
        """One line of JSON (no newline), keys in schema order, non-ASCII kept as is."""
        return json.dumps({"schema": self.schema, **asdict(self)}, ensure_ascii=False, separators=(",", ":"))

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

    def to_message(self) -> BaseMessage:
        """The LangChain message a chat model takes (HumanMessage, AIMessage, ...), ``id`` = record id.

        A ``summary`` record becomes a SystemMessage, since it is context the model should see.
        """
        if self.role == "human":
            return HumanMessage(content=self.content, id=self.id)
        if self.role == "ai":
            return AIMessage(content=self.content, id=self.id)
        if self.role == "tool":
            tool_call_id = str(self.metadata.get("tool_call_id", ""))
            return ToolMessage(content=self.content, id=self.id, tool_call_id=tool_call_id)
        return SystemMessage(content=self.content, id=self.id)

    def to_timed_message(self) -> TimedChatMessage:
        """The seed's :class:`TimedChatMessage` view of this record."""
        return TimedChatMessage(
            content=self.content,
            role=self.role,
            id=self.id,
            timestamp=parse_time(self.created_at),
            metadata=dict(self.metadata),
        )


def role_of(message: BaseMessage) -> str:
    """The record role of a LangChain message.

    Raises:
        ValueError: a ``ChatMessage`` whose role is none of ROLES (``user``/``assistant`` are mapped).
    """
    if isinstance(message, ChatMessage):
        role = {"user": "human", "assistant": "ai"}.get(message.role, message.role)
    else:
        role = {"human": "human", "ai": "ai", "system": "system", "tool": "tool"}.get(message.type, "")
    if role not in ROLES:
        raise ValueError(f"cannot log a message of type {message.type!r} with role {role!r}")
    return role


def model_of(message: BaseMessage) -> str | None:
    """The model name a provider reported in ``response_metadata``, if any."""
    metadata = message.response_metadata or {}
    name = metadata.get("model_name") or metadata.get("model")
    return str(name) if name else None


def text_of(message: BaseMessage) -> str:
    """The message's text; content blocks that are not text are dropped."""
    return message.text if isinstance(message.text, str) else message.text()
