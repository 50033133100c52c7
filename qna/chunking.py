"""Split a file into chunks that remember their start and end lines.

Splitting uses LangChain's ``RecursiveCharacterTextSplitter.from_language`` (separators that follow
each language's structure: classes, functions, headings); ``add_start_index`` gives each chunk's
character offset, from which its lines are counted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

CHUNK_CHARS = 1200
OVERLAP_CHARS = 150
LANGUAGES = {
    ".py": Language.PYTHON,
    ".md": Language.MARKDOWN,
    ".rst": Language.RST,
    ".js": Language.JS,
    ".jsx": Language.JS,
    ".ts": Language.TS,
    ".tsx": Language.TS,
    ".go": Language.GO,
    ".java": Language.JAVA,
    ".rs": Language.RUST,
    ".c": Language.C,
    ".h": Language.C,
    ".cc": Language.CPP,
    ".cpp": Language.CPP,
    ".hpp": Language.CPP,
    ".rb": Language.RUBY,
}


@dataclass(frozen=True)
class Chunk:
    """A piece of a file: lines ``start_line`` to ``end_line`` (1-based, inclusive) of ``path``.

    ``kind`` is ``code`` for a piece of the file or ``summary`` for its Markdown summary.
    """

    path: str
    start_line: int
    end_line: int
    text: str
    language: str
    kind: str = "code"

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
    """The splitter language name for a path (``python``, ``markdown``...), ``text`` when unknown."""
    language = LANGUAGES.get(PurePosixPath(path).suffix.lower())
    return language.value if language else "text"


def _splitter(path: str, chunk_chars: int, overlap_chars: int) -> RecursiveCharacterTextSplitter:
    language = LANGUAGES.get(PurePosixPath(path).suffix.lower())
    if language is None:
        return RecursiveCharacterTextSplitter(chunk_size=chunk_chars, chunk_overlap=overlap_chars, add_start_index=True)
    return RecursiveCharacterTextSplitter.from_language(
        language, chunk_size=chunk_chars, chunk_overlap=overlap_chars, add_start_index=True
    )


def chunk_text(path: str, text: str, chunk_chars: int = CHUNK_CHARS, overlap_chars: int = OVERLAP_CHARS) -> list[Chunk]:
    """Split ``text`` (the content of ``path``) into chunks of about ``chunk_chars`` characters.

    Returns an empty list for a file with no non-blank text.
    """
    language = language_of(path)
    chunks = []
    for document in _splitter(path, chunk_chars, overlap_chars).create_documents([text]):
        body = document.page_content
        start = document.metadata["start_index"]
        if start < 0:  # the splitter could not locate the piece: find it ourselves
            start = text.find(body)
        start_line = text.count("\n", 0, max(start, 0)) + 1
        end_line = start_line + body.count("\n")
        chunks.append(Chunk(path, start_line, end_line, body, language))
    return chunks
