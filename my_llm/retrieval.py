"""Hybrid retrieval over one Chroma collection: dense vectors + BM25, fused by reciprocal rank fusion.

One retriever serves conversation memory (documents = message records) and repositories (documents =
code chunks). The dense side is a persistent Chroma collection (cosine HNSW) holding vectors computed by a
LangChain ``Embeddings`` object that is passed in; Chroma's own embedder is never used (it downloads a
model at run time). The BM25 side is ``bm25s`` (Lù 2024, "BM25S: Orders of magnitude faster lexical
search via eager sparse scoring") over the same stored documents, built lazily once per retriever and
kept in memory until the collection changes. The two ranked lists are fused by reciprocal rank fusion
(Cormack, Clarke & Büttcher 2009, "Reciprocal rank fusion outperforms Condorcet and individual rank
learning methods"): ``score(d) = sum_i w_i / (k + rank_i(d))``.

Metadata filters use Chroma's ``where`` language and are applied to both sides: Chroma evaluates them on
the dense side, :func:`matches` evaluates them in Python on the BM25 side, with the same semantics.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

MODES = ("hybrid", "dense", "bm25")
RRF_K = 60
CANDIDATES = 50
MASK_CACHE = 16
_SCALARS = (str, int, float, bool)
_ORDERINGS = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}
_OPERATORS = ("$eq", "$ne", "$in", "$nin", *_ORDERINGS)
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
_WORD = re.compile(r"\w+")
_IDENTIFIER_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


@dataclass(frozen=True)
class Hit:
    """One retrieved document.

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


def split_identifier(token: str) -> list[str]:
    """The parts of a snake_case / camelCase / PascalCase identifier, as written; [] if it has one part.

    ``parseConfigFile`` -> ``[parse, Config, File]``; ``HTTPServer_v2`` -> ``[HTTP, Server, v, 2]``.
    """
    parts = [part for chunk in token.split("_") for part in _IDENTIFIER_PART.findall(chunk)]
    return parts if len(parts) > 1 else []


@functools.lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS)


@functools.lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """BM25 terms of ``text``: words, plus the parts of compound identifiers, lower-cased, English
    stopwords (bm25s' extended list) and one-letter words removed, then Snowball-stemmed (PyStemmer).

    ``"parse_config_file(path)"`` -> ``["parse_config_fil", "pars", "config", "file", "path"]``.
    """
    stopwords = _stopwords()
    terms = []
    for word in _WORD.findall(text):
        for term in (word, *split_identifier(word)):
            term = term.lower()
            if (len(term) > 1 or term.isdigit()) and term not in stopwords:
                terms.append(term)
    return _stemmer().stemWords(terms)


def _scalar(value: Any, where: Any) -> Any:
    if not isinstance(value, _SCALARS):
        raise ValueError(f"Filter value {value!r} in {where!r} must be a str, int, float or bool.")
    return value


def _parse_condition(key: str, condition: Any, where: Any) -> list[tuple]:
    if not isinstance(condition, Mapping):
        return [("cmp", key, "$eq", _scalar(condition, where))]
    if not condition:
        raise ValueError(f"Filter on {key!r} in {where!r} has no operator.")
    leaves = []
    for op, value in condition.items():
        if op not in _OPERATORS:
            raise ValueError(f"Unknown filter operator {op!r} in {where!r}; use one of {', '.join(_OPERATORS)}.")
        if op in ("$in", "$nin"):
            if not isinstance(value, (list, tuple)) or not value:
                raise ValueError(f"{op} in {where!r} needs a non-empty list of values.")
            value = tuple(_scalar(item, where) for item in value)
        elif op in _ORDERINGS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{op} in {where!r} needs an int or float, not {value!r}.")
        leaves.append(("cmp", key, op, value if op in ("$in", "$nin") else _scalar(value, where)))
    return leaves


def _parse(where: Any) -> tuple:
    """A filter as a tree of ``("and"|"or", [nodes])`` and ``("cmp", key, op, value)`` nodes."""
    if not isinstance(where, Mapping) or not where:
        raise ValueError(f"A filter must be a non-empty dict, not {where!r}.")
    nodes = []
    for key, value in where.items():
        if key in ("$and", "$or"):
            if not isinstance(value, (list, tuple)) or not value:
                raise ValueError(f"{key} in {where!r} needs a non-empty list of filters.")
            nodes.append((key[1:], [_parse(item) for item in value]))
        elif not isinstance(key, str) or key.startswith("$"):
            raise ValueError(f"Unknown filter key {key!r} in {where!r}; use $and, $or or a metadata key.")
        else:
            nodes.extend(_parse_condition(key, value, where))
    return nodes[0] if len(nodes) == 1 else ("and", nodes)


def _same(a: Any, b: Any) -> bool:
    return isinstance(a, bool) == isinstance(b, bool) and a == b  # Chroma: True is not 1


