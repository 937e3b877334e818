"""Quantization ops, with ONNX's semantics (QuantizeLinear / DequantizeLinear):

    quantize_linear(x, scale, zero_point?)   = saturate(round_half_to_even(x / scale) + zero_point)
    dequantize_linear(q, scale, zero_point?) = (q - zero_point) * scale

``scale`` (float) and ``zero_point`` (int8/uint8) are per tensor (shape () or (1,)) or per channel
(shape (C,) where C = x.shape[axis]). The quantized type is the zero point's type when one is given,
else the ``dtype`` attribute (int8 by default).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..dtypes import DType
from ..errors import ShapeError
from ..graph import TensorSpec
from .registry import Attr, define

QTYPES = (DType.int8, DType.uint8)
_RANGE = {DType.int8: (-128, 127), DType.uint8: (0, 255)}


def qrange(dtype: DType) -> tuple[int, int]:
    """(lowest, highest) value of a quantized type."""
    return _RANGE[dtype]


def _check_params(op: str, x: TensorSpec, scale: TensorSpec, zp: Optional[TensorSpec], axis: int) -> None:
    if not scale.dtype.is_float:
        raise ShapeError(f"{op}: scale must be floating point, got {scale}")
    if scale.rank > 1 or (zp is not None and zp.rank != scale.rank):
        raise ShapeError(f"{op}: scale and zero_point must be scalars or 1-d (per channel), got scale {scale}"
                         + (f", zero_point {zp}" if zp is not None else ""))
    if zp is not None and zp.shape != scale.shape:
        raise ShapeError(f"{op}: zero_point {zp} and scale {scale} differ in shape")
    if zp is not None and zp.dtype not in QTYPES:
        raise ShapeError(f"{op}: zero_point must be int8 or uint8, got {zp}")
    n = scale.shape[0] if scale.rank == 1 else 1
    if n != 1 or scale.rank == 1:
        if not -x.rank <= axis < x.rank:
            raise ShapeError(f"{op}: axis {axis} is out of range for input {x}")
        c = x.shape[axis % x.rank]
        if n != 1 and isinstance(c, int) and c != n:
            raise ShapeError(f"{op}: per-channel scale has {n} entries but input {x} has {c} on axis {axis}")


def _bshape(scale: np.ndarray, ndim: int, axis: int) -> tuple:
    if scale.ndim == 0 or scale.size == 1:
        return ()
    shape = [1] * ndim
    shape[axis % ndim] = -1
    return tuple(shape)


def _q_infer(x, scale, zero_point=None, *, axis, dtype):
    if not x.dtype.is_float:
        raise ShapeError(f"quantize_linear: input must be floating point, got {x}")
    _check_params("quantize_linear", x, scale, zero_point, axis)
    if x.dtype != scale.dtype:
        raise ShapeError(f"quantize_linear: scale {scale} must have the input's dtype {x.dtype}")
    out = zero_point.dtype if zero_point is not None else dtype
    if out not in QTYPES:
        raise ShapeError(f"quantize_linear: dtype must be int8 or uint8, got {out}")
    if zero_point is not None and zero_point.dtype != dtype and dtype is not DType.int8:
        raise ShapeError(f"quantize_linear: zero_point is {zero_point.dtype} but dtype={dtype}")
    return TensorSpec(out, x.shape)


def quantize(x: np.ndarray, scale: np.ndarray, zero_point: Optional[np.ndarray], axis: int,
             dtype: DType) -> np.ndarray:
    """The reference: float64 division, round half to even, add the zero point, saturate."""
    if zero_point is not None:
        dtype = DType(np.asarray(zero_point).dtype.name)
    shp = _bshape(np.asarray(scale), x.ndim, axis)
    s = np.asarray(scale, np.float64).reshape(shp)
    z = 0.0 if zero_point is None else np.asarray(zero_point, np.float64).reshape(shp)
    lo, hi = _RANGE[dtype]
    return np.clip(np.rint(np.asarray(x, np.float64) / s) + z, lo, hi).astype(dtype.numpy)


def _dq_infer(x, scale, zero_point=None, *, axis):
    if x.dtype not in QTYPES and x.dtype is not DType.int32:
        raise ShapeError(f"dequantize_linear: input must be int8, uint8 or int32, got {x}")
    _check_params("dequantize_linear", x, scale, zero_point, axis)
    if zero_point is not None and zero_point.dtype != x.dtype:
        raise ShapeError(f"dequantize_linear: zero_point {zero_point} must have the input's dtype {x.dtype}")
    return TensorSpec(scale.dtype, x.shape)


def dequantize(q: np.ndarray, scale: np.ndarray, zero_point: Optional[np.ndarray], axis: int) -> np.ndarray:
    """The reference: (q - zero_point) * scale, in the scale's float type."""
    shp = _bshape(np.asarray(scale), q.ndim, axis)
    s = np.asarray(scale).reshape(shp)
    z = 0 if zero_point is None else np.asarray(zero_point, np.int64).reshape(shp)
    return ((np.asarray(q, np.int64) - z).astype(s.dtype) * s).astype(s.dtype)


define("quantize_linear", inputs=("x", "scale", "zero_point?"),
       attrs={"axis": Attr("int", 1, doc="channel axis of a per-channel scale"),
              "dtype": Attr("dtype", DType.int8, choices=QTYPES, doc="int8 or uint8 (the zero point's type wins)")},
       infer=_q_infer, reference=lambda x, scale, zero_point=None, axis=1, dtype=DType.int8:
       quantize(x, scale, zero_point, axis, dtype),
       category="quantization", doc="saturate(round_half_even(x / scale) + zero_point) to int8/uint8")
define("dequantize_linear", inputs=("x", "scale", "zero_point?"),
       attrs={"axis": Attr("int", 1, doc="channel axis of a per-channel scale")},
       infer=_dq_infer, reference=lambda x, scale, zero_point=None, axis=1: dequantize(x, scale, zero_point, axis),
       category="quantization", doc="(x - zero_point) * scale, back to the scale's float type")
