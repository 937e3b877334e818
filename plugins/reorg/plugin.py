"""reorg: space-to-depth, (N, C, H, W) -> (N, C*b*b, H/b, W/b), in the three orderings detectors use.

``mode`` picks which input pixel of a b x b block lands in which output channel (``c`` the input
channel, ``(dy, dx)`` the offset inside the block):

- ``space_to_depth``: channel ``(dy*b + dx)*C + c``, as ONNX ``SpaceToDepth`` (and AlexeyAB darknet's
  ``[reorg]``);
- ``focus``: channel ``(dx*b + dy)*C + c``, YOLOv5's ``Focus`` (``cat(x[::2, ::2], x[1::2, ::2],
  x[::2, 1::2], x[1::2, 1::2])``);
- ``darknet``: the original darknet ``[reorg]`` of YOLOv2 (``reorg_cpu`` called with the input's
  sizes): a space-to-depth of the input read as (C/b^2, H*b, W*b), read back as (C*b^2, H/b, W/b).
  Needs C divisible by b^2.

H and W may be symbolic (the output has H/b, W/b); static sizes must be divisible by ``block``.
"""
from __future__ import annotations

import os

import numpy as np

from netdsl.errors import ShapeError
from netdsl.graph import TensorSpec
from netdsl.ops import Attr
from netdsl.plugins import Cpu, declare
from netdsl.plugins.cuda import CudaKernel, Launch, ceil_div, numel
from netdsl.shapes import dim_div

MODES = ("space_to_depth", "focus", "darknet")
DTYPES = ("float32", "float16")


def infer(x: TensorSpec, *, block: int, mode: str) -> TensorSpec:
    """(N, C, H, W) -> (N, C*b*b, H/b, W/b); H and W may be symbolic."""
    if x.dtype.value not in DTYPES:
        raise ShapeError(f"reorg takes {' or '.join(DTYPES)}, got {x.dtype}")
    if x.rank != 4:
        raise ShapeError(f"reorg takes (N, C, H, W), got rank {x.rank}")
    if block < 1:
        raise ShapeError(f"reorg: block must be >= 1, got {block}")
    n, c, h, w = x.shape
    if not isinstance(c, int):
        raise ShapeError(f"reorg needs a static channel count, got {c}")
    if mode == "darknet" and c % (block * block):
        raise ShapeError(f"reorg mode 'darknet': channels {c} must be divisible by block*block = {block * block}")
    out = []
    for name, d in (("height", h), ("width", w)):
        q = dim_div(d, block)
        if q is None:
            raise ShapeError(f"reorg: {name} {d} is not divisible by block {block}")
        out.append(q)
    return TensorSpec(x.dtype, (n, c * block * block, out[0], out[1]))


def reference(x: np.ndarray, *, block: int, mode: str) -> np.ndarray:
    n, c, h, w = x.shape
    b = block
    if h % b or w % b:
        raise ShapeError(f"reorg: input {h}x{w} is not divisible by block {b}")
    if mode == "darknet":
        xp = x.reshape(n, c // (b * b), h * b, w * b)
        return reference(xp, block=b, mode="space_to_depth").reshape(n, c * b * b, h // b, w // b)
    blocks = x.reshape(n, c, h // b, b, w // b, b)                    # n, c, i, dy, j, dx
    order = (0, 3, 5, 1, 2, 4) if mode == "space_to_depth" else (0, 5, 3, 1, 2, 4)
    return np.ascontiguousarray(blocks.transpose(order)).reshape(n, c * b * b, h // b, w // b)


def to_onnx(ctx, node) -> None:
    """Standard ONNX: SpaceToDepth (DCR order is ``space_to_depth``); ``focus`` permutes its channels
    (Gather); ``darknet`` reshapes the input to (N, C/b^2, H*b, W*b) first and the result to
    (N, C*b^2, H/b, W/b) after (shapes read at run time: symbolic H, W work)."""
    b, mode = node.attrs["block"], node.attrs["mode"]
    x, c = ctx.inp(node, 0), node.inputs[0].shape[1]
    if mode == "darknet":
        hw = ctx.shape_of(x, 2, 4)
        n = ctx.shape_of(x, 0, 1)
        x = ctx.add1("Reshape", [x, ctx.add1("Concat", [n, ctx.ints([c // (b * b)]),
                                                         ctx.add1("Mul", [hw, ctx.ints([b])])], axis=0)])
        y = ctx.add1("SpaceToDepth", [x], blocksize=b)
        shape = ctx.add1("Concat", [n, ctx.ints([c * b * b]), ctx.add1("Div", [hw, ctx.ints([b])])], axis=0)
        ctx.add("Reshape", [y, shape], [ctx.out(node)])
    elif mode == "focus":
        y = ctx.add1("SpaceToDepth", [x], blocksize=b)
        # focus channel (dx*b + dy)*C + c holds SpaceToDepth channel (dy*b + dx)*C + c
        perm = [((k // c) % b * b + (k // c) // b) * c + k % c for k in range(c * b * b)]
        ctx.add("Gather", [y, ctx.ints(perm, "perm")], [ctx.out(node)], axis=1)
    else:
        ctx.add("SpaceToDepth", [x], [ctx.out(node)], blocksize=b)


def geometry(shapes: list, attrs: dict) -> Launch:
    n, c, h, w = shapes[0]
    total = numel(shapes[0])
    return Launch(grid=min(ceil_div(total, 256), 1 << 20), block=256,
                  scalars=[("long long", n), ("int", c), ("int", h), ("int", w), ("int", attrs["block"]),
                           ("int", MODES.index(attrs["mode"]))])


KERNEL = CudaKernel.from_file(os.path.join(os.path.dirname(__file__), "kernel.cu"),
                              entries={"float32": "reorg<float>", "float16": "reorg<nd_half>"},
                              launch=geometry, plugin="reorg")

reorg = declare(
    "reorg", version="1", namespace="netdsl", dtypes=DTYPES, cuda=KERNEL,
    cpu=Cpu(source=os.path.join(os.path.dirname(__file__), "cpu.cpp")), onnx=to_onnx,
    inputs=("x",), outputs=("y",), infer=infer, reference=reference,
    attrs={"block": Attr("int", 2, doc="block size b"),
           "mode": Attr("str", "space_to_depth", choices=MODES, doc="channel ordering")},
    doc=__doc__ or "")
