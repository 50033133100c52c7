"""Pure parsing of one ChatGPT export conversation into records: the tree, its branches, their records.

Each message's text comes from :mod:`my_llm.importers.chatgpt.content`, tool calls and answers are paired by
:mod:`my_llm.importers.chatgpt.tools`. No I/O here: :mod:`my_llm.importers.chatgpt.files` reads the export,
:mod:`my_llm.importers.chatgpt.importer` appends the records. The export's shapes (``../shared/data/README.md``,
section "chatgpt")::

    conversation = {"id" | "conversation_id": str, "title": str | None, "create_time": float | None,
                    "update_time": float | None, "current_node": str, "mapping": {node_id: node}, ...}
    node         = {"id": str, "parent": str | None, "children": [str], "message": message | None}
    message      = {"id": str, "author": {"role": "user|assistant|system|tool", ...},
                    "create_time": float | None, "content": {"content_type": str, ...},
                    "metadata": {"model_slug": str, "is_visually_hidden_from_conversation": bool,
                                 "is_user_system_message": bool, ...}, ...}

``parent`` is the source of truth for the tree (``children`` only orders siblings). The active branch is
the path from the root down to ``current_node``, found by walking up through ``parent`` and reversing.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from my_llm.errors import MyLLMError
from my_llm.importers.chatgpt.content import message_to_text
from my_llm.importers.chatgpt.tools import OpenCall, with_tool_message
from my_llm.record import Record, format_time

SOURCE = "chatgpt_export"
AUTHOR_ROLES = {"user": "human", "assistant": "ai", "system": "system", "tool": "tool"}
# Fixed namespace of the uuid5 record ids: the same export message always gets the same record id.
RECORD_ID_NAMESPACE = uuid.UUID("5d0c6a52-6f0e-4f8e-9a39-0c7a1b2e4c11")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class ConversationError(MyLLMError, ValueError):
    """One conversation has the wrong shape (no id, no mapping, a cycle...); ``reason`` says what, in words."""

    def __init__(self, conversation_id: str | None, reason: str) -> None:
        super().__init__(f"conversation {conversation_id!r}: {reason}" if conversation_id else reason)
        self.conversation_id = conversation_id
        self.reason = reason


@dataclass(frozen=True)
class Branch:
    """A root-to-leaf path of the tree, as far as no earlier branch holds it: node ids, oldest first.

    ``branch_id`` is the node id it ends at (``current_node`` for the ``active`` one, the one ChatGPT
    shows); a side branch starts just below the node it forks from.
    """

    branch_id: str
    active: bool
    node_ids: tuple[str, ...]


def conversation_id(conversation: Any) -> str:
    """The conversation's ``conversation_id`` (newer exports) or ``id``.

    Raises:
        ConversationError: not a JSON object, or neither key holds a non-empty string.
    """
    if not isinstance(conversation, dict):
        kind = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}.get(type(conversation))
        raise ConversationError(None, f"is a JSON {kind or 'null'}, not an object")
    value = conversation.get("conversation_id") or conversation.get("id")
    if not isinstance(value, str) or not value:
        raise ConversationError(None, "has no 'id' or 'conversation_id'")
    return value


def checked_mapping(conversation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The conversation's ``mapping`` after checking it is a tree: node id -> node.

    Raises:
        ConversationError: ``mapping`` missing or not an object; a node not an object; a message not an object
            with ``author`` and ``content`` objects; a ``parent`` that names no node (dangling); a cycle.
    """
    cid = conversation_id(conversation)
    mapping = conversation.get("mapping")
    if not isinstance(mapping, dict):
        raise ConversationError(cid, "'mapping' is missing or not an object")
    for node_id, node in mapping.items():
        if not isinstance(node, dict):
            raise ConversationError(cid, f"node {node_id!r} is not an object")
        parent = node.get("parent")
        if parent is not None and (not isinstance(parent, str) or parent not in mapping):
            raise ConversationError(cid, f"node {node_id!r} has parent {parent!r}, which is not in 'mapping'")
        message = node.get("message")
        if message is not None and not (
            isinstance(message, dict)
            and isinstance(message.get("author"), dict)
            and isinstance(message.get("content"), dict)
        ):
            raise ConversationError(cid, f"the message of node {node_id!r} is not an object with author and content")
    _check_acyclic(cid, mapping)
    return mapping


