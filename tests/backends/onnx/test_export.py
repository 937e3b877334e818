"""ONNX export: names, dim_params, external data, opsets, plugins, lazy weights, errors."""
from __future__ import annotations

import os
import types

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference
from netdsl.compare import assert_close
from netdsl.errors import NetdslError, UnsupportedOpError, WeightError

from ._util import check_model, onnx, ort, ort_max_opset, random_feeds

from netdsl.backends import onnx as onnxb  # noqa: E402
from netdsl.backends.onnx import export as onnx_export  # noqa: E402

NEWEST = onnx.defs.onnx_opset_version()


def small_net(batch="N") -> nd.Network:
    net = nd.Network("small")
    x = net.input("data", (batch, 3, 8, 8))
    with net.scope("features"):
        y = F.relu(F.conv(x, net.parameter("conv1.weight", (4, 3, 3, 3)), net.parameter("conv1.bias", (4,)),
                          padding=1, name="conv1"), name="relu1")
        y = F.max_pool(y, 2, name="pool1")
    y = F.linear(F.flatten(y, name="flat"), net.parameter("fc.weight", (5, 64)), net.parameter("fc.bias", (5,)),
                 name="fc")
    net.output(F.softmax(y, 1, name="softmax"), "prob")
    values, indices = F.topk(y, 2, name="top")
    net.output(indices, "top_idx")
    return net.init_random(seed=1)


def run_both(graph, model, batch=2, seed=0):
    feeds = random_feeds(graph, batch, seed)
    return model(feeds), reference.run(graph, feeds)


# ---- names and shapes ---------------------------------------------------------------------------
def test_names_are_kept(tmp_path):
    net = small_net()
    path = onnxb.export_onnx(net.graph, tmp_path / "small.onnx")
    m = onnx.load(path)
    check_model(path)
    node_names = {n.name for n in m.graph.node}
    layers = {n.name for n in net.graph.nodes if n.op not in ("parameter", "constant")}
    assert layers <= node_names, layers - node_names
    assert [i.name for i in m.graph.input] == ["data"]
    assert [o.name for o in m.graph.output] == ["prob", "top_idx"]
    assert {"conv1.weight", "conv1.bias", "fc.weight", "fc.bias"} <= {t.name for t in m.graph.initializer}
    produced = {o: n.name for n in m.graph.node for o in n.output}
    for layer in ("features/conv1", "features/relu1", "features/pool1", "flat", "fc"):
        assert produced[layer] == layer  # tensor name = layer name, made by the layer's node
    assert produced["top:values"] == "top"
    # helper nodes are named under their layer
    assert produced["top_idx"].startswith("top/")
    # locations travel as doc strings
    conv = next(n for n in m.graph.node if n.name == "features/conv1")
    assert "test_export.py" in conv.doc_string


def test_symbolic_dims_are_dim_params():
    net = small_net()
    m = onnxb.to_model(net.graph)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == [3, 8, 8]
    for o in m.graph.output:
        assert o.type.tensor_type.shape.dim[0].dim_param == "N"
    model = onnxb.compile(net.graph)
    for batch in (1, 3, 5):
        got, ref = run_both(net.graph, model, batch, seed=batch)
        assert got["prob"].shape == (batch, 5)
        assert_close(got["prob"], ref["prob"], "float32", what=f"prob batch {batch}")
        assert got["top_idx"].dtype == np.int32  # catalogue index convention
        assert_close(got["top_idx"], ref["top_idx"], what="top_idx")


def test_static_batch_has_no_dim_param():
    m = onnxb.to_model(small_net(batch=2).graph)
    assert all(d.dim_value > 0 for d in m.graph.input[0].type.tensor_type.shape.dim)


