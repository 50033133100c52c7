"""Questions over a namespace's messages: hybrid retrieval over the memory's vector store, then an answer
from the retrieved excerpts, logged as two ``question_memory`` turns."""

from __future__ import annotations

import re
from dataclasses import dataclass

from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel

from my_llm.history import ChatHistory
from my_llm.memory.answer import answer_from_context
from my_llm.memory.transcript import transcript_line
from my_llm.memory.vectorstore import DOCUMENT_KEY, memory_retriever, sync_records
from my_llm.record import Record
from my_llm.retrieval import ScoredDocument

ANSWER_PROMPT = (
    "Answer the question using only the conversation excerpts below (each with its time and speaker). "
    "If they do not contain the answer, say you do not know."
)
QUESTION_TASK = "question_memory"
SHARED_SOURCE = "shared"  # Record.source of a hit whose record is in another machine's log (CHROMA_HOST)
_DATE_SUFFIX = re.compile(r" \(\d{1,2} [A-Z][a-z]+ \d{4}\)\Z")  # " (8 May 2023)", as memory_documents writes it


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
    found = (by_id.get(h.id) or shared_record(h, history.store.namespace) for h in hits)
    used = sorted((r for r in found if r is not None), key=lambda r: (r.created_at, r.id))
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


def shared_record(hit: ScoredDocument, namespace: str) -> Record | None:
    """The record behind a memory hit that is not in this machine's log (another machine's, through a shared
    Chroma server), rebuilt from what the store holds: its id, the metadata ``role``, ``session_id`` and
    ``created_at`` that :func:`~my_llm.memory.memory_documents` writes, and the turn (``speaker: content``)
    its stored text begins with (written ``turn_repeat`` times, per the ``document`` tag, then neighbours).

    Returns a :class:`Record` with ``source = "shared"`` and ``metadata.speaker`` (so
    :func:`transcript_line` reads as the original does), or None when the hit lacks that metadata. A
    turn stored once (``turn_repeat = 1``) ahead of multi-line neighbours keeps only its first line.
    """
    meta = hit.metadata or {}
    if not all(meta.get(key) for key in ("role", "session_id", "created_at")):
        return None
    fields = str(meta.get(DOCUMENT_KEY, "")).split("-")  # document_tag: DocumentSettings' fields in order
    repeat = int(fields[0]) if fields[0].isdigit() else 1
    turn = _own_turn(hit.text, repeat)
    if len(fields) > 4 and fields[4] == "True":  # DocumentSettings.date: the turn carries its date
        turn = _DATE_SUFFIX.sub("", turn)
    speaker, separator, content = turn.partition(": ")
    if not separator:
        speaker, content = meta["role"], turn
    return Record(
        id=hit.id, namespace=namespace, session_id=str(meta["session_id"]), role=str(meta["role"]),
        content=content, created_at=str(meta["created_at"]), source=SHARED_SOURCE,
        metadata={"speaker": speaker, **({"task": meta["task"]} if meta.get("task") else {})},
    )  # fmt: skip


def _own_turn(text: str, repeat: int) -> str:
    """The turn a stored memory text begins with: the shortest prefix that the text repeats ``repeat`` times
    (joined by newlines, then the end or a newline); the first line when ``repeat`` is 1 or none fits."""
    if repeat > 1:
        end = text.find("\n")
        while end != -1:
            own = text[:end]
            repeated = "\n".join([own] * repeat)
            if text.startswith(repeated) and text[len(repeated) : len(repeated) + 1] in ("", "\n"):
                return own
            end = text.find("\n", end + 1)
    return text.split("\n", 1)[0]
