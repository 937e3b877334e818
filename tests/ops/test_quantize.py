"""quantize_linear / dequantize_linear against torch's quantizers (per tensor and per channel)."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.dsl import Network

from .helpers import needs_torch, rnd, seed, torch

COVERS = {"quantize_linear", "dequantize_linear"}

_TORCH_Q = {"int8": "qint8", "uint8": "quint8"}


def _quantize(x, scale, zp, axis, dtype):
    net = Network("q")
    t = net.input("x", x.shape, "float32")
    net.output(nd.quantize_linear(t, scale, zp, axis=axis, dtype=dtype), "q")
    return reference.compile(net.graph)({"x": x.astype(np.float32)})["q"]


def _dequantize(q, scale, zp, axis):
    net = Network("dq")
    t = net.input("q", q.shape, str(q.dtype))
    net.output(nd.dequantize_linear(t, scale, zp, axis=axis), "x")
    return reference.compile(net.graph)({"q": q})["x"]


@needs_torch
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_per_tensor_vs_torch(dtype):
    rng = np.random.default_rng(seed("pt", dtype))
    x = rnd(rng, 3, 5, 7, low=-6, high=6).astype(np.float32)
    scale, zp = np.float32(0.5), np.array(3 if dtype == "int8" else 130, dtype)
    got = _quantize(x, scale, zp, 1, dtype)
    want = torch.quantize_per_tensor(torch.from_numpy(x), float(scale), int(zp),
                                     getattr(torch, _TORCH_Q[dtype])).int_repr().numpy()
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, want)
    back = _dequantize(got, scale, zp, 1)
    np.testing.assert_array_equal(back, torch.quantize_per_tensor(
        torch.from_numpy(x), float(scale), int(zp), getattr(torch, _TORCH_Q[dtype])).dequantize().numpy())


@needs_torch
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_per_channel_vs_torch(axis):
    rng = np.random.default_rng(seed("pc", axis))
    x = rnd(rng, 4, 3, 5, low=-40, high=40).astype(np.float32)  # large enough to saturate
    c = x.shape[axis]
    scale = rng.uniform(0.05, 0.3, size=c).astype(np.float32)
    zp = rng.integers(-5, 6, size=c).astype(np.int8)
    got = _quantize(x, scale, zp, axis, "int8")
    tq = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scale.astype(np.float64)),
                                    torch.from_numpy(zp.astype(np.int64)), axis % x.ndim, torch.qint8)
    np.testing.assert_array_equal(got, tq.int_repr().numpy())
    assert got.min() == -128 and got.max() == 127  # saturation happened on both sides
    np.testing.assert_allclose(_dequantize(got, scale, zp, axis), tq.dequantize().numpy(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype,zp", [("int8", 3), ("uint8", 130)])
def test_ties_round_half_to_even_before_the_zero_point(dtype, zp):
    """ONNX rounds x/scale, then adds the zero point (torch adds first): ONNX Runtime is the oracle."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    onnx = pytest.importorskip("onnx", reason="onnx not installed")
    from onnx import TensorProto, helper, numpy_helper
    x = np.array([0.25, 0.75, -0.25, -1.25, 2.25, 3.75, 1.3, -2.6], np.float32)
    scale, zpa = np.float32(0.5), np.array(zp, dtype)
    qt = TensorProto.INT8 if dtype == "int8" else TensorProto.UINT8
    g = helper.make_graph([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])], "q",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                          [helper.make_tensor_value_info("y", qt, x.shape)],
                          [numpy_helper.from_array(np.array(scale), "s"), numpy_helper.from_array(zpa, "z")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(_quantize(x, scale, zpa, 1, dtype), want)


def test_without_zero_point_is_symmetric_int8():
    rng = np.random.default_rng(seed("nozp"))
    x = rnd(rng, 2, 9, low=-3, high=3).astype(np.float32)
    got = _quantize(x, np.float32(0.02), None, 1, "int8")
    # naive: one element at a time, Python's round() is half-to-even too
    want = np.array([max(-128, min(127, round(float(v) / 0.02))) for v in x.astype(np.float64).flat
                     ]).reshape(x.shape)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(_dequantize(got, np.float32(0.02), None, 1), want * np.float32(0.02), rtol=1e-6)
