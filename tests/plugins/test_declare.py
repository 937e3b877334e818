import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.errors import NetdslError, ShapeError
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
    op = declare("test_scaled_tanh_nocpu", attrs={"alpha": Attr("float", 1.0)}, infer=_infer,
                 reference=lambda x, *, alpha: np.tanh(x), cpu=None, replace=True)
    net = nd.Network("q")
    net.output(op(net.input("x", (2,))), "y")
    with pytest.raises(NetdslError, match=r"plugin 'test_scaled_tanh_nocpu'.*no CPU implementation.*cpu=Cpu"):
        nd.compile(net, "openvino")


def test_plugin_without_cpu_code_runs_its_reference_on_openvino():
    """The CPU quick route defaults to the reference: a declaration alone runs on OpenVINO."""
    pytest.importorskip("openvino", reason="openvino not installed")
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(nd.compile(_net(), "openvino")(x=x)["y"], 2 * np.tanh(x), rtol=1e-6, atol=1e-7)


def test_tensorrt_without_kernel_names_the_plugin_and_what_is_missing():
    from netdsl.errors import BackendUnavailable
    try:
        from netdsl.backends.tensorrt import _trt
        _trt.load()
    except BackendUnavailable as e:
        pytest.skip(f"no TensorRT: {e}")
    from netdsl.backends import tensorrt as T
    x = np.random.default_rng(4).standard_normal((3, 4)).astype(np.float32)
    rep = T.check(_net().graph, {"x": x})
    assert not rep.ok and "plugin 'test_scaled_tanh'" in str(rep) and "cuda=CudaKernel" in str(rep)


def test_plugin_with_openvino_implementation_matches_reference():
    pytest.importorskip("openvino", reason="openvino not installed")
    import openvino.opset16 as ops

    def lower(ctx, node, x):
        return ops.multiply(ops.tanh(x), ctx.scalar(node.attrs["alpha"], x))

    op = declare("test_scaled_tanh_ov", attrs={"alpha": Attr("float", 1.0)}, infer=_infer,
                 reference=lambda x, *, alpha: np.tanh(x) * np.asarray(alpha, x.dtype), openvino=lower, replace=True)
    net = nd.Network("pov")
    x = net.input("x", ("N", 4))
    net.output(op(x, alpha=3.0, name="st"), "y")
    xv = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    got = nd.compile(net, "openvino")(x=xv)["y"]
    np.testing.assert_allclose(got, reference.run(net.graph, {"x": xv})["y"], rtol=1e-5, atol=1e-6)


def test_plugin_with_tensorrt_implementation_passes_the_cpu_proof():
    from netdsl.errors import BackendUnavailable
    try:
        from netdsl.backends.tensorrt import _trt
        trt = _trt.load()
    except BackendUnavailable as e:
        pytest.skip(f"no TensorRT: {e}")
    from netdsl.backends import tensorrt as T

    def lower(ctx, node):
        x = ctx.t(node.inputs[0])
        y = ctx.unary(x, trt.UnaryOperation.ABS, "abs")
        return [ctx.ew(y, ctx.scalar(node.attrs["alpha"], y), trt.ElementWiseOperation.PROD, "scale")]

    op = declare("test_scaled_abs_trt", attrs={"alpha": Attr("float", 1.0)}, infer=_infer,
                 reference=lambda x, *, alpha: np.abs(x) * np.asarray(alpha, x.dtype), tensorrt=lower, replace=True)
    net = nd.Network("ptrt")
    x = net.input("x", (2, 4))
    net.output(op(x, alpha=3.0, name="sa"), "y")
    feeds = {"x": np.random.default_rng(2).standard_normal((2, 4)).astype(np.float32)}
    report = T.check(net.graph, feeds)
    assert report.ok, str(report)