# ---- weights ------------------------------------------------------------------------------------
def test_external_data_forced(tmp_path):
    net = small_net()
    path = onnxb.export_onnx(net.graph, str(tmp_path / "m.onnx"), external_data=True, external_threshold=16)
    data = tmp_path / "m.onnx.data"
    assert data.exists() and data.stat().st_size >= (4 * 3 * 3 * 3 + 5 * 64) * 4
    m = onnx.load(path, load_external_data=False)
    ext = {t.name for t in m.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
    assert {"conv1.weight", "fc.weight"} <= ext
    check_model(path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = random_feeds(net.graph, 3)
    got = dict(zip(["prob", "top_idx"], sess.run(["prob", "top_idx"], feeds)))
    ref = reference.run(net.graph, feeds)
    assert_close(got["prob"], ref["prob"], "float32")
    # the loaded weights equal the network's
    full = onnx.load(path)
    w = next(t for t in full.graph.initializer if t.name == "fc.weight")
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(w), net.graph.params["fc.weight"].value())


def test_external_data_automatic_above_limit(tmp_path, monkeypatch):
    net = small_net()
    monkeypatch.setattr(onnx_export, "INLINE_LIMIT", 1000)  # pretend 2 GB is 1000 bytes
    path = onnxb.export_onnx(net.graph, tmp_path / "auto.onnx")
    assert (tmp_path / "auto.onnx.data").exists()
    check_model(path)
    with pytest.raises(NetdslError, match="external data"):
        onnxb.to_model(net.graph)
    got, ref = run_both(net.graph, onnxb.compile(net.graph))  # compile goes through a file
    assert_close(got["prob"], ref["prob"], "float32")


def test_no_external_data_below_limit(tmp_path):
    onnxb.export_onnx(small_net().graph, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx.data").exists()


def test_weights_are_read_lazily_once(tmp_path):
    net = small_net()
    reads = {}
    for p in net.graph.params.values():
        arr = p.value()
        p.source = (lambda name, a: lambda: (reads.__setitem__(name, reads.get(name, 0) + 1), a)[1])(p.name, arr)
    onnxb.export_onnx(net.graph, tmp_path / "m.onnx", check=False)
    assert reads == {name: 1 for name in net.graph.params}


def test_unbound_weight_is_named(tmp_path):
    net = nd.Network("unbound")
    x = net.input("x", ("N", 4))
    net.output(F.linear(x, net.parameter("dense.weight", (2, 4))), "y")
    with pytest.raises(WeightError, match="dense.weight"):
        onnxb.export_onnx(net.graph, tmp_path / "m.onnx")


def test_bfloat16_and_float16_weights():
    net = nd.Network("halfs")
    x = net.input("x", ("N", 4))
    w16 = net.parameter("w16", (4,), dtype="float16")
    wbf = net.parameter("wbf", (4,), dtype="bfloat16")
    y = F.cast(x, "float16") * w16
    z = F.cast(F.cast(x, "bfloat16") * wbf, "float32")
    net.output(F.cast(y, "float32"), "y")
    net.output(z, "z")
    net.init_random(2)
    m = onnxb.to_model(net.graph)
    check_model(m)
    types_ = {t.name: t.data_type for t in m.graph.initializer}
    assert types_["w16"] == onnx.TensorProto.FLOAT16 and types_["wbf"] == onnx.TensorProto.BFLOAT16
    from netdsl.ops.elementwise import _round_bf16
    bf = onnx.numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "wbf")).astype(np.float32)
    np.testing.assert_array_equal(bf, _round_bf16(net.graph.params["wbf"].value()))  # nearest bfloat16
    with pytest.raises(NetdslError, match="ONNX Runtime could not load network 'halfs'"):
        onnxb.compile(net.graph)  # ONNX Runtime's CPU kernels have no bfloat16 arithmetic


def test_float16_runs():
    net = nd.Network("half")
    x = net.input("x", ("N", 4))
    y = F.cast(x, "float16") * net.parameter("w16", (4,), dtype="float16")
    net.output(F.cast(y, "float32"), "y")
    net.init_random(2)
    check_model(onnxb.to_model(net.graph))
    got, ref = run_both(net.graph, onnxb.compile(net.graph))
    assert_close(got["y"], ref["y"], "float16")


# ---- opsets -------------------------------------------------------------------------------------
def opset_net() -> nd.Network:
    """Ops whose ONNX form depends on the opset (Gelu 20, Mish 18, reduce axes 18, GroupNorm 21, Attention 23)."""
    net = nd.Network("opsets")
    x = net.input("x", ("N", 4, 6, 6))
    r = net.input("r", (1, 2, 3, 4))  # resize by sizes (the reference needs a static batch for it)
    net.output(F.add(F.resize(r, sizes=(1, 2, 5, 7), mode="nearest"), 1.0, name="r_plus1"), "r_out")
    y = F.gelu(x) + F.gelu(x, "tanh") + F.mish(x)
    y = F.group_norm(y, 2, net.parameter("gn.scale", (4,), init="ones"), net.parameter("gn.bias", (4,), init="zeros"))
    y = F.resize(y, scales=(1, 1, 1.5, 2), mode="linear")
    y = F.pad(y, (1, 1, 1, 1), "reflect")
    a, b = F.split(y, (2, 2), axis=1)
    q = a.reshape(0, 2, 11, 14)
    att = F.attention(q, q, b.reshape(0, 2, 11, 14), causal=True)
    net.output(F.mean(att, (2, 3), keepdims=True) + F.max(att, (3,), keepdims=True)[:, :, :1], "y")
    return net.init_random(4)


@pytest.mark.parametrize("opset", sorted({17, 18, 20, 21, 23, ort_max_opset(), NEWEST}))
def test_opset_variants(opset):
    net = opset_net()
    m = onnxb.to_model(net.graph, opset=opset)
    check_model(m)
    assert m.opset_import[0].version == opset
    ops = {n.op_type for n in m.graph.node}
    assert ("Gelu" in ops) == (opset >= 20) and ("Mish" in ops) == (opset >= 18)
    assert ("GroupNormalization" in ops) == (opset >= 21) and ("Attention" in ops) == (opset >= 23)
    if opset > ort_max_opset():
        pytest.skip(f"onnxruntime {ort.__version__} loads opsets up to {ort_max_opset()} (checked only)")
    model = onnxb.compile(net.graph, opset=opset)
    for batch in (1, 2):
        got, ref = run_both(net.graph, model, batch, seed=batch)
        for k in ref:
            assert_close(got[k], ref[k], "float32", what=f"{k} opset {opset} batch {batch}")