def _check_acyclic(cid: str, mapping: dict[str, dict[str, Any]]) -> None:
    reaches_root: set[str] = set()
    for start in mapping:
        trail: dict[str, None] = {}  # insertion-ordered set
        node_id: str | None = start
        while node_id is not None and node_id not in reaches_root:
            if node_id in trail:
                raise ConversationError(cid, f"'mapping' has a cycle through node {node_id!r}")
            trail[node_id] = None
            node_id = mapping[node_id].get("parent")
        reaches_root.update(trail)


def current_node_id(conversation: dict[str, Any], mapping: dict[str, dict[str, Any]]) -> str:
    """The ``current_node`` (last node of the active branch).

    Raises:
        ConversationError: ``current_node`` missing, null, or not a node of ``mapping``.
    """
    current = conversation.get("current_node")
    if not isinstance(current, str):
        raise ConversationError(conversation_id(conversation), "has no 'current_node'")
    if current not in mapping:
        raise ConversationError(conversation_id(conversation), f"'current_node' {current!r} is not in 'mapping'")
    return current


def _path_up(mapping: dict[str, dict[str, Any]], node_id: str, stop: set[str] | frozenset[str]) -> list[str]:
    """Node ids from ``node_id`` up through ``parent`` until the root or a node in ``stop``, oldest first."""
    path = []
    walk: str | None = node_id
    while walk is not None and walk not in stop:
        path.append(walk)
        walk = mapping[walk].get("parent")
    path.reverse()
    return path


