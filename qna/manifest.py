"""The repo index's manifest (SQLite): what each file contributed, and caches that outlive re-indexes.

Tables:
    files(path, sha256, chunk_ids)         path -> content hash -> the ids of its chunks in the collection
    embeddings(key, vector)                sha256(embedder + text) -> float32 vector bytes
    summaries(sha256, mode, text)          content hash + summary mode -> the file's summary
    stats(path, stat)                      path -> "<size>:<mtime_ns>" when it was last read (read-repo skips
                                           a file whose stat is unchanged: no read, no secret scan)
    meta(key, value)                       the embedder the collection was built with

A file's row is written only after its chunks are in the collection, in one transaction, so an
interrupted run resumes where it stopped (continue.dev keeps its index the same way).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, chunk_ids TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS summaries (sha256 TEXT, mode TEXT, text TEXT NOT NULL, PRIMARY KEY (sha256, mode));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stats (path TEXT PRIMARY KEY, stat TEXT NOT NULL);
"""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Manifest:
    """The SQLite manifest at ``path`` (created with its tables when missing)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.executescript(SCHEMA)

    def files(self) -> dict[str, tuple[str, list[str]]]:
        """path -> (content sha256, chunk ids) of every file in the index."""
        rows = self.db.execute("SELECT path, sha256, chunk_ids FROM files")
        return {path: (digest, json.loads(ids)) for path, digest, ids in rows}

    def mark_done(self, entries: Iterable[tuple[str, str, Sequence[str]]]) -> None:
        """Record (path, sha256, chunk ids) for files whose chunks are now in the collection."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?)",
                [(path, digest, json.dumps(list(ids))) for path, digest, ids in entries],
            )

    def forget(self, paths: Iterable[str]) -> None:
        rows = [(path,) for path in paths]
        with self.db:
            self.db.executemany("DELETE FROM files WHERE path = ?", rows)
            self.db.executemany("DELETE FROM stats WHERE path = ?", rows)

    def stats(self) -> dict[str, str]:
        """path -> ``"<size>:<mtime_ns>"`` of the file when it was last read (see :meth:`save_stats`)."""
        return dict(self.db.execute("SELECT path, stat FROM stats"))

    def save_stats(self, entries: Iterable[tuple[str, str]]) -> None:
        """Record (path, ``"<size>:<mtime_ns>"``) for files whose row in ``files`` is up to date."""
        rows = list(entries)
        if rows:
            with self.db:
                self.db.executemany("INSERT OR REPLACE INTO stats VALUES (?, ?)", rows)

    def clear_stats(self) -> None:
        """Forget every file's stat: the next update reads and scans every file again."""
        with self.db:
            self.db.execute("DELETE FROM stats")

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        if self.get_meta(key) == value:
            return  # no write transaction (and no fsync) when nothing changes: an unchanged re-index writes nothing
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def summary(self, digest: str, mode: str) -> str | None:
        row = self.db.execute("SELECT text FROM summaries WHERE sha256 = ? AND mode = ?", (digest, mode)).fetchone()
        return row[0] if row else None

    def save_summary(self, digest: str, mode: str, text: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO summaries VALUES (?, ?, ?)", (digest, mode, text))

    def clear_summaries(self) -> None:
        """Forget every cached summary (they are written again from the files)."""
        with self.db:
            self.db.execute("DELETE FROM summaries")

    def clear_files(self) -> None:
        """Forget every file (``--reindex``); the caches are kept, since their keys are content hashes."""
        with self.db:
            self.db.execute("DELETE FROM files")
            self.db.execute("DELETE FROM stats")

    def close(self) -> None:
        self.db.close()


class CachedEmbeddings(Embeddings):
    """Embeddings that look each document text up in the manifest before computing it.

    Keys are sha256(embedder name + text), so a chunk that did not change is never embedded twice,
    across re-indexes and across files. Queries are not cached.
    """

    def __init__(self, inner: Embeddings, manifest: Manifest, name: str) -> None:
        self.inner, self.manifest, self.model_name = inner, manifest, name
        self.computed = 0  # how many texts were really embedded (for reports and tests)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        keys = [sha256(f"{self.model_name}\0{text}") for text in texts]
        found = {}
        for start in range(0, len(keys), 500):  # SQLite's variable limit
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            found.update(self.manifest.db.execute(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", part))
        missing = sorted({key: text for key, text in zip(keys, texts, strict=True) if key not in found}.items())
        if missing:
            vectors = self.inner.embed_documents([text for _, text in missing])
            rows = [
                (key, np.asarray(vector, dtype=np.float32).tobytes())
                for (key, _), vector in zip(missing, vectors, strict=True)
            ]
            with self.manifest.db:
                self.manifest.db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?)", rows)
            found.update(rows)
            self.computed += len(missing)
        return [np.frombuffer(found[key], dtype=np.float32).tolist() for key in keys]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)
