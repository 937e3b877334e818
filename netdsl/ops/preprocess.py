"""Input preprocessing as one op: layout (e.g. NHWC -> NCHW), element type, channel order, mean and scale.

``preprocess(x; layout, mean, scale, reverse_channels, dtype)`` computes, on ``x`` in its own layout::

    y = x as dtype;  y = y[..., ::-1 on C] if reverse_channels;  y = (y - mean) / scale;  y -> model layout

``mean`` and ``scale`` hold 0 (none), 1 or C values, per channel in the order *after* any reversal (the
order the model sees). The model layout is N (if present), then C, then the other axes in their order.
Backends do it natively: OpenVINO's PrePostProcessor on a model input, TensorRT cast/slice/elementwise/
shuffle layers, ONNX Cast/Slice/Sub/Div/Transpose.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..errors import ShapeError
from ..graph import TensorSpec
from .registry import Attr, define


def model_perm(layout: str) -> tuple[int, ...]:
    """Axis order taking ``layout`` to the model layout: N first (if present), then C, then the rest."""
    if not layout or len(set(layout)) != len(layout) or not layout.isalpha() or not layout.isupper():
        raise ShapeError(f"preprocess: layout {layout!r} must be distinct upper-case axis letters such as 'NHWC'")
    if "C" not in layout:
        raise ShapeError(f"preprocess: layout {layout!r} has no channel axis 'C'")
    first = [layout.index(c) for c in "NC" if c in layout]
    return tuple(first + [i for i, c in enumerate(layout) if c not in "NC"])


def model_layout(layout: str) -> str:
    """The layout the model sees (``'NHWC'`` -> ``'NCHW'``)."""
    return "".join(layout[i] for i in model_perm(layout))


def _check(x, layout, mean, scale, dtype) -> int:
    if x.rank != len(layout):
        raise ShapeError(f"preprocess: layout {layout!r} has {len(layout)} axes but the input is {x}")
    model_perm(layout)
    c = x.shape[layout.index("C")]
    for what, vals in (("mean", mean), ("scale", scale)):
        if len(vals) > 1 and isinstance(c, int) and len(vals) != c:
            raise ShapeError(f"preprocess: {what} has {len(vals)} values but the input {x} has {c} channels")
        if len(vals) > 1 and not isinstance(c, int):
            raise ShapeError(f"preprocess: per-channel {what} needs a static channel count, got {x}")
    if any(s == 0 for s in scale):
        raise ShapeError(f"preprocess: scale {scale} must not contain 0 (it divides)")
    if not dtype.is_float:
        raise ShapeError(f"preprocess: dtype must be a floating type, got {dtype}")
    if not (x.dtype.is_float or x.dtype.is_int):
        raise ShapeError(f"preprocess: the input must be numeric, got {x}")
    return layout.index("C")


def _infer(x, *, layout, mean, scale, reverse_channels, dtype):
    _check(x, layout, mean, scale, dtype)
    return TensorSpec(dtype, tuple(x.shape[i] for i in model_perm(layout)))


def channel_values(vals: tuple, rank: int, c_axis: int) -> np.ndarray:
    """Per-channel values shaped to broadcast along ``c_axis`` of a rank-``rank`` tensor (float64)."""
    a = np.asarray(vals, np.float64)
    shape = [1] * rank
    shape[c_axis] = a.size
    return a.reshape(shape)


def _reference(x, *, layout, mean, scale, reverse_channels, dtype):
    c = layout.index("C")
    y = x.astype(np.float64)
    if reverse_channels:
        y = np.flip(y, axis=c)
    if mean:
        y = y - channel_values(mean, y.ndim, c)
    if scale:
        y = y / channel_values(scale, y.ndim, c)
    return np.transpose(y, model_perm(layout))  # float64: the executor rounds to its compute type


define("preprocess", attrs={
    "layout": Attr("str", "NCHW"), "mean": Attr("floats", ()), "scale": Attr("floats", ()),
    "reverse_channels": Attr("bool", False), "dtype": Attr("dtype", DType.float32)},
    infer=_infer, reference=_reference, category="shape",
    doc="input preprocessing: to dtype, reverse the channel order, (x - mean) / scale per channel, then "
        "from layout (e.g. NHWC) to the model layout (N, C, then the other axes)")
