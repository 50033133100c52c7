"""request_llm: one logged turn of a conversation (the seed's helper)."""

from __future__ import annotations

import dataclasses

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, trim_messages

from my_llm.errors import ModelCallError
from my_llm.history import ChatHistory
from my_llm.models import context_tokens, count_message_tokens, invoke_model, stamp_reply, text_of
from my_llm.record import Record

ANSWER_RESERVE_TOKENS = 512


def history_that_fits(messages: list[BaseMessage], budget_tokens: int) -> list[BaseMessage]:
    """The most recent ``messages`` that fit in ``budget_tokens`` (counted with cl100k), starting on a
    human turn so the model never sees an answer without its question; system messages are kept."""
    return trim_messages(
        messages,
        max_tokens=max(budget_tokens, 0),
        token_counter=count_message_tokens,
        strategy="last",
        start_on="human",
        include_system=True,
        allow_partial=False,
    )


def request_llm(prompt: str, chat: BaseChatModel, memory: ChatHistory) -> str:
    """Send ``prompt`` with the conversation so far, log the prompt and the reply, return the reply's text.

    The history is LangChain's current pattern (messages passed explicitly; the deprecated
    ``ConversationChain`` is gone), trimmed from the oldest end to fit the model's context. The AI
    record carries ``model`` and ``usage`` (tokens and cost in USD; see :mod:`my_llm.models`).

    Raises:
        StoreError: the log could not be written (the model was still called).
        ModelCallError: the model could not answer. The prompt is logged anyway, with the failure in
            ``metadata.error`` (``{"type", "message"}``), so the log shows what happened.
    """
    question = HumanMessage(prompt)
    budget = context_tokens(chat) - ANSWER_RESERVE_TOKENS - count_message_tokens([question])
    sent = [*history_that_fits(memory.messages, budget), question]
    try:
        reply = stamp_reply(invoke_model(chat, sent), sent, chat)
    except ModelCallError as error:
        memory.add_records([failed_turn(memory, question, error)])
        raise
    memory.add_messages([question, reply])
    return text_of(reply)


def failed_turn(history: ChatHistory, question: HumanMessage, error: Exception) -> Record:
    """The record of a human turn whose answer failed: the question, with ``metadata.error`` saying why."""
    record = history.to_record(question)
    metadata = {**record.metadata, "error": {"type": type(error).__name__, "message": str(error)}}
    return dataclasses.replace(record, metadata=metadata)
