"""OpenVINO lowerings of ``arange`` (Range), ``slice_to`` (Slice with ends from ShapeOf) and ``resize_to``
(Interpolate to sizes from ShapeOf)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ...graph import Node
from .lower import Lowering, ov_type, register_lowering


def like_dims(ctx: Lowering, like: Any, axes: list) -> Any:
    """``shape(like)[axes]`` as an i64 vector (read at run time)."""
    return ctx.ops.gather(ctx.shape_of(like), ctx.i64(axes), ctx.i64(0)).output(0)


@register_lowering("arange")
def _arange(ctx: Lowering, node: Node, like: Optional[Any] = None) -> Any:
    a = node.attrs
    dt = a["dtype"]
    if like is None:
        from ...ops.ranges import _arange_ref
        return ctx.typed(_arange_ref(None, **a), dt)
    kind = np.int64 if dt.is_int else np.float64  # Range computes start + i * step in this type
    limit = ctx.ops.squeeze(like_dims(ctx, like, [a["axis"] % node.inputs[0].rank]), ctx.i64([0])).output(0)
    if not dt.is_int:
        limit = ctx.ops.convert(limit, "f64").output(0)
    y = ctx.ops.range(ctx.const(np.array(a["start"], kind)), limit, ctx.const(np.array(a["step"], kind)),
                      "i64" if dt.is_int else "f64").output(0)
    return ctx.ops.convert(y, ov_type(dt)).output(0)


@register_lowering("slice_to")
def _slice_to(ctx: Lowering, node: Node, x: Any, like: Any) -> Any:
    a = node.attrs
    n = len(a["axes"])
    r, lr = node.inputs[0].rank, node.inputs[1].rank
    ends = like_dims(ctx, like, [la % lr for la in a["like_axes"]])
    if a["offsets"] is not None and any(a["offsets"]):
        ends = ctx.ops.add(ends, ctx.i64(list(a["offsets"]))).output(0)
    starts = list(a["starts"]) if a["starts"] is not None else [0] * n
    steps = list(a["steps"]) if a["steps"] is not None else [1] * n
    return ctx.ops.slice(x, ctx.i64(starts), ends, ctx.i64(steps), ctx.i64([ax % r for ax in a["axes"]])).output(0)


@register_lowering("resize_to")
def _resize_to(ctx: Lowering, node: Node, x: Any, like: Any) -> Any:
    a = node.attrs
    lr = node.inputs[1].rank
    sizes = like_dims(ctx, like, [la % lr for la in a["like_axes"]])
    mode = "nearest" if a["mode"] == "nearest" else "linear_onnx"
    return ctx.ops.interpolate(x, sizes, mode, "sizes", coordinate_transformation_mode=a["coordinate_transformation"],
                               nearest_mode=a["nearest_mode"], axes=ctx.i64(list(range(2, node.inputs[0].rank)))).output(0)
