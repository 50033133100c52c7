"""Fenced code blocks in Markdown, found line by line (CommonMark's rules, as GitHub renders them).

A fence is a line of at least three backticks or three tildes, after any indentation (so fences inside
list items count too). A backtick fence's info string (``python``) holds no backtick: ```` ```x``` ```` is
inline code, not a fence. The block ends at a line of the same character, at least as long as the opening
run, with nothing else on it, so a ```` ```` ```` block can show a ```` ``` ```` example and a
``~~~`` block can hold backticks. A block that is never closed runs to the end of the document.

Both the Markdown chunker (:mod:`qna.chunking`) and the Markdown summary (:mod:`qna.summaries`) read
headings only outside these blocks: a ``# comment`` in a shell example is not a heading.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_OPENING = re.compile(r"(?P<marker>`{3,}|~{3,})(?P<info>.*)")
_CLOSING = re.compile(r"(?P<marker>`{3,}|~{3,})\s*")


@dataclass(frozen=True)
class Fence:
    """One fenced block: lines ``start`` to ``end`` (1-based, inclusive, its fence lines included).

    ``marker`` is the opening run (``"```"``, ``"~~~~"``, ...), ``info`` the text after it, stripped
    (``"python"``, or ``""``). ``closed`` is False when the document ended inside the block; ``end`` is
    then the last line.
    """

    start: int
    end: int
    marker: str
    info: str
    closed: bool = True


def _opening(line: str) -> tuple[str, str] | None:
    """``(marker, info)`` when ``line`` opens a fenced block, else None."""
    match = _OPENING.fullmatch(line.strip())
    if match is None or (match["marker"][0] == "`" and "`" in match["info"]):
        return None
    return match["marker"], match["info"].strip()


def _closes(line: str, marker: str) -> bool:
    """True when ``line`` closes a block opened by ``marker``: same character, at least as many, no info."""
    match = _CLOSING.fullmatch(line.strip())
    return match is not None and match["marker"][0] == marker[0] and len(match["marker"]) >= len(marker)


def code_fences(lines: Sequence[str]) -> list[Fence]:
    """The fenced code blocks of a Markdown document given as its ``lines`` (no line ends), in order."""
    fences: list[Fence] = []
    opened: tuple[int, str, str] | None = None  # (start line, marker, info)
    for number, line in enumerate(lines, start=1):
        if opened is None:
            found = _opening(line)
            if found is not None:
                opened = (number, *found)
        elif _closes(line, opened[1]):
            fences.append(Fence(opened[0], number, opened[1], opened[2]))
            opened = None
    if opened is not None:
        fences.append(Fence(opened[0], len(lines), opened[1], opened[2], closed=False))
    return fences


def outside_fences(lines: Sequence[str]) -> list[tuple[int, str]]:
    """``(line number, line)`` for each of ``lines`` outside every fenced block (numbers are 1-based;
    fence lines themselves are inside)."""
    inside: set[int] = set()
    for fence in code_fences(lines):
        inside.update(range(fence.start, fence.end + 1))
    return [(number, line) for number, line in enumerate(lines, start=1) if number not in inside]
