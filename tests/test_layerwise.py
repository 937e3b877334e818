"""netdsl.compare_layers: every layer against the float64 reference on each backend; the first divergence."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
from netdsl import nn
from netdsl.layerwise import compare_layers, marked_graph
from netdsl.plugins import declare


def _wrong_openvino(ctx, node, x):  # deliberately wrong: 1.02 * tanh(x) instead of tanh(x)
    import openvino.opset16 as ops
    return ops.multiply(ops.tanh(x), ctx.scalar(1.02, x))


soft = declare("test_layerwise_soft", infer=lambda x: x, reference=lambda x: np.tanh(x), openvino=_wrong_openvino,
               replace=True)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        h = soft(nd.relu(self.conv(x)), name="soft")
        return self.fc(nd.flatten(h + 1.0))


def _net() -> nd.Network:
    net = nd.Network("lw")
    net.output(Net()(net.input("x", ("N", 3, 6, 6))), "y")
    return net.init_random(3)


def test_marked_graph_marks_every_layer_output():
    g = _net().graph
    m = marked_graph(g)
    names = [v.name for v in m.outputs]
    assert names[0] == "y" and set(names) == {v.name for n in g.nodes if n.op not in ("parameter", "constant")
                                               for v in n.outputs}
    assert m.nodes is g.nodes and g.outputs[0].name == "y" and len(g.outputs) == 1


def test_first_divergence_is_the_broken_layer():
    pytest.importorskip("openvino", reason="openvino is not installed")
    x = np.random.default_rng(5).standard_normal((2, 3, 6, 6)).astype(np.float32)
    r = nd.compare_layers(_net(), ["openvino", "reference"], {"x": x})
    ov = r.backends["openvino"]
    first = ov.first_divergence
    assert first is not None and first.layer == "soft" and first.op == "test_layerwise_soft"
    line = next(i for i, t in enumerate(open(__file__), 1) if "h = soft(" in t)
    assert first.location.endswith(f"test_layerwise.py:{line}")
    # error statistics: |1.02 tanh(h) - tanh(h)| = 0.02 |tanh(h)|, largest where |h| is largest
    assert 0 < first.max_abs <= 0.02 and first.bad_fraction > 0
    assert abs(first.got / first.want - 1.02) < 1e-4 and len(first.worst_index) == 4
    by = {d.layer: d for d in ov.layers}
    assert by["conv"].ok and by["relu"].ok and not by["add"].ok and not ov.ok
    assert r.backends["reference"].ok and not r.ok
    assert "FIRST DIVERGING LAYER: 'soft'" in str(r)
    d = r.to_dict()["backends"]["openvino"]["first_divergence"]
    assert d["layer"] == "soft" and d["inputs"] == ["relu"] and d["inputs_agree"] is True


def test_tensorrt_read_back_compares_folded_convolutions_after_their_norm():
    pytest.importorskip("tensorrt_rtx", reason="tensorrt_rtx is not installed")
    net = nd.Network("cbr")
    x = net.input("x", (1, 3, 8, 8))
    y = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())(x)
    net.output(y, "y")
    net.init_random(1)
    r = compare_layers(net, ["tensorrt"])
    t = r.backends["tensorrt"]
    assert t.ok, str(r)
    by = {d.layer: d for d in t.layers}
    assert "folded with batch norm '1'" in by["0"].note and not by["1"].note and by["1"].max_abs < 1e-4
    assert "read back and evaluated in NumPy" in t.how


def test_unavailable_backend_is_reported_not_raised():
    r = compare_layers(_net(), ["onnx"])  # the plugin has no ONNX Runtime kernel: a failure, named
    assert r.backends["onnx"].error and not r.ok


def test_a_first_layer_that_diverges_names_the_network_input_it_reads():
    """A broken layer fed by the network input: its input is named (the feed itself, exact), not '()'."""
    pytest.importorskip("openvino", reason="openvino is not installed")
    net = nd.Network("first")
    net.output(nd.relu(soft(net.input("x", ("N", 8)), name="soft")), "y")
    x = np.random.default_rng(2).standard_normal((2, 8)).astype(np.float32)
    r = nd.compare_layers(net, ["openvino"], {"x": x})
    d = r.to_dict()["backends"]["openvino"]["first_divergence"]
    assert d["layer"] == "soft" and d["inputs"] == ["x"] and d["inputs_agree"] is True
    assert "its inputs (x) agree with the reference" in str(r)