def _evaluate(node: tuple, metadata: Mapping[str, Any]) -> bool:
    if node[0] == "and":
        return all(_evaluate(child, metadata) for child in node[1])
    if node[0] == "or":
        return any(_evaluate(child, metadata) for child in node[1])
    _, key, op, expected = node
    if key not in metadata:
        return op in ("$ne", "$nin")  # as Chroma: a document without the key is "not equal"
    value = metadata[key]
    if op == "$eq":
        return _same(value, expected)
    if op == "$ne":
        return not _same(value, expected)
    if op in ("$in", "$nin"):
        return any(_same(value, item) for item in expected) == (op == "$in")
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return numeric and _ORDERINGS[op](value, expected)


def _to_chroma(node: tuple) -> dict:
    """Chroma's form: one operator per dict, and $and/$or with at least two children."""
    if node[0] in ("and", "or"):
        children = [_to_chroma(child) for child in node[1]]
        return children[0] if len(children) == 1 else {f"${node[0]}": children}
    _, key, op, value = node
    return {key: {op: list(value) if op in ("$in", "$nin") else value}}


def matches(metadata: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    """Whether ``metadata`` passes the Chroma-style filter ``where``, as Chroma would decide.

    Supports ``$and``, ``$or``, ``$eq``, ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$in``, ``$nin``
    and plain ``{key: value}``; several keys in one dict mean "all of them". A missing key passes only
    ``$ne``/``$nin``; ``True`` never equals ``1``; orderings compare numbers only.

    Raises:
        ValueError: the filter is malformed (the message quotes it).
    """
    return _evaluate(_parse(where), metadata)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], weights: Sequence[float] | None = None, k: int = RRF_K
) -> list[tuple[str, float]]:
    """Fuse ranked id lists (best first): ``score(d) = sum_i weights[i] / (k + rank_i(d))``, ranks 1-based.

    Cormack, Clarke & Büttcher (2009), with k=60 as in the paper. Returns ``(id, score)`` pairs, best
    first; ties go to the document seen first (earliest list, best rank).
    """
    weights = weights or [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings.")
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
    order: dict[str, int] = {}
    for ranking in rankings:
        for doc_id in ranking:
            order.setdefault(doc_id, len(order))
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))


class _Bm25Index:
    """The BM25 side: every stored document of the collection, tokenised and indexed once."""

    def __init__(self, ids: list[str], texts: list[str], metadatas: list[dict], k1: float, b: float) -> None:
        import bm25s

        self.ids, self.texts, self.metadatas = ids, texts, metadatas
        self.count = len(ids)
        vocabulary: dict[str, int] = {}
        corpus = [[vocabulary.setdefault(term, len(vocabulary)) for term in tokenize(text)] for text in texts]
        vocabulary.setdefault("", len(vocabulary))  # bm25s scores token-less documents through it
        self.vocabulary = vocabulary
        self.model = bm25s.BM25(k1=k1, b=b)
        self.model.index((corpus, vocabulary), show_progress=False)
        self._masks: dict[str, Any] = {}

    def mask(self, node: tuple):
        """A 0/1 array: which documents pass the parsed filter ``node`` (the last few are cached)."""
        import numpy as np

        key = repr(node)
        if key not in self._masks:
            if len(self._masks) >= MASK_CACHE:
                self._masks.pop(next(iter(self._masks)))
            self._masks[key] = np.fromiter((_evaluate(node, m) for m in self.metadatas), dtype=bool, count=self.count)
        return self._masks[key]

    def top(self, query: str, n: int, node: tuple | None) -> list[tuple[int, float]]:
        """``(position, score)`` of the n best documents with a positive score that pass ``node``."""
        import numpy as np

        terms = [self.vocabulary[term] for term in tokenize(query) if term in self.vocabulary]
        if not terms:
            return []
        scores = self.model.get_scores_from_ids(terms)
        if node is not None:
            scores = scores * self.mask(node)
        positive = np.flatnonzero(scores > 0)
        best = positive[np.argsort(-scores[positive], kind="stable")[:n]]
        return [(int(i), float(scores[i])) for i in best]


