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


def test_plugin_in_a_float32_island_of_a_float16_network_computes_in_float32():
    """The island's type, not the network's, is the plugin's compute type (the layer TensorRT-RTX's parser
    prepares before the lowering as well): a half plugin fed the island's float32 tensor does not build."""
    op = declare("test_trt_f32_island", infer=lambda x: x, reference=lambda x: np.sin(x), cuda=_kernel(),
                 dtypes=("float32", "float16"), replace=True)
    net = nd.Network("island")
    h = nd.relu(net.input("x", ("N", 5)), name="r")
    with net.precision("float32"):
        y = op(h, name="plug")
    net.output(nd.relu(y, name="r2"), "y")
    lowered = lower(net.graph, trt, precision="float16")
    (layer,) = _plugin_layers(lowered.network)
    assert layer.get_output(0).dtype == trt.float32 and layer.get_input(0).dtype == trt.float32
    x = np.random.default_rng(4).standard_normal((3, 5)).astype(np.float32)
    rep = T.check(net.graph, {"x": x}, precision="float16")
    assert rep.ok, str(rep)


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


def _ort_roi_align(x, rois, batch_indices, *, coordinate_transformation_mode, mode, output_height, output_width,
                   sampling_ratio, spatial_scale):
    """ONNX RoiAlign run by ONNX Runtime: an implementation independent of TensorRT's and of netdsl."""
    import onnx
    import onnxruntime as ort
    h = onnx.helper
    node = h.make_node("RoiAlign", ["x", "rois", "idx"], ["y"], mode=["avg", "max"][mode],
                       coordinate_transformation_mode=["output_half_pixel", "half_pixel"][coordinate_transformation_mode],
                       output_height=output_height, output_width=output_width, sampling_ratio=sampling_ratio,
                       spatial_scale=spatial_scale)
    f = onnx.TensorProto.FLOAT
    g = h.make_graph([node], "r", [h.make_tensor_value_info("x", f, None), h.make_tensor_value_info("rois", f, None),
                                   h.make_tensor_value_info("idx", onnx.TensorProto.INT64, None)],
                     [h.make_tensor_value_info("y", f, None)])
    sess = ort.InferenceSession(h.make_model(g, opset_imports=[h.make_opsetid("", 16)]).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x.astype(np.float32), "rois": rois.astype(np.float32),
                           "idx": batch_indices.astype(np.int64)})[0]


def test_a_bound_compiled_creator_is_found_by_name_version_namespace_and_read_back():
    """ROIAlign_TRT (version 2, namespace ''), a compiled IPluginV3 creator TensorRT itself registers, bound
    to a declaration: the layer is made by that creator from the declared attributes and the CPU proof
    reads the compiled plugin back (its identity and serialized fields) and evaluates the declaration."""
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    from netdsl.graph import TensorSpec
    if trt.get_plugin_registry().get_creator("ROIAlign_TRT", "2", "") is None:
        pytest.skip("this TensorRT registers no ROIAlign_TRT version 2")
    _trt.take_errors(trt)

    def infer(x, rois, idx, *, output_height, output_width, **_):
        return TensorSpec(x.dtype, (rois.shape[0], x.shape[1], output_height, output_width))
    ints = ("coordinate_transformation_mode", "mode", "output_height", "output_width", "sampling_ratio")
    op = declare("test_roi_align", inputs=("x", "rois", "batch_indices"), infer=infer, reference=_ort_roi_align,
                 attrs={**{k: Attr("int") for k in ints}, "spatial_scale": Attr("float")}, replace=True)
    with pytest.raises(PluginError, match="registry has no creator ROIAlign_TRT version 9"):
        bind_library(op, None, name="ROIAlign_TRT", version="9", namespace="")
        lower(_roi_net(op).graph, trt)
    bind_library(op, None, name="ROIAlign_TRT", version="2", namespace="")
    usable, why = T.can_execute()
    if not usable:  # ROIAlign_TRT's constructor queries the CUDA device
        with pytest.raises(PluginError, match=r"roi.*ROIAlign_TRT.*Could not create the plugin"):
            lower(_roi_net(op).graph, trt)
        pytest.skip(f"TensorRT's ROIAlign_TRT can only be created with a usable GPU ({why})")
    net = _roi_net(op)
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 20, (5, 2))
    feeds = {"x": rng.standard_normal((2, 3, 16, 16)).astype(np.float32),
             "rois": np.concatenate([xy, xy + rng.uniform(2, 12, (5, 2))], 1).astype(np.float32),
             "idx": rng.integers(0, 2, 5).astype(np.int32)}
    rep = T.check(net.graph, feeds)
    assert rep.ok, str(rep)
    (layer,) = _plugin_layers(lower(net.graph, trt).network)
    layer.__class__ = trt.IPluginV3Layer
    core = layer.plugin.get_capability_interface(trt.PluginCapabilityType.CORE)
    assert (core.plugin_name, core.plugin_version, core.plugin_namespace) == ("ROIAlign_TRT", "2", "")
    assert type(layer.plugin).__module__.startswith("tensorrt")  # TensorRT's compiled plugin, not netdsl's
    p, attrs = tensorrt_plugin.read_plugin_layer(layer, trt)
    assert p is op.plugin and attrs["output_height"] == 4 and attrs["spatial_scale"] == 0.5


