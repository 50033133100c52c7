"""One new conversation written through the server's :class:`server.logbook.Logbook`: what my_llm's
``answer_from_context`` (and qna's ``answer_question``) take as ``history`` to log a question and its answer,
so those turns land in the asker's namespace under a fresh session id (the returned ``conversation``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from my_llm import Record
from server.logbook import Logbook


class ConversationLog:
    """Records of one conversation (session) of ``namespace``, appended through the logbook's history of that
    namespace (disk first, then published): the ``new_record`` / ``add_records`` pair of
    :class:`my_llm.ChatHistory` that ``answer_from_context`` uses, with this conversation's session id.

    Args:
        logbook: the server's logbook.
        namespace: where the records go (the asker's namespace).
        source: the records' ``source`` (``live``, ``read_repo``).
        session_id: the conversation; a new uuid4 hex when None.

    ``written`` holds every record added through this object, in order.
    """

    def __init__(self, logbook: Logbook, namespace: str, source: str = "live", session_id: str | None = None) -> None:
        self.namespace = namespace
        self.session_id = session_id or uuid.uuid4().hex
        self.source = source
        self.written: list[Record] = []
        self._history = logbook.history(namespace)

    def new_record(
        self,
        role: str,
        content: str,
        *,
        model: str | None = None,
        usage: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        message: dict[str, Any] | None = None,
    ) -> Record:
        """A record of this conversation (not logged yet: see :meth:`add_records`).

        Raises:
            ValueError: ``role`` is not one of :data:`my_llm.record.ROLES`.
        """
        return Record.new(self.namespace, self.session_id, role, content, source=self.source, model=model,
                          usage=usage, metadata=metadata, message=message)  # fmt: skip

    def add_records(self, records: Sequence[Record]) -> None:
        """Append ``records`` to the namespace's log (disk first, then published).

        Raises:
            StoreError: the disk write failed.
        """
        self._history.add_records(records)
        self.written.extend(records)

    def last_answer(self) -> Record | None:
        """The last AI record written (the answer, with its model and usage), None before one."""
        return next((record for record in reversed(self.written) if record.role == "ai"), None)
