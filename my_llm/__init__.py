"""my_llm: keep, search and reuse what you say to LLMs.

The public API; CLIs and the sibling packages (``qna``, ``code_generation``) import from here or from a
subpackage face (``my_llm.history``, ``my_llm.log``, ``my_llm.memory``, ``my_llm.models``,
``my_llm.retrieval``, ``my_llm.importers.chatgpt``), never from a module inside one.

Rooms, lowest first (each imports only from rooms below it; checked by import-linter, see pyproject.toml):
``errors``, ``config`` -> ``record`` -> ``models``, ``retrieval`` -> ``log`` -> ``history`` ->
``memory``, ``importers`` -> ``langchain_class``, ``standards`` (the seed's paths) -> ``cli``.
"""

from typing import TYPE_CHECKING

from my_llm.lazy import lazy_face

if TYPE_CHECKING:
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
    from my_llm.redact import Secret, find_secrets, redact_secrets, secret_rules_version

# Imported on first use (PEP 562, my_llm.lazy): importing this face costs nothing until a name is used.
_LAZY = {
    "ChatHistory": "my_llm.history",
    "ConfigError": "my_llm.errors",
    "ExportError": "my_llm.importers.chatgpt",
    "ImportReport": "my_llm.importers.chatgpt",
    "InvalidNamespaceError": "my_llm.errors",
    "MemoryAnswer": "my_llm.memory",
    "MessageStore": "my_llm.log",
    "ModelCallError": "my_llm.errors",
    "ModelUnavailableError": "my_llm.errors",
    "MyLLMError": "my_llm.errors",
    "PubSubChatMessageHistory": "my_llm.langchain_class",
    "PublishError": "my_llm.errors",
    "Publisher": "my_llm.log",
    "Record": "my_llm.record",
    "RepoError": "my_llm.errors",
    "Secret": "my_llm.redact",
    "Settings": "my_llm.config",
    "StoreError": "my_llm.errors",
    "TimedChatMessage": "my_llm.history",
    "default_chat_spec": "my_llm.models",
    "find_secrets": "my_llm.redact",
    "get_chat_model": "my_llm.models",
    "get_embeddings": "my_llm.models",
    "import_chatgpt_export": "my_llm.importers.chatgpt",
    "list_namespaces": "my_llm.log",
    "model_label": "my_llm.models",
    "namespace_from_name": "my_llm.record",
    "parse_time": "my_llm.record",
    "redact_secrets": "my_llm.redact",
    "secret_rules_version": "my_llm.redact",
    "request_llm": "my_llm.memory",
    "to_message": "my_llm.history",
    "to_timed_message": "my_llm.history",
    "topic_id_for": "my_llm.record",
    "validate_namespace": "my_llm.record",
}

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
    "secret_rules_version",
    "to_message",
    "to_timed_message",
    "topic_id_for",
    "validate_namespace",
]

__getattr__, __dir__ = lazy_face(__name__, _LAZY)
