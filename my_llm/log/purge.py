"""Purging sessions from a namespace's log: the one sanctioned rewrite of an append-only log.

A deleted conversation is first hidden by a tombstone record (appended and published like any record, so
downstream tables drop it too); an admin may later remove its records from disk with :func:`purge_sessions`.
Everything else stays as it was, byte for byte:

- the log's lock (``messages.jsonl.lock``, the one every append and ``clear()`` takes, see
  :mod:`my_llm.log.locks`) is held from the first read to the last replace, so no append is lost or
  interleaved: a writer in another process waits, then appends to the new file;
- each file that changes (the live log, and any archive holding such records) is written beside it, fsynced,
  and swapped in with ``os.replace``, so a reader sees the old file or the new one, never half of each; a
  crash leaves at most a stray ``*.purge`` file, never a damaged log. Lines not purged are copied
  unchanged, unreadable ones and a torn tail included;
- the outbox cursor is re-anchored on records that stay before any file changes, so every record not yet
  acknowledged by Pub/Sub is still pending afterwards (purged ones need not be sent); a crash in between
  can only make an acknowledged record pending again (sent twice; consumers de-duplicate on ``id``);
- the sidecar index is rebuilt (it would rebuild itself on its next read anyway: the inodes changed).

What was already published stays published: the tombstone is how consumers learn to drop the session.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from my_llm.config import Settings
from my_llm.errors import StoreError
from my_llm.log.index import Entry, LogIndex
from my_llm.log.locks import InterProcessLock
from my_llm.log.outbox import Outbox
from my_llm.log.store import LOG_NAME, MessageStore
from my_llm.record import Record

PURGE_SUFFIX = ".purge"
LOCK_TIMEOUT_S = 120.0
READ_CHUNK = 5000


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed (or, with ``dry_run``, would remove) from one namespace.

    Attributes:
        namespace: the namespace.
        sessions: the session ids asked for that had records to remove, in the order asked.
        records: lines removed (records of those sessions that ``keep`` did not keep).
        bytes: bytes removed from the files, newlines included.
        files: the files rewritten, relative to the namespace folder (``messages.jsonl``, ``archive/...``).
        dry_run: True when nothing was changed.
    """

    namespace: str
    sessions: list[str] = field(default_factory=list)
    records: int = 0
    bytes: int = 0
    files: list[str] = field(default_factory=list)
    dry_run: bool = False


def is_event(record: Record) -> bool:
    """The default ``keep`` of :func:`purge_sessions`: event records (tombstones: ``metadata["event"]``)."""
    return isinstance(record.metadata, dict) and "event" in record.metadata


def purge_sessions(
    settings: Settings,
    namespace: str,
    session_ids: Iterable[str],
    *,
    keep: Callable[[Record], bool] = is_event,
    dry_run: bool = False,
) -> PurgeReport:
    """Remove from ``namespace``'s log and archives (under ``settings.message_history``) every record of
    ``session_ids`` for which ``keep`` is false (by default tombstones are kept).

    Args:
        settings: where the logs are (``message_history``) and the fsync policy of the store.
        namespace: validated (InvalidNamespaceError otherwise).
        session_ids: the sessions to purge; unknown ones are ignored.
        keep: records of those sessions to keep (default :func:`is_event`).
        dry_run: count what would be removed, change nothing.

    Returns:
        A :class:`PurgeReport` (records and bytes removed, files rewritten).

    Raises:
        StoreError: a file could not be read, written or replaced, or the lock was not had within 120 s
            (files already replaced are complete, the others untouched, the cursor anchored on records that
            stay: running it again finishes the job).
    """
    wanted = list(dict.fromkeys(session_ids))
    store = MessageStore(settings.message_history, namespace, settings.fsync)
    if not wanted or not store.folder.is_dir():
        return PurgeReport(store.namespace, dry_run=dry_run)
    index = LogIndex(store)
    outbox = Outbox(index)
    try:
        with InterProcessLock(store.folder / f"{LOG_NAME}.lock", timeout=LOCK_TIMEOUT_S):
            return _purge_locked(store, index, outbox, wanted, keep, dry_run)
    except OSError as error:
        raise StoreError(f"Could not purge {store.folder}: {error}.") from error
    finally:
        outbox.close()
        index.close()


