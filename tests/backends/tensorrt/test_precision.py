"""Per-layer precision on TensorRT (strongly typed): a float32 island inside a float16 network is built
with float32 layers and weights (casts at its borders), explicit casts are kept, and the network read
back from TensorRT evaluates to the reference."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F

trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")
from netdsl.backends import reference  # noqa: E402
from netdsl.backends import tensorrt as trtb  # noqa: E402
from netdsl.backends.tensorrt import _trt, inspect  # noqa: E402
from netdsl.backends.tensorrt.lower import lower  # noqa: E402


def _net():
    net = nd.Network("islands")
    x = net.input("x", ("N", 8, 32))
    h = F.linear(x, net.parameter("w1", (32, 32)), None, name="fc1")
    with net.precision("float32"):  # a scope: these layers only
        h = F.softmax(F.linear(h, net.parameter("w2", (32, 32)), None, name="fc2"), -1, name="sm")
    h = F.relu(F.linear(h, net.parameter("w3", (32, 32)), None, name="fc3"), name="r")
    y = F.layer_norm(F.cast(h, "float32", name="up"), (32,), net.parameter("g", (32,), init="ones"), None, name="ln")
    net.output(F.add(y, x, name="mix"), "y")  # an explicit cast: float32 up to the mix with a half value
    net.init_random(0)
    return net


def _types(graph, precision="float16", **kw):
    lw = lower(graph, _trt.load("tensorrt_rtx"), precision=precision, **kw)
    return {l.name: l.dtypes[0] for l in inspect.read(lw.network, lw.trt)}


def test_float32_island_in_a_float16_network():
    net = _net()
    t = _types(net.graph)
    assert t["fc1"] == "HALF" and t["fc3"] == "HALF" and t["r"] == "HALF" and t["mix"] == "HALF"
    assert t["fc2"] == "FLOAT" and t["sm"] == "FLOAT" and t["ln"] == "FLOAT"
    assert t["fc2/weight"] == "FLOAT" and t["ln/scale"] == "FLOAT"  # typed weights, not casts of half ones
    assert t["fc3/weight"] == "HALF"
    assert any(k.startswith("up") and v == "FLOAT" for k, v in t.items())  # the explicit cast is kept
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 8, 32)).astype(np.float32)}
    rep = trtb.check(net.graph, feeds, precision="float16", flavour="tensorrt_rtx", dynamic={"N": (1, 2, 4)})
    assert rep.ok, str(rep)


def test_without_islands_everything_is_half():
    net = nd.Network("plain")
    x = net.input("x", (2, 32))
    net.output(F.layer_norm(F.linear(x, net.parameter("w", (32, 32)), None, name="fc"), (32,), name="ln"), "y")
    net.init_random(0)
    t = _types(net.graph)
    assert t["fc"] == "HALF" and t["ln"] == "HALF"


def _input_island_net():
    """A float32 island fed straight by a float32 network input and ending at a network output."""
    net = nd.Network("input_island")
    x = net.input("x", ("N", 64))
    with net.precision("float32"):
        y = F.layer_norm(x, (64,), net.parameter("g", (64,), init="ones"), None, name="ln")
    net.output(y, "y")
    net.output(F.relu(x, name="r"), "z")  # computed in half
    net.init_random(0)
    return net


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_island_fed_by_a_network_input_reads_the_float32_input(precision):
    """The island takes the input as fed (float32), not its reduced-precision copy cast back up: values
    around 3000 are 2 apart in float16, so a round trip through half would destroy the layer norm."""
    net = _input_island_net()
    lw = lower(net.graph, _trt.load("tensorrt_rtx"), precision=precision)
    layers = list(inspect.read(lw.network, lw.trt))
    ln = next(l for l in layers if l.name == "ln")
    assert ln.dtypes[0] == "FLOAT"
    casts = [l for l in layers if l.type == "CAST"]
    assert not any(l.dtypes[0] == "FLOAT" and l.name.startswith("ln") for l in casts), \
        [(l.name, l.dtypes) for l in casts]  # no half -> float cast in front of the island
    x = (3000 + np.random.default_rng(1).standard_normal((3, 64))).astype(np.float32)
    rep = trtb.check(net.graph, {"x": x}, precision=precision, flavour="tensorrt_rtx")
    assert rep.ok, str(rep)
    want = reference.run(net.graph, {"x": x}, dtype="float64")["y"]
    got = inspect.Evaluator(lw.network, lw.trt).run({"x": x})["y"]
    np.testing.assert_allclose(got, want, atol=1e-3)  # float32 accuracy (half input: errors ~0.5)


def test_float16_island_in_a_float32_network_passes_the_cpu_proof():
    """The island computes in half as asked; the proof's tolerance is the island's, not float32's."""
    net = nd.Network("half_island")
    x = net.input("x", ("N", 32))
    h = F.linear(x, net.parameter("w1", (32, 32)), None, name="fc1")
    with net.precision("float16"):
        h = F.relu(F.linear(h, net.parameter("w2", (32, 32)), None, name="fc2"), name="r")
    net.output(F.linear(h, net.parameter("w3", (32, 32)), None, name="fc3"), "y")
    net.init_random(4)
    t = _types(net.graph, precision="float32")
    assert t["fc2"] == "HALF" and t["fc2/weight"] == "HALF" and t["fc1"] == "FLOAT" and t["fc3"] == "FLOAT"
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 32)).astype(np.float32)}
    rep = trtb.check(net.graph, feeds, precision="float32", flavour="tensorrt_rtx")
    assert rep.ok, str(rep)


def test_layer_precision_patterns_reach_the_plan_and_the_proof(tmp_path):
    """layer_precision= at build time (plans, the CPU proof, the raw network), as nd.compile takes it; it
    was ignored by check() and refused by build() and network()."""
    net = nd.Network("patterns")
    x = net.input("x", ("N", 32))
    h = F.linear(x, net.parameter("w1", (32, 32)), None, name="fc1")
    net.output(F.layer_norm(h, (32,), None, None, name="blk/layer_norm"), "y")
    net.init_random(0)
    pats = {"*layer_norm*": "float32"}
    tn = trtb.network(net.graph, precision="float16", layer_precision=pats)
    t = {l.name: l.dtypes[0] for l in inspect.read(tn.network, tn.trt)}
    assert t["blk/layer_norm"] == "FLOAT" and t["fc1"] == "HALF"
    x = (3000 + np.random.default_rng(2).standard_normal((2, 32))).astype(np.float32)
    rep = trtb.check(net.graph, {"x": x}, precision="float16", layer_precision=pats)
    assert rep.ok and rep.precision == "float16", str(rep)
    assert trtb.build(net.graph, tmp_path / "m.plan", precision="float16", layer_precision=pats)
    with pytest.raises(Exception, match="matches no layer"):
        trtb.check(net.graph, {"x": x}, precision="float16", layer_precision={"nothing*": "float32"})
