"""Ops whose sizes come from another tensor's dims at run time: ``arange``, ``slice_to`` and ``resize_to``.

Each takes an optional/second input ``like`` whose values are never read: only the sizes of some of
its axes, which may be symbolic (a sequence length ``S``, an image height ``H``). So ``position_ids =
arange(S)``, ``table[:S]`` and ``interpolate(x, size=y.shape[-2:])`` need neither an extra input nor a
fixed size.
"""
from __future__ import annotations

import math

import numpy as np

from ..dtypes import DType
from ..errors import ShapeError
from ..graph import TensorSpec
from ..shapes import Sym, normalize_axis
from .registry import Attr, define, require_float
from .tensor import _COORD, _NEAREST, _resize_ref, slice_len


# ---- arange ----------------------------------------------------------------------------------------
def arange_len(start: float, limit: float, step: float) -> int:
    """Number of elements of ``arange(start, limit, step)``: ``max(ceil((limit - start) / step), 0)``
    (ONNX Range's and NumPy's formula)."""
    return max(int(math.ceil((limit - start) / step)), 0)


def _arange_check(start, stop, step, axis, dtype, like) -> None:
    if step == 0:
        raise ShapeError("arange: step must not be 0")
    if like is None and stop is None:
        raise ShapeError("arange: give stop, or a tensor 'like' and the axis whose size is the limit")
    if like is not None and stop is not None:
        raise ShapeError("arange: give either stop or like/axis (the limit is like.shape[axis]), not both")
    if like is not None and axis is None:
        raise ShapeError("arange: 'like' needs the axis whose size is the limit")
    if not (dtype.is_int or dtype.is_float):
        raise ShapeError(f"arange: dtype must be an integer or floating type, got {dtype}")
    if dtype.is_int and any(v is not None and float(v) != int(v) for v in (start, stop, step)):
        raise ShapeError(f"arange: start/stop/step ({start}, {stop}, {step}) must be whole numbers for {dtype}")


def _arange_infer(like=None, *, start, stop, step, axis, dtype):
    _arange_check(start, stop, step, axis, dtype, like)
    if like is None:
        return TensorSpec(dtype, (arange_len(start, stop, step),))
    d = like.shape[normalize_axis(axis, like.rank, "arange axis")]
    if isinstance(d, int):
        return TensorSpec(dtype, (arange_len(start, d, step),))
    if start == 0 and step == 1:
        return TensorSpec(dtype, (d,))
    return TensorSpec(dtype, (Sym.of(f"arange({d},{start:g},{step:g})"),))


def _arange_ref(like=None, *, start, stop, step, axis, dtype):
    limit = stop if like is None else like.shape[axis]
    n = arange_len(start, limit, step)
    if dtype.is_int:
        return (int(start) + np.arange(n, dtype=np.int64) * int(step)).astype(dtype.numpy)
    return (start + np.arange(n, dtype=np.float64) * step).astype(dtype.numpy)


define("arange", inputs=("like?",), attrs={
    "start": Attr("float", 0.0), "stop": Attr("float", None), "step": Attr("float", 1.0),
    "axis": Attr("int", None), "dtype": Attr("dtype", DType.int32)},
    infer=_arange_infer, reference=_arange_ref, category="shape",
    doc="start, start+step, ... below the limit (ONNX Range): the limit is stop, or like.shape[axis] read at "
        "run time (like's values are not read), so it may be a symbolic dim")


# ---- slice_to --------------------------------------------------------------------------------------
def _slice_to_norm(rank, like_rank, starts, axes, like_axes, offsets, steps) -> tuple:
    n = len(axes)
    offsets = offsets if offsets is not None else (0,) * n
    steps = steps if steps is not None else (1,) * n
    starts = starts if starts is not None else (0,) * n
    if not (len(starts) == len(like_axes) == len(offsets) == len(steps) == n) or n == 0:
        raise ShapeError(f"slice_to: axes {axes}, like_axes {like_axes}, starts {starts}, offsets {offsets}, "
                         f"steps {steps} must be non-empty and of one length")
    ax = [normalize_axis(a, rank, "slice_to axis") for a in axes]
    if len(set(ax)) != n:
        raise ShapeError(f"slice_to: repeated axes {axes}")
    lax = [normalize_axis(a, like_rank, "slice_to like axis") for a in like_axes]
    if any(s == 0 for s in steps):
        raise ShapeError("slice_to: step must not be 0")
    return ax, lax, starts, offsets, steps


