"""What a chat model returned: its text, the model that wrote it, and its usage stamped on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_core.messages import BaseMessage

from my_llm.models.factory import chat_model_name
from my_llm.models.usage import with_counted_usage

if TYPE_CHECKING:  # the chat-model base classes cost 0.3 s to import; only type hints need them
    from langchain_core.language_models.chat_models import BaseChatModel


def model_of(message: BaseMessage) -> str | None:
    """The model name a provider reported in ``response_metadata``, if any."""
    metadata = message.response_metadata or {}
    name = metadata.get("model_name") or metadata.get("model")
    return str(name) if name else None


def text_of(message: BaseMessage) -> str:
    """The message's text; content blocks that are not text are dropped."""
    return message.text if isinstance(message.text, str) else message.text()


def stamp_reply(reply: BaseMessage, prompt: list[BaseMessage], chat: BaseChatModel) -> BaseMessage:
    """The reply with token usage (counted offline if the provider gave none) and the model's name."""
    reply = with_counted_usage(reply, prompt)
    if model_of(reply) is None and chat_model_name(chat):
        metadata = {**reply.response_metadata, "model_name": chat_model_name(chat)}
        reply = reply.model_copy(update={"response_metadata": metadata})
    return reply
