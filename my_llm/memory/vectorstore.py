"""The memory's vector store: a namespace's records in Chroma (id = record id), searched by hybrid retrieval.

The store lives at ``MESSAGE_HISTORY/<namespace>/chroma/`` (the seed's path), or, when ``CHROMA_HOST`` names
a shared Chroma server, in its collection ``memory-<namespace>`` (:mod:`my_llm.retrieval.chroma`), which
every machine logging that namespace fills and searches. Saving is incremental and idempotent because the
Chroma id is the record id. What is stored per record is :func:`my_llm.memory.memory_documents`.

Settings (:data:`MEMORY_FUSION` here, :data:`my_llm.memory.MEMORY_DOCUMENTS`) were chosen on LoCoMo
conversations 0-4 only; ``benchmarks/locomo.py`` reports them on 5-9 (held out) and on all ten.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import astuple

from langchain_core.embeddings import Embeddings

from my_llm.history import ChatHistory
from my_llm.memory.transcript import CONTEXT_KEY, MEMORY_DOCUMENTS, SPEAKER_KEY, DocumentSettings, memory_documents
from my_llm.record import Record
from my_llm.retrieval import HybridRetriever

# With all-MiniLM-L6-v2, BM25 is the stronger list on conversations: a sharper fusion (k = 10) with the
# dense list at half weight, and less BM25 length normalisation (b = 0.5: a document is a turn and its
# neighbours), beat equal-weight RRF (k = 60, b = 0.75) by 10 points of recall@5 on LoCoMo 0-4.
# A turn also gets 0.3 / 0.1 of the fused scores of the 1st / 2nd turn after it, whose documents quote it
# (MEMORY_DOCUMENTS' bm25_before = 2, named in the metadata "context"): +1.3 / +0.9 points on LoCoMo 0-4.
# A question naming one speaker (LoCoMo: "What books has Tim read?") is split into who and what: the dense
# query leaves the name out, and that speaker's turns (metadata "speaker") get 1.3 times their final score:
# +0.5 / +1.5 points on LoCoMo 0-4, @10 up on each of the five (weights 0.25-0.4 gave 75.1-75.4 / 83.2-83.7).
MEMORY_FUSION = {
    "rrf_k": 10,
    "dense_weight": 0.5,
    "bm25_b": 0.5,
    "context_key": CONTEXT_KEY,
    "context_weights": (0.3, 0.1),
    "speaker_key": SPEAKER_KEY,
    "speaker_weight": 0.3,
}
DOCUMENT_KEY = "document"  # metadata: which DocumentSettings built a stored document


def document_tag(settings: DocumentSettings) -> str:
    """``"3-2-0-2-True-True-True"``: the settings a document was built with, stored in its metadata."""
    return "-".join(str(value) for value in astuple(settings))


def memory_retriever(history: ChatHistory, embeddings: Embeddings) -> HybridRetriever:
    """The namespace's retriever: ``<MESSAGE_HISTORY>/<namespace>/chroma/``, or the shared server's
    ``memory-<namespace>`` when ``history.settings.chroma_host`` is set."""
    return HybridRetriever(
        history.store.folder / "chroma", embeddings, collection="memory", settings=history.settings, **MEMORY_FUSION
    )


def save_vectorstore_memory(history: ChatHistory, embeddings: Embeddings) -> int:
    """Embed the records of the live log that are not embedded yet; returns how many were added.

    Chroma id = record id, so a second call adds nothing. Records that left the live log (moved to the
    archive by ``clear()``) are removed from the store: in a local store, every stored id that is not in
    the live log; in a shared one (``CHROMA_HOST``), only the ids this log archived, since other
    machines' records are there too.
    """
    retriever = memory_retriever(history, embeddings)
    records = history.records()
    cleared = None
    if retriever.chroma_host:
        live = {r.id for r in records}
        cleared = {r.id for r in history.store.read_all() if r.id not in live}
    return sync_records(retriever, records, cleared=cleared)


def sync_records(
    retriever: HybridRetriever,
    records: list[Record],
    *,
    cleared: Iterable[str] | None = None,
    settings: DocumentSettings = MEMORY_DOCUMENTS,
) -> int:
    """Bring the store up to date with ``records`` (a namespace's live log, in logged order); returns how
    many documents were added.

    Adds the :func:`~my_llm.memory.memory_documents` of records not stored yet, and rebuilds stored ones
    that other ``settings`` (or an older version of this library) built. Removes ``cleared`` ids; when
    ``cleared`` is None, removes every stored id not in ``records`` from a local store (only this log
    feeds it) and nothing from a shared one.

    Raises:
        VectorStoreUnavailableError: the shared Chroma server does not answer.
    """
    documents = memory_documents(records, settings)
    tag = document_tag(settings)
    if cleared is None and not retriever.chroma_host:
        cleared = retriever.ids() - {d.id for d in documents}
    mine = {d.id for d in documents}
    stale = [i for i in retriever.ids(where={DOCUMENT_KEY: {"$ne": tag}}) if i in mine]
    gone = sorted(set(cleared or ()) | set(stale))
    if gone:
        retriever.delete(gone)
    return retriever.add(
        [d.id for d in documents],
        [d.text for d in documents],
        [{**d.metadata, DOCUMENT_KEY: tag} for d in documents],
        embed_texts=[d.embed_text for d in documents],
    )
