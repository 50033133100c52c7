"""Answer a question about a repository from retrieved chunks, citing ``path:Lstart-end``.

The model call and the logging of both turns are :func:`my_llm.memory.answer_from_context`, shared with
conversation memory; this module builds the excerpts from chunks and formats the sources. The question, the
excerpts and every record logged pass through :func:`my_llm.redact_secrets` (:class:`RedactingHistory`), so
a secret typed in a question or quoted in an answer reaches neither the model nor ``messages.jsonl``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from my_llm import Record, redact_secrets
from my_llm.history import ChatHistory
from my_llm.memory import answer_from_context
from qna.index import ChunkHit

SYSTEM_PROMPT = (
    "You answer questions about a software repository. Use only the excerpts below, each headed by its "
    "source as path:Lstart-end. Cite the sources you use in that form. If the excerpts do not answer the "
    "question, say so plainly."
)
# About 4 characters a token: keeps prompt + answer inside the local model's 4,096-token window.
CONTEXT_CHARS = 7000


@dataclass(frozen=True)
class Answer:
    """The model's answer and the hits it was given, in citation order."""

    text: str
    sources: list[ChunkHit]


def context_block(hits: list[ChunkHit], budget_chars: int = CONTEXT_CHARS) -> tuple[str, list[ChunkHit]]:
    """The excerpts that fit in ``budget_chars``, nearest first, and the hits they came from.

    The first hit is always kept (cut to the budget) so a question never goes out with no context.
    """
    parts, used, size = [], [], 0
    for hit in hits:
        body = f"--- {hit.chunk.citation} ({hit.chunk.kind})\n{hit.chunk.text}\n"
        if size + len(body) > budget_chars:
            if used:
                break
            body = body[:budget_chars]
        parts.append(body)
        used.append(hit)
        size += len(body)
    return "".join(parts), used


def answer_question(
    question: str,
    hits: list[ChunkHit],
    chat: BaseChatModel,
    history: ChatHistory | None = None,
    model_name: str | None = None,
    on_token: Callable[[str], None] | None = None,
) -> Answer:
    """Ask ``chat`` to answer ``question`` from ``hits``, streaming; log the question and answer to ``history``.

    The question and the excerpts are redacted before they are sent, the records before they are logged and
    the returned text too; ``on_token`` receives each piece of text as the model produces it, unredacted (print
    it through :class:`qna.terminal.SafeStream`). The logged AI record carries
    ``model_name`` (the spec the user chose; the provider's own name when None) and the token usage
    (reported by the provider, else counted offline). On KeyboardInterrupt (Ctrl+C) the question and
    the partial answer are logged with ``metadata.cancelled = true`` and the interrupt is re-raised.
    """
    context, used = context_block(hits)
    logged = RedactingHistory(history) if history is not None else None
    answer = answer_from_context(
        chat, SYSTEM_PROMPT, redact_secrets(context), redact_secrets(question), history=logged,
        model_name=model_name, on_token=on_token,
    )  # fmt: skip
    return Answer(text=redact_secrets(answer.text), sources=used)


def format_sources(answer: Answer) -> str:
    """``== Document sources:`` and one `` - path:Lstart-end`` line per distinct source."""
    lines = ["== Document sources:"]
    for citation in dict.fromkeys(hit.chunk.citation for hit in answer.sources):
        lines.append(f" - {citation}")
    return "\n".join(lines)


class RedactingHistory:
    """A chat history whose records are redacted (:func:`my_llm.redact_secrets`) before they are written.

    Wraps any :class:`my_llm.history.ChatHistory`: ``add_records`` redacts each record's ``content`` and every
    string inside its ``metadata`` and ``message``; everything else is the wrapped history's.
    """

    def __init__(self, inner: ChatHistory) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def add_records(self, records: Sequence[Record]) -> None:
        self._inner.add_records([_redacted_record(record) for record in records])


def _redacted_record(record: Record) -> Record:
    return dataclasses.replace(
        record,
        content=redact_secrets(record.content),
        metadata=_redacted(record.metadata),
        message=_redacted(record.message),
    )


def _redacted(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings, numbers) with every string redacted."""
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(item) for item in value]
    return value
