"""Q/DQ placement around residual adds (passes/qdq.py): which adds read quantized inputs, that the
quantized network still computes what the reference does, and that OpenVINO then fuses each add and
each requantization into a convolution running in 8 bits."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference
from netdsl.passes.fold import optimize
from netdsl.passes.qdq import activations, residual_adds
from netdsl.quantization.report import sqnr_db


def _bottlenecks(seed: int = 0) -> nd.Network:
    """Three MobileNetV2 blocks (expand 1x1 + ReLU6, depthwise 3x3 + ReLU6, linear 1x1 projection): the
    first changes the width, the others add their input back; then a ResNet-style block (two convolutions, add -> relu)."""
    net = nd.Network("bottlenecks")
    x = net.input("x", ("N", 8, 10, 10))

    def block(x, cin, cout, tag):
        y = F.relu6(F.conv(x, net.parameter(f"{tag}.e", (4 * cin, cin, 1, 1)), net.parameter(f"{tag}.eb", (4 * cin,)),
                           name=f"{tag}.expand"))
        y = F.relu6(F.conv(y, net.parameter(f"{tag}.d", (4 * cin, 1, 3, 3)), net.parameter(f"{tag}.db", (4 * cin,)),
                           padding=1, groups=4 * cin, name=f"{tag}.dw"))
        return F.conv(y, net.parameter(f"{tag}.p", (cout, 4 * cin, 1, 1)), net.parameter(f"{tag}.pb", (cout,)),
                      name=f"{tag}.project")

    a = block(x, 8, 16, "b1")
    s = F.add(a, block(a, 16, 16, "b2"), name="b2.add")
    s = F.add(s, block(s, 16, 16, "b3"), name="b3.add")
    c = F.conv(s, net.parameter("c.w", (16, 16, 3, 3)), None, padding=1, name="c")
    b = F.relu(F.conv(c, net.parameter("c2.w", (16, 16, 1, 1)), None, name="c2"))
    r = F.relu(F.add(c, F.conv(b, net.parameter("c3.w", (16, 16, 1, 1)), None, name="c3"), name="res.add"))
    y = F.conv(r, net.parameter("head.w", (10, 16, 1, 1)), None, name="head")
    net.output(F.global_avg_pool(y), "out")
    net.init_random(seed)
    return net


def _batches(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((4, 8, 10, 10)).astype(np.float32)} for _ in range(n)]


def test_linear_bottleneck_adds_read_quantized_inputs():
    g = optimize(_bottlenecks().graph)
    assert [n.name for n in residual_adds(g)] == ["b2.add", "b3.add", "res.add"]  # res.add -> relu -> head
    assert {"b1.project", "b2.project"} <= set(activations(g))
    assert [n.name for n in residual_adds(g, exclude=["c"])] == ["b2.add", "res.add"]  # b3.add no longer feeds a quantized layer
    q = nd.quantize(_bottlenecks(), _batches(4, 1), report=False, backend="reference")
    add = q.graph.node("b2.add")
    assert [v.producer.op for v in add.inputs] == ["dequantize_linear"] * 2
    # the first projection's output is quantized once, for the next expand and for the add alike
    b1 = [n for n in q.graph.nodes if n.op == "quantize_linear" and n.inputs[0].name == "b1.project"]
    assert len(b1) == 1 and add.inputs[0] is q.graph.node("b2.expand").inputs[0]
    plain = {n.name for n in q.graph.nodes if n.op == "add"} - {"b2.add", "b3.add", "res.add"}
    assert all(v.producer.op != "dequantize_linear" for n in plain for v in q.graph.node(n).inputs)


def test_openvino_fuses_the_add_and_the_requantizations_into_8_bit_convolutions():
    pytest.importorskip("openvino", reason="openvino is not installed")
    net = _bottlenecks()
    q = nd.quantize(net, _batches(4, 1), report=False, backend="reference")
    m = nd.compile(q, "openvino", dynamic={"N": 4})
    for feeds in _batches(2, seed=7):  # fresh inputs
        want = reference.run(q.graph, feeds)["out"]
        got = m(feeds)["out"]
        assert np.abs(got - want).max() <= 0.02 * np.abs(want).max()
        assert sqnr_db(reference.run(net.graph, feeds)["out"], got) > 25
        try:  # ONNX Runtime runs the same Q/DQ graph
            onnx = nd.compile(q, "onnx")(feeds)["out"]
        except nd.BackendUnavailable:
            continue
        assert np.abs(onnx - want).max() <= 0.02 * np.abs(want).max()
    ops = [n for n in m.compiled.get_runtime_model().get_ordered_ops()]
    ran = [(n.get_rt_info()["layerType"].astype(str), n.get_rt_info()["runtimePrecision"].astype(str),
            n.get_rt_info()["outputPrecisions"].astype(str), n.get_input_size()) for n in ops]
    convs = [r for r in ran if r[0] == "Convolution"]
    assert len(convs) == 13 and all(p in ("u8", "i8") for _, p, _, _ in convs), ran
    # the three blocks' 9 convolutions all emit 8 bits: the requantization of b1.project is fused
    # into it, and b2.add / b3.add into b2.project / b3.project as a sum (a fourth input)
    assert [o for _, _, o, _ in convs[:9]] == ["u8"] * 9, ran
    # and res.add + relu into c3 the same way: c, c2 and c3 emit 8 bits too
    assert [o for _, _, o, _ in convs[:12]] == ["u8"] * 12, ran
    assert sum(k == 4 for *_, k in convs) == 3, ran
    # what stays separate: the input's quantize only
    assert [t for t, *_ in ran].count("Subgraph") == 1 and "Eltwise" not in [t for t, *_ in ran], ran


def test_a_residual_add_of_wide_tensors_reads_both_in_float():
    """With every activation wide, a projection's output that only a residual add reads is no layer's
    input (so not wide): quantized coarsely for the add, it capped the widened network's precision
    (41.7 dB; 61.6 dB once the add reads both inputs in float)."""
    net = nd.Network("bottleneck")
    x = net.input("x", ("N", 8, 10, 10))

    def conv(v, name, cin, cout):
        return F.conv(v, net.parameter(f"{name}.w", (cout, cin, 1, 1)), net.parameter(f"{name}.b", (cout,)), name=name)
    a = conv(x, "a", 8, 8)
    s = F.add(a, conv(F.relu6(conv(a, "e", 8, 16)), "p", 16, 8), name="res")
    net.output(conv(s, "c", 8, 4), "y")
    net.init_random(0)
    rng = np.random.default_rng(1)
    batches = [{"x": rng.standard_normal((4, 8, 10, 10)).astype(np.float32)} for _ in range(3)]
    fresh = {"x": rng.standard_normal((16, 8, 10, 10)).astype(np.float32)}
    q = nd.quantize(net, batches, report=False, backend="reference", wide_activations="*", wide_weights="*")
    assert all(v.producer.op != "dequantize_linear" for v in q.graph.node("res").inputs)
    ref = reference.run(net.graph, fresh)["y"]
    assert sqnr_db(ref, reference.run(q.graph, fresh)["y"]) > 55


def test_an_add_stays_float_unless_its_sum_or_its_only_relu_feeds_a_quantized_layer():
    """add -> relu read by a quantized layer: quantized inputs (ResNet). Float sums: add -> relu -> the
    network's output, add -> relu read by no quantized layer, an add read by a relu and by something
    else, add -> layer norm (a transformer), add -> sigmoid."""
    net = nd.Network("adds")
    x = net.input("x", ("N", 8, 6, 6))

    def conv(v, name):
        return F.conv(v, net.parameter(f"{name}.w", (8, 8, 1, 1)), None, name=name)
    a = conv(x, "a")
    r = F.relu(F.add(conv(a, "b"), a, name="res"))  # ResNet's block: quantized
    net.output(F.relu(F.add(conv(r, "c"), r, name="to_output")), "y1")  # relu -> output: float
    s = F.add(conv(r, "d"), r, name="two_readers")
    net.output(conv(F.relu(s), "e"), "y2")
    net.output(F.global_avg_pool(s), "y3")  # the sum itself read in float too: float
    p = F.relu(F.add(conv(r, "f"), r, name="to_pool"))
    net.output(F.global_avg_pool(p), "y4")  # relu -> pool: float
    ln = F.layer_norm(F.add(conv(r, "g"), r, name="to_norm"), (6,))
    net.output(conv(ln, "h"), "y5")
    sg = F.sigmoid(F.add(conv(r, "i"), r, name="to_sigmoid"))
    net.output(conv(sg, "j"), "y6")
    net.init_random(0)
    g = optimize(net.graph)
    assert [n.name for n in residual_adds(g)] == ["res"]
    q = nd.quantize(net, _batches_of(net, 3, 1), report=False, backend="reference", wide_activations="none")
    assert [v.producer.op for v in q.graph.node("res").inputs] == ["dequantize_linear"] * 2
    fresh = _batches_of(net, 1, 9)[0]
    want, got = reference.run(net.graph, fresh), reference.run(q.graph, fresh)
    assert all(sqnr_db(want[k], got[k]) > 25 for k in want), {k: sqnr_db(want[k], got[k]) for k in want}


def _batches_of(net: nd.Network, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    shape = tuple(4 if not isinstance(d, int) else d for d in net.graph.inputs[0].shape)
    return [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(n)]


def test_tensorrt_cpu_proof_passes_with_quantized_residual_adds():
    """TensorRT's form (symmetric int8) of the same placement: the network TensorRT builds, read back
    and evaluated, computes what the reference does (TensorRT fuses such adds into the convolution)."""
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed")
    from netdsl.backends import tensorrt as trtb
    q = nd.quantize(_bottlenecks(), _batches(4, 1), report=False, backend="reference", target="tensorrt",
                    wide_activations="none")
    assert all(v.producer.op == "dequantize_linear" for n in ("b2.add", "res.add") for v in q.graph.node(n).inputs)
    rep = trtb.check(q.graph, _batches(1, seed=5)[0], flavour="tensorrt_rtx", dynamic={"N": (1, 4, 8)})
    assert rep.ok, str(rep)


@pytest.mark.parametrize("relu", [True, False])
def test_a_residual_add_whose_sum_is_wide_reads_both_in_float(relu):
    """add(conv, conv) -> [relu] -> conv with every activation wide: the two convolutions' outputs are
    no layer's input (so not wide) while the sum is; quantized once for the add they capped the widened
    network at 39 dB (81 dB with the add reading both in float)."""
    net = nd.Network("two_branches")
    x = net.input("x", ("N", 8, 10, 10))

    def conv(v, name, cout=8):
        return F.conv(v, net.parameter(f"{name}.w", (cout, 8, 1, 1)), net.parameter(f"{name}.b", (cout,)), name=name)
    s = F.add(conv(x, "p"), conv(x, "q"), name="res")
    net.output(conv(F.relu(s) if relu else s, "c", 4), "y")
    net.init_random(0)
    assert [n.name for n in residual_adds(optimize(net.graph))] == ["res"]
    batches = _batches_of(net, 3, 1)
    fresh = _batches_of(net, 1, 9)[0]
    q = nd.quantize(net, batches, report=False, backend="reference", wide_activations="*", wide_weights="*")
    assert all(v.producer.op != "dequantize_linear" for v in q.graph.node("res").inputs)
    assert sqnr_db(reference.run(net.graph, fresh)["y"], reference.run(q.graph, fresh)["y"]) > 60
    q = nd.quantize(net, batches, report=False, backend="reference", wide_activations="none")
    assert [v.producer.op for v in q.graph.node("res").inputs] == ["dequantize_linear"] * 2


def test_relu_readers_pools_self_adds_and_broadcasts():
    """add -> relu read by two quantized layers and a sigmoid: quantized; add -> relu -> max_pool -> conv:
    float (the pool, not a quantized layer, reads the ReLU); x + x: quantized; a broadcast add: float;
    add -> relu that is a network output and a convolution's input: quantized. OpenVINO and ONNX Runtime
    compute what the reference does with the quantized graph."""
    net = nd.Network("relu_readers")
    x = net.input("x", ("N", 8, 8, 8))

    def conv(v, name, cout=8):
        return F.conv(v, net.parameter(f"{name}.w", (cout, 8, 1, 1)), net.parameter(f"{name}.b", (cout,)), name=name)
    a = conv(x, "a")
    ra = F.relu(F.add(conv(a, "b"), a, name="two_convs"))
    net.output(F.sigmoid(ra), "ya")
    s = F.add(conv(ra, "a1"), conv(ra, "a2"), name="sum")
    pooled = conv(F.max_pool(F.relu(F.add(conv(s, "c"), s, name="to_pool")), 2, 2), "p")
    d = conv(F.relu(F.add(pooled, pooled, name="self")), "d")
    e = conv(F.relu(F.add(d, F.global_avg_pool(d), name="broadcast")), "e")
    re = F.relu(F.add(conv(e, "f"), e, name="to_output"))
    net.output(re, "ye")
    net.output(F.global_avg_pool(conv(re, "g", 4)), "y")
    net.init_random(0)
    assert [n.name for n in residual_adds(optimize(net.graph))] == ["two_convs", "sum", "self", "to_output"]
    q = nd.quantize(net, _batches_of(net, 3, 1), report=False, backend="reference", wide_activations="none")
    for n in ("two_convs", "sum", "self", "to_output"):
        assert [v.producer.op for v in q.graph.node(n).inputs] == ["dequantize_linear"] * 2, n
    for n in ("to_pool", "broadcast"):
        assert all(v.producer.op != "dequantize_linear" for v in q.graph.node(n).inputs), n
    fresh = _batches_of(net, 1, 9)[0]
    want, ref = reference.run(q.graph, fresh), reference.run(net.graph, fresh)
    assert all(sqnr_db(ref[k], want[k]) > 25 for k in want), {k: sqnr_db(ref[k], want[k]) for k in want}
    for backend in ("openvino", "onnx"):
        try:
            got = nd.compile(q, backend)(fresh)
        except nd.BackendUnavailable:
            continue
        for k in want:
            assert np.abs(got[k] - want[k]).max() <= 0.02 * np.abs(want[k]).max(), (backend, k)
