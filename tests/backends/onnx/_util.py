"""Shared helpers for the ONNX backend tests (import this after importorskip of onnx/onnxruntime)."""
from __future__ import annotations

import functools
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples")


@functools.lru_cache(maxsize=None)
def ort_max_opset() -> int:
    """The newest default-domain opset this ONNX Runtime loads (probed with a one-node model)."""
    h, T = onnx.helper, onnx.TensorProto
    best = 17
    for opset in range(17, onnx.defs.onnx_opset_version() + 1):
        imports = [h.make_opsetid("", opset)]
        g = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "probe", [h.make_tensor_value_info("x", T.FLOAT, [1])],
                         [h.make_tensor_value_info("y", T.FLOAT, [1])])
        m = h.make_model(g, opset_imports=imports, ir_version=h.find_min_ir_version_for(imports))
        try:
            ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception:
            break
        best = opset
    return best


def check_model(model_or_path) -> None:
    """Full checker and strict shape inference (the acceptance bar for every export)."""
    onnx.checker.check_model(model_or_path, full_check=True)
    model = onnx.load(model_or_path) if isinstance(model_or_path, str) else model_or_path
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def random_feeds(graph, batch: int = 2, seed: int = 0) -> dict:
    """Fresh random inputs (symbolic dims -> ``batch``); integer inputs in a small valid range."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for v in graph.inputs:
        shape = tuple(d if isinstance(d, int) else batch for d in v.shape)
        if v.dtype.is_int:
            high = 2 if "mask" in v.name else 100
            feeds[v.name] = rng.integers(0, high, size=shape).astype(v.dtype.numpy)
        else:
            feeds[v.name] = rng.uniform(-1, 1, size=shape).astype(v.dtype.numpy)
    return feeds
