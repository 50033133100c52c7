"""Hybrid retrieval: dense vectors in Chroma + BM25 (bm25s), fused by reciprocal rank fusion.

The face of ``my_llm.retrieval``: import from here, not from its modules. The rooms behind it:
:mod:`~my_llm.retrieval.bm25` (tokenizer and BM25 index), :mod:`~my_llm.retrieval.fusion` (reciprocal
rank fusion), :mod:`~my_llm.retrieval.chroma` (a local Chroma folder, or the shared server ``CHROMA_HOST``
names) and :mod:`~my_llm.retrieval.hybrid` (:class:`HybridRetriever`, which returns :class:`ScoredDocument`).
"""

from typing import TYPE_CHECKING

from my_llm.lazy import lazy_face

if TYPE_CHECKING:
    from my_llm.retrieval.bm25 import split_identifier, tokenize
    from my_llm.retrieval.chroma import VectorStoreUnavailableError, parse_chroma_host, remote_collection_name
    from my_llm.retrieval.fusion import RRF_K, reciprocal_rank_fusion
    from my_llm.retrieval.hybrid import MODES, HybridRetriever, ScoredDocument

# Imported on first use (PEP 562, my_llm.lazy): importing this face costs nothing until a name is used.
_LAZY = {
    "HybridRetriever": "my_llm.retrieval.hybrid",
    "MODES": "my_llm.retrieval.hybrid",
    "RRF_K": "my_llm.retrieval.fusion",
    "ScoredDocument": "my_llm.retrieval.hybrid",
    "VectorStoreUnavailableError": "my_llm.retrieval.chroma",
    "parse_chroma_host": "my_llm.retrieval.chroma",
    "reciprocal_rank_fusion": "my_llm.retrieval.fusion",
    "remote_collection_name": "my_llm.retrieval.chroma",
    "split_identifier": "my_llm.retrieval.bm25",
    "tokenize": "my_llm.retrieval.bm25",
}

__all__ = [
    "MODES",
    "RRF_K",
    "HybridRetriever",
    "ScoredDocument",
    "VectorStoreUnavailableError",
    "parse_chroma_host",
    "reciprocal_rank_fusion",
    "remote_collection_name",
    "split_identifier",
    "tokenize",
]

__getattr__, __dir__ = lazy_face(__name__, _LAZY)
