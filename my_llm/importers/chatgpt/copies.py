"""Messages that "Branch in new chat" copied into other conversations: stored once, linked from the copies.

Branching a conversation into a new chat copies the messages above the branch point into the new
conversation with their export ids and content unchanged, so one message can appear in 2-5 conversations of
an export. Its records would differ only by session (record ids include the conversation id). This keeps the
first one (the one already in the log, else the first the import meets) and drops the later copies; a kept
record whose parent was such a copy says where that parent is stored (``metadata.parent_session_id``).

A copy is recognised by the same export message id (ChatGPT's ids are UUIDs, unique across conversations;
ids of another shape, which hand-made exports reuse, are never taken for copies), the same role and the
same text, in another session. Memory: one entry per stored message (a 64-bit digest and a small int, about
100 bytes) and each session id once, kept for the import's run; the conversations are still streamed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable

from my_llm.importers.chatgpt.parse import ConversationRecords
from my_llm.record import Record

COPY_REASON = "copy of a message in another conversation"


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def _is_uuid(message_id: object) -> bool:
    if not isinstance(message_id, str) or len(message_id) != 36:
        return False
    try:
        uuid.UUID(message_id)
    except ValueError:
        return False
    return True


class CopyIndex:
    """The messages stored so far, to recognise branch copies.

    One 64-bit digest of (export message id, role, text) -> the index of the session storing it, in a list of
    the sessions seen (each session id held once).
    """

    def __init__(self) -> None:
        self._first: dict[int, int] = {}
        self._sessions: list[str] = []
        self._session_index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._first)

    @staticmethod
    def _key(record: Record) -> int | None:
        message_id = record.metadata.get("message_id")
        return _digest(f"{message_id}\n{record.role}\n{record.content}") if _is_uuid(message_id) else None

    def remember(self, records: Iterable[Record]) -> None:
        """Note where these records' messages are stored (the first session to store one keeps it)."""
        for record in records:
            key = self._key(record)
            if key is not None and key not in self._first:
                if record.session_id not in self._session_index:
                    self._session_index[record.session_id] = len(self._sessions)
                    self._sessions.append(record.session_id)
                self._first[key] = self._session_index[record.session_id]

    def stored_in(self, record: Record) -> str | None:
        """The other session that stores this record's message with the same role and text, if any."""
        key = self._key(record)
        found = None if key is None else self._first.get(key)
        if found is None or self._sessions[found] == record.session_id:
            return None
        return self._sessions[found]

    def drop_copies(self, parsed: ConversationRecords) -> ConversationRecords:
        """``parsed`` without the copies of messages stored in another session (counted as skipped under
        :data:`COPY_REASON`), each kept record whose parent was dropped so marked with
        ``metadata.parent_session_id``; the kept records are remembered."""
        kept: list[Record] = []
        dropped: dict[str, str] = {}  # export message id -> the session storing it
        for record in parsed.records:
            stored = self.stored_in(record)
            if stored is not None:
                dropped[record.metadata["message_id"]] = stored
                continue
            parent = record.metadata.get("parent_id")
            if parent in dropped:
                metadata = {**record.metadata, "parent_session_id": dropped[parent]}
                record = dataclasses.replace(record, metadata=metadata)
            kept.append(record)
        self.remember(kept)
        skipped = parsed.skipped + Counter({COPY_REASON: len(dropped)}) if dropped else parsed.skipped
        return ConversationRecords(parsed.conversation_id, kept, skipped)
