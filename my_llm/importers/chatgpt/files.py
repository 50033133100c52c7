"""A ChatGPT export's files: finding them, and streaming each one's JSON array of conversations.

An export is ``conversations.json`` (newer ones: ``conversations-000.json``, ``conversations-001.json``, ...),
each a JSON array of conversations (:mod:`my_llm.importers.chatgpt.parse` describes one). They are read
from the files, a folder holding them, or the export's ``.zip`` as downloaded (members are decompressed
as they are read, nothing is extracted), and streamed with ``ijson``: one conversation in memory at a time,
within limits of nesting depth and size (:mod:`my_llm.importers.chatgpt.bounded`).

Errors name the file and a conversation by its position in that file, counting from 1, and its id.
"""

from __future__ import annotations

import codecs
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import ijson

from my_llm.errors import MyLLMError
from my_llm.importers.chatgpt import bounded
from my_llm.importers.chatgpt.parse import ConversationError, conversation_id
from my_llm.importers.chatgpt.report import ImportReport

_EXPORT_NAME = re.compile(r"conversations(?:-(\d+))?\.json")
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError)


class ExportError(MyLLMError):
    """An export that cannot be imported: the message names the file, the conversation, what is wrong, what to do.

    Attributes:
        file: the file (``/x/export.zip:conversations.json`` for a zip member).
        index: a conversation's position in ``file``, counting from 1: the bad one, or with ``after`` the last
            one read cleanly before bad bytes (0: none was). None when the file as a whole is the problem.
        conversation_id: that conversation's id, when it has one.
        after: the problem is in the bytes after conversation ``index``, not in that conversation.
        report: the importer's :class:`~my_llm.importers.chatgpt.report.ImportReport` of what was imported
            before the error (None outside an import).
    """

    def __init__(
        self, file: str, problem: str, *, index: int | None = None, conversation_id: str | None = None,
        after: bool = False,
    ) -> None:  # fmt: skip
        where = file if index is None else f"{file}, {describe(index, conversation_id, after=after)}"
        super().__init__(f"{where}: {problem}")
        self.file, self.index, self.conversation_id, self.after = file, index, conversation_id, after
        self.report: ImportReport | None = None


def describe(index: int, conversation_id: str | None, *, after: bool = False) -> str:
    """How messages name a conversation: ``[after ]conversation #3 of the file (counting from 1), id 'abc'``.

    ``after`` with ``index`` 0: ``before the first conversation``.
    """
    if after and index == 0:
        return "before the first conversation"
    named = f", id {conversation_id!r}" if conversation_id else ", which has no id"
    return f"{'after ' if after else ''}conversation #{index} of the file (counting from 1){named}"


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
        """The file's bytes, buffered and streamed (a zip member is decompressed as it is read).

        The handle's ``tell()`` is the position in the file's bytes (uncompressed for a member).

        Raises:
            ExportError: the file or archive cannot be opened.
        """
        try:
            if self.member is None:
                with open(self.path, "rb") as handle:
                    yield handle
            else:
                with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as handle:
                    yield handle  # type: ignore[misc]
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


def _first_byte(handle: BinaryIO) -> bytes:
    """Skip a UTF-8 BOM and whitespace; the next byte, left unread (b"" for an empty file)."""
    if handle.peek(3)[:3] == codecs.BOM_UTF8:  # type: ignore[attr-defined]
        handle.read(3)
    while (head := handle.peek(1)[:1]).isspace():  # type: ignore[attr-defined]
        handle.read(1)
    return head


def read_conversations(export_file: ExportFile, limits: bounded.Limits | None = None) -> Iterator[tuple[int, Any, int]]:
    """Stream one file's array: yields (position counting from 1, the conversation as parsed, bytes read).

    ``bytes read``: how far into the file (uncompressed for a zip member) the parser has read, in 16 KiB
    chunks (:data:`bounded.CHUNK_BYTES`); at most ``export_file.size``. Items are yielded whatever their JSON
    type.
    ``limits``: how deep and large one conversation may be (default :data:`bounded.LIMITS`: 256 levels, 64 MiB).

    Raises:
        ExportError: not a JSON array; bad or truncated JSON, or unreadable bytes (naming the last
            conversation read cleanly, ``after=True``); a conversation over ``limits`` (naming it: its
            position, and its id when the id came before the point where it was refused).
    """
    with export_file.open() as handle:
        first = _first_byte(handle)
        if first != b"[":
            shape = {b"": "is empty", b"{": "holds a JSON object"}.get(first, "does not start with a JSON array")
            raise ExportError(export_file.name, f"{shape}; a ChatGPT export holds a JSON array of conversations")
        items = bounded.array_items(handle, limits)
        index, last_id = 0, None
        while True:
            try:
                conversation = next(items)
            except StopIteration:
                return
            except bounded.ItemRefused as refused:
                raise _refused_error(export_file, refused, index + 1) from None
            except (ijson.JSONError, *_READ_ERRORS) as error:
                raise _read_error(export_file, error, index, last_id) from error
            index += 1
            last_id = _id_or_none(conversation)
            yield index, conversation, handle.tell()


def _id_or_none(conversation: Any) -> str | None:
    try:
        return conversation_id(conversation)
    except ConversationError:
        return None


def _refused_error(export_file: ExportFile, refused: bounded.ItemRefused, index: int) -> ExportError:
    """The ExportError for conversation #``index``, over a limit: named by its id too when it was read."""
    problem = (
        f"{refused.problem}: it is not read further. The conversations "
        "before it are imported and this one is not: remove it and run the import again (what is already "
        "imported is skipped)."
    )
    return ExportError(export_file.name, problem, index=index, conversation_id=_id_or_none(refused.partial))


def _read_error(export_file: ExportFile, error: Exception, index: int, last_id: str | None) -> ExportError:
    """The ExportError for bad JSON or unreadable bytes after conversation #``index`` (0: before the first)."""
    text = error.args[0] if error.args else ""
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    lines = [line.strip() for line in text.splitlines()]
    detail = (lines[0].rstrip(".") if lines else "") or type(error).__name__
    if len(lines) > 2 and lines[1] and lines[2].startswith("(right here)"):  # yajl: the text around the error
        detail += f", near {lines[1]!r}"
    if not isinstance(error, ijson.JSONError):
        problem = f"cannot be read ({detail}). Download the export again."
    elif "premature EOF" in detail or "Incomplete" in detail:
        problem = "the file ends early: it is truncated. Download the export again."
    else:
        problem = f"not valid JSON ({detail}). Fix the file just after that point or download the export again."
    return ExportError(export_file.name, problem, index=index, conversation_id=last_id, after=True)


def iter_conversations(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every conversation of an export (see :func:`export_files`), streamed: one in memory at a time.

    Raises:
        ExportError: see :func:`export_files` and :func:`read_conversations`; an item that is not an object.
    """
    for export_file in export_files(path):
        for index, conversation, _ in read_conversations(export_file):
            if not isinstance(conversation, dict):
                problem = "is not a JSON object, as every conversation is: fix or remove it"
                raise ExportError(export_file.name, problem, index=index)
            yield conversation
