"""Wide activations in TensorRT's form (symmetric int8): where widening every candidate falls short of
the target, the most sensitive layers left in INT8 stay float (the float island builds in TensorRT's
CPU proof, ONNX Runtime computes the quantized graph as the reference does); a preprocessed uint8
image, exact only in uint8 with a zero point, is a candidate; the top-1 estimate does not trust a
few near-tie calibration inputs."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference
from netdsl.passes.qdq import RESIDUAL
from netdsl.quantization.sensitivity import estimated_top1


def _batched() -> nd.Network:
    """Two matmuls by batched constants (their B is not a quantized weight: each layer's one widening
    candidate is its input), so widening both is all widening can do."""
    net = nd.Network("batched")
    x = net.input("x", ("N", 4, 8))
    y = F.relu(F.matmul(x, net.parameter("b1", (1, 8, 8)), name="m1"))
    net.output(F.matmul(y, net.parameter("b2", (1, 8, 8)), name="m2"), "y")
    net.init_random(0)
    return net


def _feeds(n: int = 4, seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.standard_normal((8, 4, 8)).astype(np.float32)
        x[0, 0, 0] = 40.0  # an outlier: m1's input range is wide, its quantization the costliest
        out.append({"x": x})
    return out


def test_where_widening_falls_short_the_most_sensitive_layer_stays_float():
    net = _batched()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cost warning (one more INT8 layer for one)
        q = nd.quantize(net, _feeds(), target="tensorrt", min_sqnr=72.0, backend="reference", equalize=None,
                        bias_correction=False)
    rep = q.quantization
    k = max(rep.wide_scores)
    assert k == 2 and rep.wide_scores[k][0] < 72.0, rep.wide_scores  # both inputs wide: still short
    assert rep.sensitivity["m1"] < rep.sensitivity["m2"]
    assert rep.wide_kept == ["m1"] and rep.kept_float == ["m1"] and rep.wide_float == []
    assert rep.kept_scores[0][0] < 72.0 <= rep.kept_scores[1][0], rep.kept_scores
    assert rep.wide == ["relu"] and "widening fell short of its target: 1 layer kept in float" in str(rep)
    g = q.graph
    quantized = {n.inputs[0].name for n in g.nodes if n.op == "quantize_linear"}
    assert "x" not in quantized and "relu" in quantized
    assert {n.attrs["dtype"].value for n in g.nodes if n.op == "quantize_linear"} == {"int8"}
    assert [n.name for n in g.nodes if n.op == "matmul"] == ["m1", "m2", "m2" + RESIDUAL]
    feeds = _feeds(1, seed=7)[0]
    want = reference.run(g, feeds)["y"]
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    got = nd.compile(q, "onnx")(feeds)["y"]
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_a_float_island_of_the_fallback_passes_the_tensorrt_cpu_proof():
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed")
    from netdsl.backends import tensorrt as trtb
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = nd.quantize(_batched(), _feeds(), target="tensorrt", min_sqnr=72.0, backend="reference",
                        equalize=None, bias_correction=False, report=False)
    assert q.quantization.wide_kept == ["m1"]
    rep = trtb.check(q.graph, _feeds(1, seed=5)[0], flavour="tensorrt_rtx", dynamic={"N": (1, 8, 8)})
    assert rep.ok, str(rep)


def _image_net() -> nd.Network:
    net = nd.Network("image_cnn")
    x = F.preprocess(net.input("image", ("N", 8, 8, 1), dtype="uint8"), layout="NHWC", mean=127.5, scale=127.5)
    y = F.relu(F.conv(x, net.parameter("c1.w", (4, 1, 3, 3)), net.parameter("c1.b", (4,)), name="c1"))
    net.output(F.linear(F.flatten(y), net.parameter("fc.w", (3, 144)), None, name="fc"), "logits")
    net.init_random(0)
    return net


def test_a_preprocessed_image_is_a_candidate_only_where_it_is_not_exact():
    """uint8 with a zero point holds the image exactly (image_inputs.py); symmetric int8 does not, and
    there it was the one tensor widening could not reach (FER in TensorRT's form)."""
    net = _image_net()
    rng = np.random.default_rng(0)
    feeds = [{"image": rng.integers(0, 256, (8, 8, 8, 1), dtype=np.uint8)} for _ in range(2)]
    kw = dict(min_sqnr=90.0, backend="reference", equalize=None, bias_correction=False, report=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sym = nd.quantize(net, feeds, target="tensorrt", **kw).quantization
        asym = nd.quantize(net, feeds, **kw).quantization
    image = [v.name for v in net.graph.values() if v.producer is not None and v.producer.op == "preprocess"][0]
    assert image in sym.wide_sensitivity, sym.wide_sensitivity
    assert not [t for t in asym.wide_sensitivity if t.startswith(image)], asym.wide_sensitivity
    widened = nd.quantize(net, feeds, target="tensorrt", wide_activations=[image], report=False,
                          backend="reference").quantization
    assert widened.wide == [image] and widened.thresholds[image] == pytest.approx((-1.0, 1.0))


def test_the_estimate_does_not_trust_a_few_near_tie_calibration_inputs():
    """64 positions with two margins within four noise units of zero, on an even density of margins:
    counted on 200,000 positions of that density, 99.44% agree; the estimate from the 64 alone, its
    P(flip) taken per position, says 99.97%; with those margins spread over [0, 4] units, 99.7%."""
    rng = np.random.default_rng(0)
    sigma = 0.01

    def pair(margins: np.ndarray) -> tuple:
        ref = np.stack([margins, np.zeros_like(margins)], 1)
        return ref, ref + sigma * rng.standard_normal(ref.shape)
    dense_ref, dense_got = pair(rng.uniform(0, 1, 200_000))
    counted = float(np.mean(dense_ref.argmax(1) == dense_got.argmax(1)))
    est = estimated_top1(*pair(np.concatenate([[0.03, 0.05], np.linspace(0.1, 1.0, 62)])))
    assert 0.993 < counted < 0.996 and counted - 0.002 < est < 0.998, (counted, est)
