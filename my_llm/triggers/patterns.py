"""Where a trigger's text starts and ends in a message: a line or a fenced block that starts with a prefix
(``SQL:``, ``EMAIL:``), or a regular expression of your own.

Default rules, for a prefix ``P:``:

- **a fenced block** (``````` or ``~~~``, CommonMark: the closing fence is the same character, at least
  as long) whose first line starts with ``P:``: the body is the rest of that line and every line up to
  the closing fence (or the end of the message);
- **a line** outside fences that starts with ``P:`` (leading spaces allowed): the body is the rest of the
  line and the lines after it, up to a blank line (``until = "paragraph"``, SQL's default) or to the end of
  the message (``until = "end"``, EMAIL's default: a mail has a blank line between headers and body);
  either way a fence line or another line starting with ``P:`` ends it.

Lines inside other fenced blocks (code the model shows) never match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNTIL = ("paragraph", "end")
_FENCE = re.compile(r"^ {0,3}(`{3,}(?!.*`)|~{3,})")  # a backtick fence's info string has no backtick


@dataclass(frozen=True)
class Pattern:
    """A prefix with the default rules above, or ``regex`` (its group ``body``, else group 1, else the
    whole match, for each non-overlapping match).

    Attributes:
        prefix: e.g. ``SQL:`` (case-sensitive); ignored when ``regex`` is given.
        until: ``paragraph`` or ``end`` (see the module docstring).
        regex: a compiled pattern, or None.
    """

    prefix: str = ""
    until: str = "paragraph"
    regex: re.Pattern[str] | None = None

    def __post_init__(self) -> None:
        if self.regex is None and not self.prefix.strip():
            raise ValueError("a pattern needs a non-blank prefix or a regex")
        if self.until not in UNTIL:
            raise ValueError(f"until must be one of {', '.join(UNTIL)}, not {self.until!r}")

    def describe(self) -> str:
        """``SQL: (line or fenced block, to a blank line)`` or ``/regex/``."""
        if self.regex is not None:
            return f"/{self.regex.pattern}/"
        return f"{self.prefix} (line or fenced block, to {'a blank line' if self.until == 'paragraph' else 'the end'})"

    def find(self, text: str) -> list[str]:
        """The bodies found in ``text``, in order, stripped of surrounding blank space."""
        if self.regex is not None:
            return [_group(match).strip() for match in self.regex.finditer(text)]
        return _find_prefixed(text.splitlines(), self.prefix, self.until)


def _group(match: re.Match[str]) -> str:
    if "body" in match.re.groupindex:
        return match.group("body") or ""
    return (match.group(1) if match.re.groups else match.group(0)) or ""


def _is_closing(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and set(stripped) == {fence[0]}


def _find_prefixed(lines: list[str], prefix: str, until: str) -> list[str]:
    bodies: list[str] = []
    position = 0
    while position < len(lines):
        line = lines[position]
        fence = _FENCE.match(line)
        if fence:  # a fenced block: matches only when its first line starts with the prefix
            marker, position = fence.group(1), position + 1
            inside: list[str] = []
            while position < len(lines) and not _is_closing(lines[position], marker):
                inside.append(lines[position])
                position += 1
            position += 1  # the closing fence
            if inside and inside[0].lstrip().startswith(prefix):
                bodies.append("\n".join([inside[0].lstrip()[len(prefix) :], *inside[1:]]).strip())
            continue
        if line.lstrip().startswith(prefix):
            body, position = [line.lstrip()[len(prefix) :]], position + 1
            while position < len(lines):
                current = lines[position]
                if _FENCE.match(current) or current.lstrip().startswith(prefix):
                    break
                if until == "paragraph" and not current.strip():
                    break
                body.append(current)
                position += 1
            bodies.append("\n".join(body).strip())
            continue
        position += 1
    return bodies
