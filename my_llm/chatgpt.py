"""Import a ChatGPT data export into a namespace's memory: export files, streaming, the importer.

An export is ``conversations.json`` (newer ones: ``conversations-000.json``, ...), a JSON array of
conversations; :mod:`my_llm.chatgpt_parse` describes one conversation's shape. The arrays are streamed
with ``ijson`` (one conversation in memory at a time) from the files, a folder holding them, or the
export's ``.zip`` as downloaded (members are read from the archive, nothing is extracted).

Import rules (issue 5):

- Atomic per conversation: its records are appended (and published) in one ``add_records`` call only
  after the whole conversation parsed cleanly.
- Stop at the first bad conversation or bad JSON with an :class:`ExportError` naming the file and the
  conversation id or byte offset; everything before it stays imported, nothing of it is.
- Idempotent: a record's id is a uuid5 of (namespace, conversation id, export message id); ids already
  in the namespace's log (read once, at the start) are skipped. So running an interrupted or failed
  import again completes it, and re-importing the same export adds nothing.
"""

from __future__ import annotations

import codecs
import functools
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

import ijson

from my_llm.chatgpt_parse import (
    SOURCE,
    ConversationError,
    ConversationRecords,
    active_branch,
    branches,
    conversation_records,
    message_to_text,
    record_id,
)
from my_llm.errors import MyLLMError
from my_llm.store import MessageStore

if TYPE_CHECKING:
    from my_llm.langchain_class import PubSubChatMessageHistory

__all__ = [
    "ExportError",
    "ExportFile",
    "ImportReport",
    "active_branch",
    "branches",
    "conversation_records",
    "export_files",
    "import_chatgpt_export",
    "iter_conversations",
    "message_to_text",
    "record_id",
]

_EXPORT_NAME = re.compile(r"conversations(?:-(\d+))?\.json")
_CHUNK = 64 * 1024


class ExportError(MyLLMError):
    """An export that cannot be imported; the message names the file and the conversation id or byte offset.

    Attributes:
        file: the file (``export.zip:conversations.json`` for a zip member).
        conversation_id: the bad conversation's id, when it has one.
        offset: the byte offset in ``file`` (uncompressed) where reading failed, when known.
        report: the :class:`ImportReport` of what was imported before the error (set by the importer).
    """

    def __init__(
        self, file: str, problem: str, *, conversation_id: str | None = None, index: int | None = None,
        offset: int | None = None,
    ) -> None:  # fmt: skip
        where = file
        if index is not None:
            where += f", conversation #{index}"
        if conversation_id:
            where += f" {conversation_id!r}"
        if offset is not None:  # a conversation's end, or the exact byte a JSON error is at
            where += f" (ending by byte {offset})" if index is not None else f" (byte {offset})"
        super().__init__(f"{where}: {problem}")
        self.file, self.conversation_id, self.offset = file, conversation_id, offset
        self.report: ImportReport | None = None


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        files: the export files read, in order.
        conversations: conversations read and parsed (those whose messages were all imported before too).
        messages_imported: records appended to the log.
        skipped: reason -> messages left out: ``already imported``, ``null message``, ``empty``, ``hidden``,
            ``system``, ``thoughts``, ``reasoning_recap``, ``user_editable_context``, ``unknown type <name>``,
            ``unknown role <name>``.
    """

    files: list[str] = field(default_factory=list)
    conversations: int = 0
    messages_imported: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def count_skipped(self, reasons: Counter[str]) -> None:
        for reason, count in reasons.items():
            if count:
                self.skipped[reason] = self.skipped.get(reason, 0) + count


# --- files -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFile:
    """One JSON array of conversations: a file on disk, or a ``member`` of the export's zip.

    Attributes:
        path: the file, or the zip archive.
        member: the member's name inside the zip, or None.
        size: bytes (uncompressed for a member); what progress is measured against.
    """

    path: Path
    member: str | None = None
    size: int = 0

    @property
    def name(self) -> str:
        """How messages name it: ``/x/conversations.json`` or ``/x/export.zip:conversations-000.json``."""
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """The file's bytes, streamed (a zip member is decompressed as it is read).

        Raises:
            ExportError: the file or archive cannot be opened.
        """
        try:
            if self.member is None:
                with open(self.path, "rb") as handle:
                    yield handle
            else:
                with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as handle:
                    yield handle
        except (OSError, zipfile.BadZipFile) as error:
            raise ExportError(self.name, f"cannot be read: {error}") from error


def _export_order(name: str) -> tuple[int, str]:
    """``conversations.json`` first, then ``conversations-NNN.json`` by number."""
    found = _EXPORT_NAME.fullmatch(PurePosixPath(name).name)
    return (int(found.group(1)) if found and found.group(1) else -1, name)


def _zip_files(path: Path) -> list[ExportFile]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if _EXPORT_NAME.fullmatch(PurePosixPath(m.filename).name)]
    except (OSError, zipfile.BadZipFile) as error:
        raise ExportError(str(path), f"is not a readable zip archive: {error}") from error
    return [ExportFile(path, m.filename, m.file_size) for m in sorted(members, key=lambda m: _export_order(m.filename))]


def export_files(path: str | Path) -> list[ExportFile]:
    """The files of an export, in order.

    ``path`` is ``conversations.json`` (any ``.json`` file), the export ``.zip`` (its members named
    ``conversations.json`` / ``conversations-NNN.json``, in any folder of the archive), or a folder:
    its ``conversations*.json`` files, else the members of the ``.zip`` files in it.

    Raises:
        ExportError: ``path`` does not exist, or holds no conversations file, or is a zip that cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(
            (p for p in path.iterdir() if _EXPORT_NAME.fullmatch(p.name)), key=lambda p: _export_order(p.name)
        )
        files = [ExportFile(p, None, p.stat().st_size) for p in found]
        if not files:
            files = [f for archive in sorted(path.glob("*.zip")) for f in _zip_files(archive)]
    elif path.suffix.lower() == ".zip":
        files = _zip_files(path)
    elif path.is_file():
        files = [ExportFile(path, None, path.stat().st_size)]
    else:
        raise ExportError(
            str(path), "does not exist: give conversations.json, the folder holding it, or the export .zip"
        )
    if not files:
        raise ExportError(str(path), "holds no conversations.json or conversations-NNN.json: is it a ChatGPT export?")
    return files


