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


def _forms(kind: str) -> nd.Network:
    net = nd.Network(kind)
    x = net.input("x", ("N", 8, 10, 10))

    def conv(v, name, cin, cout, k=3, groups=1):
        return F.conv(v, net.parameter(f"{name}.w", (cout, cin // groups, k, k)), net.parameter(f"{name}.b", (cout,)),
                      padding=k // 2, groups=groups, name=name)
    if kind == "grouped_depthwise":
        y = F.relu6(conv(F.relu(conv(x, "g", 8, 16, groups=4)), "dw", 16, 16, groups=16))
        net.output(conv(y, "pw", 16, 4, k=1), "y")
    elif kind == "concat":
        net.output(conv(F.concat([F.relu(conv(x, "a", 8, 6)), conv(x, "b", 8, 4, k=1)], 1), "c", 10, 5), "y")
    elif kind == "outputs":
        a = F.relu(conv(x, "a", 8, 8))
        net.output(conv(a, "b", 8, 4, k=1), "y")
        net.output(F.linear(F.flatten(F.global_avg_pool(a)), net.parameter("fc.w", (3, 8)), net.parameter("fc.b", (3,)),
                            name="fc"), "logits")
    else:  # activation x activation matmuls (attention-like), read by a quantized linear
        t = F.reshape(conv(x, "a", 8, 8, k=1), (0, 8, 100))
        u = F.reshape(conv(x, "b", 8, 8, k=1), (0, 8, 100))
        s = F.softmax(F.matmul(t, F.transpose(u, (0, 2, 1)), name="tu") * 0.1, -1)
        net.output(F.linear(F.matmul(s, t, name="st"), net.parameter("o.w", (6, 100)), None, name="o"), "y")
    return net.init_random(0)


@pytest.mark.parametrize("kind", ["grouped_depthwise", "concat", "outputs", "matmuls"])
@pytest.mark.parametrize("target", [None, "tensorrt"])
def test_layer_forms_agree_on_every_engine(kind, target):
    """OpenVINO and ONNX Runtime compute each quantized form as the reference does (the int8 concat
    was 25-30% off on OpenVINO), refined ranges included; TensorRT's CPU proof passes the symmetric form."""
    net = _forms(kind)
    rng = np.random.default_rng(2)
    q = nd.quantize(net, _feeds(rng, (4, 8, 10, 10), 3), report=False, backend="reference", target=target,
                    refine_ranges=target is None)
    feeds = _feeds(rng, (2, 8, 10, 10))[0]
    for out in (v.name for v in net.graph.outputs):
        engines_agree_and_run_8_bit(q, feeds, out)
    if target == "tensorrt":
        pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed")
        from netdsl.backends import tensorrt as trtb
        rep = trtb.check(q.graph, feeds, flavour="tensorrt_rtx", dynamic={"N": (1, 2, 4)})
        assert rep.ok, str(rep)
