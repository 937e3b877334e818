"""Elementwise ops: activations, unary math, broadcasting binary ops, comparisons, where, cast."""
from __future__ import annotations

import math

import numpy as np

from ..dtypes import DType
from ..errors import ShapeError
from ..graph import TensorSpec
from ..shapes import broadcast_shapes, fmt_shape
from .registry import Attr, define, require_float, same

_erf = None


def erf(x: np.ndarray) -> np.ndarray:
    """erf, from scipy when installed (imported on first use: ~0.6 s), else math.erf per element."""
    global _erf
    if _erf is None:
        try:
            from scipy.special import erf as fn
        except ImportError:  # pragma: no cover - depends on the environment
            fn = np.vectorize(math.erf, otypes=[np.float64])
        _erf = fn
    return np.asarray(_erf(x)).astype(x.dtype, copy=False)


def _float_same(op):
    def infer(x, **_):
        require_float(op, x)
        return x
    return infer


def _sigmoid(x):
    # stable for large |x|
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1 + e)
    return out


def _softplus(x):
    return np.logaddexp(np.zeros((), x.dtype), x).astype(x.dtype, copy=False)


def _gelu(x, approximate):
    if approximate == "tanh":
        c = np.asarray(math.sqrt(2 / math.pi), x.dtype)
        return (0.5 * x * (1 + np.tanh(c * (x + np.asarray(0.044715, x.dtype) * x ** 3)))).astype(x.dtype)
    return (0.5 * x * (1 + erf(x / np.asarray(math.sqrt(2), x.dtype)))).astype(x.dtype)


def _c(x, v):
    return np.asarray(v, dtype=x.dtype)


# name -> (reference, attrs, doc)
_ACTIVATIONS = {
    "relu": (lambda x: np.maximum(x, _c(x, 0)), {}, "max(x, 0)"),
    "leaky_relu": (lambda x, alpha: np.where(x >= 0, x, x * _c(x, alpha)), {"alpha": Attr("float", 0.01)},
                   "x if x >= 0 else alpha*x"),
    "elu": (lambda x, alpha: np.where(x > 0, x, _c(x, alpha) * np.expm1(np.minimum(x, 0))),
            {"alpha": Attr("float", 1.0)}, "x if x > 0 else alpha*(exp(x)-1)"),
    "selu": (lambda x, alpha, gamma: _c(x, gamma) * np.where(x > 0, x, _c(x, alpha) * np.expm1(np.minimum(x, 0))),
             {"alpha": Attr("float", 1.6732632423543772), "gamma": Attr("float", 1.0507009873554805)},
             "gamma * (x if x > 0 else alpha*(exp(x)-1))"),
    "sigmoid": (_sigmoid, {}, "1 / (1 + exp(-x))"),
    "hard_sigmoid": (lambda x, alpha, beta: np.clip(_c(x, alpha) * x + _c(x, beta), 0, 1).astype(x.dtype),
                     {"alpha": Attr("float", 0.2), "beta": Attr("float", 0.5)}, "clip(alpha*x + beta, 0, 1)"),
    "tanh": (np.tanh, {}, "tanh(x)"),
    "gelu": (_gelu, {"approximate": Attr("str", "none", choices=("none", "tanh"))},
             "x * Phi(x) (erf form) or its tanh approximation"),
    "silu": (lambda x: x * _sigmoid(x), {}, "x * sigmoid(x) (swish)"),
    "hard_swish": (lambda x: x * np.clip(x + _c(x, 3), 0, 6) / _c(x, 6), {}, "x * relu6(x + 3) / 6"),
    "mish": (lambda x: x * np.tanh(_softplus(x)), {}, "x * tanh(softplus(x))"),
    "softplus": (_softplus, {}, "log(1 + exp(x))"),
    "softsign": (lambda x: x / (1 + np.abs(x)), {}, "x / (1 + |x|)"),
}

for _name, (_ref, _attrs, _doc) in _ACTIVATIONS.items():
    define(_name, attrs=_attrs, infer=_float_same(_name), reference=_ref, category="activation", doc=_doc)


def _clip_ref(x, min, max):  # noqa: A002 - attribute names
    lo = -np.inf if min is None else min
    hi = np.inf if max is None else max
    return np.clip(x, _c(x, lo) if x.dtype.kind == "f" else lo, _c(x, hi) if x.dtype.kind == "f" else hi).astype(x.dtype)


define("clip", attrs={"min": Attr("float", None), "max": Attr("float", None)}, infer=same,
       reference=_clip_ref, category="activation", doc="clamp to [min, max] (relu6 = clip(0, 6))")


def _prelu_infer(x, slope):
    require_float("prelu", x, slope)
    if x.dtype != slope.dtype:
        raise ShapeError(f"prelu: slope dtype {slope.dtype} differs from input {x.dtype}")
    if slope.rank != 1 or x.rank < 2 or slope.shape[0] not in (1, x.shape[1]):
        raise ShapeError(f"prelu: slope must have shape (C,) or (1,) for input {x} (channels on axis 1), "
                         f"got {fmt_shape(slope.shape)}")
    return x


def _prelu_ref(x, slope):
    s = slope.reshape((1, -1) + (1,) * (x.ndim - 2))
    return np.where(x >= 0, x, x * s)


