import re

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.errors import NetdslError, ShapeError
from netdsl.ops import Attr, all_ops
from netdsl.graph import TensorSpec
from netdsl.plugins import Cpu, PluginError, declare


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


def test_a_bug_in_infer_is_a_shape_error_naming_plugin_layer_and_the_authors_line():
    def infer(x, *, alpha):
        return TensorSpec(x.dtype, (x.shape[0], x.shape[5]))   # IndexError on a rank-2 input
    op = declare("test_buggy_infer", attrs={"alpha": Attr("float", 1.0)}, infer=infer,
                 reference=lambda x, *, alpha: x, replace=True)
    net = nd.Network("b")
    with pytest.raises(ShapeError) as e:
        op(net.input("x", (2, 3)), name="layer7")
    msg = str(e.value)
    assert re.search(r"test_buggy_infer 'layer7' at .*test_declare\.py:\d+: plugin 'test_buggy_infer': its shape "
                     r"inference \(infer\) raised IndexError: tuple index out of range \(at .*test_declare\.py:\d+: "
                     r"return TensorSpec", msg), msg


def test_inputs_of_undeclared_dtypes_are_refused_where_the_network_is_built():
    op = declare("test_f16_only", infer=lambda x: x, reference=lambda x: x, dtypes=("float16",), replace=True)
    net = nd.Network("d")
    op(net.input("h", (2,), "float16"))
    with pytest.raises(ShapeError, match=r"test_f16_only 'f32' at .*test_declare\.py:\d+: plugin 'test_f16_only' "
                                         r"takes float16 \(its declared dtypes\) as its first input, got float32"):
        op(net.input("x", (2,)), name="f32")


def test_functions_must_take_exactly_the_declared_attributes():
    with pytest.raises(PluginError, match=r"'test_kw': infer requires keyword\(s\) k, which are not declared"):
        declare("test_kw", infer=lambda x, *, k: x, reference=lambda x: x, replace=True)
    with pytest.raises(PluginError, match=r"'test_kw': reference does not take the declared attribute\(s\) beta"):
        declare("test_kw", attrs={"beta": Attr("int", 1)}, infer=lambda x, beta: x, reference=lambda x: x,
                replace=True)
    with pytest.raises(PluginError, match=r"cpu=Cpu\(python=...\) does not take .* beta"):
        declare("test_kw", attrs={"beta": Attr("int", 1)}, infer=lambda x, beta: x, reference=lambda x, **kw: x,
                cpu=Cpu(python=lambda x: x), replace=True)
    declare("test_kw", attrs={"beta": Attr("int", 1)}, infer=lambda x, *, beta, gamma=0: x,
            reference=lambda x, **attrs: x, replace=True)   # defaults and **kwargs are fine


def test_a_taken_name_is_refused_naming_where_it_was_declared():
    with pytest.raises(PluginError, match=r"plugin 'relu': a catalogue op has this name"):
        declare("relu", infer=lambda x: x, reference=lambda x: x)
    with pytest.raises(PluginError, match=r"plugin 'test_scaled_tanh' is already declared \(in .*test_declare\.py\)"):
        exec(compile("declare('test_scaled_tanh', infer=lambda x: x, reference=lambda x: x)", "other.py", "exec"),
             {"declare": declare})


def test_an_exception_in_the_reference_names_the_authors_line():
    def ref(x):
        return np.tanh(x) + undefined_offset  # noqa: F821
    op = declare("test_ref_bug", infer=lambda x: x, reference=ref, replace=True)
    net = nd.Network("r")
    net.output(op(net.input("x", (2,)), name="rb"), "y")
    with pytest.raises(NetdslError, match=r"layer 'rb' .*NameError: name 'undefined_offset' is not defined \(at "
                                          r".*test_declare\.py:\d+: return np\.tanh\(x\) \+ undefined_offset"):
        reference.run(net.graph, {"x": np.ones(2, np.float32)})
