"""my_llm: keep, search and reuse what you say to LLMs.

The public API; CLIs and the sibling packages (``qna``, ``code_generation``) import from here or from a
subpackage face (``my_llm.history``, ``my_llm.log``, ``my_llm.memory``, ``my_llm.models``,
``my_llm.retrieval``, ``my_llm.importers.chatgpt``), never from a module inside one.

Rooms, lowest first (each imports only from rooms below it; checked by import-linter, see pyproject.toml):
``errors``, ``config`` -> ``record`` -> ``models``, ``retrieval`` -> ``log`` -> ``history`` ->
``memory``, ``importers`` -> ``langchain_class``, ``standards`` (the seed's paths) -> ``cli``.
"""

from my_llm.config import Settings
from my_llm.errors import (
    ConfigError,
    InvalidNamespaceError,
    ModelCallError,
    ModelUnavailableError,
    MyLLMError,
    PublishError,
    RepoError,
    StoreError,
)
from my_llm.history import ChatHistory, TimedChatMessage, to_message, to_timed_message
from my_llm.importers.chatgpt import ExportError, ImportReport, import_chatgpt_export
from my_llm.langchain_class import PubSubChatMessageHistory
from my_llm.log import MessageStore, Publisher, list_namespaces
from my_llm.memory import MemoryAnswer, request_llm
from my_llm.models import default_chat_spec, get_chat_model, get_embeddings, model_label
from my_llm.record import Record, namespace_from_name, parse_time, topic_id_for, validate_namespace
from my_llm.redact import Secret, find_secrets, redact_secrets

__all__ = [
    "ChatHistory",
    "ConfigError",
    "ExportError",
    "ImportReport",
    "InvalidNamespaceError",
    "MemoryAnswer",
    "MessageStore",
    "ModelCallError",
    "ModelUnavailableError",
    "MyLLMError",
    "PubSubChatMessageHistory",
    "PublishError",
    "Publisher",
    "Record",
    "RepoError",
    "Secret",
    "Settings",
    "StoreError",
    "TimedChatMessage",
    "default_chat_spec",
    "find_secrets",
    "get_chat_model",
    "get_embeddings",
    "import_chatgpt_export",
    "list_namespaces",
    "model_label",
    "namespace_from_name",
    "parse_time",
    "redact_secrets",
    "request_llm",
    "to_message",
    "to_timed_message",
    "topic_id_for",
    "validate_namespace",
]
