"""Split a file into chunks that remember their lines and the symbol they hold.

Code is parsed with tree-sitter (the per-language grammar packages, which work offline): one chunk per
function or class, small neighbours merged up to the size cap, a class too big for one chunk split into
its methods (each keeps the class's header line as context), anything still too big cut into line
windows. Markdown is split at its headings. Other text, and code whose grammar is missing, falls back
to fixed line windows. This follows continue.dev's code chunker and aider's use of tree-sitter.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from qna.fences import outside_fences

MAX_CHUNK_CHARS = 1500
WINDOW_LINES = 60
WINDOW_OVERLAP = 10

# suffix -> (language name, grammar module, function returning the grammar)
GRAMMARS = {
    ".py": ("python", "tree_sitter_python", "language"),
    ".js": ("javascript", "tree_sitter_javascript", "language"),
    ".jsx": ("javascript", "tree_sitter_javascript", "language"),
    ".mjs": ("javascript", "tree_sitter_javascript", "language"),
    ".ts": ("typescript", "tree_sitter_typescript", "language_typescript"),
    ".tsx": ("tsx", "tree_sitter_typescript", "language_tsx"),
    ".go": ("go", "tree_sitter_go", "language"),
    ".java": ("java", "tree_sitter_java", "language"),
    ".rs": ("rust", "tree_sitter_rust", "language"),
    ".c": ("c", "tree_sitter_c", "language"),
    ".h": ("c", "tree_sitter_c", "language"),
    ".cc": ("cpp", "tree_sitter_cpp", "language"),
    ".cpp": ("cpp", "tree_sitter_cpp", "language"),
    ".hpp": ("cpp", "tree_sitter_cpp", "language"),
}
TEXT_LANGUAGES = {".md": "markdown", ".rst": "rst", ".txt": "text"}
DEFINITIONS = {
    "function_definition", "class_definition", "decorated_definition",  # python, c/cpp functions
    "function_declaration", "class_declaration", "method_definition", "generator_function_declaration",
    "interface_declaration", "enum_declaration", "type_alias_declaration", "abstract_class_declaration",
    "method_declaration", "constructor_declaration", "type_declaration", "record_declaration",
    "function_item", "impl_item", "struct_item", "enum_item", "trait_item", "mod_item", "macro_definition",
    "struct_specifier", "class_specifier", "namespace_definition", "template_declaration",
}  # fmt: skip
WRAPPERS = {"export_statement", "decorated_definition", "template_declaration"}
BODIES = {"block", "class_body", "declaration_list", "field_declaration_list", "interface_body", "enum_body"}


@dataclass(frozen=True)
class Chunk:
    """A piece of a file: lines ``start_line`` to ``end_line`` (1-based, inclusive) of ``path``.

    ``kind`` is ``code`` for a piece of the file or ``summary`` for its Markdown summary; ``symbol``
    names the functions, classes or heading it holds (empty for glue code). ``text`` is the lines
    themselves, preceded by the enclosing class's header line for a method split out of its class.
    """

    path: str
    start_line: int
    end_line: int
    text: str
    language: str
    kind: str = "code"
    symbol: str = ""

    @property
    def id(self) -> str:
        """Stable id: the same path, lines, kind and text give the same id."""
        key = f"{self.path}\0{self.start_line}\0{self.end_line}\0{self.kind}\0{self.text}"
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]

    @property
    def citation(self) -> str:
        """``path:Lstart-end``."""
        return f"{self.path}:L{self.start_line}-{self.end_line}"


def language_of(path: str) -> str:
    """``python``, ``markdown``, ... for a path; ``text`` when unknown."""
    suffix = PurePosixPath(path).suffix.lower()
    return GRAMMARS[suffix][0] if suffix in GRAMMARS else TEXT_LANGUAGES.get(suffix, "text")


@functools.cache
def _parser(suffix: str):
    """A tree-sitter parser for ``suffix``, or None when its grammar package is not installed."""
    try:
        import tree_sitter

        _, module, function = GRAMMARS[suffix]
        grammar = getattr(importlib.import_module(module), function)()
    except (ImportError, KeyError):
        return None
    return tree_sitter.Parser(tree_sitter.Language(grammar))


def chunk_text(path: str, text: str, max_chars: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    """Split ``text`` (the content of ``path``) into chunks of at most about ``max_chars`` characters.

    Returns an empty list for a file with no non-blank text.
    """
    if not text.strip():
        return []
    lines = text.splitlines()
    suffix = PurePosixPath(path).suffix.lower()
    language = language_of(path)
    if language == "markdown":
        pieces = _markdown_sections(lines, max_chars)
    else:
        parser = _parser(suffix)
        tree = parser.parse(text.encode("utf-8")) if parser else None
        if tree is None or tree.root_node.has_error and not tree.root_node.named_children:
            pieces = _windows(lines, 1, len(lines), "", "", max_chars)
        else:
            pieces = _code_pieces(tree.root_node.named_children, lines, max_chars)
    chunks = (
        Chunk(path, start, end, header + "\n".join(lines[start - 1 : end]), language, symbol=symbol)
        for start, end, symbol, header in _merge_small(pieces, lines, max_chars)
        if any(line.strip() for line in lines[start - 1 : end])
    )
    return list({chunk.id: chunk for chunk in chunks}.values())  # ids are unique: one add() takes them all


# A piece is (start_line, end_line, symbol, header): header is text put before the lines.
Piece = tuple[int, int, str, str]


def _span(node) -> tuple[int, int]:
    return node.start_point[0] + 1, node.end_point[0] + 1


def _name(node) -> str:
    """The symbol a definition node declares (looks inside wrappers such as ``export`` or decorators)."""
    for candidate in (node, *node.named_children):
        named = candidate.child_by_field_name("name") or candidate.child_by_field_name("declarator")
        if named is not None:
            while named.child_by_field_name("declarator") is not None:  # C: pointer/function declarators
                named = named.child_by_field_name("declarator")
            return named.text.decode("utf-8", "replace")
        if candidate.type == "impl_item" and candidate.child_by_field_name("type") is not None:
            return candidate.child_by_field_name("type").text.decode("utf-8", "replace")
    return ""


def _is_definition(node) -> bool:
    return node.type in DEFINITIONS or (
        node.type in WRAPPERS and any(child.type in DEFINITIONS for child in node.named_children)
    )


def _body(node):
    """The child holding a container's members (a class body), or None."""
    for candidate in (node, *node.named_children):
        for child in candidate.named_children:
            if child.type in BODIES and any(_is_definition(member) for member in child.named_children):
                return child
    return None


