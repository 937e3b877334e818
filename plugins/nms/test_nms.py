"""nms: the reference against a brute-force greedy NMS written from the definition and against ONNX
Runtime's NonMaxSuppression; tie-breaking; symbolic batch; errors; the CUDA kernel on a GPU."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.errors import ShapeError
from netdsl.plugins import conformance
from netdsl.plugins.cuda import run_arrays
from tests.plugins.helpers import check_example, gpu_stream, launchers, load_plugin

P = load_plugin("nms")


def brute_force(boxes, scores, iou_thr, score_thr, max_det):
    """Greedy per-class NMS in plain Python: pick the best remaining (score, then lowest index), drop
    what overlaps it by IoU > thr, repeat; then rank all picks by (score desc, class, index)."""
    f32 = np.float32

    def corners(b):
        b = [f32(v) for v in b]
        return min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])

    def iou(a, b):   # float32 scalar arithmetic, as the op defines it
        a, b = corners(a), corners(b)
        iw = min(a[2], b[2]) - max(a[0], b[0])
        ih = min(a[3], b[3]) - max(a[1], b[1])
        if iw <= 0 or ih <= 0:
            return f32(0)
        aa, ab = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
        if aa <= 0 or ab <= 0 or aa + ab - iw * ih <= 0:
            return f32(0)
        return iw * ih / (aa + ab - iw * ih)

    iou_thr = f32(iou_thr)
    boxes, scores = boxes.tolist(), scores.tolist()
    picks = []
    for c in range(len(scores[0])):
        remaining = [i for i in range(len(boxes)) if scores[i][c] > score_thr]
        while remaining:
            best = max(remaining, key=lambda i: (scores[i][c], -i))
            picks.append((scores[best][c], c, best))
            remaining = [i for i in remaining if i != best and not iou(boxes[best], boxes[i]) > iou_thr]
    picks.sort(key=lambda p: (-p[0], p[1], p[2]))
    return picks[:max_det]


def random_problem(rng, n, b, c, integer=False, ties=False, size=100.0):
    """Clustered boxes (so that many overlap), corners given in either order; scores in (0, 1)."""
    centers = rng.uniform(0, size, (n, max(b // 6, 1), 2))[:, rng.integers(0, max(b // 6, 1), b)]
    wh = rng.uniform(4, size / 4, (n, b, 2))
    p1 = centers + rng.normal(0, size / 40, (n, b, 2)) - wh / 2
    boxes = np.concatenate([p1, p1 + wh], axis=-1)
    flip = rng.random((n, b)) < 0.3
    boxes[flip] = boxes[flip][:, [2, 3, 0, 1]]
    scores = rng.uniform(0.01, 1, (n, b, c))
    if integer:
        boxes = np.round(boxes)
    if ties:
        scores = np.ceil(scores * 16) / 16         # many exact ties, exact in float16 too
    return boxes, scores


@pytest.mark.parametrize("ties", [False, True])
def test_reference_is_brute_force_greedy(ties):
    rng = np.random.default_rng()
    boxes, scores = random_problem(rng, 3, 60, 4, ties=ties)
    for iou_thr, score_thr, max_det in [(0.45, 0.25, 30), (0.3, 0.0, 500), (0.7, 0.6, 5)]:
        dets, count = P.reference(boxes, scores, iou_threshold=iou_thr, score_threshold=score_thr,
                                  max_detections=max_det, box_format="xyxy")
        for n in range(3):
            want = brute_force(boxes[n], scores[n], float(np.float32(iou_thr)), float(np.float32(score_thr)), max_det)
            assert count[n] == len(want)
            got = [(dets[n, k, 4], int(dets[n, k, 5]), k) for k in range(count[n])]
            assert [(s, c) for s, c, _ in got] == [(s, c) for s, c, _ in want]
            corners = P.corners(boxes[n, [i for _, _, i in want]], "xyxy")
            np.testing.assert_array_equal(dets[n, :count[n], :4], corners)
            assert (dets[n, count[n]:, :5] == 0).all() and (dets[n, count[n]:, 5] == -1).all()


def test_tie_breaking_is_documented_order():
    boxes = np.array([[[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60], [50, 50, 60, 60]]], np.float64)
    scores = np.array([[[0.5, 0.5], [0.5, 0.9], [0.5, 0.5], [0.7, 0.5]]], np.float64)
    dets, count = P.reference(boxes, scores, iou_threshold=0.5, score_threshold=0.1, max_detections=10,
                              box_format="xyxy")
    # class 0: box 3 (0.7) then box 0 (0.5, lowest index of the tie 0/1; 1 suppressed by 0); 2 suppressed by 3
    # class 1: box 1 (0.9), then box 2 (0.5; 3 is suppressed by 2, the lower index of the tie)
    got = [(float(dets[0, k, 4]), int(dets[0, k, 5]), tuple(dets[0, k, :4])) for k in range(count[0])]
    assert got == [(0.9, 1, (0, 0, 10, 10)), (0.7, 0, (50, 50, 60, 60)), (0.5, 0, (0, 0, 10, 10)),
                   (0.5, 1, (50, 50, 60, 60))]


#  IoU of box 1 with box 0 is 72/160 = 0.45 exactly: float32(0.45) is not > float32(0.45), so nothing is
#  suppressed (float64 arithmetic would give 0.45 > 0.4499999881 and suppress it)
AT_THRESHOLD = (np.array([[[48, 86, 68, 94], [51, 86, 60, 94], [0, 0, 4, 4]]], np.float32),
                np.array([[[0.9], [0.8], [0.7]]], np.float32))


def test_iou_equal_to_threshold_does_not_suppress():
    dets, count = P.reference(*AT_THRESHOLD, iou_threshold=0.45, score_threshold=0.1, max_detections=5,
                              box_format="xyxy")
    assert count[0] == 3
    assert brute_force(AT_THRESHOLD[0][0], AT_THRESHOLD[1][0], 0.45, 0.1, 5) == \
        [(np.float32(0.9), 0, 0), (np.float32(0.8), 0, 1), (np.float32(0.7), 0, 2)]
    assert _onnxruntime_nms(*AT_THRESHOLD, 0.45, 0.1, 3, "xyxy").tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 2]]


def _onnxruntime_nms(boxes, scores, iou_thr, score_thr, per_class, box_format):
    """ONNX Runtime's NonMaxSuppression: selected (batch, class, box) rows."""
    pytest.importorskip("onnx", reason="onnx not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    from onnx import TensorProto, helper
    consts = [helper.make_tensor("m", TensorProto.INT64, [1], [per_class]),
              helper.make_tensor("i", TensorProto.FLOAT, [1], [iou_thr]),
              helper.make_tensor("t", TensorProto.FLOAT, [1], [score_thr])]
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "m", "i", "t"], ["sel"],
                            center_point_box=int(box_format == "cxcywh"))
    g = helper.make_graph([node], "nms", [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, None),
                                          helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)],
                          [helper.make_tensor_value_info("sel", TensorProto.INT64, None)], consts)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"boxes": boxes, "scores": scores.transpose(0, 2, 1).copy()})[0]


