"""Parsing a log file's new bytes into index rows (see :mod:`my_llm.log.index`)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from my_llm.record import Record

try:  # about twice as fast as json.loads; langsmith (so langchain-core) depends on it
    from orjson import JSONDecodeError as _FastError
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover
    _fast_loads, _FastError = json.loads, ValueError

TURN_ROLES = frozenset({"human", "ai", "system", "tool"})
CHUNK_BYTES = 8 * 1024 * 1024
INSERT_BATCH = 10_000


class Rebuild(Exception):
    """The files no longer match the index in a way catching up cannot fix: rebuild it."""


class Retry(Exception):
    """A file moved while it was being looked at (``clear()``): look again."""


def is_turn(record: Record) -> bool:
    """Whether ``record`` is a conversation turn: role human, ai, system or tool, and no ``task`` or
    ``event`` in its metadata (memory tasks, the ``clear`` tombstone). The rule of
    :func:`my_llm.history.chat_history.is_turn_of` without the session."""
    try:
        return record.role in TURN_ROLES and "task" not in record.metadata and "event" not in record.metadata
    except TypeError:  # metadata of an odd type in a hand-written line
        return False


def index_file(
    db: sqlite3.Connection, folder: Path, name: str, file: int | None, inode: int | None, start: int
) -> None:
    """Index the complete lines of ``folder/name`` from byte ``start``, inside the caller's transaction.

    Args:
        file: the ``files`` row to extend, or None to add a new row (the next file in order).
        inode: the inode the file must have (None: whatever it has now).
        start: where the last catch-up stopped (0 for a new file): just after a newline.

    A trailing line without its newline (a write in progress, or a torn tail) is left for later;
    unreadable lines get no row.

    Raises:
        Retry: the file is missing or has another inode than expected (moved meanwhile).
        Rebuild: the file is shorter than ``start`` or the byte before ``start`` is not a newline.
    """
    try:
        fd = os.open(folder / name, os.O_RDONLY)
    except FileNotFoundError:
        raise Retry from None
    try:
        status = os.fstat(fd)
        if inode is not None and status.st_ino != inode:
            raise Retry
        if start > status.st_size or (start and os.pread(fd, 1, start - 1) != b"\n"):
            raise Rebuild
        if file is None:
            file = db.execute(
                "INSERT INTO files (name, inode, indexed_to, records) VALUES (?, ?, 0, 0)", (name, status.st_ino)
            ).lastrowid
        end, count = _parse(db, fd, file, start)
    finally:
        os.close(fd)
    db.execute("UPDATE files SET indexed_to = ?, records = records + ? WHERE file = ?", (end, count, file))


def _parse(db: sqlite3.Connection, fd: int, file: int, start: int) -> tuple[int, int]:
    """Insert a row per readable complete line from ``start``; returns (end of the last complete line, rows)."""
    sessions = dict(db.execute("SELECT session_id, session FROM sessions"))
    seq = db.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0]
    rows: list[tuple] = []
    count, position, rest = 0, start, b""
    while True:
        chunk = os.pread(fd, CHUNK_BYTES, position + len(rest))
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            row = _row(line) if line.strip() else None
            if row is not None:
                record_id, session_id, role, created_at, turn = row
                session = sessions.get(session_id)
                if session is None:
                    session = db.execute("INSERT INTO sessions (session_id) VALUES (?)", (session_id,)).lastrowid
                    sessions[session_id] = session
                seq += 1
                rows.append((seq, record_id, file, position, len(line), session, role, created_at, turn))
            position += len(line) + 1
        if len(rows) >= INSERT_BATCH:
            count += _insert(db, rows)
            rows = []
    count += _insert(db, rows)
    return position, count


def _insert(db: sqlite3.Connection, rows: list[tuple]) -> int:
    if rows:
        db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def _row(line: bytes) -> tuple[str, str, str, str, int] | None:
    """(id, session_id, role, created_at, turn) of a readable line; None for what readers skip."""
    try:
        try:
            data = _fast_loads(line)
        except _FastError:  # what orjson refuses and json may take (NaN, huge integers): readers use json
            data = json.loads(line)
        if not isinstance(data, dict):
            return None
        record = Record.from_dict(data)
    except (ValueError, TypeError):
        return None
    return str(record.id), str(record.session_id), str(record.role), str(record.created_at), int(is_turn(record))
