"""Q/DQ lowered to OpenVINO runs as real INT8: the runtime model's convolutions and matmuls execute in
i8/u8 (OpenVINO's own report of what ran), and the results equal the float64 reference."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference

pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino)")


def _net():
    rng = np.random.default_rng(3)
    net = nd.Network("qdq")
    x = net.input("x", ("N", 16, 8, 8))
    wq = net.constant(rng.integers(-127, 128, (32, 16, 3, 3)).astype(np.int8))
    xq = F.dequantize_linear(F.quantize_linear(x, 0.05), 0.05)
    y = F.relu(F.conv(xq, F.dequantize_linear(wq, rng.uniform(0.005, 0.02, 32).astype(np.float32), axis=0),
                      padding=1, name="conv"))
    t = net.input("t", ("N", 5, 64))
    w2 = net.constant(rng.integers(-127, 128, (64, 32)).astype(np.int8))
    tq = F.dequantize_linear(F.quantize_linear(t, 0.05), 0.05)
    z = F.matmul(tq, F.dequantize_linear(w2, rng.uniform(0.005, 0.02, 32).astype(np.float32), axis=1), name="mm")
    net.output(y, "y")
    net.output(z, "z")
    return net


def _steps(rng, shape, s):  # whole quantization steps +- 0.4: no rounding ties
    return ((rng.integers(-120, 120, shape) + rng.uniform(-0.4, 0.4, shape)) * s).astype(np.float32)


def test_conv_and_matmul_run_in_int8():
    net = _net()
    m = nd.compile(net, "openvino")
    ran = {}
    for n in m.compiled.get_runtime_model().get_ordered_ops():
        rt = n.get_rt_info()
        ran[n.get_friendly_name()] = (rt["layerType"].astype(str), rt["runtimePrecision"].astype(str),
                                      {n.input(i).get_element_type().get_type_name()
                                       for i in range(min(2, n.get_input_size()))})
    for layer in ("conv", "mm"):  # activation and weight both arrive as 8-bit integers
        kind, precision, inputs = ran[layer]
        assert precision in ("i8", "u8") and inputs <= {"i8", "u8"}, (layer, ran[layer])
    rng = np.random.default_rng(0)
    feeds = {"x": _steps(rng, (2, 16, 8, 8), 0.05), "t": _steps(rng, (2, 5, 64), 0.05)}
    got, ref = m(feeds), reference.run(net.graph, feeds)
    for k in ref:
        scale = max(1.0, float(np.abs(ref[k]).max()))
        assert np.abs(got[k] - ref[k]).max() <= 1e-4 * scale, k


@pytest.mark.parametrize("dtype, zero_point", [("int8", None), ("uint8", 128)])
def test_quantized_concat_feeding_a_convolution_equals_the_reference(dtype, zero_point):
    """concat -> int8 quantize/dequantize -> convolution: OpenVINO 2026.4 ran the FakeQuantize form of it
    25-30% off (its own ONNX frontend too; ONNX Runtime was right); uint8 with a zero point was right."""
    rng = np.random.default_rng(4)
    net = nd.Network("qconcat")
    a, b = net.input("a", ("N", 8, 6, 6)), net.input("b", ("N", 2, 6, 6))
    zp = None if zero_point is None else np.array(zero_point, np.uint8)
    c = F.concat([a, b], 1)
    cq = F.dequantize_linear(F.quantize_linear(c, 0.03, zp, dtype=dtype), 0.03, zp)
    w = net.constant(rng.integers(-127, 128, (5, 10, 3, 3)).astype(np.int8))
    net.output(F.conv(cq, F.dequantize_linear(w, rng.uniform(0.005, 0.02, 5).astype(np.float32), axis=0),
                      padding=1, name="conv"), "y")
    feeds = {"a": _steps(rng, (2, 8, 6, 6), 0.03), "b": _steps(rng, (2, 2, 6, 6), 0.03)}
    got, ref = nd.compile(net, "openvino")(feeds)["y"], reference.run(net.graph, feeds)["y"]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("dtype,zero_point", [("uint8", 128), ("int8", -100)])
def test_quantize_with_a_scale_whose_range_overflows_float32(dtype, zero_point):
    """(hi - zp) * scale beyond float32's range: the FakeQuantize limits became inf and every value
    quantized to the lowest level (ONNX: round(x / s) + zp, here the zero point)."""
    net = nd.Network("huge_scale")
    x = net.input("x", ("N", 8))
    net.output(F.quantize_linear(x, 3e38, zero_point, dtype=dtype, name="q"), "q")
    xv = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32) * 1e38
    want = np.clip(np.rint(xv / np.float32(3e38)) + zero_point, -128 if dtype == "int8" else 0,
                   127 if dtype == "int8" else 255)
    np.testing.assert_array_equal(nd.compile(net, "openvino")(x=xv)["q"], want)
    np.testing.assert_array_equal(reference.run(net.graph, {"x": xv})["q"], want)