class _CountingReader:
    """A binary reader that counts the bytes it hands out (``offset`` = file offset of the next byte).

    ``exact_from``: from that offset on, hand out one byte a read, so a parser error is pinned to its byte.
    """

    def __init__(self, raw: BinaryIO, exact_from: int | None = None) -> None:
        self._raw, self._exact_from = raw, exact_from
        self._head = b""
        self.offset = 0
        self.last_read = 0

    def first_byte(self) -> bytes:
        """The first byte after a UTF-8 BOM and whitespace (b"" for an empty file); read() resumes there."""
        while not self._head:
            chunk = self._raw.read(_CHUNK)
            if not chunk:
                return b""
            if self.offset == 0 and chunk.startswith(codecs.BOM_UTF8):
                chunk, self.offset = chunk[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
            self._head = chunk.lstrip()
            self.offset += len(chunk) - len(self._head)
        return self._head[:1]

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        if self._exact_from is not None:
            size = 1 if self.offset >= self._exact_from else min(_CHUNK, self._exact_from - self.offset)
        if self._head:
            cut = len(self._head) if size < 0 else size
            data, self._head = self._head[:cut], self._head[cut:]
        else:
            data = self._raw.read(size)
        self.last_read = len(data)
        self.offset += len(data)
        return data

    @property
    def chunk_start(self) -> int:
        """Where the last chunk handed out began: the streaming parser's last error or item end is in it."""
        return self.offset - self.last_read


_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError)


def _read_conversations(export_file: ExportFile) -> Iterator[tuple[int, Any, _CountingReader]]:
    """Stream one file's array: yields (index from 1, conversation as parsed, the reader: where parsing is).

    Raises:
        ExportError: not a JSON array; bad or truncated JSON (with the exact byte offset); unreadable bytes.
    """
    with export_file.open() as raw:
        reader = _CountingReader(raw)
        first = reader.first_byte()
        if first != b"[":
            shape = {b"": "is empty", b"{": "holds a JSON object"}.get(first, "does not start with a JSON array")
            raise ExportError(export_file.name, f"{shape}; a ChatGPT export holds a JSON array of conversations")
        items = ijson.items(reader, "item", use_float=True)
        index = 0
        while True:
            try:
                conversation = next(items)
            except StopIteration:
                return
            except ijson.JSONError as error:
                raise _json_error(export_file, error, index, reader.chunk_start) from error
            except _READ_ERRORS as error:
                raise ExportError(export_file.name, f"cannot be read: {error}", offset=reader.offset) from error
            index += 1
            yield index, conversation, reader


def _json_error(export_file: ExportFile, error: Exception, complete: int, chunk_start: int) -> ExportError:
    """The ExportError for a parser error in the chunk read from ``chunk_start``, pinned to its byte."""
    text = error.args[0] if error.args else ""
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    detail = (text.splitlines() or [type(error).__name__])[0]
    offset = exact_offset(export_file, chunk_start)
    if "premature EOF" in detail:
        problem = f"the file ends early, after {complete} complete conversation(s): it is truncated"
    else:
        problem = f"not valid JSON, after {complete} complete conversation(s) ({detail})"
    return ExportError(export_file.name, f"{problem}. Fix the file or download the export again.", offset=offset)


