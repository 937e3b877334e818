"""yolo_decode: a YOLO detection head's raw output -> boxes in pixels and per-class scores.

In: ``x`` (N, A*(5+C), H, W), the head convolution's output (A anchors, C = ``num_classes``).
For the cell (row y, column x) of anchor a, with t = the 5+C raw values and s = ``scale_x_y``::

    cx = (x + sigmoid(t0) * s - (s - 1) / 2) * stride        cy likewise with y, t1
    w  = exp(t2) * anchor_w[a]                               h  = exp(t3) * anchor_h[a]
    scores[c] = sigmoid(t4) * sigmoid(t5 + c)                (objectness times class probability)

as darknet's ``[yolo]`` layer (``scale_x_y`` as YOLOv4 uses; 1 for YOLOv3). Out: ``boxes``
(N, A*H*W, 4) as ``box_format`` ``xyxy`` (x1, y1, x2, y2; default) or ``cxcywh``, and ``scores``
(N, A*H*W, C); box index ``a*H*W + y*W + x``. ``anchors`` are (w, h) pairs in pixels (at most 16
anchors per head). Batch and spatial dims may be symbolic.
"""
from __future__ import annotations

import os

import numpy as np

from netdsl.errors import ShapeError
from netdsl.graph import TensorSpec
from netdsl.ops import Attr
from netdsl.plugins import Cpu, declare
from netdsl.plugins.cuda import CudaKernel, Launch, ceil_div

DTYPES = ("float32", "float16")
MAX_ANCHORS = 16


def infer(x: TensorSpec, *, anchors: tuple, stride: float, num_classes: int, scale_x_y: float,
          box_format: str) -> list[TensorSpec]:
    if x.dtype.value not in DTYPES:
        raise ShapeError(f"yolo_decode takes {' or '.join(DTYPES)}, got {x.dtype}")
    if x.rank != 4:
        raise ShapeError(f"yolo_decode takes (N, A*(5+classes), H, W), got rank {x.rank}")
    if not anchors or len(anchors) % 2 or len(anchors) > 2 * MAX_ANCHORS:
        raise ShapeError(f"yolo_decode: anchors must be 1 to {MAX_ANCHORS} (w, h) pairs, got {len(anchors)} values")
    if num_classes < 1 or stride <= 0:
        raise ShapeError(f"yolo_decode: num_classes ({num_classes}) and stride ({stride}) must be positive")
    n, ch, h, w = x.shape
    a = len(anchors) // 2
    if ch != a * (5 + num_classes):
        raise ShapeError(f"yolo_decode: {a} anchors x (5 + {num_classes} classes) = {a * (5 + num_classes)} "
                         f"channels expected, input has {ch}")
    cells = a * h * w
    return [TensorSpec(x.dtype, (n, cells, 4)), TensorSpec(x.dtype, (n, cells, num_classes))]


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -v))


def reference(x: np.ndarray, *, anchors: tuple, stride: float, num_classes: int, scale_x_y: float,
              box_format: str) -> list[np.ndarray]:
    n, _, h, w = x.shape
    a = len(anchors) // 2
    p = x.reshape(n, a, 5 + num_classes, h, w)
    anc = np.asarray(anchors, np.float64).reshape(a, 2)
    shift = (scale_x_y - 1) / 2
    cx = (np.arange(w)[None, None, None, :] + _sigmoid(p[:, :, 0]) * scale_x_y - shift) * stride
    cy = (np.arange(h)[None, None, :, None] + _sigmoid(p[:, :, 1]) * scale_x_y - shift) * stride
    bw = np.exp(p[:, :, 2]) * anc[None, :, 0, None, None]
    bh = np.exp(p[:, :, 3]) * anc[None, :, 1, None, None]
    if box_format == "cxcywh":
        boxes = np.stack([cx, cy, bw, bh], axis=-1)
    else:
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=-1)
    scores = _sigmoid(p[:, :, 4:5]) * _sigmoid(p[:, :, 5:])                  # n, a, C, h, w
    scores = scores.transpose(0, 1, 3, 4, 2)
    return [boxes.reshape(n, a * h * w, 4).astype(x.dtype), scores.reshape(n, a * h * w, num_classes).astype(x.dtype)]