def active_branch(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes ChatGPT shows, root first: walk from ``current_node`` up through ``parent``, then reverse.

    Raises:
        ConversationError: see :func:`checked_mapping` and :func:`current_node_id`.
    """
    active = branches(conversation, all_branches=False)[0]
    return [conversation["mapping"][node_id] for node_id in active.node_ids]


def branches(conversation: dict[str, Any], *, all_branches: bool = True) -> list[Branch]:
    """The conversation's branches: the active one first, then (``all_branches``) the others.

    Side branches come in depth-first order of their leaves (siblings as their parent's ``children``
    lists them); each node is in exactly one branch, and a side branch holds only the nodes below its fork.

    Raises:
        ConversationError: see :func:`checked_mapping` and :func:`current_node_id`.
    """
    mapping = checked_mapping(conversation)
    current = current_node_id(conversation, mapping)
    active = _path_up(mapping, current, frozenset())
    found = [Branch(current, True, tuple(active))]
    if not all_branches:
        return found
    seen = set(active)
    children = _children(mapping)
    stack = [node_id for node_id, node in mapping.items() if node.get("parent") is None][::-1]
    while stack:
        node_id = stack.pop()
        if not children[node_id] and node_id not in seen:
            side = _path_up(mapping, node_id, seen)
            seen.update(side)
            found.append(Branch(node_id, False, tuple(side)))
        stack.extend(reversed(children[node_id]))
    return found


def _children(mapping: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Node id -> child ids from the ``parent`` links, in the order the parent's ``children`` gives."""
    children: dict[str, list[str]] = {node_id: [] for node_id in mapping}
    for node_id, node in mapping.items():
        if node.get("parent") is not None:
            children[node["parent"]].append(node_id)
    for parent_id, ids in children.items():
        listed = mapping[parent_id].get("children")
        if len(ids) > 1 and isinstance(listed, list):
            rank = {child: position for position, child in enumerate(listed) if isinstance(child, str)}
            ids.sort(key=lambda child: rank.get(child, len(rank)))
    return children


def record_id(namespace: str, conversation_id: str, message_id: str) -> str:
    """uuid5 hex of (namespace, conversation id, export message id): the same message always gets the same id.

    The conversation id is part of it because hand-made exports reuse node ids across conversations.
    """
    return uuid.uuid5(RECORD_ID_NAMESPACE, f"{namespace}\n{conversation_id}\n{message_id}").hex


def moment_of(value: Any) -> datetime | None:
    """An export time (seconds since the epoch, or ISO 8601 text) as an aware UTC datetime; None if absent or bad."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, tz=timezone.utc)
        if isinstance(value, str) and value:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
    return None


@dataclass(frozen=True)
class _Shared:  # what every record of one conversation shares, and the options
    namespace: str
    conversation_id: str
    title: str | None
    fallback_time: datetime
    include_thoughts: bool
    include_user_context: bool


@dataclass
class ConversationRecords:
    """The records one conversation yields, oldest first, and the messages left out (reason -> count)."""

    conversation_id: str
    records: list[Record] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def conversation_records(
    conversation: Any,
    namespace: str,
    *,
    all_branches: bool = False,
    include_thoughts: bool = False,
    include_user_context: bool = False,
) -> ConversationRecords:
    """The records of one conversation: the active branch, then (``all_branches``) the other branches.

    A record: id :func:`record_id`, ``session_id`` = conversation id, ``source`` = ``chatgpt_export``,
    ``created_at`` = the message's ``create_time`` (else the conversation's ``create_time``/``update_time``/the
    epoch, and ``metadata.create_time_missing``), ``model`` = ``openai:<model_slug>`` on replies, metadata
    ``{title, message_id, parent_id, branch_id, active_branch, content_type, model_slug?, recipient?, ...}``.
    ``parent_id``: the nearest earlier message on the same path imported with the same options, so a side
    branch links to its fork and never into another branch. ``namespace`` must be valid already.
    ``message`` is None (plain text), except on tool calls and tool answers: the ``AIMessage`` with
    ``tool_calls`` and the ``ToolMessage`` answering it (see :func:`~my_llm.importers.chatgpt.tools.with_tool_message`).

    Raises:
        ConversationError: the conversation's shape is wrong (see :func:`checked_mapping`, :func:`current_node_id`).
    """
    cid = conversation_id(conversation)
    paths = branches(conversation, all_branches=all_branches)
    mapping = conversation["mapping"]  # checked by branches()
    title = conversation.get("title")
    times = (moment_of(conversation.get("create_time")), moment_of(conversation.get("update_time")), _EPOCH)
    shared = _Shared(
        namespace, cid, title if isinstance(title, str) else None, next(t for t in times if t is not None),
        include_thoughts, include_user_context,
    )  # fmt: skip
    result = ConversationRecords(cid)
    # node id -> (export id of the nearest imported message at or above it, the tool call open there)
    nearest: dict[str, tuple[str | None, OpenCall | None]] = {}
    for branch in paths:
        fork = mapping[branch.node_ids[0]].get("parent")
        parent_id, open_call = nearest[fork] if fork is not None else (None, None)
        for node_id in branch.node_ids:
            message = mapping[node_id].get("message")
            made = _node_record(shared, node_id, message, branch, parent_id)
            if isinstance(made, Record):
                made, open_call = with_tool_message(made, message, open_call, cid)  # type: ignore[arg-type]
                result.records.append(made)
                parent_id = made.metadata["message_id"]
            else:
                result.skipped[made] += 1
            nearest[node_id] = (parent_id, open_call)
    return result


def _node_record(
    shared: _Shared, node_id: str, message: dict[str, Any] | None, branch: Branch, parent_id: str | None
) -> Record | str:
    """The record of one node's message, or the reason it is left out."""
    text = message_to_text(
        message, include_thoughts=shared.include_thoughts, include_user_context=shared.include_user_context
    )
    if text.skipped or message is None:
        return text.skipped or "null message"
    role = AUTHOR_ROLES.get(message["author"].get("role"))
    if role is None:
        return f"unknown role {message['author'].get('role')}"
    message_id = message.get("id") if isinstance(message.get("id"), str) and message["id"] else node_id
    metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
    slug = metadata.get("model_slug") if isinstance(metadata.get("model_slug"), str) else None
    moment = moment_of(message.get("create_time"))
    extra: dict[str, Any] = {"model_slug": slug} if slug else {}
    if isinstance(message.get("recipient"), str) and message["recipient"] != "all":
        extra["recipient"] = message["recipient"]  # a call to a tool (python, browser...)
    if moment is None:
        extra["create_time_missing"] = True
    return Record(
        id=record_id(shared.namespace, shared.conversation_id, message_id),
        namespace=shared.namespace,
        session_id=shared.conversation_id,
        role="tool" if text.metadata.get("tool_output") else role,
        content=text.text,
        created_at=format_time(moment or shared.fallback_time),
        source=SOURCE,
        model=f"openai:{slug}" if slug and role == "ai" else None,
        metadata={"title": shared.title, "message_id": message_id, "parent_id": parent_id}
        | {"branch_id": branch.branch_id, "active_branch": branch.active, **text.metadata, **extra},
    )
