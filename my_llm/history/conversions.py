"""Records to LangChain messages and back: the only place that knows both shapes.

A record is :class:`my_llm.record.Record` (no LangChain); a message is a LangChain ``BaseMessage``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)
from pydantic import Field

from my_llm.record import ROLES, Record, parse_time, utc_now


class TimedChatMessage(ChatMessage):
    """A LangChain ``ChatMessage`` with the time it was said and free-form metadata (the seed's class).

    ``role`` is a record role (human, ai, system, tool, summary); ``timestamp`` is an aware UTC datetime.
    """

    timestamp: datetime = Field(default_factory=utc_now)
    metadata: dict[str, Any] = Field(default_factory=dict)


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


def message_data(message: BaseMessage) -> dict[str, Any]:
    """The record's ``message`` field: ``{"type": ..., "data": {...}}`` as LangChain's ``message_to_dict`` gives it."""
    return message_to_dict(message)


def to_message(record: Record) -> BaseMessage:
    """The LangChain message of a record.

    A schema 2 record gives back the message that was logged, field for field (its own ``id``, tool
    calls, usage and response metadata, name, content blocks...). A record without ``message`` (schema 1,
    summaries, imports) becomes the typed message of its role with ``id`` = the record id; a ``summary``
    becomes a SystemMessage, since it is context the model should see.

    Raises:
        ValueError: the record's ``message`` is not a LangChain message dict (a hand-edited log, say).
    """
    if record.message is not None:
        try:
            return messages_from_dict([record.message])[0]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"record {record.id} holds a message LangChain cannot read: {error}") from error
    if record.role == "human":
        return HumanMessage(content=record.content, id=record.id)
    if record.role == "ai":
        return AIMessage(content=record.content, id=record.id)
    if record.role == "tool":
        tool_call_id = str(record.metadata.get("tool_call_id", ""))
        return ToolMessage(content=record.content, id=record.id, tool_call_id=tool_call_id)
    return SystemMessage(content=record.content, id=record.id)


def to_timed_message(record: Record) -> TimedChatMessage:
    """The seed's :class:`TimedChatMessage` view of a record."""
    return TimedChatMessage(
        content=record.content,
        role=record.role,
        id=record.id,
        timestamp=parse_time(record.created_at),
        metadata=dict(record.metadata),
    )