@pytest.mark.parametrize("box_format", ["xyxy", "cxcywh"])
def test_reference_matches_onnxruntime_non_max_suppression(box_format):
    rng = np.random.default_rng()
    n, b, c = 2, 80, 3
    boxes, scores = random_problem(rng, n, b, c, integer=True)    # many IoUs of small fractions
    if box_format == "cxcywh":
        xyxy = P.corners(boxes, "xyxy")
        boxes = np.concatenate([(xyxy[..., :2] + xyxy[..., 2:]) / 2, xyxy[..., 2:] - xyxy[..., :2]], axis=-1)
    boxes, scores = boxes.astype(np.float32), scores.astype(np.float32)
    iou_thr, score_thr = 0.4, 0.3
    selected = _onnxruntime_nms(boxes, scores, iou_thr, score_thr, b, box_format)
    for i in range(n):
        picks = P.select(boxes[i], scores[i], iou_thr, score_thr, b * c, box_format)
        assert {(cl, bx) for _, cl, bx in picks} == {(int(cl), int(bx)) for bi, cl, bx in selected if bi == i}


def _feeds(rng, shapes):
    """Clustered integer-corner boxes and distinct scores k/2048, exact in float16 too (no ties: ONNX
    Runtime's NonMaxSuppression visits equal scores in its own order)."""
    (n, b, _), (_, _, c) = shapes
    boxes, _ = random_problem(rng, n, b, c, integer=True)
    scores = np.stack([rng.choice(np.arange(1, 2048), b * c, replace=False).reshape(b, c) / 2048 for _ in range(n)])
    return [boxes, scores]


CASES = [
    conformance.Case("detections", [("N", 120, 4), ("N", 120, 3)], dict(max_detections=20), sizes={"N": 2},
                     feeds=_feeds),
    conformance.Case("cxcywh_any_count", [("N", "B", 4), ("N", "B", 2)],
                     dict(max_detections=300, iou_threshold=0.3, score_threshold=0.1, box_format="cxcywh"),
                     sizes={"N": 2, "B": 90}, feeds=_feeds),
]


