"""Tool calls in an export as LangChain tool calls: the assistant's call and the tool's answers, paired.

In an export (``pionxzh/chatgpt-exporter``, ``src/api.ts``: ``recipient``, ``author.name``,
``metadata.aggregate_result``), the assistant calls a tool by addressing a message to it, and the tool
answers in the next messages, written by ``author.role`` ``tool`` with ``author.name`` the tool::

    call   = {"author": {"role": "assistant"}, "recipient": "python" | "web.run" | "dalle.text2im" | "bio" |
              "canmore.create_textdoc" | "browser" | ...,
              "content": {"content_type": "code", "language": "python" | "json" | "unknown", "text": str}
                       | {"content_type": "text", "parts": [str]}}
    answer = {"author": {"role": "tool", "name": "python" | ...}, "recipient": "all",
              "content": {"content_type": "execution_output" | "tether_browsing_display" | "tether_quote" |
                          "multimodal_text" | "text" | ..., ...}}

A call becomes an ``ai`` record whose ``message`` is ``AIMessage(content="", tool_calls=[{"name": recipient,
"args": ..., "id": call id}])``; each answer after it on the same path a ``tool`` record whose ``message`` is
``ToolMessage(tool_call_id=call id, name=author name)``. The record's flat ``content`` stays the readable text.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage

from my_llm.history import message_data
from my_llm.record import Record

# Fixed namespace of the uuid5 tool call ids: the same export message always gets the same call id.
TOOL_CALL_NAMESPACE = uuid.UUID("0b8f3f7e-2a51-4c55-8f3e-5b7d3c1e9a20")
OpenCall = tuple[str, str]  # (tool call id, tool name) of the latest call on the path


def tool_call_id(conversation_id: str, message_id: str) -> str:
    """``call_`` + 24 hex digits of a uuid5 of (conversation id, export message id): stable across imports."""
    return "call_" + uuid.uuid5(TOOL_CALL_NAMESPACE, f"{conversation_id}\n{message_id}").hex[:24]


def call_args(message: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments: its code or text when that is a JSON object (``web.run``, ``dalle.text2im``,
    ``canmore.*``...), else ``{"code": text}`` for ``code`` content and ``{"text": text}`` for the rest."""
    content = message.get("content") if isinstance(message.get("content"), dict) else {}
    if isinstance(content.get("text"), str):
        raw = content["text"]
    else:
        parts = content.get("parts") if isinstance(content.get("parts"), list) else []
        raw = "\n".join(part for part in parts if isinstance(part, str))
    if raw.lstrip().startswith("{"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"code": raw} if content.get("content_type") == "code" else {"text": raw}


def with_tool_message(
    record: Record, message: dict[str, Any], open_call: OpenCall | None, conversation_id: str
) -> tuple[Record, OpenCall | None]:
    """``record`` as a tool call or a tool answer when it is one, and the call open after it.

    A ``tool`` record answers ``open_call`` (the latest call above it on its path, kept open over several
    answers); one with no call above it gets a call id of its own and ``metadata.tool_call_missing``. An
    ``ai`` record with ``metadata.recipient`` is a call and opens it; any other record closes the open call.
    Both get ``metadata.tool_call_id`` (and answers ``metadata.tool_name``).
    """
    if record.role == "tool":
        return _answer(record, message, open_call, conversation_id), open_call
    recipient = record.metadata.get("recipient")
    if record.role != "ai" or not isinstance(recipient, str):
        return record, None
    call = (tool_call_id(conversation_id, record.metadata["message_id"]), recipient)
    tool_call = {"name": recipient, "args": call_args(message), "id": call[0]}
    called = AIMessage(content="", tool_calls=[tool_call], id=record.id)
    metadata = {**record.metadata, "tool_call_id": call[0]}
    return dataclasses.replace(record, metadata=metadata, message=message_data(called)), call


def _answer(record: Record, message: dict[str, Any], open_call: OpenCall | None, conversation_id: str) -> Record:
    author = message.get("author") if isinstance(message.get("author"), dict) else {}
    name = author.get("name") if isinstance(author.get("name"), str) and author["name"] else None
    extra: dict[str, Any] = {}
    if open_call is None:
        call_id, name = tool_call_id(conversation_id, record.metadata["message_id"]), name or "tool"
        extra["tool_call_missing"] = True
    else:
        call_id, name = open_call[0], name or open_call[1]
    pointers = record.metadata.get("asset_pointers") or []
    content: str | list[str | dict[str, Any]] = record.content
    if pointers:  # images (Code Interpreter plots, generated images) as image parts
        content = [{"type": "text", "text": record.content}, *({"type": "image", "url": p} for p in pointers)]
    answered = ToolMessage(content=content, tool_call_id=call_id, name=name, id=record.id)
    metadata = {**record.metadata, "tool_call_id": call_id, "tool_name": name, **extra}
    return dataclasses.replace(record, metadata=metadata, message=message_data(answered))
