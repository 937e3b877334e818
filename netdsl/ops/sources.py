"""Ops with no tensor inputs: constants and parameters (weights)."""
from __future__ import annotations


from ..dtypes import as_dtype
from ..errors import ShapeError
from ..graph import TensorSpec
from .registry import Attr, define


def _const_infer(*, value):
    try:
        dt = as_dtype(value.dtype)
    except TypeError:
        raise ShapeError(f"constant of unsupported dtype {value.dtype}") from None
    return TensorSpec(dt, tuple(int(d) for d in value.shape))


define("constant", inputs=(), attrs={"value": Attr("array")}, category="source",
       infer=_const_infer, reference=lambda *, value: value.copy(),
       doc="A constant tensor stored in the graph.")


def _param_infer(*, name, dtype, shape):
    return TensorSpec(dtype, tuple(shape))


def _param_reference(*, name, dtype, shape):
    raise RuntimeError("parameters are read by the executor from graph.params")


define("parameter", inputs=(), attrs={"name": Attr("str"), "dtype": Attr("dtype"), "shape": Attr("ints")},
       category="source", infer=_param_infer, reference=_param_reference,
       doc="A named weight; its data is bound lazily from a checkpoint (graph.params[name]).")
