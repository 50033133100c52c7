"""The log index: a SQLite sidecar per namespace, ``<namespace>/index.sqlite``, so that reads cost what
they return.

The JSONL files stay the one source of truth; the index can always be deleted and is then rebuilt from
them. It holds one row per readable line of the namespace's files (archives oldest first, then the live
log): the log position ``seq`` (1, 2, ... in that order), the record id, session, role, ``created_at``,
whether it is a conversation turn (:func:`is_turn`), and where the line is (file, byte offset, length).

It catches up lazily: a read first compares the files with what the index last saw (a ``stat`` and a
listing of ``archive/``) and parses only the bytes appended since. The log was archived by ``clear()``
(the live file's inode is now an archive's): its row is renamed and its tail read. Anything else
(a file shrank, was replaced, an archive vanished or appeared out of order, the byte before the
indexed end is not a newline): the index is rebuilt. Appends never touch it, so they stay as fast as
before. Concurrent processes serialise their catch-ups with SQLite's write lock (``BEGIN IMMEDIATE``).

Schema changes are named, ordered migrations applied once each and recorded in ``_migrations``
(as simonw/llm does: ``m001_initial``, ...; see :mod:`my_llm.log.index_schema`).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from my_llm.errors import StoreError
from my_llm.log.index_build import Rebuild, Retry, index_file
from my_llm.log.index_schema import migrate
from my_llm.log.store import LOG_NAME, MessageStore
from my_llm.record import Record

INDEX_NAME = "index.sqlite"
_ATTEMPTS = 3
_LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class Entry:
    """Where one record is: log position ``seq``, its ``id``, and its line (``offset``/``length`` bytes
    into the file ``name``, relative to the namespace folder, whose inode was ``inode``)."""

    seq: int
    id: str
    name: str
    inode: int
    offset: int
    length: int


_ENTRY_COLUMNS = "r.seq, r.id, f.name, f.inode, r.offset, r.length"
_ENTRY_FROM = "records r JOIN files f ON f.file = r.file"


class LogIndex:
    """The index of one namespace's log (see the module docstring).

    Args:
        store: the namespace's log; the index is ``<store.folder>/index.sqlite``.

    Every query first catches up (:meth:`refresh`). Safe from several threads (one lock) and processes.
    Errors: :class:`my_llm.errors.StoreError` when the index cannot be opened or written (the message
    names the file and says it can be deleted).
    """

    def __init__(self, store: MessageStore) -> None:
        self.store = store
        self.path = store.folder / INDEX_NAME
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._db_inode = 0
        self._seen: tuple | None = None

    # -- connection ---------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        inode = _inode(self.path)
        if self._db is not None and inode == self._db_inode:
            return self._db
        self.close()  # the file was deleted or replaced under us: start over on the new one
        try:
            self.store.folder.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # the index is rebuilt from the log after a crash anyway
            db.execute("PRAGMA cache_size=-32000")  # 32 MB: building the id index of 1M records stays in memory
            migrate(db)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"Could not open the log index {self.path}: {error}. It can be deleted safely.") from error
        self._db, self._db_inode, self._seen = db, _inode(self.path), None
        return db

    def close(self) -> None:
        """Close the connection (reopened on the next query)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
            self._db, self._seen = None, None

    # -- catching up ----------------------------------------------------------------------------------

    def refresh(self, rebuild: bool = False) -> None:
        """Index what was appended or archived since the last look; rebuild when the files changed otherwise
        (or when ``rebuild`` is True: every row dropped, every file indexed again from its first byte).

        Costs a ``stat`` and a directory listing when nothing changed, and the parse of the new bytes
        otherwise (about 10 us a record).

        Raises:
            StoreError: the index cannot be written, or the files kept changing during three attempts.
        """
        with self._lock:
            for _ in range(_ATTEMPTS):
                db = self._connect()
                archives = ["archive/" + path.name for path in self.store.archives()]
                state = (tuple(archives), _stat(self.store.path))
                if state == self._seen and not rebuild:
                    return
                try:
                    try:
                        if rebuild:
                            raise Rebuild
                        self._transaction(db, functools.partial(self._catch_up, db, archives, state[1]))
                    except Rebuild:
                        self._transaction(db, functools.partial(self._rebuild, db, archives, state[1]))
                except Retry:
                    continue  # clear() moved the log while we looked
                self._seen = state
                return
            raise StoreError(f"The log {self.store.path} kept changing while it was being indexed; try again.")

    def rebuild(self) -> None:
        """Drop every row and index all files again from their first byte (see :meth:`refresh`)."""
        self.refresh(rebuild=True)

    def _transaction(self, db: sqlite3.Connection, work) -> None:
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StoreError(f"Could not write the log index {self.path}: {error}.") from error
        try:
            work()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _catch_up(self, db: sqlite3.Connection, archives: list[str], live: tuple[int, int] | None) -> None:
        known = db.execute("SELECT file, name, inode, indexed_to FROM files ORDER BY file").fetchall()
        known_live = next((row for row in known if row[1] == LOG_NAME), None)
        known_archives = [row for row in known if row[1] != LOG_NAME]
        if [row[1] for row in known_archives] != archives[: len(known_archives)]:
            raise Rebuild
        if any(_inode(self.store.folder / name) != inode for _, name, inode, _ in known_archives):
            raise Rebuild
        new_archives = archives[len(known_archives) :]
        todo: list[tuple[int | None, str, int | None, int]] = []  # (file, name, expected inode, from byte)
        live_known = False
        if known_live is not None:
            file, _, inode, indexed_to = known_live
            live_known = live is not None and live[0] == inode
            if live_known:
                if new_archives:
                    raise Rebuild
                todo.append((file, LOG_NAME, inode, indexed_to))
            else:  # clear() moved it: it must be the first archive we have not seen
                if not new_archives or _inode(self.store.folder / new_archives[0]) != inode:
                    raise Rebuild
                db.execute("UPDATE files SET name = ? WHERE file = ?", (new_archives[0], file))
                todo.append((file, new_archives.pop(0), inode, indexed_to))
        todo += [(None, name, None, 0) for name in new_archives]
        if live is not None and not live_known:
            todo.append((None, LOG_NAME, live[0], 0))
        for file, name, inode, start in todo:
            index_file(db, self.store.folder, name, file, inode, start)

    def _rebuild(self, db: sqlite3.Connection, archives: list[str], live: tuple[int, int] | None) -> None:
        db.execute("DELETE FROM records")
        db.execute("DELETE FROM files")
        for name in archives:
            index_file(db, self.store.folder, name, None, None, 0)
        if live is not None:
            index_file(db, self.store.folder, LOG_NAME, None, live[0], 0)

    # -- queries ---------------------------------------------------------------------------------------

    def _query(self, sql: str, parameters: Iterable = ()) -> list[tuple]:
        with self._lock:
            self.refresh()
            try:
                return self._db.execute(sql, tuple(parameters)).fetchall()
            except sqlite3.Error as error:
                raise StoreError(f"Could not read the log index {self.path}: {error}.") from error

    def counts(self) -> dict[str, int]:
        """``{"live": records in the live log, "archived": records in the archives, "total": both}``."""
        rows = self._query("SELECT name, records FROM files")
        live = sum(count for name, count in rows if name == LOG_NAME)
        total = sum(count for _, count in rows)
        return {"live": live, "archived": total - live, "total": total}

    def last_seq(self) -> int:
        """The highest log position (0 for an empty namespace)."""
        return self._query("SELECT coalesce(max(seq), 0) FROM records")[0][0]

    def session_entries(self, session_id: str, limit: int, before_seq: int | None = None) -> list[Entry]:
        """Up to ``limit`` conversation turns of ``session_id`` in the live log, newest first, below
        ``before_seq`` when given. Uses the (session, file, turn, seq) index: the cost does not grow with
        the log."""
        sql = (
            f"SELECT {_ENTRY_COLUMNS} FROM {_ENTRY_FROM} WHERE r.session = "
            "(SELECT session FROM sessions WHERE session_id = ?) AND r.file = "
            f"(SELECT file FROM files WHERE name = '{LOG_NAME}') AND r.turn = 1 AND r.seq < ? "
            "ORDER BY r.seq DESC LIMIT ?"
        )
        return [Entry(*row) for row in self._query(sql, (session_id, before_seq or 2**62, limit))]

    def entries_between(self, first: int, last: int | None = None) -> list[Entry]:
        """Entries with ``first <= seq <= last`` (no upper bound when ``last`` is None), in log order."""
        sql = f"SELECT {_ENTRY_COLUMNS} FROM {_ENTRY_FROM} WHERE r.seq BETWEEN ? AND ? ORDER BY r.seq"
        return [Entry(*row) for row in self._query(sql, (first, 2**62 if last is None else last))]

    def count_between(self, first: int, last: int | None = None) -> int:
        """How many rows have ``first <= seq <= last`` (no upper bound when ``last`` is None)."""
        sql = "SELECT count(*) FROM records WHERE seq BETWEEN ? AND ?"
        return self._query(sql, (first, 2**62 if last is None else last))[0][0]

    def created_since(self, created_at: str) -> list[Entry]:
        """Entries whose ``created_at`` text sorts at or after ``created_at`` (``format_time`` form), in log
        order. Records written by my_llm all use that form; see :func:`my_llm.record.format_time`."""
        sql = f"SELECT {_ENTRY_COLUMNS} FROM {_ENTRY_FROM} WHERE r.created_at >= ? ORDER BY r.seq"
        return [Entry(*row) for row in self._query(sql, (created_at,))]

    def seqs_of(self, ids: Iterable[str]) -> dict[str, int]:
        """``{record id: log position}`` for the ids the index knows (the first position of an id logged twice).

        Many ids (an old outbox's whole ``acked.ids``, say) are looked up through a temporary table.
        """
        ids = list(dict.fromkeys(ids))
        if len(ids) > 20 * _LOOKUP_CHUNK:
            return self._seqs_of_many(ids)
        found: dict[str, int] = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, min(seq) FROM records WHERE id IN ({marks}) GROUP BY id"
            found.update(self._query(sql, chunk))
        return found

    def _seqs_of_many(self, ids: list[str]) -> dict[str, int]:
        with self._lock:
            self.refresh()
            db = self._db
            try:
                if len(ids) * 4 > db.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0]:
                    # A good part of the log (an old outbox's every id): one pass is faster than 1M lookups.
                    wanted, found = set(ids), {}
                    for record_id, seq in db.execute("SELECT id, seq FROM records ORDER BY seq"):
                        if record_id in wanted:
                            found.setdefault(record_id, seq)
                    return found
                db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (id TEXT PRIMARY KEY) WITHOUT ROWID")
                db.execute("BEGIN")
                try:
                    db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", ((i,) for i in ids))
                    sql = "SELECT r.id, min(r.seq) FROM wanted w JOIN records r ON r.id = w.id GROUP BY r.id"
                    found = dict(db.execute(sql).fetchall())
                finally:
                    db.execute("DELETE FROM wanted")
                    db.execute("COMMIT")
            except sqlite3.Error as error:
                raise StoreError(f"Could not read the log index {self.path}: {error}.") from error
        return found

    def ids_at(self, seqs: Iterable[int]) -> dict[int, str]:
        """``{log position: record id}`` for the positions that exist."""
        seqs = list(dict.fromkeys(seqs))
        found: dict[int, str] = {}
        for start in range(0, len(seqs), _LOOKUP_CHUNK):
            chunk = seqs[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(self._query(f"SELECT seq, id FROM records WHERE seq IN ({marks})", chunk))
        return found

    # -- reading lines --------------------------------------------------------------------------------

    def read(self, entries: list[Entry]) -> list[tuple[Entry, bytes]]:
        """The lines of ``entries`` (without newline), read by offset, in the order given.

        Raises:
            StoreError: a line is not where the index says, even after a rebuild.
        """
        for attempt in range(_ATTEMPTS):
            try:
                return list(self._read_lines(entries))
            except Retry:
                if attempt == _ATTEMPTS - 1:
                    break
                if attempt:
                    self.rebuild()
                else:
                    self.refresh()
                entries = self._relocate(entries)
        raise StoreError(f"The index {self.path} does not match the log; delete it to rebuild it.")

    def _relocate(self, entries: list[Entry]) -> list[Entry]:
        where = {}
        ids = [entry.id for entry in entries]
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {_ENTRY_COLUMNS} FROM {_ENTRY_FROM} WHERE r.id IN ({marks})"
            for row in self._query(sql, chunk):
                where.setdefault(row[1], Entry(*row))
        return [where[entry.id] for entry in entries if entry.id in where]

    def _read_lines(self, entries: list[Entry]) -> Iterator[tuple[Entry, bytes]]:
        handles: dict[str, int] = {}
        try:
            for entry in entries:
                fd = handles.get(entry.name)
                if fd is None:
                    try:
                        fd = os.open(self.store.folder / entry.name, os.O_RDONLY)
                    except FileNotFoundError:
                        raise Retry from None
                    handles[entry.name] = fd
                    if os.fstat(fd).st_ino != entry.inode:
                        raise Retry
                line = os.pread(fd, entry.length, entry.offset)
                if len(line) != entry.length or entry.id.encode("utf-8") not in line:
                    raise Retry
                yield entry, line
        finally:
            for fd in handles.values():
                os.close(fd)

    def records(self, entries: list[Entry]) -> list[Record]:
        """The records of ``entries``, in the order given (see :meth:`read`)."""
        return [Record.from_json(line) for _, line in self.read(entries)]


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_size


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return 0
