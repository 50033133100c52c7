"""Which folders may be registered as repositories: only existing folders under the roots the admin configured
(``MY_LLM_REPO_ROOTS``). A path is resolved first (``..`` and every symlink followed), then checked, so neither
``..`` nor a symlink inside a root can lead out of it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from my_llm import MyLLMError


class RepoPathError(MyLLMError):
    """A path that cannot be registered; ``status`` is the HTTP status to answer with (400 or 403)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def under_roots(path: Path, roots: Sequence[Path]) -> bool:
    """True when the resolved ``path`` is one of ``roots`` (resolved) or inside one."""
    return any(path == root or path.is_relative_to(root) for root in roots)


def resolve_repo_path(raw: str, roots: Sequence[Path]) -> Path:
    """The resolved folder ``raw`` names, when it is one of ``roots`` or inside one.

    Args:
        raw: an absolute path, as the client sent it.
        roots: the configured roots, resolved (:attr:`server.config.ServerSettings.repo_roots`).

    Raises:
        RepoPathError: 403 when no roots are configured, or when the resolved path is outside every root
            (said before anything about its existence, so nothing outside the roots can be probed); 400 when
            ``raw`` is empty, relative, holds a NUL byte, or is not an existing folder.
    """
    if not roots:
        raise RepoPathError(
            "No repository roots are configured on this server: the admin sets MY_LLM_REPO_ROOTS to the folders "
            f"users may register repositories under (absolute paths separated by {os.pathsep!r}) and restarts it.",
            403,
        )
    shown = ", ".join(str(root) for root in roots)
    if not raw.strip() or "\0" in raw or not Path(raw).is_absolute():
        raise RepoPathError(f"Give the repository as an absolute path under one of the roots: {shown}.")
    try:
        resolved = Path(raw).resolve()
    except (OSError, RuntimeError) as error:  # a symlink loop
        raise RepoPathError(f"{raw!r} cannot be resolved: {error}.") from error
    if not under_roots(resolved, roots):
        raise RepoPathError(
            f"{raw!r} is outside the repository roots once '..' and symlinks are followed: register a folder "
            f"under one of {shown}.",
            403,
        )
    if not resolved.is_dir():
        raise RepoPathError(f"{raw!r} is not an existing folder.")
    return resolved
