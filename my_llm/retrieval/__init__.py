"""Hybrid retrieval: dense vectors in Chroma + BM25 (bm25s), fused by reciprocal rank fusion.

The face of ``my_llm.retrieval``: import from here, not from its modules. The rooms behind it:
:mod:`~my_llm.retrieval.bm25` (tokenizer and BM25 index), :mod:`~my_llm.retrieval.fusion` (reciprocal
rank fusion), :mod:`~my_llm.retrieval.chroma` (a local Chroma folder, or the shared server ``CHROMA_HOST``
names) and :mod:`~my_llm.retrieval.hybrid` (:class:`HybridRetriever`, which returns :class:`ScoredDocument`).
"""

from my_llm.retrieval.bm25 import split_identifier, tokenize
from my_llm.retrieval.chroma import VectorStoreUnavailableError, parse_chroma_host, remote_collection_name
from my_llm.retrieval.fusion import RRF_K, reciprocal_rank_fusion
from my_llm.retrieval.hybrid import MODES, HybridRetriever, ScoredDocument

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