def test_bad_opset():
    with pytest.raises(NetdslError, match="opset 12"):
        onnxb.to_model(small_net().graph, opset=12)
    with pytest.raises(NetdslError, match="opset"):
        onnxb.to_model(small_net().graph, opset=NEWEST + 1)


# ---- plugins and custom exporters ----------------------------------------------------------------
@pytest.fixture
def plugin_op():
    from netdsl.ops import registry
    from netdsl.ops.registry import Attr, OpDef

    def ref(x, *, alpha, shifts, mode, table):
        return (x * (1 / (1 + np.exp(-alpha * x)))).astype(x.dtype)

    opdef = OpDef(name="test_swish_plugin", inputs=("x",), outputs=("y",),
                  attrs={"alpha": Attr("float", 1.0), "shifts": Attr("ints", ()), "mode": Attr("str", "a"),
                         "table": Attr("array", None, optional=True)},
                  infer=lambda x, **_: x, reference=ref, category="plugin",
                  plugin=types.SimpleNamespace(onnx_domain="com.example.plugins"))
    registry.register(opdef)
    try:
        yield opdef
    finally:
        registry._REGISTRY.pop(opdef.name, None)
        onnxb.TABLE.pop(opdef.name, None)


def plugin_net() -> nd.Network:
    net = nd.Network("with_plugin")
    x = net.input("x", ("N", 3))
    y = net.apply("test_swish_plugin", [F.relu(x)], name="swish", alpha=1.5, shifts=(1, 2), mode="fast",
                  table=np.arange(3, dtype=np.float32))
    net.output(F.tanh(y), "y")
    return net


def test_plugin_becomes_custom_domain_node(plugin_op, tmp_path):
    net = plugin_net()
    path = onnxb.export_onnx(net.graph, tmp_path / "p.onnx")
    m = onnx.load(path)
    check_model(m)
    node = next(n for n in m.graph.node if n.name == "swish")
    assert node.domain == "com.example.plugins" and node.op_type == "test_swish_plugin"
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["alpha"] == pytest.approx(1.5) and list(attrs["shifts"]) == [1, 2] and attrs["mode"] == b"fast"
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(attrs["table"]), np.arange(3, dtype=np.float32))
    assert any(o.domain == "com.example.plugins" for o in m.opset_import)
    # the plugin's output type is declared, so shape inference continues past it
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    vi = {v.name: v for v in inferred.graph.value_info}
    assert vi["swish"].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    with pytest.raises(NetdslError, match="custom_op_libraries"):
        onnxb.compile(net.graph)  # ONNX Runtime has no kernel for the custom node


def test_register_export_hook(plugin_op):
    def export_swish(ctx, node):
        x = ctx.inp(node, 0)
        ax = ctx.add1("Mul", [x, ctx.scalar(node.attrs["alpha"], node.inputs[0], "alpha")])
        ctx.add("Mul", [x, ctx.add1("Sigmoid", [ax])], [ctx.out(node)])

    onnxb.register_export("test_swish_plugin", export_swish)
    net = plugin_net()
    m = onnxb.to_model(net.graph)
    check_model(m)
    assert all(n.domain == "" for n in m.graph.node)
    got, ref = run_both(net.graph, onnxb.compile(net.graph))
    assert_close(got["y"], ref["y"], "float32")


def test_op_without_exporter_is_named(plugin_op):
    from netdsl.ops import registry
    registry._REGISTRY["test_swish_plugin"] = plugin_op.__class__(**{**plugin_op.__dict__, "plugin": None})
    with pytest.raises(UnsupportedOpError, match="swish.*test_swish_plugin.*register_export"):
        onnxb.to_model(plugin_net().graph)


# ---- backend API ----------------------------------------------------------------------------------
def test_backend_api(tmp_path):
    net = small_net()
    out = nd.export_onnx(net, tmp_path / "api.onnx", opset=18)
    assert os.path.exists(out)
    assert onnx.load(out).opset_import[0].version == 18
    assert onnxb.build(net.graph, str(tmp_path / "b.onnx")) == str(tmp_path / "b.onnx")
    model = nd.compile(net, "onnx")
    got, ref = run_both(net.graph, model)
    assert_close(got["prob"], ref["prob"], "float32")
    with pytest.raises(NetdslError, match="precision"):
        onnxb.build(net.graph, str(tmp_path / "c.onnx"), precision="f16")


def test_constant_and_weight_outputs():
    net = nd.Network("consts")
    x = net.input("x", ("N", 2))
    net.output(x * 2.0, "y")
    net.output(net.constant(np.arange(3, dtype=np.int32)), "c")
    net.output(net.parameter("w", (2,)), "w_out")
    net.init_random(0)
    m = onnxb.to_model(net.graph)
    check_model(m)
    got, ref = run_both(net.graph, onnxb.compile(net.graph))
    for k in ref:
        assert_close(got[k], ref[k], "float32", what=k)
