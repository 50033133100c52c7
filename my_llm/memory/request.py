"""request_llm: one logged turn of a conversation (the seed's helper)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage, trim_messages

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


def answered_tool_results(messages: list[BaseMessage]) -> list[BaseMessage]:
    """``messages`` with every tool result that answers no earlier tool call turned into a human note.

    Providers refuse a ``tool`` message that does not follow an assistant message carrying its call id
    (OpenAI: "messages with role 'tool' must be a response to a preceding message with 'tool_calls'").
    Such results exist in the log: a trigger's outcome (``my-llm triggers``), an import's orphan tool
    answer, or a call cut off by the token budget. They become ``[tool <name> result] <content>``.
    """
    called: set[str] = set()
    kept: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, AIMessage):
            called.update(call["id"] for call in message.tool_calls if call.get("id"))
        if isinstance(message, ToolMessage) and message.tool_call_id not in called:
            name = message.name or "tool"
            message = HumanMessage(f"[{name} result] {text_of(message)}", id=message.id)
        kept.append(message)
    return kept


def turns_that_fit(newest_first: Iterable[BaseMessage], budget_tokens: int) -> list[BaseMessage]:
    """The most recent turns that fit in ``budget_tokens`` (cl100k), oldest first, starting on a human turn.

    ``newest_first`` is read lazily (:meth:`my_llm.history.ChatHistory.recent_messages`) and only until the
    budget is full, so the cost follows what is sent, not the length of the session or the log. A turn
    that does not fit ends the walk (no gaps). A system message at the start of the session is kept only
    when the walk reaches it within the budget.
    """
    taken: list[BaseMessage] = []
    used = 3  # the reply's priming, as count_message_tokens counts it
    for message in newest_first:
        cost = count_message_tokens([message]) - 3
        if used + cost > budget_tokens:
            break
        taken.append(message)
        used += cost
    taken.reverse()
    taken = answered_tool_results(taken)
    while taken and not isinstance(taken[0], (HumanMessage, SystemMessage)):
        taken.pop(0)  # never an answer without its question
    if taken and isinstance(taken[0], SystemMessage) and len(taken) > 1 and not isinstance(taken[1], HumanMessage):
        taken = [taken[0], *history_that_fits(taken[1:], budget_tokens)]
    return taken


def request_llm(prompt: str, chat: BaseChatModel, memory: ChatHistory) -> str:
    """Send ``prompt`` with the conversation so far, log the prompt and the reply, return the reply's text.

    The history is this session's turns (LangChain's current pattern: messages passed explicitly; the
    deprecated ``ConversationChain`` is gone), taken from the newest back until the model's context is
    full (:func:`turns_that_fit`: the cost does not grow with the log). The AI record carries ``model``
    and ``usage`` (tokens and cost in USD; see :mod:`my_llm.models`).

    Raises:
        StoreError: the log could not be written (the model was still called).
        ModelCallError: the model could not answer. The prompt is logged anyway, with the failure in
            ``metadata.error`` (``{"type", "message"}``), so the log shows what happened.
    """
    question = HumanMessage(prompt)
    budget = context_tokens(chat) - ANSWER_RESERVE_TOKENS - count_message_tokens([question])
    sent = [*turns_that_fit(memory.recent_messages(), budget), question]
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