@pytest.mark.parametrize("check", conformance.checks(P.nms, CASES), ids=str)
def test_conformance(check):
    check.run_test()


def test_example_passes_netdsl_check():
    check_example("nms")


def _net(bshape, sshape, **attrs):
    net = nd.Network("nms_test")
    dets, count = P.nms(net.input("boxes", bshape), net.input("scores", sshape), name="nms1", **attrs)
    net.output(dets, "detections")
    net.output(count, "count")
    return net


def test_symbolic_batch_and_box_count():
    net = _net(("N", "B", 4), ("N", "B", 3), max_detections=7)
    dets, count = net.graph.outputs
    assert [str(d) for d in dets.shape] == ["N", "7", "6"] and [str(d) for d in count.shape] == ["N"]
    assert count.dtype.value == "int32"
    rng = np.random.default_rng()
    for n, b in [(1, 5), (3, 40)]:
        boxes, scores = random_problem(rng, n, b, 3)
        got = reference.run(net.graph, {"boxes": boxes.astype(np.float32), "scores": scores.astype(np.float32)})
        want = P.reference(boxes.astype(np.float32).astype(np.float64), scores.astype(np.float32).astype(np.float64),
                           iou_threshold=0.45, score_threshold=0.25, max_detections=7, box_format="xyxy")
        np.testing.assert_array_equal(got["count"], want[1])
        np.testing.assert_allclose(got["detections"], want[0])


def test_errors_name_the_layer():
    with pytest.raises(ShapeError, match=r"nms 'nms1' at .*test_nms.py:\d+: nms: boxes and scores differ in box count \(10 vs 11\)"):
        _net((1, 10, 4), (1, 11, 3))
    with pytest.raises(ShapeError, match="nms takes boxes \\(N, B, 4\\)"):
        _net((1, 10, 5), (1, 10, 3))
    with pytest.raises(ShapeError, match="max_detections must be >= 1"):
        _net((1, 10, 4), (1, 10, 3), max_detections=0)


@pytest.mark.parametrize("launcher", launchers())
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("n,b,c,max_det,iou_thr,score_thr,fmt", [
    (2, 300, 4, 20, 0.45, 0.25, "xyxy"), (3, 2000, 6, 100, 0.5, 0.3, "cxcywh"),
    (1, 3000, 80, 300, 0.45, 0.5, "xyxy"), (2, 257, 1, 1000, 0.3, 0.0, "xyxy")])
def test_gpu_kernel_matches_reference(launcher, dtype, n, b, c, max_det, iou_thr, score_thr, fmt):
    stream = gpu_stream()
    rng = np.random.default_rng()
    boxes, scores = random_problem(rng, n, b, c, integer=True, ties=True, size=1000.0)   # exact in f16
    if fmt == "cxcywh":   # even sizes, integer centers: integer corners
        xyxy = P.corners(boxes, "xyxy")
        wh = 2 * np.round((xyxy[..., 2:] - xyxy[..., :2]) / 2)
        boxes = np.concatenate([np.round((xyxy[..., :2] + xyxy[..., 2:]) / 2), wh], axis=-1)
    boxes, scores = boxes.astype(dtype), scores.astype(dtype)
    attrs = dict(iou_threshold=iou_thr, score_threshold=score_thr, max_detections=max_det, box_format=fmt)
    ref_dets, ref_count = P.reference(boxes.astype(np.float64), scores.astype(np.float64), **attrs)
    dets, count = run_arrays(P.KERNEL, dtype, [boxes, scores], [(ref_dets.shape, dtype), (ref_count.shape, np.int32)],
                             attrs, stream, launcher=launcher)
    assert ref_count.min() > 0
    np.testing.assert_array_equal(count, ref_count)
    np.testing.assert_array_equal(dets.astype(np.float64), ref_dets)


@pytest.mark.parametrize("launcher", launchers())
def test_gpu_iou_equal_to_threshold(launcher):
    stream = gpu_stream()
    attrs = dict(iou_threshold=0.45, score_threshold=0.1, max_detections=5, box_format="xyxy")
    ref_dets, ref_count = P.reference(*AT_THRESHOLD, **attrs)
    dets, count = run_arrays(P.KERNEL, "float32", list(AT_THRESHOLD), [(ref_dets.shape, np.float32), ((1,), np.int32)],
                             attrs, stream, launcher=launcher)
    assert count.tolist() == [3]
    np.testing.assert_array_equal(dets, ref_dets)
