"""A sentence-transformers BERT model (all-MiniLM-L6-v2 and its kind) as one ONNX graph, built from its
safetensors weights with ``onnx.helper``: no torch, no transformers, no optimum.

The graph is the forward pass of Hugging Face's ``BertModel`` (Devlin et al. 2019, "BERT: Pre-training of
Deep Bidirectional Transformers for Language Understanding"; post-LayerNorm encoder, exact erf GELU,
additive attention mask), then sentence-transformers' mean pooling over the attention mask and L2
normalisation (Reimers & Gurevych 2019, "Sentence-BERT"), so its one output is the sentence embedding::

    inputs   input_ids       int64 [batch, tokens]   word-piece ids, [CLS] ... [SEP], padded with 0
             attention_mask  int64 [batch, tokens]   1 for real tokens, 0 for padding
    output   sentence_embedding  float32 [batch, hidden]   unit length (384 floats for MiniLM-L6)

``token_type_ids`` are all 0 for one-segment input, so segment 0's embedding is folded into the
position embeddings. The builder refuses models it does not reproduce (another ``model_type``, relative
positions, a pooling other than mean); :mod:`my_llm.models.onnx_embedder` measures the result against
sentence-transformers (tests/test_onnx_embedder.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from my_llm.errors import ModelUnavailableError

OPSET = 17  # LayerNormalization is a standard op from 17 on; onnxruntime 1.17+ runs it
NEGATIVE = -1e9  # added to the attention scores of padding (softmax gives them 0)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(f"{path} cannot be read as JSON: {error}") from error


def check_model_folder(model_dir: Path) -> dict:
    """The BERT config of a sentence-transformers folder this builder can reproduce.

    Raises:
        ModelUnavailableError: a file is missing, the model is not BERT with absolute positions, or
            its pooling is not mean pooling.
    """
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (model_dir / name).is_file():
            raise ModelUnavailableError(f"{model_dir / name} is missing: the folder is not a complete model.")
    config = _read_json(model_dir / "config.json")
    if config.get("model_type") != "bert" or config.get("position_embedding_type", "absolute") != "absolute":
        raise ModelUnavailableError(
            f"{model_dir} is a {config.get('model_type')!r} model; the ONNX builder handles BERT with absolute "
            "positions only: use it through sentence-transformers (MY_LLM_EMBEDDINGS=<folder>)."
        )
    if config.get("hidden_act", "gelu") != "gelu":
        raise ModelUnavailableError(f"{model_dir}: activation {config['hidden_act']!r} is not supported (gelu is).")
    pooling = model_dir / "1_Pooling" / "config.json"
    if pooling.is_file() and not _read_json(pooling).get("pooling_mode_mean_tokens", False):
        raise ModelUnavailableError(f"{model_dir}: only mean pooling is supported ({pooling}).")
    return config


class _Graph:
    """Nodes and initializers of the graph being built, with fresh names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, array: np.ndarray, stem: str = "c") -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attributes) -> str:
        from onnx import helper

        output = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attributes))
        return output

    def dense(self, x: str, weights: dict, prefix: str) -> str:
        """``x @ W.T + b`` for a torch ``Linear`` stored as ``prefix.weight`` [out, in] and ``prefix.bias``."""
        product = self.op("MatMul", [x, self.const(weights[f"{prefix}.weight"].T, "w")])
        return self.op("Add", [product, self.const(weights[f"{prefix}.bias"], "b")])

    def layer_norm(self, x: str, weights: dict, prefix: str, epsilon: float) -> str:
        scale, bias = self.const(weights[f"{prefix}.weight"], "g"), self.const(weights[f"{prefix}.bias"], "b")
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=epsilon)


def _attention(g: _Graph, x: str, mask_bias: str, weights: dict, prefix: str, config: dict) -> str:
    """Multi-head self-attention of one layer: [batch, tokens, hidden] -> the same shape."""
    heads = config["num_attention_heads"]
    size = config["hidden_size"] // heads
    split = g.const(np.array([0, 0, heads, size], dtype=np.int64), "shape")

    def project(name: str, perm: list[int]) -> str:
        reshaped = g.op("Reshape", [g.dense(x, weights, f"{prefix}.self.{name}"), split])
        return g.op("Transpose", [reshaped], perm=perm)

    query = project("query", [0, 2, 1, 3])  # [batch, heads, tokens, size]
    key = project("key", [0, 2, 3, 1])  # [batch, heads, size, tokens]
    value = project("value", [0, 2, 1, 3])
    scores = g.op("Mul", [g.op("MatMul", [query, key]), g.const(np.array(1 / math.sqrt(size), np.float32))])
    probabilities = g.op("Softmax", [g.op("Add", [scores, mask_bias])], axis=-1)
    context = g.op("Transpose", [g.op("MatMul", [probabilities, value])], perm=[0, 2, 1, 3])
    merged = g.op("Reshape", [context, g.const(np.array([0, 0, config["hidden_size"]], dtype=np.int64), "shape")])
    return g.dense(merged, weights, f"{prefix}.output.dense")


