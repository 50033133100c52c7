"""Questions over a namespace's messages: hybrid retrieval over the memory's vector store, then an answer
from the retrieved excerpts, logged as two ``question_memory`` turns."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel

from my_llm.history import ChatHistory
from my_llm.memory.answer import answer_from_context
from my_llm.memory.transcript import transcript_line
from my_llm.memory.vectorstore import memory_retriever, sync_records
from my_llm.record import Record
from my_llm.retrieval import ScoredDocument

ANSWER_PROMPT = (
    "Answer the question using only the conversation excerpts below (each with its time and speaker). "
    "If they do not contain the answer, say you do not know."
)
QUESTION_TASK = "question_memory"


@dataclass(frozen=True)
class MemoryAnswer:
    """What :func:`question_memory` returns: the answer, the records it was given (oldest first), the hits.

    The seed read the answer as ``result["result"]`` (LangChain's ``RetrievalQA`` shape); that works:
    ``answer["result"]`` is :attr:`answer` and ``answer["source_documents"]`` is :attr:`messages`.
    """

    answer: str
    messages: list[Record]
    hits: list[ScoredDocument]

    def __getitem__(self, key: str):
        views = {"result": self.answer, "answer": self.answer, "source_documents": self.messages}
        if key not in views:
            raise KeyError(f"{key!r}: a MemoryAnswer has {', '.join(views)}")
        return views[key]

    def __str__(self) -> str:
        return self.answer


def question_memory(
    history: ChatHistory,
    question: str,
    chat: BaseChatModel,
    embeddings: Embeddings,
    k: int = 8,
) -> MemoryAnswer:
    """Answer ``question`` from the namespace's messages and log the question and the answer.

    Brings the vector store up to date, retrieves ``k`` records by hybrid search (earlier
    question_memory turns excluded), gives them to ``chat`` oldest first with their times and
    speakers, and logs both turns with ``metadata.task = "question_memory"`` (the answer also lists
    the record ids it was given in ``metadata.sources``).
    """
    records = history.records()  # read the log once: for the sync and for the hits' records
    retriever = memory_retriever(history, embeddings)
    sync_records(retriever, records)
    hits = retriever.search(question, k=k, where={"task": {"$ne": QUESTION_TASK}})
    by_id = {r.id: r for r in records}
    used = sorted((by_id[h.id] for h in hits if h.id in by_id), key=lambda r: (r.created_at, r.id))
    excerpts = "\n".join(transcript_line(r) for r in used) or "(no messages)"
    answer = answer_from_context(
        chat,
        ANSWER_PROMPT,
        excerpts,
        question,
        history=history,
        question_metadata={"task": QUESTION_TASK},
        answer_metadata={"task": QUESTION_TASK, "sources": [r.id for r in used]},
    )
    return MemoryAnswer(answer=answer.text, messages=used, hits=hits)
