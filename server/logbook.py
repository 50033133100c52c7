"""The server's reads and writes of the message logs, through :class:`my_llm.ChatHistory` (disk first,
then Pub/Sub): one history per user namespace, conversations (= sessions) listed, read and deleted.

Deleting a conversation appends a tombstone (a ``system`` record of that session with
``metadata = {"event": "delete_conversation", "conversation": id}``), which is published like any record so
downstream tables can drop the session; every read here leaves out a session that has one. The log is
not rewritten here: the admin's ``my-llm-server purge`` (:func:`purge_deleted`) later removes a deleted
conversation's records from disk and keeps its tombstone (DESIGN.md, "Deleting a conversation").

Reads take one namespace or several (a user's: ``user-<name>`` and ``user-<name>.key-<label>``); a
conversation is a session id, and its turns are gathered from every namespace read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from my_llm import ChatHistory, Record, Settings, list_namespaces
from my_llm.log import MessageStore, PurgeReport, purge_sessions

DELETE_EVENT = "delete_conversation"
TURN_ROLES = ("human", "ai", "system", "tool")
Namespaces = str | Sequence[str]


def _many(namespaces: Namespaces) -> list[str]:
    return [namespaces] if isinstance(namespaces, str) else list(dict.fromkeys(namespaces))


@dataclass(frozen=True)
class ConversationSummary:
    """One conversation: id, first and last times, turn count, the first human turn's start, totals."""

    id: str
    started_at: str
    updated_at: str
    turns: int
    title: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


class Logbook:
    """Writes and reads the logs under ``settings.message_history``; safe to use from many threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._histories: dict[str, ChatHistory] = {}
        self._lock = threading.Lock()

    def history(self, namespace: str) -> ChatHistory:
        """The (cached) history of ``namespace``; its session id is unused (records carry their own)."""
        with self._lock:
            history = self._histories.get(namespace)
            if history is None:
                history = ChatHistory(namespace, "server", source="live", settings=self.settings)
                self._histories[namespace] = history
            return history

    def log(
        self,
        namespace: str,
        session_id: str,
        role: str,
        content: str,
        *,
        model: str | None = None,
        usage: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Record:
        """Append one record to ``namespace``'s log (disk first, then published) and return it.

        Raises:
            StoreError: the disk write failed.
        """
        record = Record.new(namespace, session_id, role, content, model=model, usage=usage, metadata=metadata)
        self.history(namespace).add_records([record])
        return record

    def records(self, namespace: str) -> list[Record]:
        """The live records of ``namespace`` without deleted conversations (empty when it has no log)."""
        if namespace not in list_namespaces(self.settings.message_history) and namespace not in self._histories:
            return []
        records = self.history(namespace).records()
        deleted = {r.session_id for r in records if r.metadata.get("event") == DELETE_EVENT}
        return [r for r in records if r.session_id not in deleted]

    def _turns(self, namespaces: Namespaces) -> list[Record]:
        """The live turns of ``namespaces``, oldest first (by ``created_at``; file order within one)."""
        turns = [r for namespace in _many(namespaces) for r in self.records(namespace) if _is_turn(r)]
        return sorted(turns, key=lambda r: r.created_at) if not isinstance(namespaces, str) else turns

    def conversation(self, namespaces: Namespaces, conversation_id: str) -> list[Record]:
        """The turns of one conversation in ``namespaces`` (one, or several), oldest first (empty when unknown
        or deleted)."""
        return [r for r in self._turns(namespaces) if r.session_id == conversation_id]

    def conversations(self, namespaces: Namespaces, query: str | None = None) -> list[ConversationSummary]:
        """Summaries of the conversations in ``namespaces`` (one, or several), newest activity first; with
        ``query``, only those with a turn containing it (case-insensitive)."""
        sessions: dict[str, list[Record]] = {}
        for record in self._turns(namespaces):
            sessions.setdefault(record.session_id, []).append(record)
        needle = (query or "").lower()
        found = [
            summarise(session_id, turns)
            for session_id, turns in sessions.items()
            if not needle or any(needle in turn.content.lower() for turn in turns)
        ]
        return sorted(found, key=lambda summary: summary.updated_at, reverse=True)

    def delete(self, namespaces: Namespaces, conversation_id: str) -> bool:
        """Publish a tombstone for a conversation in each of ``namespaces`` that has it; False when none
        has it (unknown or already deleted)."""
        holding = [ns for ns in _many(namespaces) if self.conversation(ns, conversation_id)]
        metadata = {"event": DELETE_EVENT, "conversation": conversation_id}
        for namespace in holding:
            self.log(namespace, conversation_id, "system", "", metadata=metadata)
        return bool(holding)

    def user_namespaces(self, prefix: str = "user-") -> list[str]:
        """Every namespace on disk whose name starts with ``prefix``."""
        return [name for name in list_namespaces(self.settings.message_history) if name.startswith(prefix)]

    def close(self) -> None:
        """Flush and close every history (pending publishes stay in the outboxes)."""
        with self._lock:
            histories, self._histories = list(self._histories.values()), {}
        for history in histories:
            history.close(timeout=5.0)


def deleted_conversations(settings: Settings, namespace: str) -> list[str]:
    """The conversations of ``namespace`` that have a delete tombstone (live log and archives), in the
    order they were deleted."""
    store = MessageStore(settings.message_history, namespace, settings.fsync)
    found = (r.session_id for r in store.read_all() if r.metadata.get("event") == DELETE_EVENT)
    return list(dict.fromkeys(found))


def purge_deleted(settings: Settings, namespace: str, *, dry_run: bool = False) -> PurgeReport:
    """Remove from disk the records of ``namespace``'s deleted conversations, keeping their tombstones
    (:func:`my_llm.log.purge_sessions`: under the log's lock, atomically, index and outbox kept right); with
    ``dry_run``, only count what would go.

    Raises:
        StoreError: a file could not be read or replaced (nothing is lost: see purge_sessions).
    """
    deleted = deleted_conversations(settings, namespace)

    def keep(record: Record) -> bool:
        return record.metadata.get("event") == DELETE_EVENT

    return purge_sessions(settings, namespace, deleted, keep=keep, dry_run=dry_run)


def _is_turn(record: Record) -> bool:
    return record.role in TURN_ROLES and not record.metadata.get("event")


def summarise(session_id: str, turns: Sequence[Record]) -> ConversationSummary:
    """The summary of one conversation's turns (oldest first)."""
    first_human = next((turn.content for turn in turns if turn.role == "human"), "")
    tokens_in, tokens_out, costs = _totals(turns)
    return ConversationSummary(
        id=session_id,
        started_at=turns[0].created_at,
        updated_at=turns[-1].created_at,
        turns=len(turns),
        title=first_human[:80],
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost_usd=costs,
    )


def _totals(records: Iterable[Record]) -> tuple[int, int, float | None]:
    tokens_in = tokens_out = 0
    cost: float | None = 0.0
    for record in records:
        usage = record.usage or {}
        tokens_in += usage.get("input_tokens") or 0
        tokens_out += usage.get("output_tokens") or 0
        if record.role == "ai" and cost is not None:
            cost = None if usage.get("cost_usd") is None else cost + usage["cost_usd"]
    return tokens_in, tokens_out, cost
