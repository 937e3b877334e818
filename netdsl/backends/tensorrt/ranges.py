"""TensorRT lowerings of ``arange`` (a LINSPACE fill sized at run time), ``slice_to`` (a slice whose
start and size are computed from the run-time dims with Python's clamping) and ``resize_to`` (a resize
whose output shape is a shape tensor: input 1)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...graph import Node
from ._ctx import Ctx
from .lower import register_lowering, resize_modes


def _i64(ctx: Ctx, v: int, what: str) -> Any:
    return ctx.constant(np.array([v], np.int64), ctx.trt.int64, what)


def ceil_div_pos(ctx: Ctx, span: Any, k: int, what: str) -> Any:
    """``max(ceil(span / k), 0)`` for a 1-element int64 tensor and a static k > 0."""
    E = ctx.trt.ElementWiseOperation
    n = ctx.ew(span, _i64(ctx, k - 1, f"{what}_round"), E.SUM, f"{what}_ceil") if k > 1 else span
    if k > 1:
        n = ctx.ew(n, _i64(ctx, k, f"{what}_step"), E.FLOOR_DIV, f"{what}_div")
    return ctx.ew(n, _i64(ctx, 0, f"{what}_zero"), E.MAX, what)


def _arange(ctx: Ctx, node: Node) -> list:
    trt = ctx.trt
    a = node.attrs
    dt = a["dtype"]
    out_dt = ctx.trt_dtype(dt)
    if node.inputs[0] is None:
        from ...ops.ranges import _arange_ref
        return [ctx.constant(_arange_ref(None, **a), out_dt, None)]
    like = ctx.t(node.inputs[0])
    E = trt.ElementWiseOperation
    d = ctx.shape_tensor(like, [("in", a["axis"] % len(like.shape))], "limit")
    start, step = a["start"], a["step"]
    if float(start).is_integer() and float(step).is_integer():
        s, k = int(start), int(step)
        span = ctx.ew(d, _i64(ctx, s, "start"), E.SUB, "span") if k > 0 else ctx.ew(_i64(ctx, s, "start"), d, E.SUB, "span")
        n = d if (s, k) == (0, 1) else ceil_div_pos(ctx, span, abs(k), "length")
    else:  # fractional start/step: ceil((limit - start) / step) in float32
        f = ctx.cast(d, trt.float32, "limit_float")
        q = ctx.ew(ctx.ew(f, ctx.constant(np.array([start], np.float32), trt.float32, "start"), E.SUB, "span"),
                   ctx.constant(np.array([step], np.float32), trt.float32, "step"), E.DIV, "ratio")
        n = ctx.cast(ctx.unary(q, trt.UnaryOperation.CEIL, "ceil"), trt.int64, "length_int")
        n = ctx.ew(n, _i64(ctx, 0, "zero"), E.MAX, "length")
    fill_dt = out_dt if dt.is_int else trt.float32
    np_dt = {trt.int32: np.int32, trt.int64: np.int64}.get(fill_dt, np.float32)
    fill = ctx.net.add_fill((0,), trt.FillOperation.LINSPACE, fill_dt)
    fill.set_input(0, n)
    fill.set_input(1, ctx.constant(np.array(start, np_dt), fill_dt, "alpha"))
    fill.set_input(2, ctx.constant(np.array([step], np_dt), fill_dt, "beta"))
    y = ctx.add(fill, "fill" if fill_dt != out_dt else None).get_output(0)
    return [ctx.cast(y, out_dt, None)]


def _python_bounds(ctx: Ctx, d: Any, st: int, e: Any, sp: int, what: str) -> tuple:
    """Start and length of ``slice(st, e, sp)`` on a run-time dim ``d`` (Python clamping), int64 tensors."""
    trt = ctx.trt
    E = trt.ElementWiseOperation
    lo, hi = (0, d) if sp > 0 else (-1, ctx.ew(d, _i64(ctx, 1, f"{what}_one"), E.SUB, f"{what}_last"))

    def clamp(v: Any, name: str) -> Any:
        neg = ctx.ew(v, _i64(ctx, 0, f"{name}_zero"), E.LESS, f"{name}_negative")
        wrapped = ctx.ew(v, d, E.SUM, f"{name}_wrapped")
        v = ctx.add(ctx.net.add_select(neg, wrapped, v), f"{name}_index").get_output(0)
        v = ctx.ew(v, _i64(ctx, lo, f"{name}_lo"), E.MAX, f"{name}_max")
        return ctx.ew(v, hi, E.MIN, f"{name}_min")

    s = clamp(_i64(ctx, st, f"{what}_start0"), f"{what}_start")
    e = clamp(e, f"{what}_end")
    span = ctx.ew(e, s, E.SUB, f"{what}_span") if sp > 0 else ctx.ew(s, e, E.SUB, f"{what}_span")
    return s, ceil_div_pos(ctx, span, abs(sp), f"{what}_size")


def _slice_to(ctx: Ctx, node: Node) -> list:
    a = node.attrs
    x, like = ctx.t(node.inputs[0]), ctx.t(node.inputs[1])
    r, lr = len(x.shape), len(like.shape)
    n = len(a["axes"])
    starts = a["starts"] if a["starts"] is not None else (0,) * n
    offsets = a["offsets"] if a["offsets"] is not None else (0,) * n
    steps = a["steps"] if a["steps"] is not None else (1,) * n
    start: list = [0] * r
    size: list = [("in", i) for i in range(r)]
    stride = [1] * r
    E = ctx.trt.ElementWiseOperation
    for ax, la, st, off, sp in zip(a["axes"], a["like_axes"], starts, offsets, steps):
        ax, la = ax % r, la % lr
        d = ctx.shape_tensor(x, [("in", ax)], f"dim{ax}")
        e = ctx.shape_tensor(like, [("in", la)], f"end{ax}")
        if off:
            e = ctx.ew(e, _i64(ctx, off, f"end{ax}_offset"), E.SUM, f"end{ax}_plus")
        start[ax], size[ax] = _python_bounds(ctx, d, st, e, sp, f"axis{ax}")
        stride[ax] = sp

    def vec(items: list, what: str) -> Any:
        parts = [v if not isinstance(v, (int, tuple)) else
                 ctx.shape_tensor(x, [v], f"{what}{i}") if isinstance(v, tuple) else _i64(ctx, v, f"{what}{i}")
                 for i, v in enumerate(items)]
        cat = ctx.net.add_concatenation(parts)
        cat.axis = 0
        return ctx.add(cat, what).get_output(0)

    st_t, n_t = vec(start, "start"), vec(size, "size")
    layer = ctx.net.add_slice(x, (0,) * r, (0,) * r, tuple(stride))
    layer.set_input(1, st_t)
    layer.set_input(2, n_t)
    return [ctx.add(layer).get_output(0)]


def _resize_to(ctx: Ctx, node: Node) -> list:
    a = node.attrs
    x, like = ctx.t(node.inputs[0]), ctx.t(node.inputs[1])
    lr = len(like.shape)
    layer = ctx.net.add_resize(x)
    out = node.outputs[0].shape
    if all(isinstance(d, int) for d in out):  # sizes known when the network is built
        layer.shape = tuple(int(d) for d in out)
    else:
        cat = ctx.net.add_concatenation([ctx.shape_tensor(x, [("in", 0), ("in", 1)], "batch_channels"),
                                         ctx.shape_tensor(like, [("in", la % lr) for la in a["like_axes"]], "sizes")])
        cat.axis = 0
        layer.set_input(1, ctx.add(cat, "shape").get_output(0))
    return [ctx.add(resize_modes(ctx.trt, layer, a)).get_output(0)]


register_lowering("arange", _arange)
register_lowering("resize_to", _resize_to)
register_lowering("slice_to", _slice_to)