define("prelu", inputs=("x", "slope"), infer=_prelu_infer, reference=_prelu_ref, category="activation",
       doc="x if x >= 0 else slope[c]*x, slope per channel (axis 1)")


def _softmax_ref(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_ref(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def _softmax_infer(op):
    def infer(x, axis):
        require_float(op, x)
        if not -x.rank <= axis < x.rank:
            raise ShapeError(f"{op}: axis {axis} out of range for {x}")
        return x
    return infer


define("softmax", attrs={"axis": Attr("int", -1)}, infer=_softmax_infer("softmax"), reference=_softmax_ref,
       category="activation", doc="exp(x) / sum(exp(x)) along axis")
define("log_softmax", attrs={"axis": Attr("int", -1)}, infer=_softmax_infer("log_softmax"),
       reference=_log_softmax_ref, category="activation", doc="log(softmax(x)) along axis")

# ---- unary math ------------------------------------------------------------------------------
_UNARY = {
    "neg": (np.negative, False), "abs": (np.abs, False), "exp": (np.exp, True), "log": (np.log, True),
    "sqrt": (np.sqrt, True), "rsqrt": (lambda x: 1 / np.sqrt(x), True),
    "reciprocal": (lambda x: 1 / x, True), "erf": (erf, True),
}
for _name, (_ref, _float_only) in _UNARY.items():
    define(_name, infer=_float_same(_name) if _float_only else same, reference=_ref, category="math",
           doc=f"elementwise {_name}")


# ---- binary --------------------------------------------------------------------------------
def _binary_infer(op, out_dtype=None):
    def infer(a, b):
        if a.dtype != b.dtype:
            raise ShapeError(f"{op}: inputs have different dtypes {a} and {b} (cast one of them)")
        try:
            shape = broadcast_shapes(a.shape, b.shape)
        except ShapeError:
            raise ShapeError(f"{op}: cannot broadcast {a} with {b}") from None
        return TensorSpec(out_dtype or a.dtype, shape)
    return infer


def _div_ref(a, b):
    if a.dtype.kind in "iu":
        return np.trunc(a / b).astype(a.dtype)  # C-style truncation, as engines do
    return a / b


def _pow_ref(a, b):
    return np.power(a, b)


_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": _div_ref, "pow": _pow_ref,
           "maximum": np.maximum, "minimum": np.minimum}
for _name, _ref in _BINARY.items():
    define(_name, inputs=("a", "b"), infer=_binary_infer(_name), reference=_ref, category="binary",
           doc=f"elementwise {_name} with NumPy broadcasting")

_COMPARE = {"equal": np.equal, "not_equal": np.not_equal, "less": np.less, "less_equal": np.less_equal,
            "greater": np.greater, "greater_equal": np.greater_equal}
for _name, _ref in _COMPARE.items():
    define(_name, inputs=("a", "b"), infer=_binary_infer(_name, DType.bool), reference=_ref,
           category="compare", doc=f"elementwise {_name} -> bool, with broadcasting")


def _logical_infer(op):
    def infer(a, b):
        if a.dtype != DType.bool or b.dtype != DType.bool:
            raise ShapeError(f"{op} needs bool inputs, got {a} and {b}")
        return _binary_infer(op)(a, b)
    return infer


define("logical_and", inputs=("a", "b"), infer=_logical_infer("logical_and"), reference=np.logical_and,
       category="compare", doc="elementwise and of bool tensors")
define("logical_or", inputs=("a", "b"), infer=_logical_infer("logical_or"), reference=np.logical_or,
       category="compare", doc="elementwise or of bool tensors")


def _not_infer(x):
    if x.dtype != DType.bool:
        raise ShapeError(f"logical_not needs a bool input, got {x}")
    return x


define("logical_not", infer=_not_infer, reference=np.logical_not, category="compare", doc="elementwise not")


def _where_infer(cond, a, b):
    if cond.dtype != DType.bool:
        raise ShapeError(f"where: condition must be bool, got {cond}")
    if a.dtype != b.dtype:
        raise ShapeError(f"where: branches have different dtypes {a} and {b}")
    try:
        return TensorSpec(a.dtype, broadcast_shapes(cond.shape, a.shape, b.shape))
    except ShapeError:
        raise ShapeError(f"where: cannot broadcast {cond}, {a}, {b}") from None


define("where", inputs=("cond", "a", "b"), infer=_where_infer, reference=np.where, category="compare",
       doc="a where cond else b, with broadcasting")


def _cast_ref(x, dtype):
    if x.dtype.kind == "f" and dtype.is_int:
        return np.trunc(x).astype(dtype.numpy)  # toward zero, as engines do
    if dtype is DType.bfloat16:
        return _round_bf16(x.astype(np.float32))
    return x.astype(dtype.numpy)


def _round_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 to the nearest bfloat16 (ties to even), returned as float32."""
    b = x.view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    return b.astype(np.uint32).view(np.float32)


define("cast", attrs={"dtype": Attr("dtype")}, infer=lambda x, dtype: TensorSpec(dtype, x.shape),
       reference=_cast_ref, category="math", doc="convert to another dtype (float->int truncates)")
define("identity", infer=same, reference=lambda x: x.copy(), category="math", doc="y = x")
define("dropout", attrs={"p": Attr("float", 0.5)}, infer=same, reference=lambda x, p: x.copy(),
       category="nn", doc="identity at inference (p is kept for export)")
