"""Conformance cases: quantize_linear / dequantize_linear (per tensor, per channel, int8, uint8, zero
points), alone and around a convolution and a matmul (the Q/DQ pattern engines run as INT8).

Inputs to a quantizer are ``k * scale + u * scale`` with |u| <= 0.4 (no value near a rounding tie, where
an engine's float32 division may round the other way than the float64 reference), plus exact ties
(``k + 0.5`` steps, power-of-two scales) that must round half to even, and values that saturate."""
from __future__ import annotations

import numpy as np

import netdsl.functional as F

from .cases import add
from .cases_util import DYN, case as _case, ints

# ONNX Runtime 1.32 loads opset 28 but has no QuantizeLinear-28 kernel: those models run at opset 17 only
_ORT = {"onnx-opset28": "ONNX Runtime has no QuantizeLinear kernel at opset 28"}


def case(*args, **kw):
    return _case(*args, skip=_ORT, **kw)

CH = np.array([0.25, 0.125, 0.5, 0.0625], np.float32)  # power-of-two per-channel scales: exact ties


def steps(scale, axis: int = 1, lo: int = -140, hi: int = 140, ties: bool = True):
    """Values at whole quantization steps +- 0.4 step (some exactly half-way, some out of range)."""
    def g(rng, shape):
        s = np.asarray(scale, np.float64)
        if s.size > 1:
            shp = [1] * len(shape)
            shp[axis] = -1
            s = s.reshape(shp)
        k = rng.integers(lo, hi, size=shape)
        u = rng.uniform(-0.4, 0.4, size=shape)
        if ties:
            u = np.where(rng.random(shape) < 0.2, 0.5 * np.sign(rng.random(shape) - 0.5), u)
        return ((k + u) * s).astype(np.float32)
    return g


def _qdq_conv(n, x):
    wq = n.constant(np.random.default_rng(3).integers(-127, 128, (4, 3, 3, 3)).astype(np.int8))
    ws = np.array([0.01, 0.02, 0.015, 0.03], np.float32)
    xq = F.dequantize_linear(F.quantize_linear(x, 0.125), 0.125)
    return F.conv(xq, F.dequantize_linear(wq, ws, axis=0), n.parameter("b", (4,)), padding=1)


def _qdq_matmul(n, x):
    wq = n.constant(np.random.default_rng(4).integers(-127, 128, (16, 8)).astype(np.int8))
    ws = np.linspace(0.01, 0.05, 8).astype(np.float32)
    xq = F.dequantize_linear(F.quantize_linear(x, 0.25), 0.25)
    return F.matmul(xq, F.dequantize_linear(wq, ws, axis=1))


add(
    case("quantize_linear", "quantize_int8_per_tensor_dynbatch", lambda n, x: F.quantize_linear(x, 0.25),
         [(("N", 3, 5, 4), "float32", steps(0.25))], batches=DYN),
    case("quantize_linear", "quantize_int8_per_channel", lambda n, x: F.quantize_linear(x, CH),
         [((2, 4, 3, 3), "float32", steps(CH))]),
    case("quantize_linear", "quantize_uint8_zero_point_per_channel",
         lambda n, x: F.quantize_linear(x, CH, np.array([0, 7, 128, 250]), dtype="uint8"),
         [((2, 4, 6), "float32", steps(CH, lo=-260, hi=260))]),
    case("quantize_linear", "quantize_int8_last_axis",
         lambda n, x: F.quantize_linear(x, CH, np.array([0, -3, 5, 0], np.int8), axis=-1),
         [(("N", 3, 4), "float32", steps(CH, axis=-1))], batches=DYN),
    case("dequantize_linear", "dequantize_int8_per_tensor_dynbatch", lambda n, x: F.dequantize_linear(x, 0.037),
         [(("N", 3, 4), "int8", ints(-128, 128, "int8"))], batches=DYN),
    case("dequantize_linear", "dequantize_uint8_zero_point_per_channel",
         lambda n, x: F.dequantize_linear(x, [0.5, 0.01, 0.2], np.array([3, 128, 255]), axis=1),
         [((2, 3, 5), "uint8", ints(0, 256, "uint8"))]),
    case("dequantize_linear", "dequantize_int8_per_channel",
         lambda n, x: F.dequantize_linear(x, [0.5, 0.01, 0.2, 0.07], axis=0),
         [((4, 6), "int8", ints(-128, 128, "int8"))]),
    case("dequantize_linear", "qdq_conv_int8_dynbatch", _qdq_conv, [(("N", 3, 6, 6), "float32", steps(0.125))],
         batches=DYN),
    case("dequantize_linear", "qdq_matmul_int8", _qdq_matmul, [((2, 5, 16), "float32", steps(0.25, ties=False))]),
)
