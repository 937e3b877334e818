"""Fitted weight rounding (GPTQ on the quantized network) and keep_float="auto": each checked against the
float64 reference on fresh inputs, and the fitted network run by OpenVINO and ONNX Runtime."""
from __future__ import annotations

import json

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference
from netdsl.errors import NetdslError
from netdsl.graph import Node
from netdsl.ops import get_op
from netdsl.passes.qdq import weight_scales
from netdsl.quantization.report import sqnr_db
from netdsl.quantization.rounding import gptq, patches, weight_matrix

from .test_quantize import _batches, _net, engines_agree_and_run_8_bit


@pytest.mark.parametrize("groups, cin, cout, attrs", [
    (1, 6, 8, {"strides": (2, 1), "pads": (1, 0, 0, 1)}),
    (6, 6, 6, {"strides": (1, 1), "pads": (1, 1, 1, 1)}),   # depthwise
    (2, 6, 4, {"strides": (1, 2), "dilations": (2, 1), "pads": (0, 0, 0, 0)}),
    (1, 4, 5, {"auto_pad": "same_upper", "strides": (2, 2)}),
])
def test_patches_times_the_weight_matrix_is_the_convolution(groups, cin, cout, attrs):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, cin, 9, 10)).astype(np.float32)
    w = rng.standard_normal((cout, cin // groups, 3, 3)).astype(np.float32)
    attrs = {"strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0), "groups": groups, "auto_pad": "notset", **attrs}
    node = Node("conv", "c", [], attrs, "test")
    y = get_op("conv").run_reference([x, w, None], attrs)[0]
    p, wm = patches(node, x, w.shape), weight_matrix(node, w)
    got = np.einsum("gmk,gok->gmo", p, wm).reshape(groups, 3, -1, cout // groups)
    np.testing.assert_allclose(got.transpose(1, 0, 3, 2).reshape(y.shape), y, rtol=1e-4, atol=1e-4)


def test_gptq_rounds_for_less_output_error_than_nearest():
    """On correlated inputs (as neighbouring pixels are) GPTQ's integers give a smaller layer output error
    than rounding each weight to nearest, with the same per-channel scales and int8 range."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 24)) @ rng.standard_normal((24, 24))  # correlated columns
    w = rng.standard_normal((1, 16, 24))
    s = weight_scales(w[0], 0).astype(np.float64)[None]
    q = gptq(w, (x.T @ x)[None], s)
    assert q.dtype == np.int8 and np.abs(q.astype(int)).max() <= 127

    def err(levels: np.ndarray) -> float:
        return float(np.sum((x @ (w[0] - levels[0] * s[0][:, None]).T) ** 2))
    nearest = np.clip(np.rint(w / s[..., None]), -127, 127)
    assert err(q.astype(np.float64)) < 0.7 * err(nearest)


def _smooth(n: int, seed: int) -> list:
    """Batches of smooth images (integrated noise): neighbouring pixels correlated, as in photographs."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = np.cumsum(np.cumsum(rng.standard_normal((8, 3, 12, 12)), 2), 3)
        x = (x - x.mean((2, 3), keepdims=True)) / x.std((2, 3), keepdims=True)
        out.append({"x": x.astype(np.float32)})
    return out


def test_fitted_rounding_raises_the_output_sqnr_and_runs_on_the_engines():
    net = _net()
    kw = dict(report=False, backend="reference", equalize=None, bias_correction=False)
    plain = nd.quantize(net, _smooth(8, 1), rounding="nearest", **kw)
    fitted = nd.quantize(net, _smooth(8, 1), rounding="gptq", **kw)
    assert sorted(fitted.quantization.rounded) == ["c1", "c2", "head"]  # fc: 64 rows for 576 columns and not plain.quantization.rounded
    fresh = _smooth(4, 31)
    ref = np.concatenate([reference.run(net.graph, b)["logits"] for b in fresh])

    def sqnr(q: nd.Network) -> float:
        return sqnr_db(ref, np.concatenate([reference.run(q.graph, b)["logits"] for b in fresh]))
    assert sqnr(fitted) > sqnr(plain) + 1.0, (sqnr(fitted), sqnr(plain))  # measured 37.4 -> 38.9 dB
    # only the integers change: the same int8 parameters and scales as rounding to nearest
    int8 = {k: p for k, p in fitted.graph.params.items() if p.dtype.value == "int8"}
    assert len(int8) == 4 and any(not np.array_equal(p.value(), plain.graph.params[k].value()) for k, p in int8.items())
    layers = engines_agree_and_run_8_bit(fitted, fresh[0], "logits", ("Convolution", "FullyConnected"))
    assert len(layers) == 4 and all(p in ("u8", "i8") for _, p in layers), layers


def test_auto_rounding_is_decided_on_held_out_batches():
    q = nd.quantize(_net(), _batches(8), rounding="auto", report=False, backend="reference", bias_correction=False)
    rep = q.quantization
    a, b = rep.rounding_gain
    assert bool(rep.rounded) == (b > a) and "fitted weight rounding" in str(rep)


def test_fitted_rounding_is_cached_and_the_cache_names_the_option(tmp_path):
    cache = str(tmp_path / "calib.json")
    net = _net()
    q1 = nd.quantize(net, _batches(8), rounding="gptq", cache=cache, report=False, backend="reference")
    data = json.loads(open(cache).read())
    assert data["rounding"] == "gptq" and set(data["rounded_weights"]) == {"c1", "c2", "head"}
    assert data["refine_ranges"] is False and data["keep_target"] is None
    q2 = nd.quantize(net, _batches(1, seed=7), rounding="gptq", cache=cache, report=False, backend="reference")
    feeds = _batches(1, seed=8)[0]
    np.testing.assert_array_equal(reference.run(q1.graph, feeds)["logits"], reference.run(q2.graph, feeds)["logits"])
    with pytest.raises(NetdslError, match="was made for rounding='gptq'"):
        nd.quantize(net, _batches(1), rounding="nearest", cache=cache, report=False, backend="reference")
    with pytest.raises(NetdslError, match="rounding must be one of nearest, gptq, auto"):
        nd.quantize(net, _batches(1), rounding="adaround", report=False, backend="reference")


def test_keep_float_auto_keeps_the_fewest_layers_that_reach_the_target():
    net = _net()
    kw = dict(report=False, backend="reference", bias_correction=False, equalize=None, method="minmax")
    base = nd.quantize(net, _batches(), keep_float=1, **kw).quantization.sensitivity
    order = sorted(base, key=base.get)
    q = nd.quantize(net, _batches(), keep_float="auto", min_sqnr=45.0, **kw)
    rep = q.quantization
    k = len(rep.kept_float)
    assert 0 < k < 4 and rep.kept_float == order[:k] and sorted(rep.excluded) == sorted(order[:k]), str(rep)
    assert rep.kept_scores[k][0] >= 45.0 and all(rep.kept_scores[i][0] < 45.0 for i in range(k)), rep.kept_scores
    assert "keep_float='auto'" in str(rep) and "target 45 dB" in str(rep)
    low = nd.quantize(net, _batches(), keep_float="auto", min_sqnr=5.0, **kw).quantization
    assert low.kept_float == [] and list(low.kept_scores) == [0]
    top1 = nd.quantize(net, _batches(), keep_float="auto", min_top1=1.0, **kw).quantization
    k = len(top1.kept_float)
    assert top1.kept_scores[k][1] == 1.0 and all(top1.kept_scores[i][1] < 1.0 for i in range(k))
    with pytest.raises(NetdslError, match="min_sqnr must be an output SQNR in dB"):
        nd.quantize(net, _batches(1), keep_float="auto", min_sqnr=-3, **kw)
    with pytest.raises(NetdslError, match="the targets of keep_float=.auto. and wide_activations=.auto."):
        nd.quantize(net, _batches(1), min_top1=0.99, wide_activations="none", **kw)


def test_refined_ranges_raise_the_output_sqnr_on_fresh_inputs():
    """Ranges clipped hard by their own statistics (90th percentile) are widened by the output-aware
    search, within the values seen, and fresh inputs gain."""
    net = _net()
    kw = dict(report=False, backend="reference", method="percentile", percentile=90.0, equalize=None,
              bias_correction=False, wide_activations="none")  # clipped hard: "auto" would widen them
    plain = nd.quantize(net, _batches(), **kw)
    refined = nd.quantize(net, _batches(), refine_ranges=True, **kw)
    rep = refined.quantization
    a, b = rep.refine_gain
    assert b > a + 3 and "output-aware ranges" in str(rep)
    wider = [k for k, (lo, hi) in rep.thresholds.items() if hi > plain.quantization.thresholds[k][1]]
    assert wider, rep.thresholds
    fresh = _batches(4, seed=41)
    ref = np.concatenate([reference.run(net.graph, f)["logits"] for f in fresh])

    def sqnr(q: nd.Network) -> float:
        return sqnr_db(ref, np.concatenate([reference.run(q.graph, f)["logits"] for f in fresh]))
    assert sqnr(refined) > sqnr(plain) + 3, (sqnr(refined), sqnr(plain))


def test_min_top1_is_refused_for_a_network_without_class_outputs():
    """top-1 agreement is the arg-max over axis 1 (the classes): a regression value (N, 1), a rank-1
    output, hidden states (a layer norm's (N, S, H): axis 1 is the sequence) and an embedding (a tanh of a
    linear layer) have none, and the target was silently 'always met' or measured on the wrong axis."""
    net = nd.Network("regressor")
    x = net.input("x", ("N", 3, 12, 12))
    y = F.relu(F.conv(x, net.parameter("c1.w", (8, 3, 3, 3)), None, padding=1, name="c1"))
    y = F.linear(F.flatten(y), net.parameter("fc.w", (1, 1152)), None, name="fc")
    net.output(y, "value")
    net.output(F.reshape(y, (-1,)), "flat")
    net.init_random(0)
    kw = dict(report=False, backend="reference", keep_float="auto")
    with pytest.raises(NetdslError, match=r"min_top1.*arg-max over axis 1.*'regressor'.*value \(N, 1\) from linear"):
        nd.quantize(net, _batches(2), min_top1=0.99, **kw)
    assert nd.quantize(net, _batches(2), min_sqnr=20.0, **kw).quantization.keep_target == (20.0, None)
    enc = nd.Network("encoder")
    t = enc.input("t", ("N", 6, 16))
    h = F.linear(t, enc.parameter("l.w", (16, 16)), enc.parameter("l.b", (16,)), name="l")
    h = F.layer_norm(h, (16,), weight=enc.parameter("ln.g", (16,), init="positive"), bias=enc.parameter("ln.b", (16,)))
    enc.output(h, "hidden")
    enc.output(F.tanh(F.linear(F.reshape(h, (0, 96)), enc.parameter("p.w", (8, 96)), None, name="pool")), "pooled")
    enc.init_random(0)
    data = [{"t": np.random.default_rng(i).standard_normal((4, 6, 16)).astype(np.float32)} for i in range(2)]
    with pytest.raises(NetdslError, match=r"hidden \(N, 6, 16\) from layer_norm, pooled \(N, 8\) from tanh"):
        nd.quantize(enc, data, min_top1=0.9, **kw)


def test_min_sqnr_is_refused_for_a_network_without_float_outputs():
    """Its SQNR was 'inf' (no output measured): the target always met, nothing kept in float."""
    net = nd.Network("classes")
    x = net.input("x", ("N", 3, 12, 12))
    y = F.linear(F.flatten(x), net.parameter("fc.w", (4, 432)), None, name="fc")
    net.output(F.argmax(y, 1), "cls")
    net.init_random(0)
    with pytest.raises(NetdslError, match=r"min_sqnr is the SQNR of the float outputs; network 'classes' has none \(cls int"):
        nd.quantize(net, _batches(2), keep_float="auto", min_sqnr=30.0, report=False, backend="reference")


def test_min_top1_counts_logits_and_class_maps():
    """A linear layer's 2-d logits and a convolution's class map (through a resize, a softmax over axis 1)
    are classes, a softmax over another axis is not; min_top1 is then accepted."""
    from netdsl.quantization.sensitivity import top1_outputs
    net = nd.Network("seg")
    x = net.input("x", ("N", 3, 12, 12))
    y = F.relu(F.conv(x, net.parameter("c1.w", (8, 3, 3, 3)), None, padding=1, name="c1"))
    m = F.conv(y, net.parameter("c2.w", (4, 8, 1, 1)), net.parameter("c2.b", (4,)), name="c2")
    net.output(F.softmax(F.interpolate(m, scale_factor=2), 1), "map")
    net.output(F.linear(F.flatten(F.global_avg_pool(y)), net.parameter("fc.w", (5, 8)), None, name="fc"), "logits")
    net.output(F.softmax(m, -1), "rows")  # a softmax over the width: not classes
    net.init_random(0)
    assert top1_outputs(net.graph) == ["map", "logits"]
    rep = nd.quantize(net, _batches(2), keep_float="auto", min_top1=0.5, report=False, backend="reference").quantization
    assert rep.kept_scores[len([n for n in rep.kept_float if n not in rep.wide_float])][1] >= 0.5


def test_auto_rounding_on_one_batch_decides_on_held_out_samples_or_keeps_nearest():
    """One calibration batch has no held-out batch: its samples are split (fitted on the even ones, scored
    on the odd ones); a batch of one sample, or a network whose batch dim is fixed, cannot be split, and
    rounding stays nearest, said in the report (it silently meant GPTQ)."""
    kw = dict(rounding="auto", report=False, backend="reference", bias_correction=False, equalize=None)
    rep = nd.quantize(_net(), _batches(1), **kw).quantization
    assert len(rep.rounding_gain) == 2, str(rep)
    a, b = rep.rounding_gain
    assert bool(rep.rounded) == (b > a) and "held-out calibration data" in str(rep)
    one = nd.quantize(_net(), [{"x": _batches(1)[0]["x"][:1]}], **kw).quantization
    assert one.rounded == [] and one.rounding_gain == () and "no held-out calibration data" in str(one), str(one)
    fixed = nd.Network("fixed_batch")
    x = fixed.input("x", (8, 3, 12, 12))
    fixed.output(F.conv(x, fixed.parameter("c.w", (4, 3, 3, 3)), None, padding=1, name="c"), "y")
    fixed.init_random(0)
    rep = nd.quantize(fixed, _batches(1), **kw).quantization
    assert rep.rounded == [] and "kept nearest" in str(rep), str(rep)
