"""request_llm: one logged turn of a conversation (the seed's helper)."""

from __future__ import annotations

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, trim_messages

from my_llm.history import ChatHistory
from my_llm.models import context_tokens, count_message_tokens, stamp_reply, text_of

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
    """
    question = HumanMessage(prompt)
    budget = context_tokens(chat) - ANSWER_RESERVE_TOKENS - count_message_tokens([question])
    sent = [*history_that_fits(memory.messages, budget), question]
    reply = stamp_reply(chat.invoke(sent), sent, chat)
    memory.add_messages([question, reply])
    return text_of(reply)
