"""A registered repository's file, for the repos page's ``path:Lstart-end`` sources: which files may be shown
(:func:`repo_file`) and the cited lines highlighted by Pygments (:func:`highlighted`).

Only a regular text file inside the repository is shown: the relative path may not be absolute, hold a NUL
byte or a ``..`` part; it is then resolved (every symlink followed) and must still lie inside the repository
folder, itself still resolved and under the roots (``MY_LLM_REPO_ROOTS``). Files made to hold secrets
(read-repo's :data:`qna.files.SECRET_PATTERNS`: ``.env``, ``*.pem``, ...) are never shown, nor files larger
than read-repo indexes (:data:`qna.files.MAX_FILE_BYTES`) or binary ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pathspec
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

from my_llm import MyLLMError
from qna.files import MAX_FILE_BYTES, SECRET_PATTERNS
from server.repo_paths import under_roots

CONTEXT_LINES = 200  # lines shown before and after the cited ones
CSS_CLASS = "source"
_SECRETS = pathspec.GitIgnoreSpec.from_lines(SECRET_PATTERNS)


class SourceFileError(MyLLMError):
    """A file that cannot be shown; ``status`` is the page's HTTP status (400, 403 or 404)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SourceLines:
    """The lines shown: ``html`` (Pygments, cited lines in ``span.hll``, anchors ``#L-<n>``), the first and last
    line shown (1-based), the cited ``start``-``end`` and the file's line count."""

    html: str
    first: int
    last: int
    start: int
    end: int
    lines: int


def repo_file(repo_path: str, roots: Sequence[Path], relpath: str) -> Path:
    """The file ``relpath`` names inside the repository at ``repo_path`` (resolved), when it may be shown.

    Raises:
        SourceFileError: 400 for an empty, absolute, ``..``-holding or NUL-holding path, a binary or too large
            file; 403 when the repository is no longer under the roots, the resolved file lies outside the
            repository (a symlink escape) or is a secrets file; 404 when there is no such file.
    """
    root = Path(repo_path)
    if root.resolve() != root or not under_roots(root, roots) or not root.is_dir():
        raise SourceFileError(f"{repo_path} is no longer a folder under the repository roots.", 403)
    parts = PurePosixPath(relpath).parts
    if not relpath.strip() or "\0" in relpath or relpath.startswith(("/", "\\")) or ".." in parts:
        raise SourceFileError("Give the file as a path relative to the repository, without '..'.")
    try:
        target = (root / relpath).resolve(strict=True)
    except FileNotFoundError as error:
        raise SourceFileError(f"No file {relpath!r} in this repository.", 404) from error
    except (OSError, RuntimeError) as error:  # a symlink loop, a path too long
        raise SourceFileError(f"{relpath!r} cannot be opened: {error}.") from error
    if not target.is_relative_to(root):
        raise SourceFileError(f"{relpath!r} leads outside the repository (a symlink): it is not shown.", 403)
    inside = target.relative_to(root).as_posix()
    if _SECRETS.match_file(inside) or _SECRETS.match_file(relpath):
        raise SourceFileError(f"{relpath!r} is a secrets file: it is never shown (nor indexed).", 403)
    if not target.is_file():
        raise SourceFileError(f"No file {relpath!r} in this repository.", 404)
    if target.stat().st_size > MAX_FILE_BYTES:
        raise SourceFileError(f"{relpath!r} is larger than {MAX_FILE_BYTES // 1000} kB: it is not shown.")
    return target


def highlighted(path: Path, start: int | None, end: int | None) -> SourceLines:
    """The lines of ``path`` around ``start``-``end`` (1-based, inclusive; ``CONTEXT_LINES`` either side; the
    whole file, nothing highlighted, when ``start`` is None), highlighted for its file name.

    Raises:
        SourceFileError: 400 when the file is binary or ``start`` is past its last line.
    """
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        raise SourceFileError(f"{path.name} is a binary file: it is not shown.")
    lines = data.decode("utf-8", errors="replace").splitlines()
    count = len(lines)
    if start is None:
        start = end = 0
        first, last = 1, count
    else:
        end = max(start, end or start)
        if start > max(count, 1):
            raise SourceFileError(f"{path.name} has {count} lines: line {start} is past its end.")
        end = min(end, count)
        first, last = max(1, start - CONTEXT_LINES), min(count, end + CONTEXT_LINES)
    text = "\n".join(lines[first - 1 : last]) + "\n"
    try:
        lexer = get_lexer_for_filename(path.name, text, stripnl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False)
    formatter = HtmlFormatter(
        linenos="inline",
        linenostart=first,
        hl_lines=list(range(start - first + 1, end - first + 2)) if start else [],
        lineanchors="L",
        anchorlinenos=True,
        cssclass=CSS_CLASS,
        wrapcode=True,
    )
    return SourceLines(highlight(text, lexer, formatter), first, last, start, end, count)


def style_defs() -> str:
    """The CSS of Pygments' default style, scoped to ``.source``."""
    return HtmlFormatter(cssclass=CSS_CLASS).get_style_defs(f".{CSS_CLASS}")
