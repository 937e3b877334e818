"""A uint8 image normalized by preprocess is quantized exactly: the first convolution's quantized input
is the image itself, the float function is unchanged, and the engines still run every convolution in
8 bits."""
from __future__ import annotations

import numpy as np

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference
from netdsl.passes.fold import optimize
from netdsl.quantization.calibrate import observing
from netdsl.quantization.image_inputs import exact_image_inputs
from netdsl.quantization.report import sqnr_db

from .test_quantize import engines_agree_and_run_8_bit


def _net(first_padding: int = 0, mean: tuple = (127.5,)) -> nd.Network:
    net = nd.Network("uint8_cnn")
    x = net.input("image", ("N", 16, 16, 3), "uint8", layout="NHWC", preprocess=nd.Preprocess(mean=mean, scale=(127.5,)))
    y = F.relu(F.conv(x, net.parameter("c1.w", (8, 3, 3, 3)), net.parameter("c1.b", (8,)), padding=first_padding,
                      name="c1"))
    y = F.relu(F.conv(y, net.parameter("c2.w", (8, 8, 3, 3)), None, padding=1, name="c2"))
    net.output(F.linear(F.flatten(F.global_avg_pool(y)), net.parameter("fc.w", (5, 8)), None, name="fc"), "logits")
    net.init_random(3)
    return net


def _images(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [{"image": rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)} for _ in range(n)]


def test_the_quantized_first_input_is_the_image_and_the_function_is_unchanged():
    net = _net(mean=(123.675, 116.28, 103.53))  # per-channel means: one even zero point, per-channel shifts
    q = nd.quantize(net, _images(2, 1), backend="reference", report=False)
    assert q.quantization.exact_inputs == ["image/preprocess/exact_shift"]
    assert "quantized exactly" in str(q.quantization)
    feeds = _images(1, 9)[0]
    qname = next(n.outputs[0].name for n in q.graph.nodes if n.op == "quantize_linear"
                 and n.inputs[0].name == "image/preprocess/exact_shift")
    got = reference.run(observing(q.graph, [qname]), feeds)[qname]
    np.testing.assert_array_equal(got, feeds["image"].transpose(0, 3, 1, 2))  # uint8 levels = the pixels
    g = optimize(net.graph)
    shifted, pinned = exact_image_inputs(g, (), "asymmetric")
    assert set(pinned) == {"image/preprocess/exact_shift"}
    want = reference.run(g, feeds)["logits"]
    np.testing.assert_allclose(reference.run(shifted, feeds)["logits"], want, rtol=1e-5, atol=1e-5 * np.abs(want).max())  # float32 shift and bias


def test_a_padded_first_convolution_keeps_the_plain_input():
    """Zero padding of the shifted tensor would add the shift at the borders: no shift there."""
    g = optimize(_net(first_padding=1).graph)
    shifted, pinned = exact_image_inputs(g, (), "asymmetric")
    assert shifted is g and pinned == {}
    g = optimize(_net().graph)
    same, full = exact_image_inputs(g, (), "symmetric")  # int8 without a zero point: no shift, whole range
    assert same is g and full == {"image/preprocess": (-1.0, 1.0)}


def test_symmetric_int8_keeps_the_whole_image_range_and_the_engines_agree():
    """mse clipped the darkest/brightest pixels of the int8 image by a fraction of a step; OpenVINO, which
    folds the preprocessing into the uint8 input's quantization, did not clip them (3% of the output)."""
    rng = np.random.default_rng(0)
    feeds = {"image": rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)}
    feeds["image"][:, :2] = 255  # bright and dark rows: the pixels a clipped range cuts
    feeds["image"][:, -2:] = 0
    q = nd.quantize(_net(), _images(4, 2), backend="reference", report=False, scheme="symmetric",
                    equalize=None, bias_correction=False)
    assert q.quantization.exact_inputs == []
    want = reference.run(q.graph, feeds)["logits"]
    for backend in ("openvino", "onnx"):
        got = nd.compile(q, backend)(feeds)["logits"]
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-3 * np.abs(want).max(), err_msg=backend)


def test_exact_input_gains_and_runs_in_8_bit_on_the_engines():
    net = _net()
    batches, fresh = _images(4, 1), _images(2, 21)
    q = nd.quantize(net, batches, backend="reference", report=False, equalize=None, bias_correction=False)
    plain = nd.quantize(net, batches, backend="reference", report=False, equalize=None, bias_correction=False,
                        exclude=["c2", "fc"])
    assert plain.quantization.exact_inputs  # the first layer alone: only its weights lose anything now
    ref = np.concatenate([reference.run(net.graph, f)["logits"] for f in fresh])
    first = np.concatenate([reference.run(plain.graph, f)["logits"] for f in fresh])
    assert sqnr_db(ref, first) > 58, sqnr_db(ref, first)  # 65.4 dB; 51.5 with the plain input
    convs = engines_agree_and_run_8_bit(q, fresh[0], "logits")
    assert len(convs) == 2 and all(p in ("u8", "i8") for _, p in convs), convs


def test_a_mean_on_the_grid_still_runs_the_first_convolution_in_8_bit():
    """mean 128 (or 0) is already an even zero point: the input is still quantized exactly, but through a
    shift (OpenVINO runs the first convolution in f32 when its exact quantization sits on the plain input)."""
    for mean in ((128.0,), (0.0,)):
        net = _net(mean=mean)
        q = nd.quantize(net, _images(2, 1), backend="reference", report=False)
        assert q.quantization.exact_inputs == ["image/preprocess/exact_shift"], mean
        g = optimize(net.graph)
        feeds = _images(1, 5)[0]
        want = reference.run(g, feeds)["logits"]
        np.testing.assert_allclose(reference.run(exact_image_inputs(g, (), "asymmetric")[0], feeds)["logits"], want,
                                   rtol=1e-5, atol=1e-5 * np.abs(want).max())
        convs = engines_agree_and_run_8_bit(q, feeds, "logits")
        assert len(convs) == 2 and all(p in ("u8", "i8") for _, p in convs), (mean, convs)
