"""A repository's index: code chunks and file summaries, searched by the hybrid retriever.

Lives in ``$CHROMA_DB_PATH/<repo-name>-<hash of its absolute path>/``::

    chroma/             the Chroma database (collection ``repo``), searched dense + BM25 (my_llm.retrieval)
    manifest.sqlite3    path -> content hash -> chunk ids; the embedding and summary caches (qna.manifest)
    summaries/          one Markdown summary per indexed file (``<relpath>.md``), unless written in place

A re-run reads only what changed: unchanged files are skipped, a changed file loses only the chunks
whose text changed (chunk ids are content hashes), files that are gone lose theirs. Embeddings are
cached by content hash, so ``--reindex`` and moved code cost no embedding.

Secrets never enter the index: each file is read whole and scanned (:func:`my_llm.find_secrets`), and a
secret's value is replaced by ``[REDACTED:<kind>]`` before the file is chunked, summarised, embedded or
hashed (the manifest's hash is of the redacted text, so a file indexed before redaction existed is indexed
again). A file whose size and mtime (ns) are those recorded when it was last read is not read or scanned
again (git's index does the same); a stat younger than RACY_NS is not recorded, since a change within the
filesystem's timestamp granularity could leave it the same, and new secret rules
(:func:`my_llm.secret_rules_version`) make every file be scanned again.

One bad file never stops an index: a file that cannot be read, chunked, summarised or embedded is
skipped and named in the report with the error; only the model's or embedder's own failures
(:class:`my_llm.MyLLMError`: a server down, a key refused) stop the run, since every file would fail.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from my_llm import MyLLMError, RepoError, Settings, find_secrets, get_embeddings, redact_secrets, secret_rules_version
from my_llm.retrieval import HybridRetriever, reciprocal_rank_fusion
from qna.chunking import Chunk, chunk_text, language_of
from qna.files import SourceFile
from qna.inplace import write_inside
from qna.manifest import CachedEmbeddings, Manifest, sha256
from qna.ranking import Ranking, defines, named_symbols, prior, split_question, wanted_kinds
from qna.summaries import summarise_file

COLLECTION = "repo"
# The embedder of code indexes when MY_LLM_EMBEDDINGS is unset: the bundled all-MiniLM-L6-v2, int8-quantised
# (my_llm.models.onnx_embedder). Measured 2026-11-30 with benchmarks/localization.py, float32 -> int8, file
# Acc@1/3/5/10: whole-repository dev set (30 reports) 70.0/93.3/93.3/96.7 -> 73.3/93.3/93.3/96.7, 15.9 -> 10.9 s
# per 1,000 chunks. Memory keeps float32 ("local"): on LoCoMo int8 lost half a point of recall@10.
REPO_EMBEDDINGS = "local:int8"
BATCH_CHUNKS = 256
# Characters of a chunk that are embedded (BM25 and the answer see all of it). About 115 MiniLM tokens of
# code: the path, symbol names, signature and docstring that a question's words meet. The rest of a
# 1,500-character chunk costs embedding time for text the model would mostly truncate (256 tokens).
# On the localization dev set, 400 and 500 score the same and whole chunks lower (dense Acc@5 90.9 vs 95.5).
EMBED_CHARS = 400
# A summariser takes [(relpath, text)] and returns their summaries in order (structural or LLM).
Summariser = Callable[[list[tuple[str, str]]], list[str]]
# A file's stat is trusted on the next run only when its mtime was at least this old when it was read.
RACY_NS = 2_000_000_000


def repo_embeddings(settings: Settings | None = None) -> Embeddings:
    """The embedder of code indexes: ``MY_LLM_EMBEDDINGS`` when set, else :data:`REPO_EMBEDDINGS`.

    Raises:
        ModelUnavailableError: see :func:`my_llm.get_embeddings`.
    """
    settings = settings or Settings.from_env()
    return get_embeddings(settings.embeddings or REPO_EMBEDDINGS, settings=settings)


def index_folder(chroma_db_path: Path, repo: Path) -> Path:
    """``<chroma_db_path>/<repo-name>-<first 10 hex of sha256(absolute repo path)>``."""
    repo = repo.resolve()
    digest = hashlib.sha256(str(repo).encode("utf-8")).hexdigest()[:10]
    return Path(chroma_db_path) / f"{repo.name or 'root'}-{digest}"


def structural_summaries(items: list[tuple[str, str]]) -> list[str]:
    """The default summariser: :func:`qna.summaries.summarise_file`, no LLM."""
    return [summarise_file(relpath, text) for relpath, text in items]


@dataclass(frozen=True)
class ChunkHit:
    """A retrieved chunk and its fused score (higher is better)."""

    chunk: Chunk
    score: float


@dataclass
class IndexReport:
    """What :meth:`RepoIndex.update` did; ``embedded`` counts texts the embedder really computed.

    ``redacted`` maps a relpath to the number of secrets replaced in it by ``[REDACTED:<kind>]``; ``failed``
    maps a file that was skipped to why (``chunking: RecursionError: ...``); ``not_in_place`` lists summaries
    that ``--summaries-in-place`` did not write beside their source (a symlink or a file of yours is there).
    """

    indexed: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    chunks_added: int = 0
    embedded: int = 0
    redacted: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    not_in_place: list[str] = field(default_factory=list)


@dataclass
class _Pending:
    relpath: str
    text: str
    digest: str
    chunks: list[Chunk]
    old_ids: list[str]
    stat: str | None = None


class RepoIndex:
    """The index of one repository.

    Args:
        repo: the repository's root folder.
        folder: where the index lives (see :func:`index_folder`).
        embeddings: the embedder for chunks and questions; a change of embedder (or of ``embed_chars``)
            rebuilds the collection.
        summariser: turns files into Markdown summaries (:func:`structural_summaries` by default).
        summary_mode: the summary cache's key for this summariser (``structural`` or ``llm:<model>``).
        summaries_in_place: write ``script.md`` beside ``script.py`` (the seed's behaviour) instead of
            into the index folder; such files are listed in the manifest and never indexed as sources.
        ranking: how hits are ordered (:class:`qna.ranking.Ranking`: the prior against tests/docs/examples,
            definitions first, long questions split).
    """

    def __init__(
        self,
        repo: Path,
        folder: Path,
        embeddings: Embeddings,
        summariser: Summariser = structural_summaries,
        summary_mode: str = "structural",
        summaries_in_place: bool = False,
        embed_chars: int = EMBED_CHARS,
        ranking: Ranking | None = None,
    ) -> None:
        self.repo, self.folder = repo.resolve(), folder
        self.ranking = ranking or Ranking()
        self._definitions: dict[tuple[str, int], list[ChunkHit]] = {}
        self.summariser, self.summary_mode, self.summaries_in_place = summariser, summary_mode, summaries_in_place
        self.embed_chars = embed_chars
        self.manifest = Manifest(folder / "manifest.sqlite3")
        name = str(
            getattr(embeddings, "model_name", None) or getattr(embeddings, "model", None) or type(embeddings).__name__
        )
        self.embeddings = CachedEmbeddings(embeddings, self.manifest, name)
        self.retriever = HybridRetriever(folder / "chroma", self.embeddings, collection=COLLECTION)
        if self.manifest.get_meta("embeddings") not in (None, name):
            self.reset()  # vectors from another embedder cannot be searched with this one
        # Indexes written before heads were embedded have no "embedded_text": their vectors are of whole chunks.
        embedded_text = f"path symbols, first {embed_chars} characters"
        if self.manifest.get_meta("embedded_text") != embedded_text and self.manifest.files():
            self.reset()  # one collection holds vectors of one kind of text
        self.manifest.set_meta("embeddings", name)
        self.manifest.set_meta("embedded_text", embedded_text)
        if self.manifest.get_meta("redacted") is None:  # summaries cached before redaction may quote secrets
            self.manifest.clear_summaries()
            self.manifest.set_meta("redacted", "my_llm.redact")
        if self.manifest.get_meta("stats_rules") != secret_rules_version():  # new rules: scan every file again
            self.manifest.clear_stats()
            self.manifest.set_meta("stats_rules", secret_rules_version())

    @property
    def summaries_folder(self) -> Path:
        return self.folder / "summaries"

    def generated_paths(self) -> set[str]:
        """Summary files this index wrote into the repository (never indexed as sources)."""
        value = self.manifest.get_meta("generated")
        return set(value.split("\n")) - {""} if value else set()

    def reset(self) -> None:
        """Forget every file and chunk (``--reindex``); the embedding and summary caches are kept."""
        self.retriever.delete(sorted(self.retriever.ids()))
        self.manifest.clear_files()
        shutil.rmtree(self.summaries_folder, ignore_errors=True)

    def update(
        self, files: Iterable[SourceFile], resummarise: bool = False, on_file: Callable[[str], None] | None = None
    ) -> IndexReport:
        """Bring the index in line with ``files``: index new and changed files, drop vanished ones.

        Files are embedded in batches of about BATCH_CHUNKS chunks; each file is recorded in the
        manifest once its chunks are written, so an interrupted run resumes.

        Args:
            files: what :func:`qna.files.discover` found.
            resummarise: rewrite every summary, ignoring the summary cache.
            on_file: called with each relpath once it is done (progress bars).
        """
        known, report, batch, seen = self.manifest.files(), IndexReport(), [], set()
        stats, read_unchanged = self.manifest.stats(), []
        computed_before = self.embeddings.computed
        generated = self.generated_paths()
        for source in files:
            if source.relpath in generated:
                continue
            seen.add(source.relpath)
            previous = (*known.get(source.relpath, (None, [])), stats.get(source.relpath))
            pending = self._read(source, previous, resummarise, report, read_unchanged)
            if pending is None:
                if on_file:
                    on_file(source.relpath)
                continue
            batch.append(pending)
            if sum(len(p.chunks) for p in batch) >= BATCH_CHUNKS:
                self._flush(batch, resummarise, report, on_file)
                batch = []
        self._flush(batch, resummarise, report, on_file)
        self._drop([path for path in known if path not in seen], known, report)
        self.manifest.save_stats(read_unchanged)
        report.embedded = self.embeddings.computed - computed_before
        return report

    def _read(
        self, source: SourceFile, previous: tuple, resummarise: bool, report: IndexReport, read_unchanged: list
    ) -> _Pending | None:
        """The file read whole, redacted and chunked; None when it is unchanged or cannot be (then reported).

        ``previous`` is (digest, chunk ids, stat) from the manifest; a file with the same stat is not read.
        (relpath, stat) of a file read and found unchanged is appended to ``read_unchanged``.
        """
        previous_digest, old_ids, previous_stat = previous
        pending = _Pending(source.relpath, "", "", [], old_ids)
        try:
            pending.stat = _stat_key(source.path)
            same_stat = pending.stat is not None and pending.stat == previous_stat
            if previous_digest is not None and same_stat and not resummarise:
                report.unchanged += 1
                return None
            text = source.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:  # gone or changed since discovery
            return self._fail(pending, "reading", error, report)
        secrets = find_secrets(text, path=source.relpath)
        if secrets:
            text = redact_secrets(text, path=source.relpath)
            report.redacted[source.relpath] = len(secrets)
        pending.text, pending.digest = text, sha256(text)
        if previous_digest == pending.digest and not resummarise:
            report.unchanged += 1
            if pending.stat is not None:
                read_unchanged.append((source.relpath, pending.stat))
            return None
        try:
            pending.chunks = chunk_text(source.relpath, text)
        except Exception as error:  # a parser's failure on one file is that file's: it is named in the report
            return self._fail(pending, "chunking", error, report)
        return pending

    def _fail(self, pending: _Pending, stage: str, error: Exception, report: IndexReport) -> None:
        """Skip ``pending``'s file: name it in the report and take its old chunks out of the index."""
        message = " ".join(str(error).split())[:200]
        report.failed[pending.relpath] = f"{stage}: {type(error).__name__}" + (f": {message}" if message else "")
        self.retriever.delete(pending.old_ids)
        self.manifest.forget([pending.relpath])
        (self.summaries_folder / f"{pending.relpath}.md").unlink(missing_ok=True)
        return None

    def _isolated(self, batch: list[_Pending], step, stage: str, report: IndexReport) -> list[tuple[_Pending, Any]]:
        """``step(batch)`` (a list of results, one per file); when it fails, file by file, skipping (and
        reporting) the files that fail alone. A :class:`my_llm.MyLLMError` (the model or embedder itself) is
        raised: it is no file's fault."""
        try:
            return list(zip(batch, step(batch), strict=True))
        except MyLLMError:
            raise
        except Exception as error:  # one file's text broke the batch: find which, below
            if len(batch) == 1:
                self._fail(batch[0], stage, error, report)
                return []
        done = []
        for pending in batch:
            try:
                done.extend(zip([pending], step([pending]), strict=True))
            except MyLLMError:
                raise
            except Exception as error:  # this file's own failure: skipped and named in the report
                self._fail(pending, stage, error, report)
        return done

    def _summaries(self, batch: list[_Pending], resummarise: bool) -> list[str]:
        """Each file's summary, from the cache or the summariser; redacted again (an LLM's words, or a cache
        written before redaction existed, pass through the scanner too)."""
        cached = [None if resummarise else self.manifest.summary(p.digest, self.summary_mode) for p in batch]
        missing = [i for i, text in enumerate(cached) if text is None]
        for i, text in zip(missing, self.summariser([(batch[i].relpath, batch[i].text) for i in missing]), strict=True):
            self.manifest.save_summary(batch[i].digest, self.summary_mode, redact_secrets(text))
            cached[i] = text
        return [redact_secrets(text) for text in cached]

    def _write_summary(self, relpath: str, text: str, report: IndexReport) -> None:
        """Into the index folder, or beside the source (:func:`qna.inplace.write_inside`: never through a
        symlink, never outside the repository, never over a file this index did not write)."""
        if not self.summaries_in_place:
            path = self.summaries_folder / f"{relpath}.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        target = Path(relpath).with_suffix(".md").as_posix()
        generated = self.generated_paths()
        if write_inside(self.repo, target, text, replace=target in generated):
            self.manifest.set_meta("generated", "\n".join(sorted(generated | {target})))
        else:
            report.not_in_place.append(target)

    def _flush(self, batch: list[_Pending], resummarise: bool, report: IndexReport, on_file) -> None:
        if not batch:
            return
        summarised = self._isolated(batch, lambda part: self._summaries(part, resummarise), "summarising", report)
        for pending, summary in summarised:
            self._write_summary(pending.relpath, summary, report)
            if pending.chunks:
                last = max(1, pending.text.count("\n") + (0 if pending.text.endswith("\n") else 1))
                language = language_of(pending.relpath)
                summary_chunk = Chunk(pending.relpath, 1, last, summary, language, kind="summary")
                pending.chunks = list({c.id: c for c in [*pending.chunks, summary_chunk]}.values())
        stored = self._isolated([pending for pending, _ in summarised], self._store, "embedding", report)
        self.manifest.mark_done((p.relpath, p.digest, [c.id for c in p.chunks]) for p, _ in stored)
        self.manifest.save_stats((p.relpath, p.stat) for p, _ in stored if p.stat is not None)
        for pending, added in stored:
            report.chunks_added += added
            report.indexed.append(pending.relpath)
        if on_file:
            for pending in batch:
                on_file(pending.relpath)

    def _store(self, batch: list[_Pending]) -> list[int]:
        """Embed and add the chunks of ``batch`` in one call, dropping the ones they replace; returns how many
        chunks were new, per file."""
        chunks = [chunk for pending in batch for chunk in pending.chunks]
        new_ids = {chunk.id for chunk in chunks}
        self.retriever.delete(sorted({i for p in batch for i in p.old_ids} - new_ids))
        added = self.retriever.add(
            [chunk.id for chunk in chunks],
            [chunk.text for chunk in chunks],
            [_metadata(chunk) for chunk in chunks],
            embed_texts=[embed_text(chunk, self.embed_chars) for chunk in chunks],
        )
        return [added] + [0] * (len(batch) - 1)  # the count is per call: it is summed in the report

    def _drop(self, paths: list[str], known: dict, report: IndexReport) -> None:
        for relpath in sorted(paths):
            self.retriever.delete(known[relpath][1])
            (self.summaries_folder / f"{relpath}.md").unlink(missing_ok=True)
            report.removed.append(relpath)
        self.manifest.forget(paths)

    def search(self, question: str, k: int = 6, mode: str = "hybrid") -> list[ChunkHit]:
        """The ``k`` chunks (code or summaries) that best match ``question``, best first.

        Ordered by :attr:`ranking`: chunks defining a symbol the question names come first (at most half of
        ``k``, at least one), then the retriever's hits with tests/docs/examples files scored down (unless
        the question is about them).

        Raises:
            RepoError: the index is empty.
        """
        hits = self._hits(question, max(4 * k, 50), mode)
        first = self._named_definitions(question)[: max(1, k // 2)]
        seen = {hit.chunk.id for hit in first}
        top = hits[0].score if hits else 1.0
        ranked = [ChunkHit(hit.chunk, top * (2 - i / max(1, len(first)))) for i, hit in enumerate(first)]
        return (ranked + [hit for hit in hits if hit.chunk.id not in seen])[:k]

    def rank_files(
        self, question: str, k: int = 10, depth: int = 100, per_file: int = 3, mode: str = "hybrid"
    ) -> list[tuple[str, float]]:
        """The ``k`` files that best match ``question``, best first, as (path, score).

        A file scores the sum of its best ``per_file`` hit scores among the top ``depth`` hits, so a file
        with several matching chunks outranks one with a single lucky chunk ("SumP" rather than "MaxP"
        aggregation of passage scores, Dai & Callan 2019); hits are scored as in :meth:`search` (the prior
        against tests/docs/examples, long questions by parts) but without definitions first.
        """
        scores: dict[str, list[float]] = {}
        for hit in self._hits(question, depth, mode):
            scores.setdefault(hit.chunk.path, []).append(hit.score)
        totals = {path: sum(sorted(values, reverse=True)[:per_file]) for path, values in scores.items()}
        return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:k]

    def _hits(self, question: str, depth: int, mode: str) -> list[ChunkHit]:
        """The retriever's top ``depth`` hits (fused over the question's parts when it is long), with the
        prior against unwanted tests/docs/examples files applied, best first."""
        if not self.retriever.count():
            raise RepoError(f"The index in {self.folder} is empty: run read-repo on the repository first.")
        parts = split_question(question, self.ranking)
        runs = [self.retriever.search(text, k=depth, mode=mode) for text in [question, *parts]]
        if len(runs) == 1:
            found = [(doc, doc.score) for doc in runs[0]]
        else:
            by_id = {doc.id: doc for run in runs for doc in run}
            fused = reciprocal_rank_fusion([[doc.id for doc in run] for run in runs])
            found = [(by_id[doc_id], score) for doc_id, score in fused[:depth]]
        wanted = wanted_kinds(question)
        hits = [
            ChunkHit(_chunk(doc.text, doc.metadata), score * prior(doc.metadata["path"], wanted, self.ranking))
            for doc, score in found
        ]
        return sorted(hits, key=lambda hit: -hit.score)

    def _defining(self, name: str) -> list[ChunkHit]:
        """Code chunks whose symbols define ``name`` (found among the chunks that contain the word)."""
        count = self.retriever.count()
        key = (name, count)
        if key not in self._definitions:
            docs = self.retriever.search(name, k=count, mode="bm25")
            self._definitions[key] = [
                ChunkHit(_chunk(doc.text, doc.metadata), doc.score)
                for doc in docs
                if doc.metadata.get("kind") == "code" and defines(str(doc.metadata.get("symbol", "")), name)
            ]
        return self._definitions[key]

    def _named_definitions(self, question: str) -> list[ChunkHit]:
        """The chunks defining the symbols the question names, in the order it names them (a name defined in
        more than ``ranking.max_definition_files`` files is skipped); within a name, code before
        tests/docs/examples, then by path and the line where the chunk starts."""
        if not self.ranking.definitions:
            return []
        wanted = wanted_kinds(question)
        ordered: list[ChunkHit] = []
        for name in named_symbols(question):
            chunks = self._defining(name)
            if len({hit.chunk.path for hit in chunks}) > self.ranking.max_definition_files:
                continue
            code_first = sorted(chunks, key=lambda hit: (hit.chunk.path, hit.chunk.start_line))
            ordered.extend(sorted(code_first, key=lambda hit: -prior(hit.chunk.path, wanted, self.ranking)))
        return list({hit.chunk.id: hit for hit in ordered}.values())


def embed_text(chunk: Chunk, max_chars: int = EMBED_CHARS) -> str:
    """What the embedder sees for ``chunk``: ``"<path> <symbols>\n"`` then the chunk's first lines,
    ``max_chars`` characters in all."""
    return f"{chunk.path} {chunk.symbol}\n{chunk.text}"[:max_chars]


def _stat_key(path: Path) -> str | None:
    """``"<size>:<mtime_ns>"`` of ``path``, or None when its mtime is younger than RACY_NS (not to be trusted).

    Raises:
        OSError: the file cannot be stat'ed (gone since discovery).
    """
    stat = path.stat()
    if time.time_ns() - stat.st_mtime_ns < RACY_NS:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _chunk(text: str, meta: dict) -> Chunk:
    return Chunk(
        meta["path"], int(meta["start_line"]), int(meta["end_line"]), text, meta["language"], meta["kind"],
        meta.get("symbol", ""),
    )  # fmt: skip


def _metadata(chunk: Chunk) -> dict:
    return {
        "path": chunk.path,
        "start_line": chunk.start_line,
        "end_line": chunk.end_line,
        "language": chunk.language,
        "kind": chunk.kind,
        "symbol": chunk.symbol,
    }
