"""What quantize() adds to plain per-tensor ranges: uint8 activations that OpenVINO still runs in 8-bit,
bias correction, sensitivity analysis (keep_float) and equalization, each checked on the float64
reference with fresh inputs."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.quantization.report import sqnr_db

from .test_quantize import _batches, _net


def _channel_mean_error(f: nd.Network, q: nd.Network, batches: list) -> float:
    d = np.concatenate([reference.run(q.graph, b)["logits"] - reference.run(f.graph, b)["logits"] for b in batches])
    return float(np.abs(d.mean(axis=0)).max())


def test_asymmetric_activations_run_in_8_bit_on_openvino():
    pytest.importorskip("openvino", reason="openvino is not installed")
    net = _net()
    q = nd.quantize(net, _batches(), report=False, backend="reference")  # auto: asymmetric uint8
    dtypes = {n.name: n.attrs["dtype"].value for n in q.graph.nodes if n.op == "quantize_linear"}
    assert set(dtypes.values()) == {"uint8"} and q.quantization.scheme == "asymmetric"
    assert q.quantization.method == "mse"  # netdsl.quantize's default, as netdsl.quantization.quantize's
    m = nd.compile(q, "openvino")
    ran = [(n.get_rt_info()["layerType"].astype(str), n.get_rt_info()["runtimePrecision"].astype(str))
           for n in m.compiled.get_runtime_model().get_ordered_ops()]
    layers = [r for r in ran if r[0] in ("Convolution", "FullyConnected")]
    assert len(layers) == 4 and all(p in ("u8", "i8") for _, p in layers), ran
    feeds = _batches(1, seed=11)[0]
    assert sqnr_db(reference.run(net.graph, feeds)["logits"], m(feeds)["logits"]) > 25


def test_bias_correction_removes_the_mean_shift_of_clipping():
    net = _net()
    kw = dict(method="percentile", percentile=90.0, backend="reference", equalize=None)  # clips the tails
    plain = nd.quantize(net, _batches(), bias_correction=False, **kw)
    fixed = nd.quantize(net, _batches(), bias_correction=True, **kw)
    rep = fixed.quantization
    assert rep.bias_corrected and rep.bias_gain[1] > rep.bias_gain[0], str(rep)
    assert "bias correction" in str(rep)
    fresh = _batches(4, seed=21)
    assert _channel_mean_error(net, fixed, fresh) < 0.5 * _channel_mean_error(net, plain, fresh)
    # the corrected biases replace the old ones: nothing dead is left (ONNX Runtime warned about unused
    # initializers), and the graph's parameters are exactly those its nodes read
    g = fixed.graph
    read = {id(v) for n in g.nodes for v in n.inputs if v is not None} | {id(v) for v in g.outputs}
    assert all(any(id(o) in read for o in n.outputs) for n in g.nodes)
    assert set(g.params) == {n.attrs["name"] for n in g.nodes if n.op == "parameter"}


def test_keep_float_keeps_the_most_sensitive_layers():
    net = _net()
    q = nd.quantize(net, _batches(), keep_float=1, backend="reference")
    rep = q.quantization
    assert set(rep.sensitivity) == {"c1", "c2", "fc", "head"}
    worst = min(rep.sensitivity, key=rep.sensitivity.get)
    assert rep.kept_float == [worst] and rep.excluded == [worst] and "by sensitivity" in str(rep)
    assert q.graph.node(worst).inputs[1].producer.op == "parameter"
    assert q.graph.params[q.graph.node(worst).inputs[1].producer.attrs["name"]].dtype.value == "float32"
    with pytest.raises(nd.NetdslError, match="keep_float"):
        nd.quantize(net, _batches(1), keep_float=-1, backend="reference")


def test_equalization_is_chosen_by_output_sqnr_and_keeps_the_function():
    net = _net()
    q = nd.quantize(net, _batches(), equalize="auto", backend="reference")
    rep = q.quantization
    assert set(rep.alphas) == {0.0, 0.25, 0.5, 0.75} and rep.alphas[rep.alpha] == max(rep.alphas.values())
    fixed = nd.quantize(net, _batches(), equalize=0.5, backend="reference", bias_correction=False)
    assert fixed.quantization.alpha == 0.5 and fixed.quantization.equalized
    feeds = _batches(1, seed=13)[0]
    assert sqnr_db(reference.run(net.graph, feeds)["logits"], reference.run(fixed.graph, feeds)["logits"]) > 25


def test_bias_correction_skips_a_layer_whose_channels_are_symbolic():
    """linear(x, y) with both operands network inputs: its output features are y's symbolic first dim, so
    it has no fixed bias to correct (a (8,) correction made the quantized graph invalid: a ShapeError on
    every such network at the defaults)."""
    import netdsl.functional as F
    net = nd.Network("pairs")
    x, y = net.input("x", ("N", 16)), net.input("y", ("N", 16))
    net.output(F.linear(x, y, None, name="fc"), "s")
    rng = np.random.default_rng(0)
    batches = [{"x": rng.standard_normal((8, 16)).astype(np.float32),
                "y": rng.standard_normal((8, 16)).astype(np.float32) + 1} for _ in range(3)]
    q = nd.quantize(net, batches, report=False, backend="reference")
    assert q.quantization.bias_corrected == []
    feeds = {"x": rng.standard_normal((5, 16)).astype(np.float32), "y": rng.standard_normal((5, 16)).astype(np.float32)}
    ref = reference.run(net.graph, feeds)["s"]
    got = reference.run(q.graph, feeds)["s"]
    assert got.shape == (5, 5) and sqnr_db(ref, got) > 25
