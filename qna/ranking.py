"""How read-repo orders what the hybrid retriever found: a prior against auxiliary files, the definition
of a symbol the question names, and long questions searched part by part.

Pure functions over paths, question text and chunk metadata; :class:`qna.index.RepoIndex` applies them.

- **Auxiliary files** (``tests/``, ``testing/``, ``docs/``, ``examples/``, ``benchmarks/``, ``test_*.py``,
  ``conftest.py``...) repeat the words of the code they exercise or describe, so in a whole repository they
  outrank the module a question is about. Their scores are multiplied by ``Ranking.auxiliary_prior``
  unless the question is about that kind of file (:func:`wanted_kinds`).
- **Definitions first**: a question that names a symbol (``Option``, ``OneOf.options()``,
  ``group_order()``) is answered first by the chunk that defines it, as ctags or aider's repo map would
  find it: the chunker already records each chunk's symbols (tree-sitter names, ``Class.method``).
- **Long questions** (bug reports) dilute one embedding: the dense side truncates at 256 tokens and
  averages everything before. Above ``Ranking.split_chars`` characters the question is also searched
  paragraph by paragraph and the rankings are fused (reciprocal rank fusion, Cormack et al. 2009).

The settings were chosen on ``benchmarks/data/localization_repos_dev.jsonl`` (whole-repository sdists);
:class:`Ranking` gives the figures, ``benchmarks/data/README.md`` the runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

# Folder names whose files describe, exercise or demonstrate the code rather than being it.
AUXILIARY_FOLDERS = {
    "tests": "tests", "test": "tests", "testing": "tests", "unittests": "tests",
    "docs": "docs", "doc": "docs", "documentation": "docs",
    "examples": "examples", "example": "examples", "samples": "examples", "demo": "examples",
    "benchmarks": "examples", "bench": "examples", "scripts": "examples",
}  # fmt: skip
_TEST_FILE = re.compile(r"^(test_.*|.*_test|conftest|tests?)\.py$")
# Phrases that say the question is about tests, docs or examples themselves (looked for in its prose only:
# a reproduction's `test_foo()`, a table named `test` or "see the PostgreSQL docs" do not count).
_WANTS = {
    "tests": re.compile(
        r"\b(tests|unit tests?|test (suite|files?|cases?|modules?)|(which|what) test|conftest|tests/|testing/)\b", re.I
    ),
    "docs": re.compile(r"\b(documented|docs/|in the documentation|documentation (pages?|files?)|tutorial)\b", re.I),
    "examples": re.compile(r"\b(examples/|example (apps?|projects?|scripts?)|benchmarks?|demo)\b", re.I),
}
_FENCED = re.compile(r"```.*?(```|$)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_BACKTICKED = re.compile(r"`([^`\n]{1,80})`")
_CALLED = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\(")
_KIND_WORD = re.compile(
    r"\b(?:class|function|method|def|decorator|attribute|property|type)\s+`?([A-Za-z_][A-Za-z0-9_.]*)`?"
    r"|`?([A-Za-z_][A-Za-z0-9_.]*)`?\s+(?:class|function|method|decorator|attribute|property|type)\b",
    re.I,
)
_CODE_LIKE = re.compile(r"_|[a-z][A-Z]|^[A-Z][a-z0-9]+[A-Z]")  # snake_case, camelCase, PascalCase with 2+ parts


@dataclass(frozen=True)
class Ranking:
    """Ranking settings; the defaults are the shipped ones, chosen on the whole-repository dev set
    (``benchmarks/data/localization_repos_dev.jsonl``, hybrid file Acc@1/3/5/10 50.0/70.0/83.3/96.7 without
    them, 70.0/93.3/93.3/96.7 with them; prior 0.2-0.3 and split at 800-1,000 characters scored alike).

    Attributes:
        auxiliary_prior: score multiplier for tests/docs/examples files (1.0 = no prior).
        definitions: in :meth:`~qna.index.RepoIndex.search`, put the chunks that define a symbol the question
            names first. File ranking does not use them: a bonus for defining files lowered dev Acc@1 (bug
            reports name the public functions their reproduction calls, e.g. ``sqlparse.split``, not the
            module that needs the fix).
        max_definition_files: a name defined in more files than this is too common to point anywhere.
        split_chars: questions longer than this are also searched part by part (0 = never).
        max_parts: at most this many parts (the title and first paragraph are the first part).
    """

    auxiliary_prior: float = 0.3
    definitions: bool = True
    max_definition_files: int = 3
    split_chars: int = 800
    max_parts: int = 4


def auxiliary_kind(path: str) -> str | None:
    """``tests``, ``docs`` or ``examples`` when ``path`` (POSIX, relative) is such a file; None for code.

    ``tests/test_core.py`` -> ``tests``; ``src/click/testing.py`` -> None (a module of the library);
    ``docs/conf.py`` -> ``docs``; ``pkg/test_utils.py`` -> ``tests``.
    """
    parts = PurePosixPath(path).parts
    for folder in parts[:-1]:
        kind = AUXILIARY_FOLDERS.get(folder.lower())
        if kind:
            return kind
    if parts and _TEST_FILE.match(parts[-1].lower()):
        return "tests"
    return None  # README.md and other top-level files are the project's own words: no prior


def wanted_kinds(question: str) -> set[str]:
    """The auxiliary kinds the question asks about (their files keep their scores), from its prose: fenced
    and inline code are left out."""
    prose = _INLINE_CODE.sub(" ", _FENCED.sub(" ", question))
    return {kind for kind, pattern in _WANTS.items() if pattern.search(prose)}


def prior(path: str, wanted: set[str], ranking: Ranking) -> float:
    """The score multiplier for ``path``: ``ranking.auxiliary_prior`` for an unwanted auxiliary file, else 1."""
    kind = auxiliary_kind(path)
    return ranking.auxiliary_prior if kind is not None and kind not in wanted else 1.0


def named_symbols(question: str) -> list[str]:
    """Identifiers the question names as code, in order of first mention, without repeats.

    A name counts when it is written as code: in backticks, called (``options()``), next to a word such as
    *class* or *function* ("the Option class"), or shaped like an identifier (``zip_longest``,
    ``FileSystemLoader``, ``getOption``). Dotted names give their parts too (``OneOf.options`` -> ``OneOf``,
    ``options``). Plain capitalised words ("Where", "Option" alone) are not names.
    """
    found: list[str] = []

    def add(text: str) -> None:
        for match in _IDENTIFIER.finditer(text):
            dotted = match.group(0)
            for name in (dotted, *dotted.split(".")):
                if len(name) >= 3 and name not in found and not name.isdigit():
                    found.append(name)

    for match in _BACKTICKED.finditer(question):
        add(match.group(1))
    for match in _CALLED.finditer(question):
        add(match.group(1))
    for match in _KIND_WORD.finditer(question):
        add(match.group(1) or match.group(2))
    for match in _IDENTIFIER.finditer(question):
        if any(_CODE_LIKE.search(part) for part in match.group(0).split(".")):
            add(match.group(0))
    return found


def defines(symbol_field: str, name: str) -> bool:
    """Whether a chunk whose ``symbol`` metadata is ``symbol_field`` (``"Option"``, ``"Option.__init__"``,
    ``"a, b"``) defines ``name`` (``Option``, ``__init__``, ``Option.__init__``)."""
    symbols = (symbol.strip() for symbol in symbol_field.split(","))
    return any(symbol == name or symbol.endswith("." + name) for symbol in symbols)


def split_question(question: str, ranking: Ranking) -> list[str]:
    """The question's parts for separate searches: [] when it is short enough to search whole.

    Parts are blocks separated by blank lines (a fenced code block stays one block), merged while under
    ``split_chars``; the first part is the title and what follows it up to the size. At most ``max_parts``.
    """
    if not ranking.split_chars or len(question) <= ranking.split_chars:
        return []
    blocks, current, fenced = [], [], False
    for line in question.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
        if not line.strip() and not fenced:
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    parts: list[str] = []
    for block in blocks:
        if parts and len(parts[-1]) + len(block) + 2 <= ranking.split_chars:
            parts[-1] += "\n\n" + block
        else:
            parts.append(block)
    return parts[: ranking.max_parts] if len(parts) > 1 else []