def _code_pieces(children, lines: list[str], max_chars: int, header: str = "") -> list[Piece]:
    """Pieces for sibling nodes: a definition each (split further when too big), and the statements
    between them (merged with their neighbours later)."""
    pieces: list[Piece] = []
    for child in children:
        if _is_definition(child):
            pieces.extend(_definition_pieces(child, lines, max_chars, header))
            continue
        start, end = _span(child)
        if _chars(lines, start, end) + len(header) > max_chars:
            pieces.extend(_windows(lines, start, end, "", header, max_chars))
        else:
            pieces.append((start, end, "", header))
    return pieces


def _definition_pieces(node, lines: list[str], max_chars: int, header: str) -> list[Piece]:
    start, end = _span(node)
    name = _name(node)
    if _chars(lines, start, end) + len(header) <= max_chars:
        return [(start, end, name, header)]
    body = _body(node)
    if body is None:
        return _windows(lines, start, end, name, header, max_chars)
    class_header = header + lines[start - 1].rstrip() + "\n"
    members = body.named_children
    first = next(index for index, member in enumerate(members) if _is_definition(member))
    # The class line(s), docstring and attributes up to the first method, then the members.
    pieces: list[Piece] = _windows(lines, start, max(start, _span(members[first])[0] - 1), name, header, max_chars)
    pieces.extend(
        (s, e, f"{name}.{sym}" if sym and name else sym or name, h)
        for s, e, sym, h in _code_pieces(members[first:], lines, max_chars, class_header)
    )
    return pieces


def _windows(
    lines: list[str], start: int, end: int, symbol: str, header: str = "", max_chars: int = MAX_CHUNK_CHARS
) -> list[Piece]:
    """Windows over lines start..end of at most WINDOW_LINES lines and ``max_chars`` characters,
    each starting WINDOW_OVERLAP lines (at most half its length) before the previous one ended."""
    pieces = []
    first = start
    while first <= end:
        last, size = first, len(header) + len(lines[first - 1]) + 1
        while last < end and last - first + 1 < WINDOW_LINES and size + len(lines[last]) + 1 <= max_chars:
            size += len(lines[last]) + 1
            last += 1
        pieces.append((first, last, symbol, header))
        if last == end:
            break
        first = max(first + 1, last + 1 - min(WINDOW_OVERLAP, (last - first + 1) // 2))
    return pieces


def _chars(lines: list[str], start: int, end: int) -> int:
    return sum(len(line) + 1 for line in lines[start - 1 : end])


def _merge_small(pieces: list[Piece], lines: list[str], max_chars: int) -> list[Piece]:
    """Join neighbouring pieces with the same header while the result stays under ``max_chars``.

    A piece inside the previous one is dropped: a trailing comment is a node of its own on the line of the
    statement it follows (``from app import x  # noqa: F401``, a function's last ``return y  # type: ignore``),
    and would otherwise repeat those lines as a second, identical chunk.
    """
    merged: list[Piece] = []
    for start, end, symbol, header in sorted(pieces):
        if merged:
            m_start, m_end, m_symbol, m_header = merged[-1]
            if m_start <= start and end <= m_end:
                continue
            between = lines[m_end : max(m_end, start - 1)]
            # Overlapping pieces are windows of one oversized unit: they stay apart.
            joinable = m_header == header and start > m_end and not any(line.strip() for line in between)
            if joinable and _chars(lines, m_start, end) + len(header) <= max_chars:
                symbols = ", ".join(s for s in (m_symbol, symbol) if s)
                merged[-1] = (m_start, end, symbols, header)
                continue
        merged.append((start, end, symbol, header))
    return merged


def _markdown_sections(lines: list[str], max_chars: int) -> list[Piece]:
    """One piece per heading's section (headings inside fenced code do not count, see :mod:`qna.fences`),
    each cut into windows when long."""
    starts = [number for number, line in outside_fences(lines) if line.startswith("#")]
    if not starts or starts[0] != 1:
        starts.insert(0, 1)
    bounds = [*starts[1:], len(lines) + 1]
    pieces: list[Piece] = []
    for first, following in zip(starts, bounds, strict=True):
        heading = lines[first - 1].lstrip("#").strip() if lines[first - 1].startswith("#") else ""
        pieces.extend(_windows(lines, first, following - 1, heading, "", max_chars))
    return pieces
