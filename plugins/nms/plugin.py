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

Box corners and IoU (``inter / (area_kept + area_other - inter)``) are computed in float32 and the
thresholds compared as float32 values, by the reference as by the kernels (CUDA built without FMA
contraction), so every implementation makes the same decisions, an IoU equal to the threshold
included (ONNX Runtime's NonMaxSuppression computes the same way).
"""
from __future__ import annotations

import os

import numpy as np

from netdsl.dtypes import DType
from netdsl.errors import ShapeError
from netdsl.graph import TensorSpec
from netdsl.ops import Attr
from netdsl.plugins import Cpu, declare
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
    """(..., 4) boxes -> (..., 4) float32 corners x1 <= x2, y1 <= y2 (float32 arithmetic, as every engine)."""
    b = np.asarray(boxes).astype(np.float32)
    a, y, c, d = (b[..., k] for k in range(4))
    if box_format == "cxcywh":
        half_w, half_h = c * np.float32(0.5), d * np.float32(0.5)
        a, y, c, d = a - half_w, y - half_h, a + half_w, y + half_h
    return np.stack([np.minimum(a, c), np.minimum(y, d), np.maximum(a, c), np.maximum(y, d)], axis=-1)


def suppresses(kept: np.ndarray, others: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Which of ``others`` (K, 4 float32 corners) the box ``kept`` suppresses: IoU > threshold, with
    IoU = inter / (area_kept + area_other - inter) evaluated in float32 in that order."""
    with np.errstate(divide="ignore", invalid="ignore"):
        iw = np.minimum(kept[2], others[:, 2]) - np.maximum(kept[0], others[:, 0])
        ih = np.minimum(kept[3], others[:, 3]) - np.maximum(kept[1], others[:, 1])
        area_k = (kept[2] - kept[0]) * (kept[3] - kept[1])
        area_o = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
        inter = iw * ih
        union = (area_k + area_o) - inter
        ok = (iw > 0) & (ih > 0) & (area_k > 0) & (area_o > 0) & (union > 0)
        return ok & (inter / union > np.float32(iou_threshold))


def select(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, score_threshold: float,
           max_detections: int, box_format: str) -> list[tuple[float, int, int]]:
    """One image: the ranked (score, class, box index) picks, at most ``max_detections``."""
    xyxy = corners(boxes, box_format)
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
        xyxy = corners(boxes[b], box_format)
        for k, (s, c, i) in enumerate(picks):
            dets[b, k] = (*xyxy[i], s, c)
        count[b] = len(picks)
    return [dets, count]


def to_onnx(ctx, node) -> None:
    """Standard ONNX: NonMaxSuppression (per class, at most max_detections each) marks the kept
    (batch, class, box) in an (N, C*B) score table (ScatterND); TopK over it ranks them by score with
    ties to the lower index, i.e. lower class then lower box: the order above. Computed in float32.
    Equal scores inside one class may be visited in another order than the reference's by ONNX
    Runtime's NonMaxSuppression, so with such ties the kept set can differ."""
    a = node.attrs
    bv = node.inputs[0]
    f32 = ctx.dtype(DType.float32)
    boxes = ctx.add1("Cast", [ctx.inp(node, 0)], to=f32)
    scores = ctx.add1("Cast", [ctx.inp(node, 1)], to=f32)
    max_det = a["max_detections"]
    sel = ctx.add1("NonMaxSuppression", [boxes, ctx.add1("Transpose", [scores], perm=[0, 2, 1]),
                                         ctx.ints([max_det]), ctx.const(np.float32([a["iou_threshold"]])),
                                         ctx.const(np.float32([a["score_threshold"]]))],
                   center_point_box=int(a["box_format"] == "cxcywh"))              # (K, 3): batch, class, box
    ncb = ctx.add1("Transpose", [scores], perm=[0, 2, 1])                         # (N, C, B)
    kept = ctx.add1("GatherND", [ncb, sel])                                        # scores of the kept
    floor = ctx.add1("Expand", [ctx.const(np.float32(-np.inf)), ctx.shape_of(ncb)])
    table = ctx.add1("ScatterND", [floor, sel, kept])                              # -inf where not kept
    n, b = ctx.shape_of(ncb, 0, 1), ctx.shape_of(ncb, 2, 3)
    flat = ctx.add1("Reshape", [table, ctx.ints([0, -1])])                        # (N, C*B)
    k = ctx.add1("Min", [ctx.shape_of(flat, 1, 2), ctx.ints([max_det])])
    values, index = ctx.add("TopK", [flat, k], 2, axis=1, largest=1, sorted=1)
    valid = ctx.add1("Greater", [values, ctx.const(np.float32(-np.inf))])          # (N, k)
    cls = ctx.add1("Div", [index, b])
    box = ctx.add1("Mod", [index, b])
    # corners x1 <= x2, y1 <= y2 of the chosen boxes
    xyxy = ctx.add1("GatherND", [boxes, ctx.add1("Unsqueeze", [box, ctx.ints([-1])])], batch_dims=1)
    parts = [ctx.add1("Slice", [xyxy, ctx.ints([j]), ctx.ints([j + 1]), ctx.ints([2])]) for j in range(4)]
    if a["box_format"] == "cxcywh":
        hx, hy = (ctx.add1("Mul", [parts[j], ctx.const(np.float32(0.5))]) for j in (2, 3))
        parts = [ctx.add1("Sub", [parts[0], hx]), ctx.add1("Sub", [parts[1], hy]),
                 ctx.add1("Add", [parts[0], hx]), ctx.add1("Add", [parts[1], hy])]
    corners = [ctx.add1("Min", [parts[0], parts[2]]), ctx.add1("Min", [parts[1], parts[3]]),
               ctx.add1("Max", [parts[0], parts[2]]), ctx.add1("Max", [parts[1], parts[3]])]
    rows = ctx.add1("Concat", corners + [ctx.add1("Unsqueeze", [values, ctx.ints([-1])]),
                                         ctx.add1("Unsqueeze", [ctx.add1("Cast", [cls], to=f32), ctx.ints([-1])])],
                    axis=2)                                                        # (N, k, 6)
    pad_row = ctx.const(np.float32([0, 0, 0, 0, 0, -1]), hint="pad_row")
    rows = ctx.add1("Where", [ctx.add1("Unsqueeze", [valid, ctx.ints([-1])]), rows, pad_row])
    padding = ctx.add1("Expand", [pad_row, ctx.add1("Concat", [n, ctx.ints([max_det, 6])], axis=0)])
    rows = ctx.add1("Slice", [ctx.add1("Concat", [rows, padding], axis=1), ctx.ints([0]), ctx.ints([max_det]),
                              ctx.ints([1])])
    ctx.add("Cast", [rows], [ctx.out(node, 0)], to=ctx.dtype(bv))
    count = ctx.add1("ReduceSum", [ctx.add1("Cast", [valid], to=ctx.dtype(DType.int32)), ctx.ints([1])], keepdims=0)
    ctx.add("Identity", [count], [ctx.out(node, 1)])


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
    "nms", version="1", namespace="netdsl", dtypes=DTYPES, cuda=KERNEL,
    cpu=Cpu(source=os.path.join(os.path.dirname(__file__), "cpu.cpp")), onnx=to_onnx,
    inputs=("boxes", "scores"), outputs=("detections", "count"), infer=infer, reference=reference,
    attrs={"iou_threshold": Attr("float", 0.45), "score_threshold": Attr("float", 0.25),
           "max_detections": Attr("int", 100), "box_format": Attr("str", "xyxy", choices=("xyxy", "cxcywh"))},
    doc=__doc__ or "")
