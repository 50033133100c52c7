"""The lexical side of hybrid retrieval: a tokenizer for prose and code, and a BM25 index over bm25s.

Scoring is Okapi BM25 (Robertson & Zaragoza 2009, "The Probabilistic Relevance Framework: BM25 and
Beyond", Foundations and Trends in Information Retrieval 3(4)) as implemented by ``bm25s`` (Lù 2024,
"BM25S: Orders of magnitude faster lexical search via eager sparse scoring", arXiv:2407.03618), with its
default "lucene" variant of the IDF. Terms are Snowball-stemmed (Porter 2001, "Snowball: A language for
stemming algorithms") by PyStemmer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where it is used: importing the library (a CLI's --help) should not pay for it
    import numpy as np

_WORD = re.compile(r"\w+")
_IDENTIFIER_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


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


class Bm25Index:
    """Every stored document of a collection, tokenised with :func:`tokenize` and BM25-indexed once.

    Args:
        ids / texts / metadatas: the documents, in one order (a document's position is its index in them).
        k1: term-frequency saturation (1.2 is the usual default).
        b: document-length normalisation, 0 (none) to 1 (full); 0.75 is the usual default.

    Attributes:
        count: how many documents were indexed (the collection's count at build time).
        masks: a cache the owner may fill: filter key -> the ``bool`` array of :meth:`mask`.
        speakers: a cache the owner may fill (None until then): e.g. a metadata value -> a pattern finding it.
    """

    def __init__(
        self, ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[dict], k1: float, b: float
    ) -> None:
        import bm25s

        self.ids, self.texts, self.metadatas = list(ids), list(texts), list(metadatas)
        self.count = len(self.ids)
        vocabulary: dict[str, int] = {}
        corpus = [[vocabulary.setdefault(term, len(vocabulary)) for term in tokenize(text)] for text in texts]
        vocabulary.setdefault("", len(vocabulary))  # bm25s scores token-less documents through it
        self.vocabulary = vocabulary
        self.model = bm25s.BM25(k1=k1, b=b)
        self.model.index((corpus, vocabulary), show_progress=False)
        self.masks: dict[str, np.ndarray] = {}
        self.speakers: dict | None = None
        self._positions: dict[str, int] | None = None

    def positions(self) -> dict[str, int]:
        """Document id -> its position in this index."""
        if self._positions is None:
            self._positions = {doc_id: i for i, doc_id in enumerate(self.ids)}
        return self._positions

    def mask(self, ids: Iterable[str]) -> np.ndarray:
        """A ``bool`` array of shape ``(count,)``: True at the position of each of ``ids``.

        Ids this index does not hold (added after it was built) are ignored.
        """
        known = self.positions()
        import numpy as np

        allowed = np.zeros(self.count, dtype=bool)
        positions = [known[doc_id] for doc_id in ids if doc_id in known]
        allowed[positions] = True
        return allowed

    def top(self, query: str, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The ``n`` best documents for ``query`` as ``(position, BM25 score)``, best first.

        Only documents with a positive score (sharing at least one term with the query) are returned,
        and, when ``allowed`` (a ``bool`` array from :meth:`mask`) is given, only those it marks. Ties
        keep index order.
        """
        import numpy as np

        terms = [self.vocabulary[term] for term in tokenize(query) if term in self.vocabulary]
        if not terms:
            return []
        scores = self.model.get_scores_from_ids(terms)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        positive = np.flatnonzero(scores > 0)
        best = positive[np.argsort(-scores[positive], kind="stable")[:n]]
        return [(int(i), float(scores[i])) for i in best]