class HybridRetriever:
    """Dense + BM25 search over one persistent Chroma collection, fused by reciprocal rank fusion.

    Args:
        folder: the Chroma database (created on first write; reads of a missing folder see an empty index).
        embeddings: computes document and query vectors (e.g. ``get_embeddings("local")``: 384 floats);
            the same one must be used for a collection's whole life.
        collection: the collection's name (3-512 characters of ``[A-Za-z0-9._-]``).
        rrf_k: the RRF constant k (60 in Cormack et al. 2009).
        dense_weight / bm25_weight: per-list RRF weights.
        candidates: how many documents each side contributes to the fusion (at least ``k``).
        bm25_k1 / bm25_b: BM25 term-saturation and length-normalisation (Robertson & Zaragoza 2009).

    The BM25 index lives in memory for the retriever's life and is rebuilt (once, at the next search)
    after this retriever's own writes or when the collection's count changes under it.

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
    ) -> None:
        if not _COLLECTION_NAME.match(collection):
            raise ValueError(f"Collection name {collection!r} must be 3-512 characters of [A-Za-z0-9._-].")
        if rrf_k < 0 or candidates < 1 or dense_weight < 0 or bm25_weight < 0:
            raise ValueError("rrf_k and the weights must be >= 0 and candidates >= 1.")
        self.folder = Path(folder)
        self.embeddings = embeddings
        self.collection_name = collection
        self.rrf_k, self.dense_weight, self.bm25_weight = rrf_k, dense_weight, bm25_weight
        self.candidates, self.bm25_k1, self.bm25_b = candidates, bm25_k1, bm25_b
        self._client = None
        self._collection = None
        self._bm25: _Bm25Index | None = None

    def _open(self, create: bool):
        """The Chroma collection; None when it does not exist and ``create`` is false."""
        if self._collection is not None:
            return self._collection
        if not create and not (self.folder / "chroma.sqlite3").exists():
            return None  # never create a database just to read it
        if self._client is None:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            self.folder.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(
                path=str(self.folder), settings=ChromaSettings(anonymized_telemetry=False)
            )
        if create:
            # embedding_function=None: we pass vectors in; Chroma's default embedder would download a model.
            self._collection = self._client.get_or_create_collection(
                self.collection_name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
        elif self.collection_name in {c.name for c in self._client.list_collections()}:
            self._collection = self._client.get_collection(self.collection_name, embedding_function=None)
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
        in hits and BM25-indexed; ``embed_texts`` (same length), when given, are embedded instead, e.g. a
        message with its neighbours or a chunk with its file path as context.

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

    def count(self) -> int:
        """How many documents the collection holds (0 when it does not exist)."""
        collection = self._open(create=False)
        return collection.count() if collection is not None else 0

    def ids(self) -> set[str]:
        """Every document id in the collection."""
        collection = self._open(create=False)
        return set(collection.get(include=[])["ids"]) if collection is not None else set()

    def _bm25_index(self, count: int) -> _Bm25Index:
        if self._bm25 is None or self._bm25.count != count:
            stored = self._collection.get(include=["documents", "metadatas"])
            texts, metadatas = [t or "" for t in stored["documents"]], [dict(m or {}) for m in stored["metadatas"]]
            self._bm25 = _Bm25Index(stored["ids"], texts, metadatas, self.bm25_k1, self.bm25_b)
        return self._bm25

    def search(self, query: str, k: int = 10, where: dict | None = None, mode: str = "hybrid") -> list[Hit]:
        """The ``k`` best documents for ``query``, best first (fewer when fewer pass ``where``).

        Args:
            query: free text; it is embedded (dense) and tokenised like the documents (BM25).
            k: how many hits; larger than the index is fine.
            where: a Chroma-style metadata filter (``{"speaker": "Caroline"}``, ``{"session": {"$gte": 3}}``,
                ``{"$and": [...]}``; see :func:`matches`) applied to both sides.
            mode: ``hybrid`` (RRF of both sides), ``dense`` or ``bm25``.

        Raises:
            ValueError: unknown mode, k < 1, or a malformed filter.
        """
        if mode not in MODES:
            raise ValueError(f"Unknown search mode {mode!r}; use one of {', '.join(MODES)}.")
        if k < 1:
            raise ValueError(f"k must be >= 1, not {k}.")
        node = _parse(where) if where is not None else None
        collection = self._open(create=False)
        count = collection.count() if collection is not None else 0
        if not count:
            return []
        depth = min(count, k if mode != "hybrid" else max(k, self.candidates))
        dense = self._dense(query, depth, node) if mode != "bm25" else []
        lexical = self._lexical(query, depth, node, count) if mode != "dense" else []
        if mode != "hybrid":
            return dense or lexical
        return self._fuse(dense, lexical)[:k]

    def _dense(self, query: str, depth: int, node: tuple | None) -> list[Hit]:
        result = self._collection.query(
            query_embeddings=[self.embeddings.embed_query(query)],
            n_results=depth,
            where=_to_chroma(node) if node is not None else None,
            include=["documents", "metadatas", "distances"],
        )
        rows = zip(
            result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0], strict=True
        )
        return [
            Hit(doc_id, 1.0 - float(distance), text or "", dict(metadata or {}), rank, None)
            for rank, (doc_id, text, metadata, distance) in enumerate(rows, start=1)
        ]

    def _lexical(self, query: str, depth: int, node: tuple | None, count: int) -> list[Hit]:
        index = self._bm25_index(count)
        return [
            Hit(index.ids[i], score, index.texts[i], dict(index.metadatas[i]), None, rank)
            for rank, (i, score) in enumerate(index.top(query, depth, node), start=1)
        ]

    def _fuse(self, dense: list[Hit], lexical: list[Hit]) -> list[Hit]:
        by_id = {hit.id: hit for hit in (*lexical, *dense)}
        dense_ranks = {hit.id: hit.dense_rank for hit in dense}
        bm25_ranks = {hit.id: hit.bm25_rank for hit in lexical}
        fused = reciprocal_rank_fusion(
            [[hit.id for hit in dense], [hit.id for hit in lexical]], [self.dense_weight, self.bm25_weight], self.rrf_k
        )
        return [
            replace(by_id[doc_id], score=score, dense_rank=dense_ranks.get(doc_id), bm25_rank=bm25_ranks.get(doc_id))
            for doc_id, score in fused
        ]
