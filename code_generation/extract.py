"""Get the Python code out of a chat model's reply, and find what the tests need from it.

Replies come in every shape: one fenced block, several (the code, then a usage example, then a shell
command), tags such as ``py``, ``Python3`` or ``{.python}``, ``~~~`` fences, a last fence cut off by the
token limit, or bare code between sentences. :func:`extract_code` handles all of them and never raises.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

PYTHON_TAGS = frozenset({"python", "python3", "py", "py3", "pycon", "ipython"})
_FENCE = re.compile(r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
_CODE_START = re.compile(
    r"^(from\s+[\w.]+\s+import\b|import\s+\w|def\s+\w|async\s+def\s+\w|class\s+\w|@\w|#!|if\s+__name__\b)"
)
_DEFINITION = re.compile(r"^(?:async\s+)?(?:def|class)\s+(\w+)|^(\w+)\s*(?::[^=]*)?=", re.M)


@dataclass(frozen=True)
class Block:
    """One fenced block: ``language`` is the lower-cased tag (None when untagged); ``closed`` is False when
    the reply ended inside it (cut off by the token limit)."""

    language: str | None
    text: str
    closed: bool = True

    @property
    def is_python(self) -> bool:
        return self.language in PYTHON_TAGS or (self.language is None and bool(defined_names(self.text)))


def _language(info: str) -> str | None:
    words = info.strip().strip("{}").lstrip(".").split()
    return words[0].lower().lstrip(".") if words else None


def fenced_blocks(reply: str) -> list[Block]:
    """The fenced blocks of a Markdown ``reply`` in order (``` or ~~~, any tag, unclosed last block kept)."""
    blocks: list[Block] = []
    opened: re.Match | None = None
    body: list[str] = []
    for line in reply.splitlines():
        match = _FENCE.match(line)
        if opened is None:
            if match:
                opened, body = match, []
            continue
        fence = opened["fence"]
        if match and match["fence"][0] == fence[0] and len(match["fence"]) >= len(fence) and not match["info"].strip():
            blocks.append(Block(_language(opened["info"]), "\n".join(body)))
            opened = None
        else:
            body.append(line)
    if opened is not None and any(line.strip() for line in body):
        blocks.append(Block(_language(opened["info"]), "\n".join(body), closed=False))
    return blocks


def parses(code: str) -> bool:
    """True when ``code`` is valid Python syntax."""
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def defined_names(code: str) -> set[str]:
    """Top-level names ``code`` defines (functions, classes, assignments, imports); a regex guess if it
    does not parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return {a or b for a, b in _DEFINITION.findall(code)}
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
    return names


def unfenced_code(reply: str) -> str:
    """The code in a reply without fences: from the first line that starts code (``import``, ``def``,
    ``class``, ...) to the last line that keeps it valid Python; ``""`` when no line starts code."""
    lines = reply.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        whole = "\n".join(lines)
        return whole if whole and parses(whole) and defined_names(whole) else ""
    lines = lines[start:]
    for end in range(len(lines), 0, -1):  # drop trailing prose until it parses
        candidate = "\n".join(lines[:end]).rstrip()
        if parses(candidate):
            return candidate
    return "\n".join(lines).rstrip()  # never parses: the test run will show the SyntaxError


def _score(block: Block, required: tuple[str, ...]) -> tuple[int, bool, bool, int]:
    names = defined_names(block.text)
    return (sum(name in names for name in required), parses(block.text), bool(names), len(block.text))


def extract_code(reply: str, required_names: tuple[str, ...] = ()) -> str:
    """The Python source in ``reply``, ending in one newline; ``""`` when there is none.

    Among fenced blocks tagged Python (or untagged but defining something), the one that defines most of
    ``required_names`` wins, then one that parses, then the longest; blocks defining names the winner
    lacks are appended in reply order. Without fences, see :func:`unfenced_code`.
    """
    blocks = fenced_blocks(reply)
    if not blocks:
        code = unfenced_code(reply)
        return code + "\n" if code else ""
    candidates = [block for block in blocks if block.is_python]
    if not candidates:
        return ""
    best = max(candidates, key=lambda block: _score(block, required_names))
    chosen = [best]
    missing = set(required_names) - defined_names(best.text)
    for block in candidates:
        if block is not best and missing & defined_names(block.text):
            chosen.append(block)
            missing -= defined_names(block.text)
    chosen.sort(key=candidates.index)
    code = "\n\n".join(block.text.strip("\n") for block in chosen).strip()
    return code + "\n" if code else ""


def names_needed_from(test_source: str, module: str) -> tuple[str, ...]:
    """Names the tests take from ``module``: ``from module import a, b`` and ``module.c`` / ``alias.c``.

    Without duplicates; ``()`` when the test file does not parse.
    """
    try:
        tree = ast.parse(test_source)
    except (SyntaxError, ValueError):
        return ()
    needed: dict[str, None] = {}
    aliases = {module}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[-1] == module:
            needed.update(dict.fromkeys(a.name for a in node.names if a.name != "*"))
        elif isinstance(node, ast.Import):
            aliases.update(a.asname or a.name for a in node.names if a.name.split(".")[-1] == module)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            needed[node.attr] = None
    return tuple(needed)
