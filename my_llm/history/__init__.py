"""The chat history of a namespace (disk first, then Pub/Sub) and the conversions between records and
LangChain messages. The face of ``my_llm.history``: import from here, not from its modules."""

from my_llm.history.chat_history import ChatHistory
from my_llm.history.conversions import TimedChatMessage, message_data, role_of, to_message, to_timed_message

__all__ = ["ChatHistory", "TimedChatMessage", "message_data", "role_of", "to_message", "to_timed_message"]