def _slice_to_infer(x, like, *, axes, like_axes, starts, offsets, steps):
    ax, lax, starts, offsets, steps = _slice_to_norm(x.rank, like.rank, starts, axes, like_axes, offsets, steps)
    shape = list(x.shape)
    for a, la, st, off, sp in zip(ax, lax, starts, offsets, steps):
        d, e = x.shape[a], like.shape[la]
        if isinstance(d, int) and isinstance(e, int):
            shape[a] = slice_len(d, st, e + off, sp)[2]
        elif st == 0 and off == 0 and sp == 1:
            shape[a] = e  # x[:S]: S elements (S <= the dim, like Python clamping otherwise)
        else:
            shape[a] = Sym.of(f"slice({d},{st},{e}{off:+d},{sp})")
    return TensorSpec(x.dtype, tuple(shape))


def _slice_to_ref(x, like, *, axes, like_axes, starts, offsets, steps):
    ax, lax, starts, offsets, steps = _slice_to_norm(x.ndim, like.ndim, starts, axes, like_axes, offsets, steps)
    idx = [slice(None)] * x.ndim
    for a, la, st, off, sp in zip(ax, lax, starts, offsets, steps):
        idx[a] = slice(st, like.shape[la] + off, sp)
    return x[tuple(idx)].copy()


define("slice_to", inputs=("x", "like"), attrs={
    "axes": Attr("ints"), "like_axes": Attr("ints"), "starts": Attr("ints", None),
    "offsets": Attr("ints", None), "steps": Attr("ints", None)},
    infer=_slice_to_infer, reference=_slice_to_ref, category="shape",
    doc="x[starts:like.shape[like_axes]+offsets:steps] on each of axes, the end read at run time (like's values "
        "are not read); Python slice semantics for the resulting integers (negative counts from the end, "
        "clamped)")


# ---- resize_to -------------------------------------------------------------------------------------
def _resize_to_axes(x_rank: int, like_rank: int, like_axes) -> list:
    if len(like_axes) != x_rank - 2 or x_rank < 3:
        raise ShapeError(f"resize_to: like_axes {tuple(like_axes)} must name one axis of like per spatial axis of "
                         f"x (rank {x_rank}: {x_rank - 2})")
    return [normalize_axis(a, like_rank, "resize_to like axis") for a in like_axes]


def _resize_to_infer(x, like, *, like_axes, mode, coordinate_transformation, nearest_mode):
    require_float("resize_to", x)
    lax = _resize_to_axes(x.rank, like.rank, like_axes)
    return TensorSpec(x.dtype, tuple(x.shape[:2]) + tuple(like.shape[a] for a in lax))


def _resize_to_ref(x, like, *, like_axes, mode, coordinate_transformation, nearest_mode):
    lax = _resize_to_axes(x.ndim, like.ndim, like_axes)
    sizes = tuple(x.shape[:2]) + tuple(like.shape[a] for a in lax)
    return _resize_ref(x, scales=None, sizes=sizes, mode=mode, coordinate_transformation=coordinate_transformation,
                       nearest_mode=nearest_mode)


define("resize_to", inputs=("x", "like"), attrs={
    "like_axes": Attr("ints"), "mode": Attr("str", "nearest", choices=("nearest", "linear")),
    "coordinate_transformation": Attr("str", "half_pixel", choices=_COORD),
    "nearest_mode": Attr("str", "round_prefer_floor", choices=_NEAREST)},
    infer=_resize_to_infer, reference=_resize_to_ref, category="shape",
    doc="resize as resize(sizes=...) to the sizes of like's like_axes, read at run time (like's values are not "
        "read): PyTorch's interpolate(x, size=y.shape[-2:]), TensorFlow's image.resize(x, tf.shape(y)[1:3])")
