"""nms: per-class non-maximum suppression with a padded, fixed-size output and a count.

In: ``boxes`` (N, B, 4) and ``scores`` (N, B, C) (what ``yolo_decode`` gives, concatenated over heads).
Out: ``detections`` (N, max_detections, 6), rows ``[x1, y1, x2, y2, score, class]`` (boxes as corners,
x1 <= x2, y1 <= y2, whatever ``box_format`` came in; ``class`` as a float), padded with rows
``[0, 0, 0, 0, 0, -1]``; ``count`` (N,) int32, the number of valid rows.

Selection and order (the same in the NumPy reference, kernel.cu and cpu.cpp):

1. per image and class, the candidates are the boxes with score > ``score_threshold``, visited by
   score descending, then box index ascending;
2. a candidate is kept unless a box already kept for that class overlaps it with IoU >
   ``iou_threshold``; boxes that do not overlap, or have zero area, never suppress (as ONNX
   ``NonMaxSuppression``, boxes given by any two opposite corners);
3. the kept boxes of all classes are ranked by score descending, then class ascending, then box
   index ascending, and the first ``max_detections`` are written.

Thresholds are compared as float32 values. Implementations compute IoU in float32 (the reference in
float64): only an IoU within rounding of ``iou_threshold`` can be decided differently.
"""
from __future__ import annotations

import os

import numpy as np

from netdsl.dtypes import DType
from netdsl.errors import ShapeError
from netdsl.graph import TensorSpec
from netdsl.ops import Attr
from netdsl.plugins import declare
from netdsl.plugins.cuda import CudaKernel, KernelError, Launch, ceil_div

DTYPES = ("float32", "float16")
SHARED_LIMIT = 48 * 1024


def infer(boxes: TensorSpec, scores: TensorSpec, *, iou_threshold: float, score_threshold: float,
          max_detections: int, box_format: str) -> list[TensorSpec]:
    if boxes.dtype.value not in DTYPES or scores.dtype != boxes.dtype:
        raise ShapeError(f"nms takes boxes and scores of one dtype ({' or '.join(DTYPES)}), "
                         f"got {boxes.dtype} and {scores.dtype}")
    if boxes.rank != 3 or boxes.shape[2] != 4 or scores.rank != 3:
        raise ShapeError(f"nms takes boxes (N, B, 4) and scores (N, B, C), got {boxes} and {scores}")
    for i, what in ((0, "batch"), (1, "box count")):
        a, b = boxes.shape[i], scores.shape[i]
        if a != b and isinstance(a, int) and isinstance(b, int):
            raise ShapeError(f"nms: boxes and scores differ in {what} ({a} vs {b})")
    if max_detections < 1:
        raise ShapeError(f"nms: max_detections must be >= 1, got {max_detections}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ShapeError(f"nms: iou_threshold must be in [0, 1], got {iou_threshold}")
    n = boxes.shape[0]
    return [TensorSpec(boxes.dtype, (n, max_detections, 6)), TensorSpec(DType.int32, (n,))]


def corners(boxes: np.ndarray, box_format: str) -> np.ndarray:
    """(..., 4) boxes -> (..., 4) corners x1 <= x2, y1 <= y2."""
    a, b, c, d = (boxes[..., k] for k in range(4))
    if box_format == "cxcywh":
        a, b, c, d = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    return np.stack([np.minimum(a, c), np.minimum(b, d), np.maximum(a, c), np.maximum(b, d)], axis=-1)


def suppresses(kept: np.ndarray, others: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Which of ``others`` (K, 4 corners) the box ``kept`` suppresses: IoU > threshold."""
    iw = np.minimum(kept[2], others[:, 2]) - np.maximum(kept[0], others[:, 0])
    ih = np.minimum(kept[3], others[:, 3]) - np.maximum(kept[1], others[:, 1])
    area_k = (kept[2] - kept[0]) * (kept[3] - kept[1])
    area_o = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    union = area_k + area_o - inter
    ok = (inter > 0) & (area_k > 0) & (area_o > 0) & (union > 0)
    return ok & (inter / np.where(ok, union, 1.0) > iou_threshold)


def select(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, score_threshold: float,
           max_detections: int, box_format: str) -> list[tuple[float, int, int]]:
    """One image: the ranked (score, class, box index) picks, at most ``max_detections``."""
    xyxy = corners(boxes.astype(np.float64), box_format)
    s_thr, i_thr = float(np.float32(score_threshold)), float(np.float32(iou_threshold))
    picks = []
    for c in range(scores.shape[1]):
        s = scores[:, c].astype(np.float64)
        cand = np.nonzero(s > s_thr)[0]
        order = cand[np.lexsort((cand, -s[cand]))]          # score descending, then index ascending
        alive = np.ones(len(order), bool)
        kept = 0
        for k in range(len(order)):
            if not alive[k]:
                continue
            i = order[k]
            picks.append((-s[i], c, int(i)))
            kept += 1
            if kept == max_detections:                      # later picks of this class rank lower
                break
            alive[k + 1:] &= ~suppresses(xyxy[i], xyxy[order[k + 1:]], i_thr)
    picks.sort()
    return [(-s, c, i) for s, c, i in picks[:max_detections]]


def reference(boxes: np.ndarray, scores: np.ndarray, *, iou_threshold: float, score_threshold: float,
              max_detections: int, box_format: str) -> list[np.ndarray]:
    n = boxes.shape[0]
    if scores.shape[:2] != boxes.shape[:2]:
        raise ShapeError(f"nms: boxes {boxes.shape} and scores {scores.shape} differ in batch or box count")
    dets = np.zeros((n, max_detections, 6), boxes.dtype)
    dets[..., 5] = -1
    count = np.zeros(n, np.int32)
    for b in range(n):
        picks = select(boxes[b], scores[b], iou_threshold, score_threshold, max_detections, box_format)
        xyxy = corners(boxes[b].astype(np.float64), box_format)
        for k, (s, c, i) in enumerate(picks):
            dets[b, k] = (*xyxy[i], s, c)
        count[b] = len(picks)
    return [dets, count]


def geometry(shapes: list, attrs: dict) -> Launch:
    n, b, _ = shapes[0]
    c = shapes[1][2]
    max_det = attrs["max_detections"]
    shared = ceil_div(b, 32) * 4 + max_det * 12
    if shared > SHARED_LIMIT:
        raise KernelError(f"plugin 'nms' kernel kernel.cu: {b} boxes and max_detections {max_det} need {shared} "
                          f"bytes of shared memory, more than {SHARED_LIMIT}")
    return Launch(grid=n, block=256, shared_mem=shared,
                  scalars=[("int", b), ("int", c), ("int", max_det), ("float", attrs["iou_threshold"]),
                           ("float", attrs["score_threshold"]), ("int", int(attrs["box_format"] == "cxcywh"))])


KERNEL = CudaKernel.from_file(os.path.join(os.path.dirname(__file__), "kernel.cu"),
                              entries={"float32": "nms<float>", "float16": "nms<nd_half>"},
                              launch=geometry, plugin="nms", options=("--std=c++17", "--fmad=false"))

nms = declare(
    "nms", inputs=("boxes", "scores"), outputs=("detections", "count"), infer=infer, reference=reference,
    replace=True,
    attrs={"iou_threshold": Attr("float", 0.45), "score_threshold": Attr("float", 0.25),
           "max_detections": Attr("int", 100), "box_format": Attr("str", "xyxy", choices=("xyxy", "cxcywh"))},
    doc=__doc__ or "")
