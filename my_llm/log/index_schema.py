"""The log index's schema: named, ordered migrations, each applied once and recorded in ``_migrations``
(as simonw/llm does). Add a change as a new ``m00N_...`` entry at the end; never edit an applied one."""

from __future__ import annotations

import sqlite3

from my_llm.record import utc_now

MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "m001_initial",
        (
            """CREATE TABLE files (
                file INTEGER PRIMARY KEY,       -- order of the files: archives oldest first, then the live log
                name TEXT NOT NULL UNIQUE,      -- relative to the namespace folder
                inode INTEGER NOT NULL,
                indexed_to INTEGER NOT NULL,    -- bytes parsed, always just after a newline
                records INTEGER NOT NULL        -- rows of this file
            )""",
            "CREATE TABLE sessions (session INTEGER PRIMARY KEY, session_id TEXT NOT NULL UNIQUE)",
            """CREATE TABLE records (
                seq INTEGER PRIMARY KEY,        -- the log position
                id TEXT NOT NULL,
                file INTEGER NOT NULL REFERENCES files(file),
                offset INTEGER NOT NULL,        -- bytes from the start of the file
                length INTEGER NOT NULL,        -- bytes of the line without its newline
                session INTEGER NOT NULL REFERENCES sessions(session),
                role TEXT NOT NULL,
                created_at TEXT NOT NULL,
                turn INTEGER NOT NULL           -- 1: a conversation turn (is_turn)
            )""",
            "CREATE INDEX records_id ON records(id)",
            "CREATE INDEX records_session_turns ON records(session, file, turn, seq)",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
    ),
)


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations not applied yet, in order, each in its own transaction; returns their names."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    applied = []
    for name, statements in MIGRATIONS:
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone() is None:
                for statement in statements:
                    db.execute(statement)
                db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, utc_now().isoformat()))
                applied.append(name)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return applied
