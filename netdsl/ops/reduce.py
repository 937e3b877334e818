"""Reductions, argmax/argmin and top-k."""
from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..errors import ShapeError
from ..graph import TensorSpec
from ..shapes import normalize_axis
from .registry import Attr, define


def reduced_shape(x: TensorSpec, axes, keepdims: bool) -> tuple:
    ax = range(x.rank) if axes is None else {normalize_axis(a, x.rank, "reduce axis") for a in axes}
    if keepdims:
        return tuple(1 if i in ax else d for i, d in enumerate(x.shape))
    return tuple(d for i, d in enumerate(x.shape) if i not in ax)


def _reduce_infer(op):
    def infer(x, *, axes, keepdims):
        if x.dtype == DType.bool:
            raise ShapeError(f"{op}: bool input {x}; cast it first")
        return TensorSpec(x.dtype, reduced_shape(x, axes, keepdims))
    return infer


def _np_axes(x, axes):
    return None if axes is None else tuple(a % x.ndim for a in axes)


_REDUCE = {"reduce_sum": np.sum, "reduce_mean": np.mean, "reduce_max": np.max, "reduce_min": np.min,
           "reduce_prod": np.prod}
for _name, _fn in _REDUCE.items():
    define(_name, attrs={"axes": Attr("ints", None), "keepdims": Attr("bool", False)}, infer=_reduce_infer(_name),
           reference=(lambda fn: lambda x, *, axes, keepdims: np.asarray(
               fn(x, axis=_np_axes(x, axes), keepdims=keepdims)).astype(x.dtype))(_fn),
           category="reduce", doc=f"{_name[7:]} over axes (all axes when None)")


def _arg_infer(op):
    def infer(x, *, axis, keepdims):
        return TensorSpec(DType.int32, reduced_shape(x, (axis,), keepdims))
    return infer


def _arg_ref(fn):
    def ref(x, *, axis, keepdims):
        r = fn(x, axis=axis)
        if keepdims:
            r = np.expand_dims(r, axis)
        return r.astype(np.int32)
    return ref


define("argmax", attrs={"axis": Attr("int", -1), "keepdims": Attr("bool", False)}, infer=_arg_infer("argmax"),
       reference=_arg_ref(np.argmax), category="reduce", doc="index (int32) of the first maximum along axis")
define("argmin", attrs={"axis": Attr("int", -1), "keepdims": Attr("bool", False)}, infer=_arg_infer("argmin"),
       reference=_arg_ref(np.argmin), category="reduce", doc="index (int32) of the first minimum along axis")


def _topk_infer(x, *, k, axis, largest):
    a = normalize_axis(axis, x.rank, "topk axis")
    d = x.shape[a]
    if k < 1 or (isinstance(d, int) and k > d):
        raise ShapeError(f"topk: k={k} must be in 1..{d} for axis {axis} of {x}")
    shape = x.shape[:a] + (k,) + x.shape[a + 1:]
    return [TensorSpec(x.dtype, shape), TensorSpec(DType.int32, shape)]


def _topk_ref(x, *, k, axis, largest):
    key = -x if largest else x
    idx = np.argsort(key, axis=axis, kind="stable")
    idx = np.take(idx, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx.astype(np.int32)


define("topk", outputs=("values", "indices"), attrs={"k": Attr("int"), "axis": Attr("int", -1),
                                                      "largest": Attr("bool", True)},
       infer=_topk_infer, reference=_topk_ref, category="reduce",
       doc="k largest (or smallest) values along axis, sorted, with int32 indices (ties: lower index first)")
