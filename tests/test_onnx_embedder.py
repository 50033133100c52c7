"""The default embedder without torch: all-MiniLM-L6-v2 exported to ONNX from its safetensors weights,
measured against sentence-transformers on the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from my_llm import ModelUnavailableError
from my_llm.models import (
    LOCAL_INT8,
    LOCAL_SENTENCE_TRANSFORMERS,
    OnnxEmbeddings,
    SentenceTransformerEmbeddings,
    export_onnx,
    get_embeddings,
    local_embeddings_folder,
)

pytestmark = pytest.mark.slow

TEXTS = [
    "How do I add an option to a command?",
    "Caroline: I went to the LGBTQ support group yesterday and it was so powerful. (8 May 2023)",
    'def parse_config(text: str) -> dict:\n    """Read a TOML file."""\n    return tomllib.loads(text)',
    "Ünïcödé, emoji 🙂 and CJK 漢字 in one line",
    "a",
    "word " * 400,  # longer than 256 word pieces: truncated as sentence-transformers truncates
    "class Option(Parameter):\n    def __init__(self, param_decls=None, show_default=None, prompt=False):",
]


@pytest.fixture(scope="module")
def data_home(tmp_path_factory) -> Path:
    """An XDG data folder of this module's own: the export lands in ``<it>/my_llm/models``."""
    return tmp_path_factory.mktemp("xdg-data")


@pytest.fixture(scope="module")
def onnx(data_home) -> OnnxEmbeddings:
    return OnnxEmbeddings(local_embeddings_folder(), data_home / "my_llm" / "models")


def cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_float32_vectors_match_sentence_transformers(onnx):
    pytest.importorskip("sentence_transformers")
    reference = SentenceTransformerEmbeddings(local_embeddings_folder()).embed_documents(TEXTS)
    ours = onnx.embed_documents(TEXTS)
    assert np.asarray(ours).shape == (len(TEXTS), 384)
    assert cosines(ours, reference).min() >= 0.9999
    assert np.abs(np.asarray(ours) - np.asarray(reference)).max() < 1e-4
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batches_keep_order_and_equal_single_texts(onnx):
    batch = onnx.embed_documents(TEXTS)
    singles = [onnx.embed_query(text) for text in TEXTS]
    assert np.abs(np.asarray(batch) - np.asarray(singles)).max() < 1e-5
    assert onnx.embed_documents([]) == []


def test_int8_stays_close_to_float32(onnx, data_home):
    int8 = OnnxEmbeddings(local_embeddings_folder(), data_home / "my_llm" / "models", quantize=True)
    agreement = cosines(int8.embed_documents(TEXTS), onnx.embed_documents(TEXTS))
    assert agreement.mean() >= 0.98 and agreement.min() >= 0.95  # measured: mean 0.993, min 0.986 on code


def test_the_export_is_cached_under_the_hash_of_the_weights(onnx, data_home):
    onnx.embed_query("load")
    cache = data_home / "my_llm" / "models"
    exported = export_onnx(local_embeddings_folder(), cache)
    digests = json.loads((cache / "digests.json").read_text(encoding="utf-8"))
    assert exported.parent.name == next(iter(digests.values()))[:16]
    before = exported.stat().st_mtime_ns
    assert export_onnx(local_embeddings_folder(), cache) == exported  # found, not exported again
    assert exported.stat().st_mtime_ns == before


def test_embedding_needs_no_torch(data_home):
    script = (
        "import sys\n"
        "from my_llm import get_embeddings\n"
        "vector = get_embeddings('local').embed_query('no torch here')\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
        "print(len(vector), heavy)\n"
    )
    env = {**os.environ, "XDG_DATA_HOME": str(data_home)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "384 []"


def test_specs_choose_the_runtime():
    assert isinstance(get_embeddings("local"), OnnxEmbeddings)
    assert get_embeddings(LOCAL_INT8).quantize is True
    assert get_embeddings("local").model_name != get_embeddings(LOCAL_INT8).model_name  # caches keep them apart
    if _has("sentence_transformers"):
        assert isinstance(get_embeddings(LOCAL_SENTENCE_TRANSFORMERS), SentenceTransformerEmbeddings)
    with pytest.raises(ModelUnavailableError, match="local:int8"):
        get_embeddings("no-such-spec")


def test_a_model_the_builder_cannot_reproduce_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta"}), encoding="utf-8")
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "tokenizer.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ModelUnavailableError, match="BERT"):
        OnnxEmbeddings(tmp_path, tmp_path / "cache").embed_query("x")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