def exact_offset(export_file: ExportFile, chunk_start: int, item: int | None = None) -> int:
    """Where, to the byte, the parser fails (or top-level ``item`` #n ends), in a chunk read from ``chunk_start``.

    The streaming parser only knows which 64 KiB chunk it was in; this parses the file again, events only,
    feeding it one byte a read from ``chunk_start`` on. Returns the offset of the byte at which the parser
    reported the error (inside the bad token), or the offset just past item #n (past its delimiter for a
    bare number or literal). Only ever run on the way to an error.
    """
    depth = ended = 0
    with export_file.open() as raw:
        reader = _CountingReader(raw, exact_from=chunk_start)
        reader.first_byte()
        try:
            for event, _ in ijson.basic_parse(reader):
                if event in ("start_map", "start_array"):
                    depth += 1
                    continue
                depth -= event in ("end_map", "end_array")
                ended += depth == 1 and event != "map_key"
                if item is not None and ended == item:
                    return reader.offset
        except ijson.JSONError:
            return reader.chunk_start
    return chunk_start


def iter_conversations(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every conversation of an export (see :func:`export_files`), streamed: one in memory at a time.

    Raises:
        ExportError: see :func:`export_files`; bad JSON, a wrong shape, or an item that is not an object.
    """
    for export_file in export_files(path):
        for index, conversation, reader in _read_conversations(export_file):
            if not isinstance(conversation, dict):
                offset = exact_offset(export_file, reader.chunk_start, index)
                raise ExportError(export_file.name, "is not a JSON object", index=index, offset=offset)
            yield conversation


# --- the importer ------------------------------------------------------------------------------------


def imported_ids(store: MessageStore) -> set[str]:
    """Ids of the ChatGPT-export records already in the namespace (archives included): read once per import."""
    return {record.id for record in store.read_all() if record.source == SOURCE}


def import_chatgpt_export(
    history: PubSubChatMessageHistory,
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
        path: see :func:`export_files`.
        all_branches: keep every branch, not only the active one (see :func:`conversation_records`).
        include_thoughts: keep ``thoughts`` / ``reasoning_recap`` messages.
        include_user_context: keep ``user_editable_context`` (custom instructions: personal data).
        on_conversation: called after each conversation as ``(conversations done, bytes read, total bytes)``.

    Raises:
        ExportError: bad input; what came before it is imported, the bad conversation not at all, and
            ``error.report`` says what was done. Running the import again after a fix completes it.
        StoreError: the log cannot be written.
    """
    files = export_files(path)
    report = ImportReport(files=[export_file.name for export_file in files])
    known = imported_ids(history.store)
    total = sum(export_file.size for export_file in files)
    done = 0
    to_records = functools.partial(
        conversation_records, namespace=history.namespace, all_branches=all_branches,
        include_thoughts=include_thoughts, include_user_context=include_user_context,
    )  # fmt: skip
    try:
        for export_file in files:
            for index, conversation, reader in _read_conversations(export_file):
                try:
                    parsed = to_records(conversation)
                except ConversationError as error:
                    raise _conversation_error(export_file, error, index, reader.chunk_start) from error
                _append_new(history, parsed, known, report)
                if on_conversation is not None:
                    on_conversation(report.conversations, done + reader.offset, total)
            done += export_file.size
    except ExportError as error:
        error.report = report
        raise
    return report


def _conversation_error(export_file: ExportFile, error: ConversationError, index: int, chunk_start: int) -> ExportError:
    return ExportError(
        export_file.name,
        f"{error.reason}. The conversations before it are imported and this one is not: fix or remove it and "
        "run the import again (what is already imported is skipped).",
        conversation_id=error.conversation_id,
        index=index,
        offset=None if error.conversation_id else exact_offset(export_file, chunk_start, index),
    )


def _append_new(
    history: PubSubChatMessageHistory, parsed: ConversationRecords, known: set[str], report: ImportReport
) -> None:
    """Append the conversation's records not imported before, in one ``add_records`` call."""
    fresh = {record.id: record for record in parsed.records if record.id not in known}
    if fresh:
        history.add_records(list(fresh.values()))
        known.update(fresh)
    report.conversations += 1
    report.messages_imported += len(fresh)
    report.count_skipped(parsed.skipped + Counter({"already imported": len(parsed.records) - len(fresh)}))
