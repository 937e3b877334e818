"""netdsl.quantize end to end: Q/DQ placement, int8 per-channel weights, calibration backends, the cache,
the SQNR report, and the quantized network on every backend (OpenVINO INT8 kernels, ONNX Runtime QDQ,
TensorRT's CPU proof)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference
from netdsl.errors import NetdslError, ShapeError
from netdsl.passes.qdq import quantize_weight, weight_scales


def _net(seed: int = 0) -> nd.Network:
    net = nd.Network("small_cnn")
    x = net.input("x", ("N", 3, 12, 12))
    y = F.conv(x, net.parameter("c1.w", (8, 3, 3, 3)), net.parameter("c1.b", (8,)), padding=1, name="c1")
    s, b = net.parameter("bn.s", (8,), init="positive"), net.parameter("bn.b", (8,))
    y = F.relu(F.batch_norm(y, net.parameter("bn.m", (8,)), net.parameter("bn.v", (8,), init="positive"), s, b,
                            name="bn"))
    y = F.max_pool(F.relu(F.conv(y, net.parameter("c2.w", (16, 8, 3, 3)), None, padding=1, name="c2")), 2)
    y = F.relu(F.linear(F.flatten(y), net.parameter("fc.w", (32, 576)), net.parameter("fc.b", (32,)), name="fc"))
    net.output(F.linear(y, net.parameter("head.w", (10, 32)), None, name="head"), "logits")
    net.init_random(seed)
    return net


def engines_agree_and_run_8_bit(q: nd.Network, feeds: dict, output: str, kinds: tuple = ("Convolution",)) -> list:
    """Check that OpenVINO and ONNX Runtime (where installed) compute ``q`` as the reference does (one int8
    step near a tie allowed), and return [(layer type, runtime precision)] of OpenVINO's runtime model
    for the layer types ``kinds``."""
    want = reference.run(q.graph, feeds)[output]
    for backend in ("openvino", "onnx"):
        try:
            got = nd.compile(q, backend)(feeds)[output]
        except nd.BackendUnavailable:
            continue
        assert np.abs(got - want).max() <= 0.02 * np.abs(want).max(), backend
    pytest.importorskip("openvino", reason="openvino is not installed")
    m = nd.compile(q, "openvino")
    ran = [(n.get_rt_info()["layerType"].astype(str), n.get_rt_info()["runtimePrecision"].astype(str))
           for n in m.compiled.get_runtime_model().get_ordered_ops()]
    return [r for r in ran if r[0] in kinds]


def _batches(n: int = 4, seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((8, 3, 12, 12)).astype(np.float32)} for _ in range(n)]


def test_weights_are_int8_per_output_channel():
    w = np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32) * np.array([1, 10, 0.1, 0])[:, None, None, None]
    s = weight_scales(w, 0)
    q = quantize_weight(w, s, 0)
    assert q.dtype == np.int8 and np.abs(q).max() == 127 and s[3] == 1.0 and not q[3].any()
    np.testing.assert_allclose(np.abs(w).reshape(4, -1).max(1)[:3], 127 * s[:3], rtol=1e-6)
    assert np.abs(q * s[:, None, None, None] - w).max() <= s.max() / 2 + 1e-7


@pytest.mark.parametrize("backend", ["reference", "openvino"])
def test_quantized_network_structure_and_accuracy(backend):
    if backend == "openvino":
        pytest.importorskip("openvino", reason="openvino is not installed")
    net = _net()
    q = nd.quantize(net, _batches(), method="minmax", exclude=["head"], backend=backend)
    g = q.graph
    ops = [n.op for n in g.nodes]
    assert ops.count("quantize_linear") == 3  # inputs of c1, c2, fc (head excluded); the bn is folded
    assert "batch_norm" not in ops
    int8 = [p for p in g.params.values() if p.dtype.value == "int8"]
    assert sorted(p.shape for p in int8) == [(8, 3, 3, 3), (16, 8, 3, 3), (32, 576)]
    head = g.node("head")
    assert head.inputs[1].producer.op == "parameter"  # kept in float
    rep = q.quantization
    assert [r.name for r in rep.layers] == ["c1", "c2", "fc"] and rep.excluded == ["head"]
    assert all(r.sqnr_db > 25 for r in rep.layers), str(rep)
    assert "c2" in str(rep) and "output logits" in str(rep)
    feeds = _batches(1, seed=9)[0]  # fresh inputs
    f, i8 = reference.run(net.graph, feeds)["logits"], reference.run(g, feeds)["logits"]
    assert 10 * np.log10(np.sum(f ** 2) / np.sum((f - i8) ** 2)) > 25


def test_the_quantized_network_runs_on_every_backend():
    net = _net()
    q = nd.quantize(net, _batches(), report=False, backend="reference")
    feeds = _batches(1, seed=5)[0]
    ref = reference.run(q.graph, feeds)["logits"]
    scale = np.abs(ref).max()
    for backend in ("openvino", "onnx"):
        try:
            got = nd.compile(q, backend)(feeds)["logits"]
        except nd.BackendUnavailable:
            continue
        # one int8 step of rounding difference near a tie is allowed, no more
        assert np.abs(got - ref).max() <= 0.02 * scale, backend
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed")
    from netdsl.backends import tensorrt as trtb
    rep = trtb.check(q.graph, feeds, flavour="tensorrt_rtx", dynamic={"N": (1, 8, 8)})  # asymmetric uint8
    assert not rep.ok and "uint8 tensors only as network inputs and outputs" in str(rep) and "target='tensorrt'" in str(rep)
    qt = nd.quantize(net, _batches(), report=False, backend="reference", target="tensorrt")
    assert qt.quantization.scheme == "symmetric"
    assert {n.attrs["dtype"].value for n in qt.graph.nodes if n.op == "quantize_linear"} == {"int8"}
    rep = trtb.check(qt.graph, feeds, flavour="tensorrt_rtx", dynamic={"N": (1, 8, 8)})
    assert rep.ok, str(rep)


def test_calibration_cache_is_reused_and_refuses_another_network(tmp_path):
    cache = str(tmp_path / "calib.json")
    net = _net()
    q1 = nd.quantize(net, _batches(), method="entropy", cache=cache, report=False, backend="reference")
    data = json.loads(open(cache).read())
    assert data["method"] == "entropy" and len(data["thresholds"]) == 4 and "x" in data["thresholds"]
    # the cache is used: other calibration data gives the same thresholds
    q2 = nd.quantize(net, _batches(1, seed=7), method="entropy", cache=cache, report=False, backend="reference")
    assert q1.quantization.thresholds == q2.quantization.thresholds
    with pytest.raises(NetdslError, match="calib.json was made for method='entropy'"):
        nd.quantize(net, _batches(1), method="minmax", cache=cache, report=False, backend="reference")
    other = _net()
    other.graph.name = "renamed"
    with pytest.raises(NetdslError, match="calib.json"):
        nd.quantize(other, _batches(1), method="entropy", cache=cache, report=False, backend="reference")


def test_calibration_cache_refuses_the_same_network_with_other_weights(tmp_path):
    """Ranges, equalization scales and bias corrections are made from the weights: another checkpoint of
    the same architecture must calibrate again (a stale plan dropped the output SQNR from 45 to 23 dB)."""
    cache = str(tmp_path / "calib.json")
    nd.quantize(_net(0), _batches(), cache=cache, report=False, backend="reference")
    with pytest.raises(NetdslError, match="calib.json was made for other weights"):
        nd.quantize(_net(5), _batches(), cache=cache, report=False, backend="reference")
    nd.quantize(_net(0), _batches(1, seed=7), cache=cache, report=False, backend="reference")  # same weights: reused


def test_calibration_cache_refuses_other_report_batches(tmp_path):
    """Bias corrections (and refined ranges, the layers keep_float keeps) are chosen on the first
    report_batches batches: a plan made on 4 is not one made on 1."""
    cache = str(tmp_path / "calib.json")
    nd.quantize(_net(), _batches(), cache=cache, report=False, backend="reference")
    with pytest.raises(NetdslError, match="calib.json was made for report_batches=4, not report_batches=1"):
        nd.quantize(_net(), _batches(), cache=cache, report=False, backend="reference", report_batches=1)


def test_a_cache_calibration_could_not_write_is_refused_before_calibrating(tmp_path):
    """A cache in a missing or read-only directory failed only when written, after calibration ran."""
    def batches():  # calibration data that says so when it is read
        raise AssertionError("calibration data was read")
        yield
    missing = tmp_path / "nodir" / "calib.json"
    with pytest.raises(NetdslError, match=f"calibration cache {missing}: its directory .*nodir does not exist"):
        nd.quantize(_net(), batches(), cache=str(missing), report=False, backend="reference")
    with pytest.raises(NetdslError, match="is a directory"):
        nd.quantize(_net(), batches(), cache=str(tmp_path), report=False, backend="reference")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write a read-only directory (root)")
        with pytest.raises(NetdslError, match="ro is not writable"):
            nd.quantize(_net(), batches(), cache=str(ro / "c.json"), report=False, backend="reference")
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("opts, words", [
    ({"target": "tensorrt", "scheme": "asymmetric"}, "scheme 'asymmetric' makes uint8 activations"),
    ({"target": "tensorrt", "scheme": "unsigned"}, "TensorRT takes symmetric int8"),
    ({"target": "tensorrtt"}, "unknown target 'tensorrtt'"),
])
def test_scheme_a_target_cannot_run_is_refused_before_calibration(opts, words):
    with pytest.raises(NetdslError, match=words):
        nd.quantize(_net(), _batches(1), report=False, backend="reference", **opts)


@pytest.mark.parametrize("opts, words", [
    ({"keep_float": 2.5}, "keep_float must be a whole number of layers >= 0 or 'auto', got 2.5"),
    ({"keep_float": 5}, "keep_float=5: network 'small_cnn' has 4 layers to quantize"),  # c1, c2, fc, head
    ({"keep_float": 4, "exclude": ["head"]}, r"keep_float=4: network 'small_cnn' has 3 layers to quantize \(after exclude"),
    ({"equalize": 1.5}, r"equalize must be 'auto', None or 0 \(off\), or a balance alpha in \[0, 1\]; got 1.5"),
    ({"equalize": "yes"}, "got 'yes'"),
    ({"method": "percentile", "percentile": 0}, r"percentile must lie in \(0, 100\], got 0"),
    ({"refine_ranges": "no"}, "refine_ranges must be True or False, got 'no'"),  # bool('no') turned it on
    ({"bias_correction": "no"}, "bias_correction must be True or False, got 'no'"),  # so did this one
    ({"equalize": True}, r"equalize must be .*; got True"),  # was alpha 1.0
    ({"report_batches": 0}, "report_batches must be a whole number of batches >= 1, got 0"),
])
def test_bad_options_are_one_netdsl_error(opts, words):
    """Options the CLI checks are checked by the library too (they raised TypeError/ValueError, or a
    keep_float beyond the layer count silently kept every layer in float)."""
    with pytest.raises(NetdslError, match=words):
        nd.quantize(_net(), _batches(1), report=False, backend="reference", **opts)


@pytest.mark.parametrize("fill", [np.nan, np.inf])
def test_calibration_data_without_a_finite_value_is_refused(fill):
    """NaN/inf (or empty) calibration inputs gave every range (0, 0): a network quantizing everything to
    zero, without a word."""
    bad = [{"x": np.full((8, 3, 12, 12), fill, np.float32)}]
    with pytest.raises(NetdslError, match=r"no finite value of tensor 'x' .*NaN, infinite or empty"):
        nd.quantize(_net(), bad, report=False, backend="reference")
    with pytest.raises(NetdslError, match="no finite value of tensor 'x'"):
        nd.quantize(_net(), [{"x": np.zeros((0, 3, 12, 12), np.float32)}], report=False, backend="reference")


def test_exclude_none_means_no_exclusion():
    q = nd.quantize(_net(), _batches(1), exclude=None, report=False, backend="reference")
    assert [n.op for n in q.graph.nodes].count("quantize_linear") == 4


def test_bad_calibration_input_names_the_inputs():
    net = _net()
    with pytest.raises(NetdslError, match="at least one batch"):
        nd.quantize(net, [], backend="reference")
    with pytest.raises(NetdslError, match="unknown calibration method"):
        nd.quantize(net, _batches(1), method="kl", backend="reference")


def test_masked_calibration_data_is_refused_naming_the_input():
    """Calibration ranges were taken from a masked array's raw data, the mask ignored."""
    net = nd.Network("masked_calibration")
    x = net.input("x", ("N", 4))
    net.output(nd.linear(x, net.parameter("w", (3, 4))), "y")
    net.init_random(0)
    data = np.random.default_rng(6).standard_normal((8, 4)).astype(np.float32)
    masked = np.ma.masked_array(data, mask=data > 1)
    for batches in ([masked], [{"x": masked}]):
        with pytest.raises(ShapeError, match=r"input 'x' is a numpy masked array: .*x\.filled\(value\)"):
            nd.quantize(net, batches)


def test_calibration_cache_of_an_older_format_is_refused(tmp_path):
    """A cache made before residual adds with a wide sum read in float (format 10) holds a wide plan chosen
    on other estimates: refused, naming both formats; the current format is reused to the same graph."""
    from netdsl.quantization.cache import FORMAT
    cache = tmp_path / "calib.json"
    q1 = nd.quantize(_net(), _batches(), cache=str(cache), report=False, backend="reference")
    data = json.loads(cache.read_text())
    assert data["format"] == FORMAT == "netdsl-calibration-11"
    q2 = nd.quantize(_net(), _batches(1, seed=7), cache=str(cache), report=False, backend="reference")
    feeds = _batches(1, seed=9)[0]
    assert [n.name for n in q1.graph.nodes] == [n.name for n in q2.graph.nodes]
    np.testing.assert_array_equal(reference.run(q1.graph, feeds)["logits"], reference.run(q2.graph, feeds)["logits"])
    cache.write_text(json.dumps({**data, "format": "netdsl-calibration-10"}))
    with pytest.raises(NetdslError, match="'netdsl-calibration-10', made by another netdsl version .*calibration-11"):
        nd.quantize(_net(), _batches(1, seed=7), cache=str(cache), report=False, backend="reference")
