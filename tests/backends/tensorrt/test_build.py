"""Build options, plan files and the engine cache, errors, and lazy engine import."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")

import netdsl.functional as F  # noqa: E402
from netdsl.backends import tensorrt as T  # noqa: E402
B = importlib.import_module("netdsl.backends.tensorrt.build")  # (the package's build() shadows the name)
from netdsl.dsl import Network  # noqa: E402
from netdsl.errors import NetdslError, ShapeError, UnsupportedOpError  # noqa: E402


def _net():
    net = Network("small")
    x = net.input("data", ("N", 3, 6, 6))
    net.output(F.relu(F.conv(x, net.parameter("conv1.weight", (4, 3, 3, 3)), padding=1, name="conv1")), "y")
    net.init_random(seed=0)
    return net


def test_import_netdsl_loads_no_engine():
    code = ("import sys, netdsl, netdsl.backends.tensorrt; "
            "bad = [m for m in ('tensorrt', 'tensorrt_rtx', 'pycuda', 'openvino') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def test_build_writes_a_checked_plan(tmp_path):
    out = T.build(_net().graph, tmp_path / "m.plan", profiles={"data": ((1, 3, 6, 6), (2, 3, 6, 6), (4, 3, 6, 6))},
                  cache=False)
    plan, meta = B.read_plan(out)
    assert out == str(tmp_path / "m.plan") and len(plan) > 1000 and meta["profiles"] == [{"data": [[1, 3, 6, 6], [2, 3, 6, 6], [4, 3, 6, 6]]}]
    data = (tmp_path / "m.plan").read_bytes()
    (tmp_path / "bad.plan").write_bytes(data[:-10])
    with pytest.raises(NetdslError, match="checksum"):
        B.read_plan(str(tmp_path / "bad.plan"))


def test_cache_hit_and_corrupt_entry_rebuilt(tmp_path):
    g = _net().graph
    first = B.build(g, cache_path=str(tmp_path), dynamic={"N": (1, 2, 4)})
    again = B.build(g, cache_path=str(tmp_path), dynamic={"N": (1, 2, 4)})
    assert not first.cached and again.cached and again.plan == first.plan
    other = B.build(g, cache_path=str(tmp_path), dynamic={"N": (1, 2, 8)})  # profiles are in the key
    assert not other.cached and other.key != first.key
    entry = tmp_path / first.key[:2] / (first.key + ".plan")
    entry.write_bytes(entry.read_bytes()[:100])  # corrupt
    rebuilt = B.build(g, cache_path=str(tmp_path), dynamic={"N": (1, 2, 4)})
    assert not rebuilt.cached and B.read_plan(str(entry))[0] == rebuilt.plan


def test_profile_errors():
    g = _net().graph
    with pytest.raises(ShapeError, match="unknown symbol"):
        B.make_profiles(g, dynamic={"B": (1, 2, 3)})
    with pytest.raises(ShapeError, match="min <= opt <= max"):
        B.make_profiles(g, dynamic={"N": (4, 2, 3)})
    with pytest.raises(ShapeError, match="does not fit"):
        B.make_profiles(g, profiles={"data": ((1, 3, 5, 6), (1, 3, 6, 6), (1, 3, 6, 6))})
    assert B.make_profiles(g) == [{"data": ((1, 3, 6, 6), (1, 3, 6, 6), (32, 3, 6, 6))}]


def test_names_map_to_the_dsl_and_helpers_are_derived():
    from netdsl.backends.tensorrt import _trt, lower
    net = Network("names")
    x = net.input("x", ("N", 4))
    net.output(F.linear(x, net.parameter("fc.weight", (3, 4)), net.parameter("fc.bias", (3,)), name="fc"), "out")
    net.init_random(0)
    low = lower.lower(net.graph, _trt.load())
    names = [low.network.get_layer(i).name for i in range(low.network.num_layers)]
    assert "fc" in names and all(n.startswith(("fc", "x")) for n in names), names
    assert low.network.get_output(0).name == "out"


def test_unsupported_op_names_layer_and_plugins(monkeypatch):
    from netdsl.backends.tensorrt import lower
    monkeypatch.delitem(lower.LOWERINGS, "lrn")
    net = Network("u")
    x = net.input("x", (1, 3, 4, 4))
    net.output(F.lrn(x, 3, name="norm1"), "y")
    from netdsl.backends.tensorrt import _trt
    with pytest.raises(UnsupportedOpError, match=r"op 'lrn' at layer 'norm1'.*plugin"):
        lower.lower(net.graph, _trt.load())


def test_register_lowering_hook():
    from netdsl.backends.tensorrt import lower
    calls = []

    def my_relu(ctx, node):
        calls.append(node.name)
        return [ctx.act(ctx.t(node.inputs[0]), ctx.trt.ActivationType.RELU)]
    with pytest.raises(ValueError, match="already has"):
        T.register_lowering("relu", my_relu)
    old = lower.LOWERINGS["relu"]
    try:
        T.register_lowering("relu", my_relu, replace=True)
        net = Network("r")
        net.output(F.relu(net.input("x", (2, 3)), name="act"), "y")
        rep = T.check(net.graph, {"x": np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)})
        assert rep.ok and calls == ["act"]
    finally:
        lower.LOWERINGS["relu"] = old


def test_tensorrt_error_names_the_layer():
    net = Network("bad")
    x = net.input("x", (1, 3, 4, 4))
    net.output(F.lrn(x, 4, name="norm_even"), "y")  # TensorRT LRN needs an odd window
    rep = T.check(net.graph, {"x": np.ones((1, 3, 4, 4), np.float32)})
    assert not rep.ok and "norm_even" in str(rep) and "plugin" in str(rep)
