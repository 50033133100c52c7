"""Hybrid retrieval over one Chroma collection: dense vectors + BM25, fused by reciprocal rank fusion.

One retriever serves conversation memory (documents = message records) and repositories (documents =
code chunks). The dense side is a persistent Chroma collection (cosine HNSW) holding vectors computed by a
LangChain ``Embeddings`` object that is passed in; Chroma's own embedder is never used (it downloads a
model at run time). The BM25 side (:mod:`my_llm.retrieval.bm25`) indexes the same stored documents, built
lazily once per retriever and kept in memory until the collection changes. The two ranked lists are fused
by reciprocal rank fusion (:mod:`my_llm.retrieval.fusion`, Cormack, Clarke & Büttcher 2009); optionally a
document then passes a share of its fused score to the documents it carries as context (``context_key``),
and a query that names one speaker is split into who (a prior on that speaker's documents) and what (the
dense query without the name) (``speaker_key``).

Metadata filters use Chroma's ``where`` language and Chroma decides them on both sides: the dense query
carries the filter, and the BM25 side keeps only the ids ``collection.get(where=...)`` returns.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from my_llm.config import Settings
from my_llm.retrieval.bm25 import Bm25Index
from my_llm.retrieval.chroma import chroma_client, remote_collection_name
from my_llm.retrieval.fusion import RRF_K, reciprocal_rank_fusion

if TYPE_CHECKING:
    import numpy as np

MODES = ("hybrid", "dense", "bm25")
CANDIDATES = 50
MASK_CACHE = 16
_SCALARS = (str, int, float, bool)
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
_WHERE_HELP = (
    "a filter is {key: value}, {key: {op: value}} with op one of $eq, $ne, $gt, $gte, $lt, $lte (numbers), "
    "$in, $nin (a non-empty list of one type), or {'$and' | '$or': [filters]}"
)


@dataclass(frozen=True)
class ScoredDocument:
    """One retrieved document, as :meth:`HybridRetriever.search` returns it.

    ``score`` is higher-is-better: the RRF score in ``hybrid`` mode, the cosine similarity (1 - cosine
    distance, in [-1, 1]) in ``dense`` mode, the BM25 score in ``bm25`` mode. Ranks are 1-based positions
    in each side's candidate list, None when the document was not in it.
    """

    id: str
    score: float
    text: str
    metadata: dict
    dense_rank: int | None
    bm25_rank: int | None


def _strict(where: Any) -> Any:
    """``where`` rewritten into Chroma's strict form, with the same meaning; anything else is left as is.

    Chroma wants one key per dict and one operator per condition, and ``$and``/``$or`` lists of two or
    more; here ``{"a": 1, "b": 2}`` and ``{"n": {"$gt": 1, "$lt": 5}}`` mean "all of them", a one-item
    ``$and``/``$or`` is its item, and tuples may stand for lists.
    """
    if not isinstance(where, Mapping) or not where:
        return where
    clauses: list[Any] = []
    for key, value in where.items():
        if key in ("$and", "$or") and isinstance(value, (list, tuple)):
            children = [_strict(child) for child in value]
            clauses.append(children[0] if len(children) == 1 else {key: children})
        elif isinstance(value, Mapping) and value:
            clauses.extend({key: {op: list(v) if isinstance(v, tuple) else v}} for op, v in value.items())
        else:
            clauses.append({key: dict(value) if isinstance(value, Mapping) else value})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def chroma_where(where: Any) -> dict:
    """``where`` in the form Chroma accepts, checked by Chroma's own validator.

    Raises:
        ValueError: a malformed filter; the message quotes it, Chroma's objection and the grammar.
    """
    from chromadb.api.types import validate_where

    strict = _strict(where)
    try:
        validate_where(strict)
    except ValueError as error:
        raise ValueError(f"Invalid filter {where!r}: {error} ({_WHERE_HELP}).") from None
    return strict


@contextmanager
def _chroma_rejects(where: Any) -> Iterator[None]:
    """Turn Chroma's own refusal of a filter (e.g. ``{"n": {"$gt": True}}``) into a ValueError naming it."""
    from chromadb.errors import InvalidArgumentError

    try:
        yield
    except InvalidArgumentError as error:
        raise ValueError(f"Invalid filter {where!r}: Chroma rejected it ({error}; {_WHERE_HELP}).") from error


