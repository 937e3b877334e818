import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.errors import ShapeError
from netdsl.ops import Attr, all_ops
from netdsl.plugins import declare


def _infer(x, *, alpha):
    if not x.dtype.is_float:
        raise ShapeError(f"scaled_tanh needs a float input, got {x}")
    return x


scaled_tanh = declare("test_scaled_tanh", attrs={"alpha": Attr("float", 1.0)}, infer=_infer,
                      reference=lambda x, *, alpha: np.tanh(x) * np.asarray(alpha, x.dtype), replace=True,
                      doc="alpha * tanh(x)")


def _net():
    net = nd.Network("p")
    x = net.input("x", ("N", 4))
    net.output(scaled_tanh(x, alpha=2.0, name="st"), "y")
    return net


def test_plugin_runs_on_reference_with_shape_checks():
    net = _net()
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(reference.run(net.graph, {"x": x})["y"], 2 * np.tanh(x), rtol=1e-6)
    assert all_ops()["test_scaled_tanh"].plugin is not None
    ints = nd.Network("q").input("i", (2,), "int32")
    with pytest.raises(ShapeError, match="needs a float input"):
        scaled_tanh(ints)


def test_plugin_exports_as_custom_domain_node(tmp_path):
    pytest.importorskip("onnx", reason="onnx not installed")
    import onnx
    path = nd.export_onnx(_net(), tmp_path / "p.onnx")
    m = onnx.load(str(path))
    node = [n for n in m.graph.node if n.op_type == "test_scaled_tanh"][0]
    assert node.domain == "netdsl.plugins" and node.attribute[0].f == 2.0


def test_backend_without_implementation_names_the_plugin():
    pytest.importorskip("openvino", reason="openvino not installed")
    with pytest.raises(nd.UnsupportedOpError, match="test_scaled_tanh"):
        nd.compile(_net(), "openvino")
