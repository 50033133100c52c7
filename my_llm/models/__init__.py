"""Models: chat model and embeddings factories (offline defaults), the llama.cpp chat model, the ONNX
embedder (no torch), token usage and cost.

The face of ``my_llm.models``: import from here, not from its modules.
"""

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
