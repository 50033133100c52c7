"""The memory's vector store: a namespace's records in Chroma (id = record id), searched by hybrid retrieval.

The store lives at ``MESSAGE_HISTORY/<namespace>/chroma/`` (the seed's path). Saving is incremental and
idempotent because the Chroma id is the record id.
"""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from my_llm.history import ChatHistory
from my_llm.memory.transcript import transcript_line
from my_llm.record import Record
from my_llm.retrieval import HybridRetriever

# With all-MiniLM-L6-v2, BM25 is the stronger list on conversations: a sharper fusion (k = 10) with the
# dense list at half weight beat equal-weight RRF (k = 60) by 11 points of recall@5 on LoCoMo
# (benchmarks/locomo.py; tuned on that set, so treat as a starting point).
MEMORY_FUSION = {"rrf_k": 10, "dense_weight": 0.5}


def memory_retriever(history: ChatHistory, embeddings: Embeddings) -> HybridRetriever:
    """The namespace's retriever, stored at ``<MESSAGE_HISTORY>/<namespace>/chroma/``."""
    return HybridRetriever(history.store.folder / "chroma", embeddings, collection="memory", **MEMORY_FUSION)


def save_vectorstore_memory(history: ChatHistory, embeddings: Embeddings) -> int:
    """Embed the records of the live log that are not embedded yet; returns how many were added.

    Chroma id = record id, so a second call adds nothing. Records that left the live log (moved to
    the archive by ``clear()``) are removed from the store, so it always mirrors ``messages``.
    """
    return sync_records(memory_retriever(history, embeddings), history.records())


def sync_records(retriever: HybridRetriever, records: list[Record]) -> int:
    """Make the store hold exactly the ``records`` that have content: add the new ones, delete those gone.

    Returns how many were added.
    """
    records = [r for r in records if r.content.strip()]
    gone = retriever.ids() - {r.id for r in records}
    if gone:
        retriever.delete(sorted(gone))
    return retriever.add(
        [r.id for r in records],
        [transcript_line(r) for r in records],
        [
            {
                "role": r.role,
                "session_id": r.session_id,
                "created_at": r.created_at,
                "task": str(r.metadata.get("task", "")),
            }
            for r in records
        ],
    )
