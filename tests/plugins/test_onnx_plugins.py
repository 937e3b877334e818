"""Plugins in ONNX: the custom-domain node TensorRT's parser imports; decompositions ONNX Runtime runs."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.errors import UnsupportedOpError
from netdsl.plugins import load

onnx = pytest.importorskip("onnx", reason="onnx not installed")
MISH = load("mish")


def _net():
    net = nd.Network("m")
    net.output(MISH(net.input("x", ("N", 6)), name="act"), "y")
    return net


def test_export_is_a_custom_node_with_the_plugin_identity(tmp_path):
    m = onnx.load(nd.export_onnx(_net(), tmp_path / "m.onnx"))
    (node,) = m.graph.node
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert (node.domain, node.op_type, node.name) == ("netdsl.plugins", "fused_mish", "act")
    assert attrs == {"plugin_version": b"1", "plugin_namespace": b"netdsl"}
    assert {o.domain: o.version for o in m.opset_import}["netdsl.plugins"] == 1


def test_onnx_runtime_runs_the_decomposition(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    x = np.random.default_rng(0).uniform(-30, 30, (3, 6)).astype(np.float32)
    m = nd.compile(_net(), "onnx")
    assert {n.op_type for n in m.model_proto.graph.node} == {"Softplus", "Tanh", "Mul"}
    np.testing.assert_allclose(m(x=x)["y"], reference.run(_net().graph, {"x": x})["y"], rtol=1e-5, atol=1e-6)


def test_without_a_decomposition_onnx_runtime_is_refused_by_name():
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    from pathlib import Path
    probe = load(Path(__file__).parent / "s2d_probe")
    net = nd.Network("p")
    y, _ = probe(net.input("x", (1, 1, 2, 2)), name="p1")
    net.output(y, "y")
    with pytest.raises(UnsupportedOpError, match=r"plugin 's2d_probe' \(layer 'p1'.*no standard-ONNX decomposition"):
        nd.compile(net, "onnx")
