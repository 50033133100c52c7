"""The users database (SQLAlchemy 2): users and their API keys. Any SQLAlchemy URL; SQLite by default."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Boolean, DateTime, ForeignKey, String, create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """The declarative base of the server's tables."""


class User(Base):
    """A user: a unique name, an optional Argon2 password hash, admin and disabled flags."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    keys: Mapped[list[ApiKey]] = relationship(back_populates="user", cascade="all, delete-orphan")


class ApiKey(Base):
    """An API key of a user, stored as its SHA-256 digest; ``prefix`` (its first 12 characters) names it.

    ``namespace_label`` (None, or 1-40 of ``a-z0-9_-``) makes the key log to ``user-<name>.key-<label>``
    instead of the user's main namespace ``user-<name>`` (see :func:`server.users.key_namespace`).
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    namespace_label: Mapped[str | None] = mapped_column(String(40), default=None)
    user: Mapped[User] = relationship(back_populates="keys")


# Columns added to existing tables after their first release: (table, column, SQL type). Each is nullable, so
# an ``ALTER TABLE ... ADD COLUMN`` is all a database made before it needs (SQLite and Postgres alike). With one
# such column, this guarded step at engine creation is simpler than bringing in Alembic; a change that is not a
# nullable column added (a rename, a type change, a backfill) is the point to switch to Alembic migrations.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (("api_keys", "namespace_label", "VARCHAR(40)"),)


def add_missing_columns(engine: Engine) -> list[str]:
    """Add the :data:`ADDED_COLUMNS` a database made before them lacks; returns ``table.column`` for each added.

    Safe when two processes start at once: a column the other one added meanwhile is not an error.
    """
    added = []
    for table, column, sql_type in ADDED_COLUMNS:
        if column in {info["name"] for info in inspect(engine).get_columns(table)}:
            continue
        try:
            with engine.begin() as connection:
                connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))
            added.append(f"{table}.{column}")
        except DBAPIError:
            if column not in {info["name"] for info in inspect(engine).get_columns(table)}:
                raise
    return added


def make_engine(database_url: str) -> Engine:
    """An engine for ``database_url`` with the tables created (and the columns added since, see
    :func:`add_missing_columns`); a SQLite file's folder is created too (WAL mode, so the CLI and the server
    can use it at once)."""
    url = make_url(database_url)
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False} if sqlite else {})
    if sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(connection, _record) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    Base.metadata.create_all(engine)
    add_missing_columns(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker:
    """Sessions bound to ``engine`` that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
