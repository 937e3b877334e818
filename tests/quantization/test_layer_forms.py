"""Quantized networks of the layer forms the examples use less: matmuls with batched weights, both
operands activations, grouped and depthwise convolutions, concats, several outputs. The quantized
graph runs on OpenVINO and ONNX Runtime as the float64 reference computes it."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference

from .test_quantize import engines_agree_and_run_8_bit


def _feeds(rng: np.random.Generator, shape: tuple, n: int = 1) -> list:
    return [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(n)]


@pytest.mark.parametrize("w_shape", [(2, 16, 12), (1, 2, 16, 12), (16, 12)])
def test_matmul_with_a_batched_weight_runs_on_every_engine(w_shape):
    """x (N, 2, 8, 16) @ a constant of rank 3 or 4: per-column int8 scales of a batched weight made ONNX
    Runtime's MatMulIntegerToFloat refuse the exported model ("b zero point is not valid")."""
    net = nd.Network("batched_weight")
    x = net.input("x", ("N", 2, 8, 16))
    net.output(F.matmul(x, net.parameter("w", w_shape), name="mm"), "y")
    net.init_random(0)
    rng = np.random.default_rng(1)
    q = nd.quantize(net, _feeds(rng, (3, 2, 8, 16), 3), report=False, backend="reference")
    feeds = _feeds(rng, (2, 2, 8, 16))[0]
    engines_agree_and_run_8_bit(q, feeds, "y")
    ref = reference.run(net.graph, feeds)["y"]
    got = reference.run(q.graph, feeds)["y"]
    assert np.abs(got - ref).max() <= 0.1 * np.abs(ref).max()