class HybridRetriever:
    """Dense + BM25 search over one Chroma collection, fused by reciprocal rank fusion.

    Args:
        folder: the Chroma database (created on first write; reads of a missing folder see an empty index).
            With a Chroma server (``settings.chroma_host``, from ``CHROMA_HOST``) nothing is written there:
            the vectors and documents live on the server, in the collection ``remote_collection``.
        embeddings: computes document and query vectors (e.g. ``get_embeddings("local")``: 384 floats);
            the same one must be used for a collection's whole life.
        collection: the collection's name (3-512 characters of ``[A-Za-z0-9._-]``).
        rrf_k: the RRF constant k (60 in Cormack et al. 2009).
        dense_weight / bm25_weight: per-list RRF weights.
        candidates: how many documents each side contributes to the fusion (at least ``k``).
        bm25_k1 / bm25_b: BM25 term-saturation and length-normalisation (Robertson & Zaragoza 2009).
        context_key / context_weights: neighbour credit in ``hybrid`` mode. A document whose metadata
            ``context_key`` names other documents (space-separated ids, nearest first: those whose text it
            carries as context) passes ``context_weights[j]`` times its fused score on to the j-th of them,
            which may thereby enter the results (when they pass ``where``); a turn's evidence otherwise
            loses ranks to the documents of the turns after it that quote it. None / () for none.
        speaker_key / speaker_weight: speaker prior in ``hybrid`` mode. When the query names exactly one of
            the values the stored documents hold under metadata ``speaker_key`` (a whole word, case as
            stored; ``Tim`` in "What books has Tim read?"), the dense side embeds the query without the name
            (and its ``'s``) and the documents with that value have their final score multiplied by
            ``1 + speaker_weight``: the name then decides who, not what the question is about (in the
            embedding, a name pulls towards every turn by or addressed to that person). A document prior
            (Kraaij, Westerveld & Hiemstra 2002, "The importance of prior probabilities for entry page
            search", SIGIR '02), here conditioned on the query. None / 0 for none.
        settings: where the vectors live (``chroma_host``); ``Settings.from_env()`` when None.
        remote_collection: the collection's name on a server; :func:`~my_llm.retrieval.chroma.remote_collection_name`
            of ``collection`` and ``folder`` when None (``memory-<namespace>``, ``repo-<repo>-<hash>``).

    The BM25 index, and the BM25 side's filter results (the last ``MASK_CACHE`` filters), live in this
    process's memory for the retriever's life, built from the collection's stored documents (read from the
    server when the vectors are remote: nothing of BM25 is kept on disk or on the server), and are rebuilt
    (once, at the next search) after this retriever's own writes or when the collection's count changes
    under it, e.g. because another process added to a shared collection.

    Raises:
        ValueError: a bad collection name or parameter.
    """

    def __init__(
        self,
        folder: Path,
        embeddings: Embeddings,
        collection: str = "memory",
        *,
        rrf_k: int = RRF_K,
        dense_weight: float = 1.0,
        bm25_weight: float = 1.0,
        candidates: int = CANDIDATES,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        context_key: str | None = None,
        context_weights: Sequence[float] = (),
        speaker_key: str | None = None,
        speaker_weight: float = 0.0,
        settings: Settings | None = None,
        remote_collection: str | None = None,
    ) -> None:
        if not _COLLECTION_NAME.match(collection):
            raise ValueError(f"Collection name {collection!r} must be 3-512 characters of [A-Za-z0-9._-].")
        if rrf_k < 0 or candidates < 1 or min(dense_weight, bm25_weight, speaker_weight, *context_weights) < 0:
            raise ValueError("rrf_k and the weights must be >= 0 and candidates >= 1.")
        self.folder = Path(folder)
        self.embeddings = embeddings
        self.collection_name = collection
        self.rrf_k, self.dense_weight, self.bm25_weight = rrf_k, dense_weight, bm25_weight
        self.candidates, self.bm25_k1, self.bm25_b = candidates, bm25_k1, bm25_b
        self.context_key, self.context_weights = context_key, tuple(context_weights)
        self.speaker_key, self.speaker_weight = speaker_key, speaker_weight
        self.chroma_host = (settings or Settings.from_env()).chroma_host
        self.remote_collection = remote_collection or remote_collection_name(collection, self.folder)
        if not _COLLECTION_NAME.match(self.remote_collection):
            raise ValueError(f"Collection name {self.remote_collection!r} must be 3-512 characters of [A-Za-z0-9._-].")
        self._client = None
        self._collection = None
        self._bm25: Bm25Index | None = None

    def _open(self, create: bool):
        """The Chroma collection; None when it does not exist and ``create`` is false.

        Raises:
            VectorStoreUnavailableError: ``CHROMA_HOST`` is set and its server does not answer.
        """
        if self._collection is not None:
            return self._collection
        if not self.chroma_host and not create and not (self.folder / "chroma.sqlite3").exists():
            return None  # never create a database just to read it
        if self._client is None:
            self._client = chroma_client(self.folder, self.chroma_host)
        name = self.remote_collection if self.chroma_host else self.collection_name
        if create:
            # embedding_function=None: we pass vectors in; Chroma's default embedder would download a model.
            self._collection = self._client.get_or_create_collection(
                name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
        else:
            from chromadb.errors import NotFoundError

            try:
                self._collection = self._client.get_collection(name, embedding_function=None)
            except NotFoundError:
                return None
        return self._collection

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[dict],
        *,
        embed_texts: Sequence[str] | None = None,
    ) -> int:
        """Store and embed the documents whose ids are not in the collection yet; returns how many.

        Idempotent: known ids are skipped (not re-embedded, not updated). ``texts`` are stored, returned
        in results and BM25-indexed; ``embed_texts`` (same length), when given, are embedded instead, e.g.
        a message with its neighbours or a chunk with its file path as context.

        Raises:
            ValueError: lengths differ, an id repeats, or a metadata value is not a str, int, float or
                bool (the message names the key).
        """
        embed_texts = texts if embed_texts is None else embed_texts
        if not len(ids) == len(texts) == len(metadatas) == len(embed_texts):
            raise ValueError("ids, texts, metadatas (and embed_texts) must have the same length.")
        if len(set(ids)) != len(ids):
            raise ValueError("ids repeat within one add() call.")
        for metadata in metadatas:
            for key, value in metadata.items():
                if not isinstance(key, str) or not isinstance(value, _SCALARS):
                    raise ValueError(f"Metadata key {key!r} has a {type(value).__name__}: use str, int, float, bool.")
        if not ids:
            return 0
        collection = self._open(create=True)
        batch = self._client.get_max_batch_size()
        added = 0
        for start in range(0, len(ids), batch):
            window = slice(start, start + batch)
            known = set(collection.get(ids=list(ids[window]), include=[])["ids"])
            new = [i for i, doc_id in enumerate(ids[window], start=start) if doc_id not in known]
            if new:
                collection.add(
                    ids=[ids[i] for i in new],
                    embeddings=self.embeddings.embed_documents([embed_texts[i] for i in new]),
                    documents=[texts[i] for i in new],
                    metadatas=[dict(metadatas[i]) or None for i in new],
                )
                added += len(new)
        if added:
            self._bm25 = None
        return added

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents by id; unknown ids are ignored."""
        collection = self._open(create=False)
        if collection is None or not ids:
            return  # an empty id list must never reach Chroma's delete
        collection.delete(ids=list(ids))
        self._bm25 = None

    def drop(self) -> None:
        """Delete the collection, documents and vectors (on the Chroma server too with ``CHROMA_HOST``), then
        :meth:`close`. A collection that does not exist is not an error; the folder itself is left to the owner.

        Raises:
            VectorStoreUnavailableError: ``CHROMA_HOST`` is set and its server does not answer.
        """
        from chromadb.errors import NotFoundError

        if self._open(create=False) is not None:
            try:
                self._client.delete_collection(self.remote_collection if self.chroma_host else self.collection_name)
            except NotFoundError:
                pass  # deleted meanwhile by another client
        self.close()

    def close(self) -> None:
        """Let go of the Chroma client; the next call opens it again. Close a local index before deleting its
        folder: chromadb keeps one system per folder for the life of the process, and one left open makes a new
        index in the same folder fail ("attempt to write a readonly database")."""
        client, self._client, self._collection, self._bm25 = self._client, None, None, None
        close = getattr(client, "close", None)  # chromadb >= 1.1 clients have close()
        if close is not None:
            close()

    def count(self) -> int:
        """How many documents the collection holds (0 when it does not exist)."""
        collection = self._open(create=False)
        return collection.count() if collection is not None else 0

    def ids(self, where: Mapping[str, Any] | None = None) -> set[str]:
        """The ids of the collection's documents: all of them, or those passing ``where`` (see :meth:`search`).

        Raises:
            ValueError: a malformed filter.
        """
        collection = self._open(create=False)
        if collection is None:
            return set()
        if where is None:
            return set(collection.get(include=[])["ids"])
        where = chroma_where(where)
        with _chroma_rejects(where):
            return set(collection.get(where=where, include=[])["ids"])

    def search(
        self, query: str, k: int = 10, where: Mapping[str, Any] | None = None, mode: str = "hybrid"
    ) -> list[ScoredDocument]:
        """The ``k`` best documents for ``query``, best first (fewer when fewer pass ``where``).

        Args:
            query: free text; it is embedded (dense) and tokenised like the documents (BM25).
            k: how many documents; larger than the index is fine.
            where: a Chroma metadata filter applied to both sides, decided by Chroma: ``{"speaker":
                "Caroline"}``, ``{"session": {"$gte": 3}}``, ``{"task": {"$ne": "question_memory"}}``,
                ``{"$and": [...]}``, ``{"$or": [...]}``, ``{"speaker": {"$in": [...]}}``. Several keys in
                one dict, or several operators on one key, mean "all of them". A document without the key
                passes only ``$ne``/``$nin``; ``True`` never equals ``1``.
            mode: ``hybrid`` (RRF of both sides), ``dense`` or ``bm25``.

        Raises:
            ValueError: unknown mode, k < 1, or a malformed filter (the message quotes it).
        """
        if mode not in MODES:
            raise ValueError(f"Unknown search mode {mode!r}; use one of {', '.join(MODES)}.")
        if k < 1:
            raise ValueError(f"k must be >= 1, not {k}.")
        where = chroma_where(where) if where is not None else None
        collection = self._open(create=False)
        count = collection.count() if collection is not None else 0
        if not count:
            return []
        depth = min(count, k if mode != "hybrid" else max(k, self.candidates))
        speaker, dense_query = None, query
        if mode == "hybrid" and self.speaker_key and self.speaker_weight:
            speaker, dense_query = self._named_speaker(query, count)
        dense = self._dense(dense_query, depth, where) if mode != "bm25" else []
        lexical = self._lexical(query, depth, where, count) if mode != "dense" else []
        if mode != "hybrid":
            return dense or lexical
        fused = self._fuse(dense, lexical)
        if self.context_key and any(self.context_weights):
            fused = self._credit_context(fused, where, count)
        if speaker is not None:
            fused = self._favour_speaker(fused, speaker)
        return fused[:k]

    def _named_speaker(self, query: str, count: int) -> tuple[str | None, str]:
        """The one stored ``speaker_key`` value ``query`` names as a whole word, and the query without it
        (nor its ``'s``); ``(None, query)`` when it names none or several."""
        index = self._bm25_index(count)
        if index.speakers is None:
            values = {str(m.get(self.speaker_key) or "").strip() for m in index.metadatas}
            index.speakers = {v: re.compile(rf"(?<!\w){re.escape(v)}(?:['’]s)?(?!\w)") for v in values if v}
        named = [value for value, pattern in index.speakers.items() if pattern.search(query)]
        if len(named) != 1:
            return None, query
        stripped = " ".join(index.speakers[named[0]].sub(" ", query).split())
        return named[0], stripped or query

    def _favour_speaker(self, fused: list[ScoredDocument], speaker: str) -> list[ScoredDocument]:
        """``fused`` with the scores of ``speaker``'s documents times ``1 + speaker_weight``; best first,
        ties keep ``fused``'s order."""
        factor = 1.0 + self.speaker_weight
        rescored = [
            replace(doc, score=doc.score * factor) if doc.metadata.get(self.speaker_key) == speaker else doc
            for doc in fused
        ]
        return sorted(rescored, key=lambda doc: -doc.score)

    def _dense(self, query: str, depth: int, where: dict | None) -> list[ScoredDocument]:
        with _chroma_rejects(where):
            result = self._collection.query(
                query_embeddings=[self.embeddings.embed_query(query)],
                n_results=depth,
                where=where,
                include=["documents", "metadatas", "distances"],
            )
        rows = zip(
            result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0], strict=True
        )
        return [
            ScoredDocument(doc_id, 1.0 - float(distance), text or "", dict(metadata or {}), rank, None)
            for rank, (doc_id, text, metadata, distance) in enumerate(rows, start=1)
        ]

    def _bm25_index(self, count: int) -> Bm25Index:
        """The BM25 index, rebuilt from every stored document when missing or ``count`` differs."""
        if self._bm25 is None or self._bm25.count != count:
            stored = self._collection.get(include=["documents", "metadatas"])
            texts, metadatas = [t or "" for t in stored["documents"]], [dict(m or {}) for m in stored["metadatas"]]
            self._bm25 = Bm25Index(stored["ids"], texts, metadatas, self.bm25_k1, self.bm25_b)
        return self._bm25

    def _allowed(self, index: Bm25Index, where: dict) -> np.ndarray:
        """Which of ``index``'s documents pass ``where``: the ids Chroma returns for it, as a bool mask.

        Cached on the index (so dropped with it when the collection changes), the last ``MASK_CACHE``.
        """
        key = repr(where)
        if key not in index.masks:
            with _chroma_rejects(where):
                ids = self._collection.get(where=where, include=[])["ids"]
            if len(index.masks) >= MASK_CACHE:
                index.masks.pop(next(iter(index.masks)))
            index.masks[key] = index.mask(ids)
        return index.masks[key]

    def _lexical(self, query: str, depth: int, where: dict | None, count: int) -> list[ScoredDocument]:
        index = self._bm25_index(count)
        allowed = self._allowed(index, where) if where is not None else None
        return [
            ScoredDocument(index.ids[i], score, index.texts[i], dict(index.metadatas[i]), None, rank)
            for rank, (i, score) in enumerate(index.top(query, depth, allowed), start=1)
        ]

    def _credit_context(self, fused: list[ScoredDocument], where: dict | None, count: int) -> list[ScoredDocument]:
        """``fused`` re-scored: each document adds ``context_weights[j]`` times its score to the j-th document
        its metadata ``context_key`` names; named documents outside ``fused`` join from the BM25 index
        (when they pass ``where``). Best first; ties keep ``fused``'s order."""
        index = self._bm25_index(count)
        allowed = self._allowed(index, where) if where is not None else None
        positions = index.positions()
        scores = {doc.id: doc.score for doc in fused}
        joined: dict[str, ScoredDocument] = {}
        for doc in fused:
            named = str(doc.metadata.get(self.context_key) or "").split()
            for other, weight in zip(named, self.context_weights, strict=False):
                if other not in scores and other not in joined:
                    i = positions.get(other)
                    if i is None or (allowed is not None and not allowed[i]):
                        continue
                    joined[other] = ScoredDocument(other, 0.0, index.texts[i], dict(index.metadatas[i]), None, None)
                    scores[other] = 0.0
                scores[other] += weight * doc.score
        documents = [*fused, *joined.values()]
        order = sorted(range(len(documents)), key=lambda n: -scores[documents[n].id])
        return [replace(documents[n], score=scores[documents[n].id]) for n in order]

    def _fuse(self, dense: list[ScoredDocument], lexical: list[ScoredDocument]) -> list[ScoredDocument]:
        by_id = {doc.id: doc for doc in (*lexical, *dense)}
        dense_ranks = {doc.id: doc.dense_rank for doc in dense}
        bm25_ranks = {doc.id: doc.bm25_rank for doc in lexical}
        fused = reciprocal_rank_fusion(
            [[doc.id for doc in dense], [doc.id for doc in lexical]], [self.dense_weight, self.bm25_weight], self.rrf_k
        )
        return [
            replace(by_id[doc_id], score=score, dense_rank=dense_ranks.get(doc_id), bm25_rank=bm25_ranks.get(doc_id))
            for doc_id, score in fused
        ]
