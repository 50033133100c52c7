"""Memory that answers: summaries of a namespace's log, its embedding into Chroma, and questions over it.

Retrieval is hybrid (dense + BM25, fused by reciprocal rank; :mod:`my_llm.retrieval`), the combination
Mem0 and Zep use. The vector store lives at ``MESSAGE_HISTORY/<namespace>/chroma/`` (the seed's path)
with Chroma id = record id, so saving is incremental and idempotent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from my_llm.costs import cost_usd, count_tokens
from my_llm.errors import MyLLMError
from my_llm.messages import Record, model_of, text_of
from my_llm.models import context_tokens
from my_llm.retrieval import Hit, HybridRetriever
from my_llm.standards import stamp_reply

if TYPE_CHECKING:
    from my_llm.langchain_class import PubSubChatMessageHistory

SUMMARY_PROMPT = (
    "Summarise the conversation below in one short paragraph. Keep names, numbers, decisions and anything "
    "the user asked to remember."
)
REDUCE_PROMPT = "These are summaries of consecutive parts of one conversation. Combine them into one short paragraph."
ANSWER_PROMPT = (
    "Answer the question using only the conversation excerpts below (each with its time and speaker). "
    "If they do not contain the answer, say you do not know."
)
QUESTION_TASK = "question_memory"
SUMMARY_TASK = "summary"
PROMPT_RESERVE_TOKENS = 700  # instructions + the model's reply
_SPEAKERS = {"human": "user", "ai": "assistant"}


@dataclass(frozen=True)
class MemoryAnswer:
    """What :func:`question_memory` returns: the answer, the records it was given (oldest first), the hits."""

    answer: str
    messages: list[Record]
    hits: list[Hit]

    @property
    def result(self) -> str:  # the seed read result["result"]
        return self.answer

    def __str__(self) -> str:
        return self.answer


def transcript_line(record: Record) -> str:
    """``[2026-11-21 10:00] user: text``: a record as the models and the BM25 index see it."""
    speaker = record.metadata.get("speaker") or _SPEAKERS.get(record.role, record.role)
    return f"[{record.created_at[:16].replace('T', ' ')}] {speaker}: {record.content}"


def _pack(lines: Sequence[str], budget_tokens: int) -> list[str]:
    """Group lines into texts of at most ``budget_tokens`` each; a longer line is cut to fit."""
    groups: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        tokens = count_tokens(line) + 1
        if tokens > budget_tokens:
            line, tokens = line[: budget_tokens * 3], budget_tokens  # ~3+ characters a token
        if current and size + tokens > budget_tokens:
            groups.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += tokens
    if current:
        groups.append("\n".join(current))
    return groups


class _Summariser:
    """Map-reduce summarisation that keeps the replies, for their token usage."""

    def __init__(self, chat: BaseChatModel) -> None:
        self.chat = chat
        self.budget = max(context_tokens(chat) - PROMPT_RESERVE_TOKENS, 200)
        self.replies = []

    def _ask(self, instruction: str, text: str) -> str:
        prompt = [SystemMessage(instruction), HumanMessage(text)]
        reply = stamp_reply(self.chat.invoke(prompt), prompt, self.chat)
        self.replies.append(reply)
        return text_of(reply).strip()

    def summarise(self, lines: Sequence[str], instruction: str = SUMMARY_PROMPT) -> str:
        groups = _pack(lines, self.budget)
        if len(groups) == 1:
            return self._ask(instruction, groups[0])
        partials = [self._ask(instruction, group) for group in groups]  # map
        return self.summarise(partials, REDUCE_PROMPT)  # reduce, again map-reduced if still too long

    def usage(self, model: str | None) -> dict | None:
        if not self.replies:
            return None
        tokens_in = sum(r.usage_metadata["input_tokens"] for r in self.replies)
        tokens_out = sum(r.usage_metadata["output_tokens"] for r in self.replies)
        return {
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "cost_usd": cost_usd(model, tokens_in, tokens_out),
        }


def apply_summarise_to_memory(history: PubSubChatMessageHistory, chat: BaseChatModel, n: int | None = None) -> str:
    """Summarise the last ``n`` human/AI messages (all when None) and log the summary as a ``summary`` record.

    Text longer than the model's context is summarised in parts, then the parts are combined
    (map-reduce). The record's usage adds up every call; metadata holds the message count and the
    first and last record ids covered.

    Raises:
        MyLLMError: there is no human or AI message to summarise.
    """
    records = [r for r in history.records() if r.role in ("human", "ai")]
    records = records[-n:] if n else records
    if not records:
        raise MyLLMError(f"Nothing to summarise: namespace {history.namespace!r} has no messages yet.")
    summariser = _Summariser(chat)
    text = summariser.summarise([transcript_line(r) for r in records])
    model = model_of(summariser.replies[-1])
    summary = Record.new(
        history.namespace,
        history.session_id,
        "summary",
        text,
        source=history.source,
        model=model,
        usage=summariser.usage(model),
        metadata={
            "task": SUMMARY_TASK,
            "messages": len(records),
            "first_id": records[0].id,
            "last_id": records[-1].id,
            "calls": len(summariser.replies),
        },
    )
    history.add_records([summary])
    return text


# With all-MiniLM-L6-v2, BM25 is the stronger list on conversations: a sharper fusion (k = 10) with the
# dense list at half weight beat equal-weight RRF (k = 60) by 11 points of recall@5 on LoCoMo
# (benchmarks/locomo.py; tuned on that set, so treat as a starting point).
MEMORY_FUSION = {"rrf_k": 10, "dense_weight": 0.5}


def memory_retriever(history: PubSubChatMessageHistory, embeddings: Embeddings) -> HybridRetriever:
    """The namespace's retriever, stored at ``<MESSAGE_HISTORY>/<namespace>/chroma/``."""
    return HybridRetriever(history.store.folder / "chroma", embeddings, collection="memory", **MEMORY_FUSION)


def save_vectorstore_memory(history: PubSubChatMessageHistory, embeddings: Embeddings) -> int:
    """Embed the records of the live log that are not embedded yet; returns how many were added.

    Chroma id = record id, so a second call adds nothing. Records that left the live log (moved to
    the archive by ``clear()``) are removed from the store, so it always mirrors ``messages``.
    """
    return _sync(memory_retriever(history, embeddings), history.records())


def _sync(retriever: HybridRetriever, records: list[Record]) -> int:
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


def question_memory(
    history: PubSubChatMessageHistory,
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
    _sync(retriever, records)
    hits = retriever.search(question, k=k, where={"task": {"$ne": QUESTION_TASK}})
    by_id = {r.id: r for r in records}
    used = sorted((by_id[h.id] for h in hits if h.id in by_id), key=lambda r: (r.created_at, r.id))
    excerpts = "\n".join(transcript_line(r) for r in used) or "(no messages)"
    prompt = [SystemMessage(ANSWER_PROMPT), HumanMessage(f"Excerpts:\n{excerpts}\n\nQuestion: {question}")]
    reply = stamp_reply(chat.invoke(prompt), prompt, chat)
    asked = Record.new(
        history.namespace,
        history.session_id,
        "human",
        question,
        source=history.source,
        metadata={"task": QUESTION_TASK},
    )
    answered = dataclasses.replace(
        history.to_record(reply), metadata={"task": QUESTION_TASK, "sources": [r.id for r in used]}
    )
    history.add_records([asked, answered])
    return MemoryAnswer(answer=text_of(reply).strip(), messages=used, hits=hits)
