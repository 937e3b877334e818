"""Continuing in raw TensorRT (``network()``: builder, network, config) and coming from it (``wrap_network``)."""
from __future__ import annotations

import numpy as np
import pytest

trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")

from netdsl.backends import reference, tensorrt as T  # noqa: E402
from netdsl.backends.tensorrt import _trt  # noqa: E402
from netdsl.backends.tensorrt.plan_file import read_plan  # noqa: E402
from netdsl.compare import assert_close  # noqa: E402

from ._nets import small  # noqa: E402


def test_network_returns_the_raw_tensorrt_objects_to_extend(tmp_path):
    net = small()
    raw = T.network(net, dynamic={"N": (1, 2, 4)})
    assert isinstance(raw.builder, trt.Builder) and isinstance(raw.network, trt.INetworkDefinition)
    assert isinstance(raw.config, trt.IBuilderConfig) and not raw.config.get_flag(trt.BuilderFlag.TF32)
    # continue in TensorRT: append a sigmoid to netdsl's output, as a user would
    y = raw.network.get_output(0)
    raw.network.unmark_output(y)
    act = raw.network.add_activation(y, trt.ActivationType.SIGMOID)
    act.get_output(0).name = "prob"
    raw.network.mark_output(act.get_output(0))
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    got = raw.evaluate({"data": x})["prob"]
    ref = reference.run(net.graph, {"data": x}, dtype="float64")["y"]
    assert_close(got, 1 / (1 + np.exp(-ref)), "float32", what="netdsl network + raw TensorRT sigmoid")
    path = raw.save(tmp_path / "ext.plan", progress=False)
    plan, meta = read_plan(path)
    assert plan == raw.serialize(progress=False) and meta["layers"] == raw.network.num_layers


def test_wrap_a_network_made_in_raw_tensorrt(tmp_path):
    builder = trt.Builder(_trt.logger(trt))
    network = builder.create_network(_trt.network_flags(trt))
    x = network.add_input("x", trt.float32, (-1, 4))
    w = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    wc = network.add_constant((4, 3), trt.Weights(w))
    mm = network.add_matrix_multiply(x, trt.MatrixOperation.NONE, wc.get_output(0), trt.MatrixOperation.NONE)
    relu = network.add_activation(mm.get_output(0), trt.ActivationType.RELU)
    relu.get_output(0).name = "y"
    network.mark_output(relu.get_output(0))
    wrapped = T.wrap_network(network, builder, profiles=[{"x": ((1, 4), (2, 4), (8, 4))}])
    assert not wrapped.config.get_flag(trt.BuilderFlag.TF32)
    feeds = {"x": np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)}
    assert_close(wrapped.evaluate(feeds)["y"], np.maximum(feeds["x"].astype(np.float64) @ w, 0), "float32")
    path = wrapped.save(tmp_path / "raw.plan", progress=False)
    plan, meta = read_plan(path)
    assert len(plan) > 1000 and meta["profiles"] == [{"x": [[1, 4], [2, 4], [8, 4]]}]
    ok, why = T.can_execute(flavour="tensorrt_rtx")
    if ok:
        out = wrapped.engine().run(feeds)
        assert_close(out["y"], np.maximum(feeds["x"].astype(np.float64) @ w, 0), "float32")
