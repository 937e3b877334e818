"""yolo_decode: the reference against a loop transcription of darknet's [yolo] decode, symbolic
batch/spatial shapes, errors naming the layer, and the CUDA kernel on a GPU (f32, f16)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.errors import ShapeError
from netdsl.plugins import conformance
from netdsl.plugins.cuda import run_arrays
from tests.plugins.helpers import check_example, gpu_stream, launchers, load_plugin

P = load_plugin("yolo_decode")
ANCHORS = (10.0, 14.0, 23.0, 27.0, 37.0, 58.0)   # yolov3-tiny mask 0,1,2

CASES = [
    conformance.Case("yolov3", [("N", 3 * (5 + 4), 5, 6)], dict(anchors=ANCHORS, stride=32.0, num_classes=4),
                     sizes={"N": 2}),
    conformance.Case("yolov4_cxcywh_any_size", [("N", 3 * (5 + 2), "H", "W")],
                     dict(anchors=ANCHORS, stride=16.0, num_classes=2, scale_x_y=1.05, box_format="cxcywh"),
                     sizes={"N": 2, "H": 4, "W": 3}),
]


@pytest.mark.parametrize("check", conformance.checks(P.yolo_decode, CASES), ids=str)
def test_conformance(check):
    check.run_test()


def test_example_passes_netdsl_check():
    check_example("yolo_decode")


def darknet_boxes(x: np.ndarray, anchors, net_w: int, net_h: int, classes: int, scale_x_y: float = 1.0):
    """darknet yolo_layer.c: activations (logistic on x, y, objectness, classes; scale_x_y as AlexeyAB's
    scal_add_cpu), entry_index, get_yolo_box (normalized by the network size), prob = objectness * class."""
    batch, _, lh, lw = x.shape
    n_anchors = len(anchors) // 2
    flat = x.astype(np.float64).ravel()
    outputs = lh * lw * n_anchors * (5 + classes)

    def entry_index(b, location, entry):
        n, loc = location // (lw * lh), location % (lw * lh)
        return b * outputs + n * lw * lh * (4 + classes + 1) + entry * lw * lh + loc

    def logistic(v):
        return 1.0 / (1.0 + math.exp(-v))

    boxes, probs = [], []
    for b in range(batch):
        for n in range(n_anchors):
            for j in range(lh):
                for i in range(lw):
                    loc = n * lw * lh + j * lw + i
                    box_index = entry_index(b, loc, 0)
                    tx = logistic(flat[box_index]) * scale_x_y - 0.5 * (scale_x_y - 1)
                    ty = logistic(flat[box_index + lw * lh]) * scale_x_y - 0.5 * (scale_x_y - 1)
                    bx = (i + tx) / lw
                    by = (j + ty) / lh
                    bw = math.exp(flat[box_index + 2 * lw * lh]) * anchors[2 * n] / net_w
                    bh = math.exp(flat[box_index + 3 * lw * lh]) * anchors[2 * n + 1] / net_h
                    objectness = logistic(flat[entry_index(b, loc, 4)])
                    boxes.append((bx * net_w, by * net_h, bw * net_w, bh * net_h))
                    probs.append([objectness * logistic(flat[entry_index(b, loc, 5 + c)]) for c in range(classes)])
    cells = n_anchors * lh * lw
    return np.array(boxes).reshape(batch, cells, 4), np.array(probs).reshape(batch, cells, classes)


@pytest.mark.parametrize("scale_x_y", [1.0, 1.05])
def test_reference_is_darknet_yolo_decode(scale_x_y):
    rng = np.random.default_rng()
    classes, h, w, stride = 3, 5, 4, 32
    x = rng.normal(0, 2, (2, 3 * (5 + classes), h, w))
    boxes, scores = P.reference(x, anchors=ANCHORS, stride=stride, num_classes=classes, scale_x_y=scale_x_y,
                                box_format="cxcywh")
    dk_boxes, dk_scores = darknet_boxes(x, ANCHORS, w * stride, h * stride, classes, scale_x_y)
    np.testing.assert_allclose(boxes, dk_boxes, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(scores, dk_scores, rtol=1e-12, atol=1e-15)
    xyxy, _ = P.reference(x, anchors=ANCHORS, stride=stride, num_classes=classes, scale_x_y=scale_x_y,
                          box_format="xyxy")
    np.testing.assert_allclose(xyxy[..., :2], dk_boxes[..., :2] - dk_boxes[..., 2:] / 2, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(xyxy[..., 2:], dk_boxes[..., :2] + dk_boxes[..., 2:] / 2, rtol=1e-12, atol=1e-9)


def _net(shape, **attrs) -> nd.Network:
    net = nd.Network("yolo_decode_test")
    x = net.input("x", shape)
    boxes, scores = P.yolo_decode(x, name="yolo1", **attrs)
    net.output(boxes, "boxes")
    net.output(scores, "scores")
    return net


def test_symbolic_batch_and_spatial_dims():
    net = _net(("N", 3 * 7, "H", "W"), anchors=ANCHORS, stride=16, num_classes=2)
    boxes, scores = net.graph.outputs
    assert [str(d) for d in boxes.shape] == ["N", "3*H*W", "4"]
    assert [str(d) for d in scores.shape] == ["N", "3*H*W", "2"]
    rng = np.random.default_rng()
    for shape in [(1, 21, 2, 3), (4, 21, 5, 5)]:
        x = rng.normal(0, 2, shape).astype(np.float32)
        got = reference.run(net.graph, {"x": x})
        want = P.reference(x.astype(np.float64), anchors=ANCHORS, stride=16, num_classes=2, scale_x_y=1.0,
                           box_format="xyxy")
        np.testing.assert_allclose(got["boxes"], want[0], rtol=1e-12)
        np.testing.assert_allclose(got["scores"], want[1], rtol=1e-12)


def test_errors_name_the_layer():
    with pytest.raises(ShapeError, match=r"yolo_decode 'yolo1' at .*test_yolo_decode.py:\d+: yolo_decode: 3 anchors x "
                                         r"\(5 \+ 80 classes\) = 255 channels expected, input has 24"):
        _net((1, 24, 13, 13), anchors=ANCHORS, stride=32, num_classes=80)
    with pytest.raises(ShapeError, match="anchors must be 1 to 16 \\(w, h\\) pairs, got 5 values"):
        _net((1, 24, 13, 13), anchors=ANCHORS[:5], stride=32, num_classes=3)


@pytest.mark.parametrize("launcher", launchers())
@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float16", 2e-3)])
@pytest.mark.parametrize("box_format,scale_x_y,classes,hw", [("xyxy", 1.0, 80, (13, 13)), ("cxcywh", 1.2, 3, (7, 9)),
                                                              ("xyxy", 1.05, 1, (26, 20))])
def test_gpu_kernel_matches_reference(launcher, dtype, tol, box_format, scale_x_y, classes, hw):
    stream = gpu_stream()
    rng = np.random.default_rng()
    x = rng.normal(0, 1.5, (2, 3 * (5 + classes), *hw)).astype(dtype)
    attrs = dict(anchors=ANCHORS, stride=32.0, num_classes=classes, scale_x_y=scale_x_y, box_format=box_format)
    ref_boxes, ref_scores = P.reference(x.astype(np.float64), **attrs)
    boxes, scores = run_arrays(P.KERNEL, dtype, [x], [(ref_boxes.shape, dtype), (ref_scores.shape, dtype)], attrs,
                               stream, launcher=launcher)
    scale = np.abs(ref_boxes).max()
    np.testing.assert_allclose(boxes.astype(np.float64), ref_boxes, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(scores.astype(np.float64), ref_scores, rtol=tol, atol=tol)
