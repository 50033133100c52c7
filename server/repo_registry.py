"""The registry of repositories the server indexes, in the users database (table ``repos``).

Repositories are shared: registered by a user, listed and asked by every user of the server, since only
folders under the admin's roots (``MY_LLM_REPO_ROOTS``) can be registered. ``registered_by`` says who; only
that user or an admin may remove one (:func:`may_remove`).

A repository's ``state`` moves ``queued -> indexing -> ready | failed``; ``files_done`` / ``files_total``
count the indexing run's progress and ``error`` says why one failed. Every function takes a SQLAlchemy
session and commits its own change.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, Integer, String, Text, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.db import Base

STATES = ("queued", "indexing", "ready", "failed")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Repo(Base):
    """A registered repository: its resolved path, who registered it, and its indexing state and progress."""

    __tablename__ = "repos"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(4096), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    registered_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    files_done: Mapped[int] = mapped_column(Integer, default=0)
    files_total: Mapped[int | None] = mapped_column(Integer, default=None)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    indexed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


def register(session: Session, path: str, name: str, user_name: str) -> tuple[Repo, bool]:
    """Register ``path`` (already resolved and checked) for indexing; returns the repo and whether it is new.

    A path registered before is queued again (its index is brought up to date) unless it is queued or being
    indexed already.
    """
    repo = session.scalar(select(Repo).where(Repo.path == path))
    if repo is None:
        repo = Repo(path=path, name=name, registered_by=user_name, state="queued")
        session.add(repo)
        session.commit()
        return repo, True
    if repo.state in ("ready", "failed"):
        repo.state, repo.error, repo.files_done, repo.updated_at = "queued", None, 0, _now()
        session.commit()
    return repo, False


def get_repo(session: Session, repo_id: int) -> Repo | None:
    """The repo with ``repo_id``, None when there is none."""
    return session.get(Repo, repo_id)


def list_repos(session: Session) -> list[Repo]:
    """Every registered repo, oldest registration first."""
    return list(session.scalars(select(Repo).order_by(Repo.id)))


def unfinished(session: Session) -> list[int]:
    """Ids of repos queued or left ``indexing`` (by a server that stopped mid-run), which are queued again."""
    ids = list(session.scalars(select(Repo.id).where(Repo.state.in_(("queued", "indexing"))).order_by(Repo.id)))
    if ids:
        session.execute(update(Repo).where(Repo.id.in_(ids)).values(state="queued", updated_at=_now()))
        session.commit()
    return ids


def set_progress(session: Session, repo_id: int, state: str, **fields) -> None:
    """Set a repo's ``state`` and any of ``files_done``, ``files_total``, ``chunks``, ``error``, ``indexed_at``.

    Raises:
        ValueError: ``state`` is not one of :data:`STATES` or a field is unknown.
    """
    allowed = {"files_done", "files_total", "chunks", "error", "indexed_at"}
    if state not in STATES or not set(fields) <= allowed:
        raise ValueError(f"state must be one of {STATES} and fields among {sorted(allowed)}, not {state}, {fields}")
    session.execute(update(Repo).where(Repo.id == repo_id).values(state=state, updated_at=_now(), **fields))
    session.commit()


def may_remove(repo: Repo, user_name: str, is_admin: bool) -> bool:
    """Whether ``user_name`` may remove ``repo``: the user who registered it, or an admin."""
    return is_admin or repo.registered_by == user_name


def delete_repo(session: Session, repo_id: int) -> bool:
    """Delete the row of ``repo_id`` (its index is the caller's: :meth:`server.repos.RepoService.remove`);
    whether there was one."""
    deleted = session.execute(delete(Repo).where(Repo.id == repo_id)).rowcount
    session.commit()
    return bool(deleted)
