"""The generated IPluginV3 in real TensorRT: output dims through IExprBuilder, fields, the registry,
TensorRT-RTX's parser route, the CPU proof reading plugin layers back, precision casts, errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import netdsl as nd
from netdsl.errors import BackendUnavailable
from netdsl.ops import Attr
from netdsl.plugins import PluginError, bind_library, declare, load
from netdsl.plugins.cuda import CudaKernel, Launch

try:
    from netdsl.backends.tensorrt import _trt
    trt = _trt.load()
except BackendUnavailable as e:
    pytest.skip(f"no TensorRT: {e}", allow_module_level=True)
from netdsl.backends import tensorrt as T  # noqa: E402
from netdsl.backends.tensorrt.lower import lower  # noqa: E402
from netdsl.plugins import tensorrt_plugin  # noqa: E402

PROBE = load(Path(__file__).parent / "s2d_probe")
ATTRS = dict(block=2, alpha=0.1, flag=True, tag="tag", offsets=[7, -3], weights=[0.1, 1e-20])
SRC = '#include "netdsl_cuda.h"\nextern "C" __global__ void k(const float* x, float* y, long long n) {}\n'


def _kernel():
    return CudaKernel(SRC, {"float32": "k"}, lambda shapes, attrs: Launch(1, 1, scalars=[("long long", 1)]))


def _probe_net(shape=("N", 3, "H", "W"), **attrs):
    net = nd.Network("probe")
    y, count = PROBE(net.input("x", shape), name="probe", **dict(ATTRS, **attrs))
    net.output(y, "y")
    net.output(count, "count")
    return net


def _plugin_layers(net):
    layers = [net.get_layer(i) for i in range(net.num_layers)]
    return [l for l in layers if l.type == trt.LayerType.PLUGIN_V3]


def test_plugin_layer_reads_back_its_declaration_and_attributes():
    lowered = lower(_probe_net().graph, trt)
    (layer,) = _plugin_layers(lowered.network)
    layer.__class__ = trt.IPluginV3Layer
    p, attrs = tensorrt_plugin.read_plugin_layer(layer, trt)
    assert p is PROBE.plugin and layer.name == "probe"
    assert attrs == dict(block=2, alpha=float(np.float32(0.1)), flag=True, tag="tag", offsets=(7, -3),
                         weights=(float(np.float32(0.1)), float(np.float32(1e-20))))
    assert [lowered.network.get_input(i).name for i in range(lowered.network.num_inputs)] == ["x"]


@pytest.mark.parametrize("program,want", [
    ("T->T:(d0_0+3):(d0_1-1):(d0_0*d0_1):(d0_1/2):cdiv(d0_1,4):7", (8, 8, 45, 4, 3, 7)),
    ("T->T:((d0_1*d0_1)/(d0_0-2))", (27,)),
])
def test_output_dims_are_built_with_the_expression_builder(program, want):
    """A plugin layer on a static (5, 9) input: TensorRT's own output shape is the program's value."""
    import onnx
    from netdsl.plugins.tensorrt_lowering import enable_parser_plugins
    tensorrt_plugin.register(trt, PROBE.plugin)
    builder = trt.Builder(_trt.logger(trt))
    net = builder.create_network(_trt.network_flags(trt))
    h = onnx.helper
    node = h.make_node("s2d_probe", ["x"], ["y", "count"], plugin_version="1", plugin_namespace="netdsl",
                       netdsl_shapes=program + ";int32:d0_0", netdsl_type="float32", block=2)
    model = h.make_model(h.make_graph([node], "g", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [5, 9])],
                                      [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None),
                                       h.make_tensor_value_info("count", onnx.TensorProto.INT32, None)]),
                         opset_imports=[h.make_opsetid("", 17)])
    if not hasattr(net, "add_plugin_v3"):
        enable_parser_plugins(trt)
    parser = trt.OnnxParser(net, _trt.logger(trt))
    assert parser.parse(model.SerializeToString()), [str(parser.get_error(i)) for i in range(parser.num_errors)]
    assert tuple(net.get_output(0).shape) == want and tuple(net.get_output(1).shape) == (5,)


def test_creator_in_the_registry_makes_plugins_from_fields():
    creator = tensorrt_plugin.register(trt, PROBE.plugin)
    found = trt.get_plugin_registry().get_creator("s2d_probe", "1", "netdsl")
    assert found is not None and found.name == "s2d_probe"
    fc = tensorrt_plugin.encode_fields(trt, PROBE.plugin, PROBE.opdef.normalize_attrs(ATTRS), "T->T", "float16")
    plugin = creator.create_plugin("p", fc, trt.TensorRTPhase.RUNTIME)
    assert plugin.attrs["tag"] == "tag" and plugin.attrs["offsets"] == (7, -3) and plugin.compute == "float16"
    assert plugin.program.encode() == "T->T"


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_cpu_proof_with_symbolic_dims(precision):
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 6)).astype(np.float32)
    rep = T.check(_probe_net().graph, {"x": x}, precision=precision)
    assert rep.ok, str(rep)


def test_plugin_inputs_are_connected_in_order():
    """A two-input plugin (a - 2b) fed by two different layers: the read-back result equals the reference
    only if each placeholder was replaced by the right tensor."""
    op = declare("test_trt_sub2", inputs=("a", "b"), infer=lambda a, b: a, reference=lambda a, b: a - 2 * b,
                 cuda=_kernel(), replace=True)
    net = nd.Network("sub2")
    x = net.input("x", ("N", 3))
    net.output(op(nd.relu(x), nd.sigmoid(x), name="sub"), "y")
    feeds = {"x": np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)}
    rep = T.check(net.graph, feeds)
    assert rep.ok, str(rep)
    lowered = lower(net.graph, trt)
    (layer,) = _plugin_layers(lowered.network)
    producers = [lowered.network.get_layer(i) for i in range(lowered.network.num_layers)]
    by_output = {l.get_output(0).name: l.type.name for l in producers}
    assert [by_output[layer.get_input(i).name] for i in range(2)] == ["ACTIVATION", "ACTIVATION"]
    assert [layer.get_input(i).name for i in range(2)] == [lowered.ctx.tensors[v.name].name
                                                           for v in net.graph.nodes[-1].inputs]


def test_float32_only_plugin_in_a_float16_network_gets_casts():
    op = declare("test_trt_f32_only", infer=lambda x: x, reference=lambda x: np.sin(x), cuda=_kernel(),
                 dtypes=("float32",), replace=True)
    net = nd.Network("f16")
    net.output(op(nd.relu(net.input("x", ("N", 5)))), "y")
    x = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32)
    rep = T.check(net.graph, {"x": x}, precision="float16")
    assert rep.ok, str(rep)
    lowered = lower(net.graph, trt, precision="float16")
    types = [lowered.network.get_layer(i).type.name for i in range(lowered.network.num_layers)]
    i = types.index("PLUGIN_V3")
    assert types[i - 1] == "CAST" and types[i + 1] == "CAST"


def test_errors_name_the_plugin():
    no_kernel = declare("test_trt_no_kernel", infer=lambda x: x, reference=lambda x: x, replace=True)
    net = nd.Network("e")
    net.output(no_kernel(net.input("x", (2,)), name="layer7"), "y")
    with pytest.raises(PluginError, match=r"plugin 'test_trt_no_kernel'.*'layer7'.*cuda=CudaKernel.*bind_library"):
        lower(net.graph, trt)
    big = declare("test_trt_big_attr", attrs={"k": Attr("int", 0)}, infer=lambda x, k: x,
                  reference=lambda x, k: x, cuda=_kernel(), replace=True)
    net = nd.Network("b")
    net.output(big(net.input("x", (2,)), k=2 ** 40), "y")
    with pytest.raises(PluginError, match="'k' = 1099511627776 does not fit the INT32"):
        lower(net.graph, trt)


def test_bound_library_errors_name_the_library(tmp_path):
    op = declare("test_trt_bound", infer=lambda x: x, reference=lambda x: x, replace=True)
    with pytest.raises(PluginError, match="does not exist"):
        bind_library(op, str(tmp_path / "missing.so"))
    not_plugins = tmp_path / "libempty.so"
    subprocess.run(["cc", "-shared", "-o", str(not_plugins), "-x", "c", "/dev/null"], check=True)
    bind_library(op, str(not_plugins))
    net = nd.Network("l")
    net.output(op(net.input("x", (2,))), "y")
    with pytest.raises(PluginError, match=r"could not load plugin library .*libempty\.so"):
        lower(net.graph, trt)


@pytest.mark.skipif(not trt.__name__.startswith("tensorrt_rtx"), reason="the ONNX-parser route is TensorRT-RTX's")
def test_parser_route_works_in_a_fresh_process_without_ld_library_path():
    """TensorRT-RTX aborts the process when its parser cannot dlopen libtensorrt_rtx.so; netdsl's shim
    prevents that without any environment set up (a child process proves it did not abort)."""
    code = ("import numpy as np, netdsl as nd\n"
            "from netdsl.plugins import load\n"
            f"p = load({str(Path(__file__).parent / 's2d_probe')!r})\n"
            "net = nd.Network('c'); y, c = p(net.input('x', (1, 1, 2, 2)), block=2); net.output(y, 'y')\n"
            "from netdsl.backends import tensorrt as T\n"
            "print(T.check(net.graph, {'x': np.ones((1, 1, 2, 2), np.float32)}).ok)\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "LD_LIBRARY_PATH"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and res.stdout.strip().endswith("True"), res.stderr[-2000:]