def to_onnx(ctx, node) -> None:
    """Standard ONNX: the formulas above with Sigmoid/Exp, Range for the grid, Transpose + Reshape
    to (N, A*H*W, 4 | C); H and W are read at run time (symbolic spatial dims work)."""
    a = node.attrs
    xv = node.inputs[0]
    x, dt, classes = ctx.inp(node, 0), xv.dtype, a["num_classes"]
    anchors = len(a["anchors"]) // 2

    def const(v, hint="c"):
        return ctx.const(np.asarray(v, np.float64), dt, hint)

    def part(lo, hi):
        return ctx.add1("Slice", [p, ctx.ints([lo]), ctx.ints([hi]), ctx.ints([2])])

    def grid(axis):   # 0 .. size-1 along spatial axis 2 (H) or 3 (W), as dtype T
        size = ctx.add1("Reshape", [ctx.shape_of(x, axis, axis + 1), ctx.ints([], "scalar")])
        r = ctx.add1("Cast", [ctx.add1("Range", [ctx.const(np.int64(0)), size, ctx.const(np.int64(1))])],
                     to=ctx.dtype(xv))
        return r if axis == 3 else ctx.add1("Reshape", [r, ctx.ints([-1, 1])])

    n, hw = ctx.shape_of(x, 0, 1), ctx.shape_of(x, 2, 4)
    p = ctx.add1("Reshape", [x, ctx.add1("Concat", [n, ctx.ints([anchors, 5 + classes]), hw], axis=0)])
    s, stride = a["scale_x_y"], a["stride"]
    centers = []
    for k, axis in ((0, 3), (1, 2)):
        t = ctx.add1("Mul", [ctx.add1("Sigmoid", [part(k, k + 1)]), const(s)])
        t = ctx.add1("Sub", [ctx.add1("Add", [t, grid(axis)]), const((s - 1) / 2)])
        centers.append(ctx.add1("Mul", [t, const(stride)]))
    anc = np.asarray(a["anchors"], np.float64).reshape(1, anchors, 2, 1, 1)
    size = [ctx.add1("Mul", [ctx.add1("Exp", [part(2 + k, 3 + k)]), const(anc[:, :, k:k + 1], "anchor")])
            for k in range(2)]
    if a["box_format"] == "cxcywh":
        coords = centers + size
    else:
        half = [ctx.add1("Mul", [v, const(0.5)]) for v in size]
        coords = [ctx.add1("Sub", [centers[0], half[0]]), ctx.add1("Sub", [centers[1], half[1]]),
                  ctx.add1("Add", [centers[0], half[0]]), ctx.add1("Add", [centers[1], half[1]])]
    boxes = ctx.add1("Transpose", [ctx.add1("Concat", coords, axis=2)], perm=[0, 1, 3, 4, 2])
    ctx.add("Reshape", [boxes, ctx.ints([0, -1, 4])], [ctx.out(node, 0)])
    scores = ctx.add1("Mul", [ctx.add1("Sigmoid", [part(4, 5)]), ctx.add1("Sigmoid", [part(5, 5 + classes)])])
    scores = ctx.add1("Transpose", [scores], perm=[0, 1, 3, 4, 2])
    ctx.add("Reshape", [scores, ctx.ints([0, -1, classes])], [ctx.out(node, 1)])


def geometry(shapes: list, attrs: dict) -> Launch:
    n, _, h, w = shapes[0]
    a = len(attrs["anchors"]) // 2
    return Launch(grid=min(ceil_div(n * a * h * w, 128), 1 << 20), block=128,
                  scalars=[("long long", n), ("int", a), ("int", h), ("int", w), ("int", attrs["num_classes"]),
                           (f"float[{2 * MAX_ANCHORS}]", attrs["anchors"]), ("float", attrs["stride"]),
                           ("float", attrs["scale_x_y"]), ("int", int(attrs["box_format"] == "cxcywh"))])


KERNEL = CudaKernel.from_file(os.path.join(os.path.dirname(__file__), "kernel.cu"),
                              entries={"float32": "yolo_decode<float>", "float16": "yolo_decode<nd_half>"},
                              launch=geometry, plugin="yolo_decode")

yolo_decode = declare(
    "yolo_decode", version="1", namespace="netdsl", dtypes=DTYPES, cuda=KERNEL,
    cpu=Cpu(source=os.path.join(os.path.dirname(__file__), "cpu.cpp")), onnx=to_onnx,
    inputs=("x",), outputs=("boxes", "scores"), infer=infer, reference=reference,
    attrs={"anchors": Attr("floats", doc="(w, h) pairs in pixels"),
           "stride": Attr("float", doc="pixels per cell"),
           "num_classes": Attr("int"),
           "scale_x_y": Attr("float", 1.0, doc="YOLOv4's xy scale (1 for YOLOv3)"),
           "box_format": Attr("str", "xyxy", choices=("xyxy", "cxcywh"))},
    doc=__doc__ or "")
