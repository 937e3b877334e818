"""reorg: the reference against independent definitions (darknet's reorg_cpu loops, YOLOv5's Focus
slicing, ONNX Runtime's SpaceToDepth), symbolic shape inference, errors, and the CUDA kernel on a GPU."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.errors import ShapeError
from netdsl.plugins import conformance
from netdsl.plugins.cuda import run_arrays
from tests.plugins.helpers import check_example, gpu_stream, launchers, load_plugin

P = load_plugin("reorg")

CASES = [
    conformance.Case("space_to_depth", [("N", 8, "H", "W")], {"block": 2, "mode": "space_to_depth"},
                     sizes={"N": 2, "H": 6, "W": 4}),
    conformance.Case("focus", [("N", 3, 8, 6)], {"block": 2, "mode": "focus"}, sizes={"N": 3}),
    conformance.Case("darknet", [("N", 16, "H", "W")], {"block": 2, "mode": "darknet"},
                     sizes={"N": 2, "H": 4, "W": 6}),
    conformance.Case("block3", [(1, 5, 9, 6)], {"block": 3, "mode": "space_to_depth"}),
]


@pytest.mark.parametrize("check", conformance.checks(P.reorg, CASES), ids=str)
def test_conformance(check):
    check.run_test()


def test_example_passes_netdsl_check():
    check_example("reorg")


def darknet_reorg_cpu(x: np.ndarray, stride: int) -> np.ndarray:
    """darknet's blas.c reorg_cpu(x, w, h, c, batch, stride, forward=0, out), as YOLOv2's [reorg] calls it."""
    batch, c, h, w = x.shape
    xf, out = x.ravel(), np.empty(x.size, x.dtype)
    out_c = c // (stride * stride)
    for b in range(batch):
        for k in range(c):
            for j in range(h):
                for i in range(w):
                    in_index = i + w * (j + h * (k + c * b))
                    c2, offset = k % out_c, k // out_c
                    w2, h2 = i * stride + offset % stride, j * stride + offset // stride
                    out_index = w2 + w * stride * (h2 + h * stride * (c2 + out_c * b))
                    out[in_index] = xf[out_index]
    return out.reshape(batch, c * stride * stride, h // stride, w // stride)


def yolov5_focus(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], axis=1)


def test_darknet_mode_is_reorg_cpu():
    x = np.random.default_rng().standard_normal((2, 8, 6, 4)).astype(np.float32)
    np.testing.assert_array_equal(P.reference(x, block=2, mode="darknet"), darknet_reorg_cpu(x, 2))
    x = np.random.default_rng().standard_normal((1, 18, 6, 9)).astype(np.float32)
    np.testing.assert_array_equal(P.reference(x, block=3, mode="darknet"), darknet_reorg_cpu(x, 3))


def test_focus_mode_is_yolov5_focus():
    x = np.random.default_rng().standard_normal((2, 3, 8, 6)).astype(np.float32)
    np.testing.assert_array_equal(P.reference(x, block=2, mode="focus"), yolov5_focus(x))


@pytest.mark.parametrize("block", [2, 3])
def test_space_to_depth_mode_is_onnxruntime_space_to_depth(block):
    onnx = pytest.importorskip("onnx", reason="onnx not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=block)], "s2d",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng().standard_normal((2, 5, 3 * block, 2 * block)).astype(np.float32)
    np.testing.assert_array_equal(P.reference(x, block=block, mode="space_to_depth"), sess.run(None, {"x": x})[0])
    assert onnx.__version__


def _net(shape, **attrs) -> nd.Network:
    net = nd.Network("reorg_test")
    x = net.input("x", shape)
    net.output(P.reorg(x, name="reorg1", **attrs), "y")
    return net


@pytest.mark.parametrize("mode", P.MODES)
def test_symbolic_batch_and_spatial_dims(mode):
    net = _net(("N", 8, "H", "W"), block=2, mode=mode)
    (y,) = net.graph.outputs
    assert [str(d) for d in y.shape] == ["N", "32", "H/2", "W/2"]
    rng = np.random.default_rng()
    for shape in [(1, 8, 4, 6), (3, 8, 10, 2)]:
        x = rng.standard_normal(shape).astype(np.float32)
        got = reference.run(net.graph, {"x": x})["y"]
        assert got.shape == (shape[0], 32, shape[2] // 2, shape[3] // 2)
        np.testing.assert_array_equal(got, P.reference(x.astype(np.float64), block=2, mode=mode))


def test_static_errors_name_the_layer():
    with pytest.raises(ShapeError, match=r"reorg 'reorg1' at .*test_reorg.py:\d+: reorg: height 7 is not divisible by block 2"):
        _net((1, 4, 7, 8), block=2)
    with pytest.raises(ShapeError, match="width 8 is not divisible by block 3"):
        _net((1, 9, 9, 8), block=3)
    with pytest.raises(ShapeError, match="mode 'darknet': channels 6 must be divisible by block\\*block = 4"):
        _net((1, 6, 4, 4), block=2, mode="darknet")
    with pytest.raises(ShapeError, match="reorg takes float32 or float16, got int32"):
        net = nd.Network("i")
        P.reorg(net.input("x", (1, 4, 4, 4), "int32"))


@pytest.mark.parametrize("launcher", launchers())
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("mode,block,shape", [("space_to_depth", 2, (2, 3, 8, 6)), ("focus", 2, (3, 3, 64, 32)),
                                              ("darknet", 2, (2, 64, 26, 26)), ("space_to_depth", 3, (1, 5, 9, 12)),
                                              ("darknet", 3, (1, 18, 9, 6))])
def test_gpu_kernel_matches_reference(launcher, dtype, mode, block, shape):
    stream = gpu_stream()
    x = np.random.default_rng().standard_normal(shape).astype(dtype)
    ref = P.reference(x, block=block, mode=mode)
    (got,) = run_arrays(P.KERNEL, dtype, [x], [(ref.shape, dtype)], {"block": block, "mode": mode}, stream,
                        launcher=launcher)
    np.testing.assert_array_equal(got, ref)     # a permutation: exact
