"""my_llm: keep, search and reuse what you say to LLMs.

The public API; CLIs import from here.
"""

from my_llm.chatgpt import ExportError, ImportReport, import_chatgpt_export
from my_llm.config import Settings
from my_llm.errors import (
    ConfigError,
    InvalidNamespaceError,
    ModelUnavailableError,
    MyLLMError,
    PublishError,
    RepoError,
    StoreError,
)
from my_llm.langchain_class import PubSubChatMessageHistory
from my_llm.messages import Record, TimedChatMessage
from my_llm.models import default_chat_spec, get_chat_model, get_embeddings, model_label
from my_llm.namespaces import namespace_from_name, topic_id_for, validate_namespace
from my_llm.publisher import Publisher
from my_llm.standards import request_llm
from my_llm.store import MessageStore, list_namespaces

__all__ = [
    "ConfigError",
    "ExportError",
    "ImportReport",
    "InvalidNamespaceError",
    "MessageStore",
    "ModelUnavailableError",
    "MyLLMError",
    "PubSubChatMessageHistory",
    "PublishError",
    "Publisher",
    "Record",
    "RepoError",
    "Settings",
    "StoreError",
    "TimedChatMessage",
    "default_chat_spec",
    "get_chat_model",
    "get_embeddings",
    "import_chatgpt_export",
    "list_namespaces",
    "model_label",
    "request_llm",
    "namespace_from_name",
    "topic_id_for",
    "validate_namespace",
]
