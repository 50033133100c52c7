"""Answer a question from retrieved context with a chat model, and log both turns: one function that
conversation memory (``question_memory``) and repository Q&A (``read-repo``) share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from my_llm.errors import ModelCallError
from my_llm.history import ChatHistory
from my_llm.models import model_of, stamp_reply, stream_model, text_of, usage_for

EMPTY_ANSWER = "(The model returned an empty answer.)"


@dataclass(frozen=True)
class ContextAnswer:
    """The answer's text (stripped; :data:`EMPTY_ANSWER` when the model said nothing) and the model's
    reply with its usage stamped (tokens from the provider, or counted offline)."""

    text: str
    reply: BaseMessage


def answer_from_context(
    chat: BaseChatModel,
    instructions: str,
    context: str,
    question: str,
    *,
    history: ChatHistory | None = None,
    question_metadata: Mapping[str, Any] | None = None,
    answer_metadata: Mapping[str, Any] | None = None,
    model_name: str | None = None,
    on_token: Callable[[str], None] | None = None,
) -> ContextAnswer:
    """Ask ``chat`` to answer ``question`` from ``context`` (text the caller retrieved), streaming.

    The prompt is ``instructions`` as the system message, then ``Excerpts:``, the context and the
    question. ``on_token`` receives each piece of text as the model produces it. When ``history`` is
    given, the question (``question_metadata``) and the answer (``answer_metadata``, ``model_name`` or
    the provider's model, usage with cost) are logged in one append. On KeyboardInterrupt (Ctrl+C)
    both turns are logged with ``metadata.cancelled = true`` (the partial answer kept) and the
    interrupt is re-raised.

    Raises:
        ModelCallError: the model could not answer; the question is logged with the failure in
            ``metadata.error`` (``{"type", "message"}``).
    """
    prompt = [SystemMessage(instructions), HumanMessage(f"Excerpts:\n{context.rstrip()}\n\nQuestion: {question}")]
    turn = _Turn(history, question, prompt, chat, model_name, question_metadata, answer_metadata)
    reply = None
    try:
        for piece in stream_model(chat, prompt):
            reply = piece if reply is None else reply + piece
            if on_token and piece.text:
                on_token(piece.text)
    except KeyboardInterrupt:
        turn.log(reply, cancelled=True)
        raise
    except ModelCallError as error:
        turn.log_failure(error)
        raise
    return turn.log(reply)


@dataclass(frozen=True)
class _Turn:
    history: ChatHistory | None
    question: str
    prompt: list[BaseMessage]
    chat: BaseChatModel
    model_name: str | None
    question_metadata: Mapping[str, Any] | None
    answer_metadata: Mapping[str, Any] | None

    def log_failure(self, error: Exception) -> None:
        if self.history is not None:
            failure = {"error": {"type": type(error).__name__, "message": str(error)}}
            metadata = {**(self.question_metadata or {}), **failure}
            self.history.add_records([self.history.new_record("human", self.question, metadata=metadata)])

    def log(self, reply: BaseMessage | None, cancelled: bool = False) -> ContextAnswer:
        reply = stamp_reply(reply if reply is not None else AIMessage(""), self.prompt, self.chat)
        text = text_of(reply).strip() or EMPTY_ANSWER
        if self.history is not None:
            flag = {"cancelled": True} if cancelled else {}
            model = self.model_name or model_of(reply)
            asked = self.history.new_record("human", self.question, metadata={**(self.question_metadata or {}), **flag})
            answered = self.history.new_record(
                "ai",
                text,
                model=model,
                usage=usage_for(reply, model),
                metadata={**(self.answer_metadata or {}), **flag},
            )
            self.history.add_records([asked, answered])
        return ContextAnswer(text=text, reply=reply)
