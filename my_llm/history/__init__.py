"""The chat history of a namespace (disk first, then Pub/Sub) and the conversions between records and
LangChain messages. The face of ``my_llm.history``: import from here, not from its modules."""

from typing import TYPE_CHECKING

from my_llm.lazy import lazy_face

if TYPE_CHECKING:
    from my_llm.history.chat_history import ChatHistory
    from my_llm.history.conversions import TimedChatMessage, message_data, role_of, to_message, to_timed_message

# Imported on first use (PEP 562, my_llm.lazy): importing this face costs nothing until a name is used.
_LAZY = {
    "ChatHistory": "my_llm.history.chat_history",
    "TimedChatMessage": "my_llm.history.conversions",
    "message_data": "my_llm.history.conversions",
    "role_of": "my_llm.history.conversions",
    "to_message": "my_llm.history.conversions",
    "to_timed_message": "my_llm.history.conversions",
}

__all__ = ["ChatHistory", "TimedChatMessage", "message_data", "role_of", "to_message", "to_timed_message"]

__getattr__, __dir__ = lazy_face(__name__, _LAZY)