def _purge_locked(
    store: MessageStore,
    index: LogIndex,
    outbox: Outbox,
    wanted: list[str],
    keep: Callable[[Record], bool],
    dry_run: bool,
) -> PurgeReport:
    entries = index.entries_between(1)  # every readable line of the archives and the live log, in order
    asked, dropped, found = set(wanted), [], set()
    for start in range(0, len(entries), READ_CHUNK):
        for entry, line in index.read(entries[start : start + READ_CHUNK]):
            record = Record.from_json(line)
            if record.session_id in asked and not keep(record):
                dropped.append(entry)
                found.add(record.session_id)
    report = PurgeReport(
        store.namespace,
        sessions=[session for session in wanted if session in found],
        records=len(dropped),
        bytes=sum(entry.length + 1 for entry in dropped),
        files=sorted({entry.name for entry in dropped}),
        dry_run=dry_run,
    )
    if dry_run or not dropped:
        return report
    outbox.compact()  # fold the written acknowledgements into the cursor first
    with outbox._file_lock:  # no compaction elsewhere while positions change
        _reanchor_cursor(outbox, {entry.seq for entry in dropped}, [entry.seq for entry in entries])
        by_file: dict[str, list[Entry]] = {}
        for entry in dropped:
            by_file.setdefault(entry.name, []).append(entry)
        for name, gone in by_file.items():
            _rewrite(store.folder / name, gone, store.fsync != "never")
        index.rebuild()
        outbox._save_cursor(*outbox._load_cursor())  # positions of the rebuilt index, same records
    return report


def _reanchor_cursor(outbox: Outbox, dropped: set[int], seqs: list[int]) -> None:
    """Save the cursor anchored on records that stay: ``last_id`` the last kept record at or below the
    position, each acknowledged run cut to its first and last kept records (a run of purged records only is
    left out). Valid before the rewrite and after it, since it names records by id."""
    position, runs = outbox._load_cursor()
    kept = [seq for seq in seqs if seq not in dropped]
    anchor = max((seq for seq in kept if seq <= position), default=0)
    new_runs = []
    for first, last in runs:
        inside = [seq for seq in kept if first <= seq <= last]
        if inside:
            new_runs.append((inside[0], inside[-1]))
    outbox._save_cursor(anchor, new_runs)


def _rewrite(path: Path, gone: list[Entry], fsync: bool) -> None:
    """Write ``path`` without the lines of ``gone`` (every other byte copied) beside it, then swap it in."""
    spans = sorted((entry.offset, entry.offset + entry.length + 1) for entry in gone)
    inode = gone[0].inode
    temporary = path.with_name(path.name + PURGE_SUFFIX)
    with open(path, "rb") as source:
        if os.fstat(source.fileno()).st_ino != inode:
            raise StoreError(f"{path} changed while it was being purged; run the purge again.")
        with open(temporary, "wb") as target:
            position = 0
            for start, end in spans:
                _copy(source, target, position, start)
                position = end
            _copy(source, target, position, None)
            target.flush()
            if fsync:
                os.fsync(target.fileno())
        os.chmod(temporary, os.fstat(source.fileno()).st_mode & 0o7777)
    os.replace(temporary, path)
    if fsync:
        _fsync_folder(path.parent)


def _copy(source, target, start: int, end: int | None, chunk: int = 1 << 20) -> None:
    source.seek(start)
    left = None if end is None else end - start
    while left is None or left > 0:
        data = source.read(chunk if left is None else min(chunk, left))
        if not data:
            return
        target.write(data)
        if left is not None:
            left -= len(data)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
