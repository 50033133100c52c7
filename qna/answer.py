"""Answer a question from retrieved chunks with a chat model, and log both through the memory class."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from my_llm import PubSubChatMessageHistory
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
) -> Answer:
    """Ask ``chat`` to answer ``question`` from ``hits``; log the question and answer to ``history``.

    The logged AI record carries ``model_name`` (the spec the user chose; the provider's own name when
    None) and the token usage the provider reported.
    """
    context, used = context_block(hits)
    reply = chat.invoke([SystemMessage(SYSTEM_PROMPT), HumanMessage(f"Excerpts:\n{context}\nQuestion: {question}")])
    text = reply.text if isinstance(reply.text, str) else reply.text()
    text = text.strip() or "(The model returned an empty answer.)"
    if history is not None:
        logged = AIMessage(
            content=text,
            usage_metadata=getattr(reply, "usage_metadata", None),
            response_metadata={"model_name": model_name or reply.response_metadata.get("model_name")},
        )
        history.add_messages([HumanMessage(question), logged])
    return Answer(text=text, sources=used)


def format_answer(answer: Answer) -> str:
    """The answer, then ``== Document sources:`` and one `` - path:Lstart-end`` line per source."""
    lines = [answer.text, "== Document sources:"]
    seen = set()
    for hit in answer.sources:
        if hit.chunk.citation not in seen:
            seen.add(hit.chunk.citation)
            lines.append(f" - {hit.chunk.citation}")
    return "\n".join(lines)
