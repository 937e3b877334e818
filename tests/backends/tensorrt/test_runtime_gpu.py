"""Running engines (runtime.py, pycuda): skipped, with the precise reason, where no GPU that the
installed TensorRT supports is present (no pycuda, no CUDA GPU, or TensorRT-RTX on compute
capability 9.0). They run unchanged on a machine that has one."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl.functional as F
from netdsl.dsl import Network


def _trt():
    from netdsl.backends.tensorrt import _trt as t
    from netdsl.errors import BackendUnavailable
    try:
        return t.load()
    except BackendUnavailable as e:
        pytest.skip(f"no TensorRT: {e}")


def _require_gpu():
    trt = _trt()
    from netdsl.backends.tensorrt.runtime import gpu_status
    ok, why = gpu_status(trt)
    if not ok:
        pytest.skip(why)
    return trt


def _net(batch="N"):
    net = Network("gpu_net")
    x = net.input("x", (batch, 3, 8, 8))
    w = net.parameter("w", (4, 3, 3, 3))
    y = F.relu(F.conv(x, w, padding=1))
    net.output(F.softmax(F.flatten(y), axis=1), "y")
    net.init_random(seed=1)
    return net


def _ref(net, x):
    from netdsl.backends import reference
    return reference.run(net.graph, {"x": x})["y"]


def test_sync_dynamic_batch_and_buffer_reuse():
    _require_gpu()
    from netdsl.backends import tensorrt as T
    net = _net()
    model = T.compile(net.graph, dynamic={"N": (1, 2, 8)}, cache=False)
    rng = np.random.default_rng(0)
    for b in (2, 5, 1, 5):
        x = rng.standard_normal((b, 3, 8, 8)).astype(np.float32)
        out = model(x=x)["y"]
        np.testing.assert_allclose(out, _ref(net, x), rtol=1e-3, atol=1e-4)
    assert model.engine.buffers["x"].capacity >= 5 * 3 * 8 * 8 * 4


def test_async_call():
    _require_gpu()
    from netdsl.backends import tensorrt as T
    net = _net(2)
    model = T.compile(net.graph, cache=False)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    pending = model.run_async(x=x)
    np.testing.assert_allclose(pending.result()["y"], _ref(net, x), rtol=1e-3, atol=1e-4)


def test_device_arrays_in_and_out_with_cupy():
    _require_gpu()
    cp = pytest.importorskip("cupy", reason="cupy not installed")
    from netdsl.backends import tensorrt as T
    net = _net(2)
    model = T.compile(net.graph, cache=False)
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    xd = cp.asarray(x)
    out = cp.empty((2, 256), cp.float32)
    res = model.run_device({"x": xd}, {"y": out})
    assert res["y"] is out
    np.testing.assert_allclose(cp.asnumpy(out), _ref(net, x), rtol=1e-3, atol=1e-4)
    view = model.run_device({"x": xd})["y"]  # a view of the engine's own buffer, no host copy
    np.testing.assert_allclose(cp.asnumpy(cp.asarray(view)), _ref(net, x), rtol=1e-3, atol=1e-4)


def test_compile_without_gpu_says_why():
    trt = _trt()
    from netdsl.backends.tensorrt.runtime import gpu_status
    ok, why = gpu_status(trt)
    if ok:
        pytest.skip(f"a usable GPU is present ({why})")
    from netdsl.backends import tensorrt as T
    from netdsl.errors import BackendUnavailable
    with pytest.raises(BackendUnavailable, match="cannot execute engines here"):
        T.compile(_net(1).graph)