def _roi_net(op):
    net = nd.Network("roi")
    y = op(net.input("x", (2, 3, 16, 16)), net.input("rois", (5, 4)), net.input("idx", (5,), "int32"), name="roi",
           coordinate_transformation_mode=1, mode=0, output_height=4, output_width=3, sampling_ratio=2,
           spatial_scale=0.5)
    net.output(y, "y")
    return net


def test_a_creator_registered_outside_netdsl_is_bound_by_name_version_namespace():
    """A plugin creator netdsl did not generate (written by hand against TensorRT's Python API, registered
    in namespace 'acme'), bound to a declaration: TensorRT builds the layer with it from the declared
    attributes, and the CPU proof reads it back through TensorRT's plugin interfaces."""
    made = []

    class Scale(trt.IPluginV3, trt.IPluginV3OneCore, trt.IPluginV3OneBuild, trt.IPluginV3OneRuntime):
        def __init__(self, factor):
            for base in (trt.IPluginV3, trt.IPluginV3OneCore, trt.IPluginV3OneBuild, trt.IPluginV3OneRuntime):
                base.__init__(self)
            self.plugin_name, self.plugin_version, self.plugin_namespace = "AcmeScale", "3", "acme"
            self.num_outputs, self.factor = 1, factor

        def get_capability_interface(self, kind):
            return self

        def get_output_data_types(self, types):
            return [types[0]]

        def get_output_shapes(self, inputs, shape_inputs, builder):
            return [trt.DimsExprs(inputs[0])]

        def supports_format_combination(self, pos, io, n):
            return io[pos].desc.type == trt.DataType.FLOAT and io[pos].desc.format == trt.TensorFormat.LINEAR

        def configure_plugin(self, i, o):
            pass

        def on_shape_change(self, i, o):
            pass

        def set_tactic(self, t):
            pass

        def attach_to_context(self, c):
            return self.clone()

        def get_fields_to_serialize(self):
            self.keep = np.array([self.factor], np.float32)
            return trt.PluginFieldCollection([trt.PluginField("factor", self.keep, trt.PluginFieldType.FLOAT32)])

        def enqueue(self, *args):
            raise RuntimeError("CPU test")

        def clone(self):
            c = Scale(self.factor)
            made.append(c)
            return c

    class Creator(trt.IPluginCreatorV3One):
        def __init__(self):
            trt.IPluginCreatorV3One.__init__(self)
            self.name, self.plugin_version, self.plugin_namespace = "AcmeScale", "3", "acme"
            self.field_names = trt.PluginFieldCollection([trt.PluginField("factor", np.array([], np.float32),
                                                                          trt.PluginFieldType.FLOAT32)])

        def create_plugin(self, name, fc, phase):
            p = Scale(float(np.asarray(fc[0].data)[0]))
            made.append(p)
            return p

    creator = Creator()
    registry = trt.get_plugin_registry()
    if registry.get_creator("AcmeScale", "3", "acme") is None:
        assert registry.register_creator(creator, "acme")
    _trt.take_errors(trt)
    op = declare("test_acme_scale", attrs={"factor": Attr("float")}, infer=lambda x, factor: x,
                 reference=lambda x, factor: x * factor, replace=True)
    bind_library(op, None, name="AcmeScale", version="3", namespace="acme")
    net = nd.Network("acme")
    net.output(op(nd.relu(net.input("x", ("N", 4))), factor=-2.5, name="scale"), "y")
    x = np.random.default_rng(8).standard_normal((3, 4)).astype(np.float32)
    rep = T.check(net.graph, {"x": x})
    assert rep.ok, str(rep)
    assert made and made[0].factor == -2.5  # the hand-made creator built the layer from the declared attribute
    lowered = lower(net.graph, trt)
    (layer,) = _plugin_layers(lowered.network)
    layer.__class__ = trt.IPluginV3Layer
    p, attrs = tensorrt_plugin.read_plugin_layer(layer, trt)
    assert p is op.plugin and attrs == {"factor": -2.5}


def test_plugin_fields_outlive_garbage_collection():
    """TensorRT reads plugin fields from memory it does not own: with the collector running at every
    allocation, the read-back still sees every attribute intact."""
    import gc
    old = gc.get_threshold()
    gc.set_threshold(1, 1, 1)
    try:
        x = np.random.default_rng(9).standard_normal((2, 3, 4, 6)).astype(np.float32)
        for _ in range(3):
            rep = T.check(_probe_net().graph, {"x": x})
            gc.collect()
            assert rep.ok, str(rep)
    finally:
        gc.set_threshold(*old)


def test_the_engine_cache_key_follows_the_plugin_declaration():
    from netdsl.backends.tensorrt import engine_cache
    op = declare("test_trt_keyed", infer=lambda x: x, reference=lambda x: x, cuda=_kernel(), replace=True)
    net = nd.Network("k")
    net.output(op(net.input("x", (2, 3))), "y")
    first = engine_cache.key(net.graph, trt)
    assert engine_cache.key(net.graph, trt) == first
    declare("test_trt_keyed", infer=lambda x: x, reference=lambda x: x, cuda=_kernel(), version="2", replace=True)
    second = engine_cache.key(net.graph, trt)
    declare("test_trt_keyed", infer=lambda x: x, reference=lambda x: x, cuda=_kernel(), version="2",
            dtypes=("float32", "float16"), replace=True)
    assert len({first, second, engine_cache.key(net.graph, trt)}) == 3
    plain = nd.Network("k")
    plain.output(nd.relu(plain.input("x", (2, 3))), "y")
    assert tensorrt_plugin.fingerprint(plain.graph) == ""
