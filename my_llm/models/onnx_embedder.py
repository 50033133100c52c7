"""The default embedder without torch: a sentence-transformers BERT folder exported once to ONNX, run by
``onnxruntime`` with the folder's own ``tokenizers`` tokenizer.

The export (:func:`my_llm.models.bert_onnx.build_model`, about 1-2 s, no torch) happens at first use and is
cached under the data folder, keyed by the sha256 of the weights file::

    <cache_dir>/<first 16 hex of sha256(model.safetensors)>/model.onnx        float32
    <cache_dir>/<first 16 hex of sha256(model.safetensors)>/model.int8.onnx   dynamic int8 (quantize=True)

``cache_dir`` defaults to ``<user data dir>/my_llm/models`` (the folder the other defaults live in). The
weights' hash is itself cached by (path, size, mtime) in ``<cache_dir>/digests.json``, so a start hashes
90 MB only when the weights file changed. Concurrent first uses export once (a file lock).

Measured on all-MiniLM-L6-v2, 400 code chunks of 400 characters from langchain_core, 2 busy cores (medians
of single runs; the machine's load moves speeds by 10-30%)::

                                 texts/s   query ms   cosine to sentence-transformers
    sentence-transformers (torch)  23        12         1
    ONNX float32 (``local``)       42-44     4.5        min 0.9999996 (max abs. difference 1.5e-7)
    ONNX int8 (``local:int8``)     67-72     1.6        mean 0.993, min 0.986

and ``import sentence_transformers`` alone costs 4-5 s, loading the ONNX session 0.3-0.4 s.
tests/test_onnx_embedder.py holds float32 to a cosine of 0.9999 and int8 to a mean of 0.98.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    import numpy as np

APP_NAME = "my_llm"
DEFAULT_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
_HASH_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``<user data dir>/my_llm/models``: where exported models are kept."""
    import platformdirs

    return platformdirs.user_data_path(APP_NAME) / "models"


def weights_digest(weights: Path, cache_dir: Path) -> str:
    """sha256 (hex) of ``weights``; remembered in ``<cache_dir>/digests.json`` by (path, size, mtime_ns)."""
    stat = weights.stat()
    key = f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    index_path = cache_dir / "digests.json"
    try:
        known = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(key), str):
        return known[key]
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        while block := handle.read(_HASH_CHUNK):
            digest.update(block)
    path_prefix = f"{weights.resolve()}|"  # forget this file's older versions
    known = {k: v for k, v in (known if isinstance(known, dict) else {}).items() if not k.startswith(path_prefix)}
    known[key] = digest.hexdigest()
    cache_dir.mkdir(parents=True, exist_ok=True)
    temporary = index_path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(known, indent=1), encoding="utf-8")
    os.replace(temporary, index_path)
    return known[key]


def export_onnx(model_dir: Path, cache_dir: Path | None = None, quantize: bool = False) -> Path:
    """The cached ONNX file of ``model_dir`` (exported now if missing); int8-quantised when ``quantize``.

    int8 is ``onnxruntime.quantization.quantize_dynamic`` of the float32 export: MatMul weights int8 per
    output channel, activations quantised at run time.

    Raises:
        ModelUnavailableError: the folder is not a BERT sentence-transformers model, or the ``onnx``
            package is missing.
    """
    from filelock import FileLock

    from my_llm.models.bert_onnx import build_model, check_model_folder

    model_dir = Path(model_dir)
    check_model_folder(model_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = cache_dir / weights_digest(model_dir / "model.safetensors", cache_dir)[:16]
    target = folder / ("model.int8.onnx" if quantize else "model.onnx")
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".export.lock")):
        if target.is_file():  # another process exported it while we waited
            return target
        float_path = folder / "model.onnx"
        if not float_path.is_file():
            import onnx

            temporary = folder / f"model.{os.getpid()}.tmp"
            onnx.save(build_model(model_dir), str(temporary))
            os.replace(temporary, float_path)
        if quantize:
            temporary = folder / f"model.int8.{os.getpid()}.tmp"
            _quantize(float_path, temporary)
            os.replace(temporary, target)
    return target


def _quantize(source: Path, target: Path) -> None:
    """Dynamic int8 of ``source``'s MatMul weights, per output channel (per tensor lost a point of cosine)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic warns on the root logger about an optional pre-processing step
    try:
        quantize_dynamic(
            str(source), str(target), per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"]
        )
    finally:
        root.setLevel(level)


class OnnxEmbeddings(Embeddings):
    """LangChain ``Embeddings`` of a sentence-transformers BERT folder through onnxruntime; L2-normalised.

    all-MiniLM-L6-v2 gives 384 floats per text and reads at most ``max_tokens`` word pieces (256, as
    sentence-transformers does). Texts are embedded in batches of similar length (sorted, as
    sentence-transformers does), so little is spent on padding.

    Args:
        model_dir: a sentence-transformers folder of a BERT model (``config.json``, ``model.safetensors``,
            ``tokenizer.json``).
        cache_dir: where the export is kept (:func:`default_cache_dir` when None).
        quantize: run the int8 export instead of float32.
        batch_size: texts per run (small batches suit 2 CPU cores, as for sentence-transformers).
        threads: onnxruntime intra-op threads (all cores when None); threads sleep when idle instead of
            spinning, which a shared machine needs.

    Nothing is read or exported until the first embedding (constructing one is free).

    Raises (on first use):
        ModelUnavailableError: see :func:`export_onnx`.
    """

    def __init__(
        self,
        model_dir: str | Path,
        cache_dir: str | Path | None = None,
        *,
        quantize: bool = False,
        batch_size: int = 8,
        threads: int | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.quantize, self.batch_size, self.threads, self.max_tokens = quantize, batch_size, threads, max_tokens
        # The name caches key vectors by (qna's manifest, benchmarks): another export is another name.
        self.model_name = f"onnx{'-int8' if quantize else ''}:{self.model_dir}"
        self._session = None
        self._tokenizer = None

    def _load(self) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        path = export_onnx(self.model_dir, self.cache_dir, self.quantize)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads or max(1, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the batch's longest text
        self._tokenizer = tokenizer

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """The vectors of ``texts`` as a float32 array of shape ``(len(texts), 384)``, in their order."""
        import numpy as np

        if self._session is None:
            self._load()
        vectors = np.zeros((len(texts), self._session.get_outputs()[0].shape[1]), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            encoded = self._tokenizer.encode_batch([texts[i] for i in batch])
            feed = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            }
            vectors[batch] = self._session.run(None, feed)[0]
        return vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()
