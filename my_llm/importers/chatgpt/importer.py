"""Import a ChatGPT data export into a namespace's memory.

:mod:`my_llm.importers.chatgpt.files` finds the export's files and streams their conversations;
:mod:`my_llm.importers.chatgpt.parse` turns each conversation into records; this appends them.

Import rules (issue 5):

- Atomic per conversation: its records are appended (and published) in one ``add_records`` call only
  after the whole conversation parsed cleanly.
- Stop at the first bad conversation or bad JSON with an :class:`ExportError` naming the file, the
  conversation's position in it (counting from 1) and its id; everything before it stays imported,
  nothing of it is.
- Idempotent: a record's id is a uuid5 of (namespace, conversation id, export message id); ids already
  in the namespace's log (read once, at the start) are skipped. So running an interrupted or failed
  import again completes it, and re-importing the same export adds nothing.
- A message "Branch in new chat" copied into other conversations is stored once: the copies are dropped
  (see :mod:`my_llm.importers.chatgpt.copies`; the log's records count as stored first).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from my_llm.history import ChatHistory
from my_llm.importers.chatgpt.copies import CopyIndex
from my_llm.importers.chatgpt.files import ExportError, ExportFile, export_files, read_conversations
from my_llm.importers.chatgpt.parse import SOURCE, ConversationError, ConversationRecords, conversation_records
from my_llm.importers.chatgpt.report import ImportReport
from my_llm.log import MessageStore

__all__ = ["ExportError", "ImportReport", "import_chatgpt_export", "imported_ids"]


def imported_ids(store: MessageStore, copies: CopyIndex | None = None) -> set[str]:
    """Ids of the ChatGPT-export records already in the namespace (archives included): read once per import.

    ``copies``, when given, also remembers where those records' messages are stored.
    """
    ids = set()
    for record in store.read_all():
        if record.source == SOURCE:
            ids.add(record.id)
            if copies is not None:
                copies.remember((record,))
    return ids


def import_chatgpt_export(
    history: ChatHistory,
    path: str | Path,
    *,
    all_branches: bool = False,
    include_thoughts: bool = False,
    include_user_context: bool = False,
    on_conversation: Callable[[int, int, int], None] | None = None,
) -> ImportReport:
    """Import a ChatGPT export into ``history``'s namespace; returns what was imported and skipped.

    Args:
        history: the namespace's history; records go through ``history.add_records`` (disk, then Pub/Sub).
        path: see :func:`~my_llm.importers.chatgpt.files.export_files`.
        all_branches: keep every branch, not only the active one (see :func:`conversation_records`).
        include_thoughts: keep ``thoughts`` / ``reasoning_recap`` messages.
        include_user_context: keep ``user_editable_context`` (custom instructions) and memory writes (messages
            to and from the ``bio`` tool): personal data both.
        on_conversation: called after each conversation is appended, as ``(conversations done, bytes read,
            total bytes)``: bytes of the export's files (uncompressed for zip members) the parser has read
            so far, in 16 KiB chunks, and their total size; ``bytes read`` reaches ``total bytes`` at the end.

    Raises:
        ExportError: bad input; what came before it is imported, the bad conversation not at all, and
            ``error.report`` says what was done. Running the import again after a fix completes it.
        StoreError: the log cannot be written.
    """
    files = export_files(path)
    report = ImportReport(files=[export_file.name for export_file in files])
    copies = CopyIndex()
    known = imported_ids(history.store, copies)
    total = sum(export_file.size for export_file in files)
    done = 0
    to_records = functools.partial(
        conversation_records, namespace=history.namespace, all_branches=all_branches,
        include_thoughts=include_thoughts, include_user_context=include_user_context,
    )  # fmt: skip
    try:
        for export_file in files:
            for index, conversation, read in read_conversations(export_file):
                try:
                    parsed = to_records(conversation)
                except ConversationError as error:
                    raise _conversation_error(export_file, error, index) from error
                _append_new(history, copies.drop_copies(parsed), known, report)
                if on_conversation is not None:
                    on_conversation(report.conversations, done + read, total)
            done += export_file.size
    except ExportError as error:
        error.report = report
        raise
    return report


def _conversation_error(export_file: ExportFile, error: ConversationError, index: int) -> ExportError:
    return ExportError(
        export_file.name,
        f"{error.reason}. The conversations before it are imported and this one is not: fix or remove it and "
        "run the import again (what is already imported is skipped).",
        index=index,
        conversation_id=error.conversation_id,
    )


def _append_new(history: ChatHistory, parsed: ConversationRecords, known: set[str], report: ImportReport) -> None:
    """Append the conversation's records not imported before, in one ``add_records`` call."""
    fresh = {record.id: record for record in parsed.records if record.id not in known}
    if fresh:
        history.add_records(list(fresh.values()))
        known.update(fresh)
    report.conversations += 1
    report.messages_imported += len(fresh)
    report.count_skipped(parsed.skipped + Counter({"already imported": len(parsed.records) - len(fresh)}))
