"""A repository's index: chunks and file summaries in a persistent Chroma collection.

Lives in ``$CHROMA_DB_PATH/<repo-name>-<hash of its absolute path>/``::

    chroma/          the Chroma database (collection ``repo``)
    summaries/       one Markdown summary per indexed file (``<relpath>.md``)
    manifest.json    relpath -> content sha256 of what is in the collection, and the embedder used

A re-run embeds only files whose content changed, and drops the chunks of files that are gone. A
file enters the manifest only after its chunks are written, so an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.embeddings import Embeddings

from my_llm.errors import RepoError
from qna.chunking import Chunk, chunk_text, language_of
from qna.files import SourceFile
from qna.summaries import summarise_file

COLLECTION = "repo"
MANIFEST_VERSION = 1


def index_folder(chroma_db_path: Path, repo: Path) -> Path:
    """``<chroma_db_path>/<repo-name>-<first 10 hex of sha256(absolute repo path)>``."""
    repo = repo.resolve()
    digest = hashlib.sha256(str(repo).encode("utf-8")).hexdigest()[:10]
    return Path(chroma_db_path) / f"{repo.name or 'root'}-{digest}"


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk and its cosine distance to the question (0 = same direction, 2 = opposite)."""

    chunk: Chunk
    distance: float


@dataclass
class IndexReport:
    """What :meth:`RepoIndex.update` did."""

    indexed: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    chunks_added: int = 0


class RepoIndex:
    """The index of one repository.

    Args:
        repo: the repository's root folder.
        folder: where the index lives (see :func:`index_folder`).
        embeddings: the embedder for chunks and questions; the same one must be used for both, so a
            change of embedder triggers a full rebuild.
    """

    def __init__(self, repo: Path, folder: Path, embeddings: Embeddings) -> None:
        self.repo = repo.resolve()
        self.folder = folder
        self.embeddings = embeddings
        self.embedder_name = (
            getattr(embeddings, "model_name", None) or getattr(embeddings, "model", None) or type(embeddings).__name__
        )
        self._client = None
        self._collection = None

    @property
    def manifest_path(self) -> Path:
        return self.folder / "manifest.json"

    @property
    def summaries_folder(self) -> Path:
        return self.folder / "summaries"

    @property
    def client(self):
        if self._client is None:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            self._client = chromadb.PersistentClient(
                path=str(self.folder / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
            )
        return self._client

    @property
    def collection(self):
        if self._collection is None:
            # embedding_function=None: we pass vectors in; Chroma's default embedder would download a model.
            self._collection = self.client.get_or_create_collection(
                COLLECTION, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
        return self._collection

    def _load_manifest(self) -> dict[str, str]:
        if not self.manifest_path.exists():
            return {}
        data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        if data.get("version") != MANIFEST_VERSION or data.get("embeddings") != self.embedder_name:
            return {}
        return dict(data.get("files", {}))

    def _save_manifest(self, files: dict[str, str]) -> None:
        data = {"version": MANIFEST_VERSION, "embeddings": str(self.embedder_name), "files": files}
        temporary = self.manifest_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, self.manifest_path)  # atomic: a killed run leaves the old manifest

    def reset(self) -> None:
        """Drop the collection, the summaries and the manifest (``--reindex``).

        The collection is deleted through Chroma, not by removing its files: Chroma keeps one client
        per path open for the life of the process.
        """
        if (self.folder / "chroma").exists():
            if COLLECTION in [collection.name for collection in self.client.list_collections()]:
                self.client.delete_collection(COLLECTION)
        self._collection = None
        shutil.rmtree(self.summaries_folder, ignore_errors=True)
        self.manifest_path.unlink(missing_ok=True)

    def update(
        self,
        files: Iterable[SourceFile],
        resummarise: bool = False,
        on_file: Callable[[str], None] | None = None,
    ) -> IndexReport:
        """Bring the index in line with ``files``: embed new and changed files, drop vanished ones.

        Args:
            files: what :func:`qna.files.discover` found.
            resummarise: rewrite every summary (and re-embed its file) even when nothing changed.
            on_file: called with each relpath once it has been looked at (progress bars).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self._load_manifest()
        if not manifest and self.collection.count():
            self._drop_all()  # a manifest written by another embedder, or lost: vectors cannot be trusted
        report = IndexReport()
        seen = set()
        for source in files:
            seen.add(source.relpath)
            text = source.path.read_text(encoding="utf-8")
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if manifest.get(source.relpath) == digest and not resummarise:
                report.unchanged += 1
            else:
                report.chunks_added += self._index_file(source.relpath, text)
                manifest[source.relpath] = digest
                self._save_manifest(manifest)
                report.indexed.append(source.relpath)
            if on_file:
                on_file(source.relpath)
        for relpath in sorted(set(manifest) - seen):
            self.collection.delete(where={"path": relpath})
            (self.summaries_folder / f"{relpath}.md").unlink(missing_ok=True)
            del manifest[relpath]
            report.removed.append(relpath)
        self._save_manifest(manifest)
        return report

    def _drop_all(self) -> None:
        ids = self.collection.get(include=[])["ids"]
        if ids:
            self.collection.delete(ids=ids)

    def _index_file(self, relpath: str, text: str) -> int:
        summary = summarise_file(relpath, text)
        summary_path = self.summaries_folder / f"{relpath}.md"
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        summary_path.write_text(summary, encoding="utf-8")
        chunks = chunk_text(relpath, text)
        if chunks:
            last_line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
            chunks.append(Chunk(relpath, 1, last_line, summary, language_of(relpath), kind="summary"))
        self.collection.delete(where={"path": relpath})
        if not chunks:
            return 0
        vectors = self.embeddings.embed_documents([chunk.text for chunk in chunks])
        self.collection.add(
            ids=[chunk.id for chunk in chunks],
            embeddings=vectors,
            documents=[chunk.text for chunk in chunks],
            metadatas=[
                {
                    "path": c.path,
                    "start_line": c.start_line,
                    "end_line": c.end_line,
                    "language": c.language,
                    "kind": c.kind,
                }
                for c in chunks
            ],
        )
        return len(chunks)

    def search(self, question: str, k: int = 6) -> list[Hit]:
        """The ``k`` chunks (code or summaries) nearest to ``question``, nearest first.

        Raises:
            RepoError: the index is empty.
        """
        count = self.collection.count()
        if not count:
            raise RepoError(f"The index in {self.folder} is empty: run read-repo on the repository first.")
        result = self.collection.query(
            query_embeddings=[self.embeddings.embed_query(question)],
            n_results=min(k, count),
            include=["documents", "metadatas", "distances"],
        )
        hits = []
        for text, meta, distance in zip(
            result["documents"][0], result["metadatas"][0], result["distances"][0], strict=True
        ):
            chunk = Chunk(
                meta["path"], int(meta["start_line"]), int(meta["end_line"]), text, meta["language"], meta["kind"]
            )
            hits.append(Hit(chunk, float(distance)))
        return hits
