"""Models: chat model and embeddings factories (offline defaults), the llama.cpp chat model, the ONNX
embedder (no torch), token usage and cost.

The face of ``my_llm.models``: import from here, not from its modules.
"""

from typing import TYPE_CHECKING

from my_llm.lazy import lazy_face

if TYPE_CHECKING:
    from my_llm.models.calls import batch_model, invoke_model, model_call_error, stream_model
    from my_llm.models.factory import (
        LOCAL,
        LOCAL_CHAT_MODEL_NAME,
        LOCAL_INT8,
        LOCAL_SENTENCE_TRANSFORMERS,
        SentenceTransformerEmbeddings,
        chat_model_name,
        context_tokens,
        default_chat_spec,
        get_chat_model,
        get_embeddings,
        local_embeddings_folder,
        local_gguf_path,
        model_label,
    )
    from my_llm.models.onnx_embedder import OnnxEmbeddings, default_cache_dir, export_onnx
    from my_llm.models.replies import model_of, stamp_reply, text_of
    from my_llm.models.usage import (
        PRICES_PER_MILLION,
        cost_usd,
        count_message_tokens,
        count_tokens,
        price_key,
        usage_for,
        with_counted_usage,
    )

# Imported on first use (PEP 562, my_llm.lazy): importing this face costs nothing until a name is used.
_LAZY = {
    "LOCAL": "my_llm.models.factory",
    "LOCAL_CHAT_MODEL_NAME": "my_llm.models.factory",
    "LOCAL_INT8": "my_llm.models.factory",
    "LOCAL_SENTENCE_TRANSFORMERS": "my_llm.models.factory",
    "OnnxEmbeddings": "my_llm.models.onnx_embedder",
    "PRICES_PER_MILLION": "my_llm.models.usage",
    "SentenceTransformerEmbeddings": "my_llm.models.factory",
    "batch_model": "my_llm.models.calls",
    "chat_model_name": "my_llm.models.factory",
    "context_tokens": "my_llm.models.factory",
    "cost_usd": "my_llm.models.usage",
    "count_message_tokens": "my_llm.models.usage",
    "count_tokens": "my_llm.models.usage",
    "default_cache_dir": "my_llm.models.onnx_embedder",
    "default_chat_spec": "my_llm.models.factory",
    "export_onnx": "my_llm.models.onnx_embedder",
    "get_chat_model": "my_llm.models.factory",
    "get_embeddings": "my_llm.models.factory",
    "invoke_model": "my_llm.models.calls",
    "local_embeddings_folder": "my_llm.models.factory",
    "local_gguf_path": "my_llm.models.factory",
    "model_call_error": "my_llm.models.calls",
    "model_label": "my_llm.models.factory",
    "model_of": "my_llm.models.replies",
    "price_key": "my_llm.models.usage",
    "stamp_reply": "my_llm.models.replies",
    "stream_model": "my_llm.models.calls",
    "text_of": "my_llm.models.replies",
    "usage_for": "my_llm.models.usage",
    "with_counted_usage": "my_llm.models.usage",
}

__all__ = [
    "batch_model",
    "invoke_model",
    "model_call_error",
    "stream_model",
    "LOCAL",
    "LOCAL_CHAT_MODEL_NAME",
    "LOCAL_INT8",
    "LOCAL_SENTENCE_TRANSFORMERS",
    "OnnxEmbeddings",
    "PRICES_PER_MILLION",
    "SentenceTransformerEmbeddings",
    "chat_model_name",
    "context_tokens",
    "cost_usd",
    "count_message_tokens",
    "count_tokens",
    "default_cache_dir",
    "default_chat_spec",
    "export_onnx",
    "get_chat_model",
    "get_embeddings",
    "local_embeddings_folder",
    "local_gguf_path",
    "model_label",
    "model_of",
    "price_key",
    "stamp_reply",
    "text_of",
    "usage_for",
    "with_counted_usage",
]

__getattr__, __dir__ = lazy_face(__name__, _LAZY)