def _layer(g: _Graph, x: str, mask_bias: str, weights: dict, index: int, config: dict) -> str:
    """One encoder layer: attention, add & norm, feed-forward with exact GELU, add & norm."""
    prefix, epsilon = f"encoder.layer.{index}", config.get("layer_norm_eps", 1e-12)
    attended = _attention(g, x, mask_bias, weights, f"{prefix}.attention", config)
    x = g.layer_norm(g.op("Add", [attended, x]), weights, f"{prefix}.attention.output.LayerNorm", epsilon)
    hidden = g.dense(x, weights, f"{prefix}.intermediate.dense")
    erf = g.op("Erf", [g.op("Mul", [hidden, g.const(np.array(1 / math.sqrt(2), np.float32))])])
    half = g.op("Mul", [hidden, g.const(np.array(0.5, np.float32))])
    gelu = g.op("Mul", [half, g.op("Add", [erf, g.const(np.array(1.0, np.float32))])])  # x/2 (1 + erf(x/sqrt 2))
    out = g.dense(gelu, weights, f"{prefix}.output.dense")
    return g.layer_norm(g.op("Add", [out, x]), weights, f"{prefix}.output.LayerNorm", epsilon)


def _embeddings(g: _Graph, weights: dict, config: dict) -> str:
    """Word + position (+ segment 0) embeddings, layer-normalised: [batch, tokens, hidden]."""
    words = g.op("Gather", [g.const(weights["embeddings.word_embeddings.weight"], "words"), "input_ids"], axis=0)
    positions = weights["embeddings.position_embeddings.weight"] + weights["embeddings.token_type_embeddings.weight"][0]
    tokens = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const(np.array([1], dtype=np.int64), "axis")], axis=0)
    zero = g.const(np.array([0], dtype=np.int64), "zero")
    first = g.op("Slice", [g.const(positions.astype(np.float32), "positions"), zero, tokens, zero])
    summed = g.op("Add", [words, first])
    return g.layer_norm(summed, weights, "embeddings.LayerNorm", config.get("layer_norm_eps", 1e-12))


def _pool(g: _Graph, x: str, mask: str) -> str:
    """Mean of the real tokens' vectors, then L2-normalised: [batch, hidden]."""
    expanded = g.op("Unsqueeze", [mask, g.const(np.array([2], dtype=np.int64), "axes")])  # [batch, tokens, 1]
    total = g.op("ReduceSum", [g.op("Mul", [x, expanded]), g.const(np.array([1], dtype=np.int64), "axes")], keepdims=0)
    count = g.op("ReduceSum", [mask, g.const(np.array([1], dtype=np.int64), "axes")], keepdims=1)
    mean = g.op("Div", [total, g.op("Max", [count, g.const(np.array(1e-9, np.float32))])])
    norm = g.op("ReduceL2", [mean], axes=[1], keepdims=1)  # axes is an attribute until opset 18
    return g.op("Div", [mean, g.op("Max", [norm, g.const(np.array(1e-12, np.float32))])])


def build_model(model_dir: Path):
    """The ONNX model (an ``onnx.ModelProto``) of the sentence-transformers BERT folder ``model_dir``.

    Raises:
        ModelUnavailableError: see :func:`check_model_folder`; also when the ``onnx`` package is missing.
    """
    try:
        from onnx import TensorProto, helper
        from safetensors.numpy import load_file
    except ImportError as error:
        raise ModelUnavailableError(f"Exporting the embedder to ONNX needs the onnx package: {error}") from error
    config = check_model_folder(model_dir)
    weights = {name.removeprefix("bert."): array for name, array in load_file(model_dir / "model.safetensors").items()}
    g = _Graph()
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)  # [batch, tokens]
    axes = g.const(np.array([1, 2], dtype=np.int64), "axes")
    inverted = g.op("Sub", [g.const(np.array(1.0, np.float32)), g.op("Unsqueeze", [mask, axes])])
    mask_bias = g.op("Mul", [inverted, g.const(np.array(NEGATIVE, np.float32))])  # [batch, 1, 1, tokens]
    x = _embeddings(g, weights, config)
    for index in range(config["num_hidden_layers"]):
        x = _layer(g, x, mask_bias, weights, index, config)
    pooled = _pool(g, x, mask)
    g.nodes.append(helper.make_node("Identity", [pooled], ["sentence_embedding"]))
    names = ("input_ids", "attention_mask")
    int_input = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"]) for name in names]
    output = helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", config["hidden_size"]])
    graph = helper.make_graph(g.nodes, "sentence_embedding", int_input, [output], initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="my_llm")
    model.ir_version = 8  # readable by onnxruntime 1.14 and later
    return model
