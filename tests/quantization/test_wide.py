"""Wide (two-level) activations and weights: the value and its int8 rounding residual, each read by an
INT8 copy of the layer. Checked against the float64 reference on real weights and inputs (the digits
CNN, trained here), on OpenVINO's runtime model (every copy in u8/i8), ONNX Runtime, TensorRT's CPU
proof, and through the option's checks, the automatic choice and the calibration cache."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.errors import NetdslError
from netdsl.passes.qdq import RESIDUAL, insert_qdq, residual_weight, weight_scales, quantize_weight
from netdsl.quantization.report import sqnr_db
from netdsl.quantization.sensitivity import estimated_top1

from .test_quantize import _batches, _net, engines_agree_and_run_8_bit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """(the digits CNN with weights trained here for two epochs, calibration batches, held-out batches)."""
    pytest.importorskip("sklearn", reason="scikit-learn is not installed (the digits data set comes with it)")
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import digits as ex
    finally:
        sys.path.pop(0)
    xtr, ytr, xte, _ = ex.load_data(0)
    path = str(tmp_path_factory.mktemp("digits") / "digits.h5")
    ex.save_checkpoint(ex.train(xtr, ytr, epochs=2), path)
    net = ex.network(weights=path)
    return net, [{"image": xtr[i:i + 32]} for i in range(0, 128, 32)], [{"image": xte[i:i + 64]} for i in range(0, 256, 64)]


def _sqnr(f: nd.Network, q: nd.Network, batches: list, out: str) -> float:
    ref = np.concatenate([reference.run(f.graph, b)[out] for b in batches])
    return sqnr_db(ref, np.concatenate([reference.run(q.graph, b)[out] for b in batches]))


def test_wide_activations_and_weights_approach_the_float_function_on_real_weights(digits):
    net, calib, held = digits
    kw = dict(report=False, backend="reference")
    plain = nd.quantize(net, calib, **kw)
    acts = nd.quantize(net, calib, wide_activations=["*"], **kw)
    both = nd.quantize(net, calib, wide_activations=["*"], wide_weights=["*"], **kw)
    out = net.graph.outputs[0].name
    s0, s1, s2 = (_sqnr(net, q, held, out) for q in (plain, acts, both))
    assert s1 > s0 + 3 and s2 > s1 + 6, (s0, s1, s2)
    rep = both.quantization
    assert rep.wide and rep.wide_weights and "two-level" in str(rep)
    # every widened layer has one INT8 copy per residual, with the same int8 weight
    layers = [n for n in both.graph.nodes if n.op in ("conv", "linear")]
    twins = [n for n in layers if RESIDUAL in n.name]
    assert len(twins) == 2 * (len(layers) - len(twins)) - len(rep.exact_inputs), [n.name for n in layers]


def test_the_weight_residual_holds_the_rounding_error():
    w = np.random.default_rng(0).standard_normal((6, 4, 3, 3)).astype(np.float32)
    s = weight_scales(w, 0)
    q = quantize_weight(w, s, 0)
    r = residual_weight(w, q, s, 0)
    two = q * s[:, None, None, None] + r * (s[:, None, None, None] / 254)
    assert r.dtype == np.int8 and np.abs(r.astype(int)).max() <= 127
    assert np.abs(two - w).max() <= (s / 508).max() * 1.001  # half a residual step
    assert np.abs(q * s[:, None, None, None] - w).max() > 50 * np.abs(two - w).max()


def test_widened_layers_run_in_8_bit_on_openvino_and_agree_on_onnx_runtime():
    net = _net()
    q = nd.quantize(net, _batches(), report=False, backend="reference", wide_activations=["*"], wide_weights=["fc"])
    assert sorted(q.quantization.wide) == ["flatten", "relu", "relu_2", "x"]
    twins = [n.name for n in q.graph.nodes if RESIDUAL in n.name and n.op in ("conv", "linear")]
    assert len(twins) == 5, twins  # one per layer for its input, one more for fc's weight
    layers = engines_agree_and_run_8_bit(q, _batches(1, seed=11)[0], "logits", ("Convolution", "FullyConnected"))
    assert len(layers) == 9 and all(p in ("u8", "i8") for _, p in layers), layers
    feeds = _batches(1, seed=11)[0]
    ref = reference.run(net.graph, feeds)["logits"]
    assert sqnr_db(ref, reference.run(q.graph, feeds)["logits"]) > 40


def test_widened_symmetric_network_passes_the_tensorrt_cpu_proof():
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed")
    from netdsl.backends import tensorrt as trtb
    q = nd.quantize(_net(), _batches(), report=False, backend="reference", target="tensorrt",
                    wide_activations=["*"], wide_weights=["*"])
    assert {n.attrs["dtype"].value for n in q.graph.nodes if n.op == "quantize_linear"} == {"int8"}
    rep = trtb.check(q.graph, _batches(1, seed=5)[0], flavour="tensorrt_rtx", dynamic={"N": (1, 8, 8)})
    assert rep.ok, str(rep)


def test_bias_correction_of_a_widened_layer_is_made_at_the_sum():
    net = _net()
    kw = dict(report=False, backend="reference", equalize=None, method="percentile", percentile=90.0,
              wide_activations=["*"])
    plain = nd.quantize(net, _batches(), bias_correction=False, **kw)
    fixed = nd.quantize(net, _batches(), bias_correction=True, **kw)
    assert fixed.quantization.bias_corrected
    fresh = _batches(4, seed=21)

    def mean_error(q: nd.Network) -> float:
        d = np.concatenate([reference.run(q.graph, b)["logits"] - reference.run(net.graph, b)["logits"] for b in fresh])
        return float(np.abs(d.mean(axis=0)).max())
    assert mean_error(fixed) < mean_error(plain)


def test_auto_widens_the_most_sensitive_tensors_until_the_target():
    net = _net()
    kw = dict(report=False, backend="reference", bias_correction=False, equalize=None)
    none = nd.quantize(net, _batches(), wide_activations="auto", min_sqnr=5.0, **kw).quantization
    assert none.wide == [] and none.wide_weights == [] and list(none.wide_scores) == [0]
    rep = nd.quantize(net, _batches(), wide_activations="auto", min_sqnr=46.0, **kw).quantization
    k = max(rep.wide_scores)
    order = sorted(rep.wide_sensitivity, key=rep.wide_sensitivity.get)[:k]
    chosen = rep.wide + [w + " weights" for w in rep.wide_weights]
    # a layer with a wide input and wide weights runs in float instead (its items leave the lists)
    folded = [t for t in order if t not in chosen]
    assert 0 < k and set(chosen) <= set(order), (chosen, order)
    assert all(t[:-len(" weights")] in rep.wide_float for t in folded if t.endswith(" weights")), (folded, rep.wide_float)
    assert sorted(rep.kept_float) == sorted(rep.wide_float) and (not folded or rep.wide_float)
    assert rep.wide_scores[k][0] >= 46.0 and all(rep.wide_scores[i][0] < 46.0 for i in range(k)), rep.wide_scores
    assert "wide_activations='auto'" in str(rep) and "46 dB" in str(rep)


def test_estimated_top1_grows_with_the_margins_and_ignores_float16_ties():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((400, 5))
    noise = rng.standard_normal(ref.shape)
    assert estimated_top1(ref, ref + 0.3 * noise) < estimated_top1(ref, ref + 0.1 * noise) < 1.0
    counted = np.mean(np.argmax(ref + 0.3 * noise, 1) == np.argmax(ref, 1))
    assert abs(estimated_top1(ref, ref + 0.3 * noise) - counted) < 0.05
    tied = np.array([[1.0, 1.0 - 1e-6, 0.0], [1.0, 0.0, 0.0]])
    assert estimated_top1(tied, tied + 1e-3) == pytest.approx(1.0)


@pytest.mark.parametrize("kw, message", [
    ({"wide_activations": 3}, "wide_activations must be 'auto', 'none' or a list"),
    ({"wide_activations": ["nothing*"]}, "wide_activations pattern 'nothing\\*' matches no layer or tensor"),
    ({"wide_weights": "auto"}, "wide_weights must be 'none' or a list of layer name patterns"),
    ({"wide_weights": ["relu"]}, "wide_weights pattern 'relu' matches no layer"),
    ({"min_top1": 0.99, "wide_activations": "none"}, "give one of them with them"),
])
def test_bad_wide_options_give_one_clear_error(kw, message):
    with pytest.raises(NetdslError, match=message):
        nd.quantize(_net(), _batches(1), report=False, backend="reference", **kw)


def test_the_cache_holds_the_wide_tensors_and_names_the_option(tmp_path):
    cache = str(tmp_path / "calib.json")
    net = _net()
    q1 = nd.quantize(net, _batches(), cache=cache, report=False, backend="reference", wide_activations=["c2"],
                     wide_weights=["head"])
    data = json.loads(open(cache).read())
    assert data["wide"] == ["relu"] and data["wide_weights"] == ["head"] and data["wide_activations"] == ["c2"]
    q2 = nd.quantize(net, _batches(1, seed=7), cache=cache, report=False, backend="reference",
                     wide_activations=["c2"], wide_weights=["head"])
    feeds = _batches(1, seed=8)[0]
    np.testing.assert_array_equal(reference.run(q1.graph, feeds)["logits"], reference.run(q2.graph, feeds)["logits"])
    with pytest.raises(NetdslError, match="was made for wide_activations=\\['c2'\\]"):
        nd.quantize(net, _batches(1), cache=cache, report=False, backend="reference", wide_activations="auto",
                    wide_weights=["head"])


def test_insert_qdq_without_wide_tensors_is_unchanged():
    g = _net().graph
    ranges = {"x": (-3.0, 3.0)}
    a, b = insert_qdq(g, ranges, (), "asymmetric"), insert_qdq(g, ranges, (), "asymmetric", wide=())
    assert [n.op for n in a.nodes] == [n.op for n in b.nodes]


def test_a_wide_tensor_read_by_a_residual_add_keeps_its_precision_there():
    """A residual add whose input is wide reads it in float (reading the first level alone would drop
    the second on the skip path), and its other input too (quantized, it capped the sum's precision);
    the wide tensor's other readers are split in two INT8 layers."""
    from tests.passes.test_qdq import _batches as blocks_batches, _bottlenecks
    net = _bottlenecks()
    kw = dict(report=False, backend="reference")
    plain = nd.quantize(net, blocks_batches(4, 1), **kw)
    wide = nd.quantize(net, blocks_batches(4, 1), wide_activations=["*"], wide_weights=["*"], **kw)
    add = wide.graph.node("b2.add")
    # b1.project's output (the sum of its two INT8 halves) is wide: read in float, and b2.project's with it
    assert [v.producer.op for v in add.inputs] == ["add", "add"]
    assert add.inputs[0].producer.name == "b1.project/wide_sum" and "b1.project" in wide.quantization.wide
    fresh = blocks_batches(2, 7)
    s0, s1 = _sqnr(net, plain, fresh, "out"), _sqnr(net, wide, fresh, "out")
    assert s1 > s0 + 4, (s0, s1)  # measured 53.6 -> 61.2 dB (57.0 when the adds quantized their other input)
    layers = engines_agree_and_run_8_bit(wide, fresh[0], "out")
    assert layers and all(p in ("u8", "i8") for _, p in layers), layers


def test_wide_tensors_keep_their_precision_on_new_inputs():
    """A wide tensor's range was exactly the range seen on calibration data: new inputs a little beyond it
    were clipped, and the widened network fell from 86.6 dB on its calibration data to 36.0 dB on new
    inputs (little better than not widening). With headroom it holds on both."""
    net, calib, fresh = _net(), _batches(3), _batches(4, seed=9)
    q = nd.quantize(net, calib, report=False, backend="reference", wide_activations="*", wide_weights="*")
    assert _sqnr(net, q, fresh, "logits") > 70 and _sqnr(net, q, calib, "logits") > 70


def test_the_default_widens_nothing_where_plain_int8_meets_the_target():
    q = nd.quantize(_net(), _batches(), report=False, backend="reference")  # logits at ~40 dB: over 20
    rep = q.quantization
    assert rep.wide == [] and rep.wide_weights == [] and list(rep.wide_scores) == [0]
    assert rep.wide_sensitivity == {}  # decided before any sensitivity analysis
    assert not [n for n in q.graph.nodes if RESIDUAL in n.name]


def test_a_top1_target_for_auto_widening_needs_class_score_outputs():
    """wide_activations='auto' estimates top-1 on class-score outputs (a softmax's): with only logits
    (a linear layer's) a min_top1 the user gave was silently ignored, nothing widened."""
    with pytest.raises(NetdslError, match=r"min_top1 with wide_activations='auto'.*'small_cnn'.*logits \(from linear\)"):
        nd.quantize(_net(), _batches(2), wide_activations="auto", min_top1=0.999, report=False, backend="reference")


def test_widening_many_layers_warns_that_int8_may_be_slower_than_float():
    """Where 'auto' needs second levels on many layers (FER: 41 more INT8 layers for 23) the network
    may run slower than float32: quantize says so, with the alternatives; not where few or none."""
    import warnings
    net = _net()
    for name, p in net.graph.params.items():  # weights int8 holds exactly: only activations get widened
        if name.endswith(".w"):
            p.source = (lambda a: (lambda: a))(np.sign(p.value()).astype(np.float32) * 0.1)
    kw = dict(backend="reference", bias_correction=False, equalize=None, wide_activations="auto")
    with pytest.warns(UserWarning, match=r"network 'small_cnn' met its accuracy target only with two-level.*"
                                         r"\d+ more INT8 layers for its 4 quantized ones.*slower than float32"
                                         r".*wide_activations='none'.*dB output SQNR on the calibration data"):
        q = nd.quantize(net, _batches(), min_sqnr=60.0, **kw)
    rep = q.quantization
    assert rep.wide_layers >= 2 and rep.wide_float == [] and f"{rep.wide_layers} more INT8 layers" in str(rep)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert nd.quantize(net, _batches(), min_sqnr=5.0, report=False, **kw).quantization.wide_layers == 0


def test_a_layer_with_a_wide_input_and_wide_weights_runs_in_float():
    """Three INT8 copies (wide input x wide weights) approximate what one float layer computes exactly:
    'auto' keeps such a layer float, drops its items from the wide lists, and the report says so; the
    other layers stay INT8 (at 70 dB every layer was folded: the checks below held for the float network)."""
    net = _net()
    kw = dict(wide_activations="auto", min_sqnr=46.0, backend="reference", bias_correction=False, equalize=None)
    with pytest.warns(UserWarning, match=r"\(1 more layer kept float instead of three INT8 copies\)"):
        rep = nd.quantize(net, _batches(), **kw).quantization
    assert rep.wide_float and rep.kept_float == rep.wide_float and not set(rep.wide_float) & set(rep.wide_weights)
    assert "kept in float instead of three INT8 copies" in str(rep)
    with pytest.warns(UserWarning):
        q = nd.quantize(net, _batches(), report=False, **kw)
    names = {n.name for n in q.graph.nodes}
    for layer in rep.wide_float:
        assert layer + RESIDUAL not in names
        assert not [n for n in q.graph.nodes if n.op == "dequantize_linear" and n.name.startswith(layer + ".")]
    assert len([n for n in q.graph.nodes if n.op == "quantize_linear"]) >= 3  # the other layers' inputs
    f = nd.Network.from_graph(net.graph)
    assert _sqnr(f, q, _batches(), "logits") >= 46.0


def test_a_matmul_of_two_wide_tensors_runs_in_float_and_a_shared_input_stays_wide():
    """fold_triples on a matmul of two activations (two wide inputs: three INT8 copies too) and on one of
    three linear layers reading one wide tensor: the matmul and that layer are float, the tensor stays wide
    for the other two, and the report says why each layer is float."""
    import netdsl.functional as F
    from netdsl.quantization.plan import QuantPlan, fold_triples
    from netdsl.quantization.report import QuantizationReport
    net = nd.Network("mm")
    f = net.input("f", ("N", 8))
    a, b, c = (F.linear(f, net.parameter(f"{k}.w", (4, 8)), None, name=k) for k in ("fa", "fb", "fc"))
    m = F.matmul(F.reshape(a, (-1, 2, 2), name="ra"), F.reshape(b, (-1, 2, 2), name="rb"), name="mm")
    net.output(F.add(F.flatten(m), c), "y")
    net.init_random(0)
    plan = QuantPlan(wide=["f", "ra", "rb"], wide_weights=["fa"])
    fold_triples(net.graph, plan, ())
    assert plan.wide_float == ["fa", "mm"] and plan.keep_float == ["fa", "mm"]
    assert plan.wide == ["f"] and plan.wide_weights == []  # fb and fc still read f in two levels
    text = str(QuantizationReport("mse", "reference", wide=plan.wide, wide_float=plan.wide_float,
                                  wide_scores={0: (10.0, 1.0), 1: (30.0, 1.0)}, wide_target=(20.0, 0.995)))
    assert "kept in float instead of three INT8 copies (a wide input and wide weights, or two wide inputs): " \
           "fa, mm" in text, text


def test_auto_that_keeps_every_layer_float_says_so():
    """Where 'auto' met its target only with every layer's input and weights wide, every layer runs in
    float (no three INT8 copies) and the quantized network is the float one: that came without a word
    (the cost warning counted against no quantized layers)."""
    net = _net()
    with pytest.warns(UserWarning, match=r"network 'small_cnn' met its accuracy target only by keeping every layer "
                                         r"float \(4 layers instead of three INT8 copies each\): nothing is quantized"
                                         r".*wide_activations='none' gives plain INT8 \(\d+\.\d dB output SQNR"):
        q = nd.quantize(net, _batches(), wide_activations="auto", min_sqnr=199.0, backend="reference",
                        bias_correction=False, equalize=None, report=False)
    assert sorted(q.quantization.wide_float) == ["c1", "c2", "fc", "head"]
    assert not [n for n in q.graph.nodes if n.op == "quantize_linear"]


@pytest.mark.parametrize("n", [1, 2])
def test_counts_in_the_wide_messages_take_the_number_of_their_noun(n):
    """'1 more layers kept float' (and 'read' after one layer): every count in quantize's wide messages,
    the report and the keep_float check takes its noun's number."""
    from netdsl.quantization import _wide_cost_message
    from netdsl.quantization.report import QuantizationReport
    s = "s" if n > 1 else ""
    warning = _wide_cost_message("net", n, n, {0: (12.0, 0.9)}, n)
    assert f"{n} more INT8 layer{s} for its {n} quantized one{s} ({n} more layer{s} kept float instead" in warning
    assert f"keeping every layer float ({n} layer{s} instead" in _wide_cost_message("net", 0, 0, {}, n)
    text = str(QuantizationReport("mse", "reference", wide=["x"], wide_layers=n, wide_scores={n: (30.0, 1.0)},
                                  wide_target=(20.0, 0.995), kept_scores={n: (30.0, 1.0)}, keep_target=(20.0, None)))
    assert f"  {n} more INT8 layer{s} read{'' if s else 's'} the second levels" in text, text
    assert f"the {n} tensor{s} whose quantization alone" in text and f"keep_float='auto': {n} layer{s} kept" in text
    net = nd.Network("one" if n == 1 else "two")
    y = net.input("x", ("N", 4))
    for k in range(n):
        y = nd.linear(y, net.parameter(f"l{k}.w", (4, 4)))
    net.output(y, "y")
    net.init_random(0)
    with pytest.raises(NetdslError, match=f"has {n} layer{s} to quantize$"):
        nd.quantize(net, [np.random.default_rng(n).standard_normal((2, 4)).astype(np.float32)], keep_float=n + 1)


def test_the_wide_warning_points_at_the_users_line_from_both_entry_points():
    """netdsl.quantization.quantize called directly warned one frame off (netdsl.quantize's stacklevel)."""
    import warnings
    import netdsl.quantization as ndq
    kw = dict(wide_activations="auto", min_sqnr=199.0, backend="reference", bias_correction=False, equalize=None,
              report=False)
    net = _net()
    for entry in (nd.quantize, ndq.quantize):
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            line = sys._getframe().f_lineno + 1
            entry(net, _batches(), **kw)
        [w] = [w for w in got if "met its accuracy target only" in str(w.message)]
        assert (w.filename, w.lineno) == (__file__, line), (entry.__module__, w.filename, w.lineno)
