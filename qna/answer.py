"""Answer a question from retrieved chunks with a chat model, and log both through the memory class."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from my_llm import PubSubChatMessageHistory
from my_llm.messages import text_of
from my_llm.standards import stamp_reply
from qna.index import Hit

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
    sources: list[Hit]


def context_block(hits: list[Hit], budget_chars: int = CONTEXT_CHARS) -> tuple[str, list[Hit]]:
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
    hits: list[Hit],
    chat: BaseChatModel,
    history: PubSubChatMessageHistory | None = None,
    model_name: str | None = None,
    on_token: Callable[[str], None] | None = None,
) -> Answer:
    """Ask ``chat`` to answer ``question`` from ``hits``, streaming; log the question and answer to ``history``.

    ``on_token`` receives each piece of text as the model produces it. The logged AI record carries
    ``model_name`` (the spec the user chose; the provider's own name when None) and the token usage
    (reported by the provider, else counted offline). On KeyboardInterrupt (Ctrl+C) the question and
    the partial answer are logged with ``metadata.cancelled = true`` and the interrupt is re-raised.
    """
    context, used = context_block(hits)
    prompt = [SystemMessage(SYSTEM_PROMPT), HumanMessage(f"Excerpts:\n{context}\nQuestion: {question}")]
    reply = None
    try:
        for piece in chat.stream(prompt):
            reply = piece if reply is None else reply + piece
            if on_token and piece.text:
                on_token(piece.text)
    except KeyboardInterrupt:
        _log(history, question, reply, prompt, chat, model_name, cancelled=True)
        raise
    text = _log(history, question, reply, prompt, chat, model_name)
    return Answer(text=text, sources=used)


def _log(history, question, reply, prompt, chat, model_name, cancelled: bool = False) -> str:
    reply = stamp_reply(reply if reply is not None else AIMessage(""), prompt, chat)
    text = text_of(reply).strip() or "(The model returned an empty answer.)"
    if history is not None:
        logged = AIMessage(
            content=text,
            usage_metadata=reply.usage_metadata,
            response_metadata={"model_name": model_name or reply.response_metadata.get("model_name")},
        )
        records = [history.to_record(HumanMessage(question)), history.to_record(logged)]
        if cancelled:
            records = [dataclasses.replace(record, metadata={"cancelled": True}) for record in records]
        history.add_records(records)
    return text


def format_sources(answer: Answer) -> str:
    """``== Document sources:`` and one `` - path:Lstart-end`` line per distinct source."""
    lines = ["== Document sources:"]
    for citation in dict.fromkeys(hit.chunk.citation for hit in answer.sources):
        lines.append(f" - {citation}")
    return "\n".join(lines)
