"""Which files of a directory read-repo indexes, and which it skips and why.

Ignore rules come from git itself inside a work tree (``git ls-files``), otherwise from every
``.gitignore`` in the tree through ``pathspec``; ``--ignore`` patterns use the same gitignore syntax.
"""

from __future__ import annotations

import os
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

DEFAULT_EXTENSIONS = (
    ".py",
    ".md",
    ".rst",
    ".txt",
    ".js",
    ".jsx",
    ".ts",
    ".tsx",
    ".go",
    ".java",
    ".rs",
    ".c",
    ".h",
    ".cc",
    ".cpp",
    ".hpp",
    ".rb",
    ".sh",
    ".toml",
    ".cfg",
    ".ini",
    ".yaml",
    ".yml",
)
MAX_FILE_BYTES = 1_000_000
# Never indexed, whatever they hold: files made to keep secrets. A secret inside any other file is replaced
# by [REDACTED:<kind>] when the file is indexed (qna.index).
SECRET_PATTERNS = (".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "*credentials*.json")
_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class SourceFile:
    """A file to index: ``relpath`` is POSIX and relative to the repository root."""

    path: Path
    relpath: str


@dataclass
class Discovery:
    """Result of :func:`discover`: files to index, and skipped relpaths grouped by reason."""

    files: list[SourceFile] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def parse_extensions(text: str | None) -> tuple[str, ...]:
    """``".md,py"`` -> ``(".md", ".py")``; None or blank gives DEFAULT_EXTENSIONS."""
    if not text or not text.strip():
        return DEFAULT_EXTENSIONS
    parts = (part.strip().lower() for part in text.split(","))
    return tuple(part if part.startswith(".") else f".{part}" for part in parts if part)


def _git_candidates(root: Path) -> list[str] | None:
    """Paths git would show (tracked + untracked, not ignored), or None outside a work tree."""
    try:
        inside = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return None
        # A folder the enclosing repository ignores (a package inside .venv/, say) was still asked for
        # by name: git would list nothing in it, so read it as a plain folder instead.
        ignored = subprocess.run(["git", "-C", str(root), "check-ignore", "-q", "."], capture_output=True, timeout=30)
        if ignored.returncode == 0:
            return None
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            timeout=120,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no git binary, or git failed: fall back to .gitignore files
    return sorted({name for name in listed.stdout.decode("utf-8", "surrogateescape").split("\0") if name})


def _walk_candidates(root: Path) -> list[str]:
    """Every file under ``root`` not excluded by a ``.gitignore`` at its level or above."""
    specs: list[tuple[str, pathspec.PathSpec]] = []
    found: list[str] = []
    for folder, dirs, names in os.walk(root):  # followlinks=False: no symlink loops
        rel_folder = Path(folder).relative_to(root).as_posix()
        rel_folder = "" if rel_folder == "." else rel_folder + "/"
        gitignore = Path(folder, ".gitignore")
        if gitignore.is_file():
            lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
            specs.append((rel_folder, pathspec.GitIgnoreSpec.from_lines(lines)))

        def ignored(rel: str) -> bool:
            return any(rel.startswith(base) and spec.match_file(rel[len(base) :]) for base, spec in specs)

        dirs[:] = sorted(d for d in dirs if d != ".git" and not ignored(f"{rel_folder}{d}/"))
        found.extend(f"{rel_folder}{name}" for name in sorted(names) if not ignored(f"{rel_folder}{name}"))
    return found


def _skip_reason(path: Path, root: Path, secrets: pathspec.PathSpec, relpath: str) -> str | None:
    if secrets.match_file(relpath):
        return "secret"
    if not path.is_file():
        return "not a regular file"
    if path.is_symlink() and not path.resolve().is_relative_to(root):
        return "symlink outside the repository"
    if path.stat().st_size > MAX_FILE_BYTES:
        return f"larger than {MAX_FILE_BYTES // 1000} kB"
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if b"\0" in head:
        return "binary"
    try:
        path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    return None  # secrets inside a file are redacted when it is indexed (qna.index, my_llm.find_secrets)


def discover(root: Path, extensions: tuple[str, ...] = DEFAULT_EXTENSIONS, ignore: tuple[str, ...] = ()) -> Discovery:
    """List the files of ``root`` to index, in path order.

    Args:
        root: an existing directory.
        extensions: lower-case suffixes to keep (``.py``); other files are not reported.
        ignore: extra gitignore-style patterns relative to ``root`` (``env/``, ``*.lock``).
    """
    root = root.resolve()
    candidates = _git_candidates(root)
    if candidates is None:
        candidates = _walk_candidates(root)
    extra = pathspec.GitIgnoreSpec.from_lines(ignore)
    secrets = pathspec.GitIgnoreSpec.from_lines(SECRET_PATTERNS)
    result = Discovery()
    for relpath in candidates:
        if Path(relpath).suffix.lower() not in extensions and not secrets.match_file(relpath):
            continue
        if extra.match_file(relpath):
            result.skipped["--ignore"].append(relpath)
            continue
        path = root / relpath
        reason = _skip_reason(path, root, secrets, relpath) if path.exists() else "deleted"
        if reason:
            result.skipped[reason].append(relpath)
        else:
            result.files.append(SourceFile(path=path, relpath=relpath))
    return result
