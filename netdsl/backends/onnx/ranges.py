"""ONNX export of ``arange`` (Range), ``slice_to`` (Slice with ends from Shape) and ``resize_to`` (Resize with
sizes from Shape)."""
from __future__ import annotations

import numpy as np

from ...dtypes import DType
from .table import register_export

_RANGE_TYPES = (DType.float32, DType.float64, DType.int32, DType.int64)  # what ONNX Range accepts


def like_dims(ctx, like: str, axes: list) -> str:
    """``shape(like)[axes]`` as an int64 vector."""
    parts = [ctx.shape_of(like, a, a + 1) for a in axes]
    return parts[0] if len(parts) == 1 else ctx.add1("Concat", parts, axis=0)


def _arange(ctx, node):
    from ...ops.ranges import _arange_ref
    a = node.attrs
    dt = a["dtype"]
    if node.inputs[0] is None:
        ctx.initializer(ctx.out(node), _arange_ref(None, **a), dt, external_ok=False)
        return
    work = dt if dt in _RANGE_TYPES else (DType.int64 if dt.is_int else DType.float32)
    limit = like_dims(ctx, ctx.inp(node, 0), [a["axis"] % node.inputs[0].rank])
    limit = ctx.add1("Squeeze", [limit, ctx.ints([0], "axes")])
    if work != DType.int64:
        limit = ctx.add1("Cast", [limit], to=ctx.dtype(work))
    start = ctx.const(np.asarray(a["start"], work.numpy), work, "start")
    step = ctx.const(np.asarray(a["step"], work.numpy), work, "step")
    if work == dt:
        ctx.add("Range", [start, limit, step], [ctx.out(node)])
    else:
        ctx.add("Cast", [ctx.add1("Range", [start, limit, step])], [ctx.out(node)], to=ctx.dtype(dt))


def _slice_to(ctx, node):
    a = node.attrs
    n = len(a["axes"])
    lr = node.inputs[1].rank
    ends = like_dims(ctx, ctx.inp(node, 1), [la % lr for la in a["like_axes"]])
    if a["offsets"] is not None and any(a["offsets"]):
        ends = ctx.add1("Add", [ends, ctx.ints(a["offsets"], "offsets")])
    starts = a["starts"] if a["starts"] is not None else (0,) * n
    steps = a["steps"] if a["steps"] is not None else (1,) * n
    ctx.add("Slice", [ctx.inp(node, 0), ctx.ints(starts, "starts"), ends, ctx.ints(a["axes"], "axes"),
                      ctx.ints(steps, "steps")], [ctx.out(node)])


def _resize_to(ctx, node):
    a = node.attrs
    lr = node.inputs[1].rank
    sizes = ctx.add1("Concat", [ctx.shape_of(ctx.inp(node, 0), 0, 2),
                                like_dims(ctx, ctx.inp(node, 1), [la % lr for la in a["like_axes"]])], axis=0)
    attrs = dict(mode=a["mode"], coordinate_transformation_mode=a["coordinate_transformation"])
    if a["mode"] == "nearest":
        attrs["nearest_mode"] = a["nearest_mode"]
    ctx.add("Resize", [ctx.inp(node, 0), "", "", sizes], [ctx.out(node)], **attrs)


register_export("arange", _arange)
register_export("resize_to", _resize_to)
register_export("slice_to", _slice_to)
