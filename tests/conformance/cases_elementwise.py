"""Conformance cases: activations, unary math, broadcasting binary ops, comparisons, where, cast."""
from __future__ import annotations

import netdsl.functional as F

from .cases import add
from .cases_util import DYN, bools, case, f32, int_floats, ints

# op -> (input range, attrs)
_UNARY = {
    "relu": ((-3, 3), {}), "leaky_relu": ((-3, 3), {"alpha": 0.1}), "elu": ((-3, 3), {"alpha": 0.7}),
    "selu": ((-3, 3), {}), "sigmoid": ((-6, 6), {}), "hard_sigmoid": ((-4, 4), {}), "tanh": ((-3, 3), {}),
    "gelu": ((-4, 4), {}), "silu": ((-5, 5), {}), "hard_swish": ((-5, 5), {}), "mish": ((-4, 4), {}),
    "softplus": ((-5, 5), {}), "softsign": ((-4, 4), {}), "clip": ((-3, 3), {"min": -1.0, "max": 1.5}),
    "neg": ((-3, 3), {}), "abs": ((-3, 3), {}), "exp": ((-3, 3), {}), "log": ((0.05, 5), {}),
    "sqrt": ((0.05, 5), {}), "rsqrt": ((0.1, 5), {}), "reciprocal": ((0.25, 4), {}), "erf": ((-2.5, 2.5), {}),
    "identity": ((-3, 3), {}), "dropout": ((-3, 3), {"p": 0.25}),
}


def _u(op, attrs):
    return lambda n, x: n.apply(op, [x], **attrs)


for _op, ((_lo, _hi), _attrs) in _UNARY.items():
    add(case(_op, f"{_op}_nchw_dynbatch", _u(_op, _attrs), [f32(("N", 3, 4, 5), _lo, _hi)], batches=DYN),
        case(_op, f"{_op}_2d", _u(_op, _attrs), [f32((6, 7), _lo, _hi)]))

add(
    case("gelu", "gelu_tanh", lambda n, x: F.gelu(x, approximate="tanh"), [f32(("N", 16), -4, 4)], batches=DYN),
    case("hard_sigmoid", "hard_sigmoid_pytorch", lambda n, x: F.hard_sigmoid(x, 1 / 6, 0.5), [f32((4, 9), -5, 5)]),
    case("clip", "relu6", lambda n, x: F.relu6(x), [f32(("N", 2, 5, 5), -3, 9)], batches=DYN),
    case("clip", "clip_min_only", lambda n, x: F.clip(x, min=0.25), [f32((3, 8), -2, 2)]),
    case("leaky_relu", "leaky_relu_default", lambda n, x: F.leaky_relu(x), [f32((2, 3, 6), -3, 3)]),
    case("prelu", "prelu_per_channel_dynbatch", lambda n, x: F.prelu(x, n.parameter("slope", (3,), init="small")),
         [f32(("N", 3, 4, 4))], batches=DYN),
    case("prelu", "prelu_shared_slope", lambda n, x: F.prelu(x, n.parameter("slope", (1,), init="small")),
         [f32((2, 5))]),
    case("softmax", "softmax_last_dynbatch", lambda n, x: F.softmax(x, -1), [f32(("N", 4, 10), -5, 5)], batches=DYN),
    case("softmax", "softmax_axis1", lambda n, x: F.softmax(x, 1), [f32((2, 6, 3, 3), -5, 5)]),
    case("log_softmax", "log_softmax_last_dynbatch", lambda n, x: F.log_softmax(x, -1), [f32(("N", 10), -5, 5)],
         batches=DYN),
    case("log_softmax", "log_softmax_axis0", lambda n, x: F.log_softmax(x, 0), [f32((5, 4), -5, 5)]),
)

# ---- binary: same shape, broadcasting, symbolic batch --------------------------------------------------
_BIN = {"add": ((-2, 2), (-2, 2)), "sub": ((-2, 2), (-2, 2)), "mul": ((-2, 2), (-2, 2)), "div": ((-2, 2), (0.5, 2)),
        "pow": ((0.2, 3), (-2, 2)), "maximum": ((-2, 2), (-2, 2)), "minimum": ((-2, 2), (-2, 2))}


def _b(op):
    return lambda n, a, b: n.apply(op, [a, b])


for _op, (_ra, _rb) in _BIN.items():
    add(case(_op, f"{_op}_same_shape", _b(_op), [f32((3, 4, 5), *_ra), f32((3, 4, 5), *_rb)]),
        case(_op, f"{_op}_broadcast_dynbatch", _b(_op), [f32(("N", 3, 4), *_ra), f32((4,), *_rb)], batches=DYN),
        case(_op, f"{_op}_broadcast_both", _b(_op), [f32((2, 1, 4), *_ra), f32((3, 1), *_rb)]))

add(
    case("add", "add_scalar_const", lambda n, x: x + 1.5, [f32(("N", 5))], batches=DYN),
    case("mul", "mul_rank4_by_channel", lambda n, x, s: x * s, [f32(("N", 3, 4, 4)), f32((3, 1, 1))], batches=DYN),
    case("div", "div_int32_trunc", lambda n, a, b: F.div(a, b),
         [((3, 4), "int32", ints(-20, 20)), ((4,), "int32", ints(1, 6))]),
    case("sub", "sub_int32", lambda n, a, b: a - b, [((2, 5), "int32", ints(-9, 9)), ((5,), "int32", ints(-9, 9))]),
)

# ---- comparisons, logical, where ---------------------------------------------------------------------------
for _op in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal"):
    add(case(_op, f"{_op}_broadcast_dynbatch", _b(_op),
             [(("N", 3, 4), "float32", int_floats()), ((4,), "float32", int_floats())], batches=DYN),
        case(_op, f"{_op}_int32", _b(_op), [((4, 5), "int32", ints(-3, 3)), ((4, 1), "int32", ints(-3, 3))]))

for _op in ("logical_and", "logical_or"):
    add(case(_op, f"{_op}_broadcast_dynbatch", _b(_op), [(("N", 4), "bool", bools()), ((4,), "bool", bools())],
             batches=DYN),
        case(_op, f"{_op}_same_shape", _b(_op), [((3, 5), "bool", bools()), ((3, 5), "bool", bools())]))
add(
    case("logical_not", "logical_not_dynbatch", lambda n, x: ~x, [(("N", 6), "bool", bools())], batches=DYN),
    case("logical_not", "logical_not_3d", lambda n, x: F.logical_not(x), [((2, 3, 4), "bool", bools())]),
    case("logical_and", "compare_then_and", lambda n, a, b: (a > 0.0) & (b < 0.5), [f32((3, 6)), f32((3, 6))]),
    case("where", "where_same_shape", lambda n, c, a, b: F.where(c, a, b),
         [((3, 4), "bool", bools()), f32((3, 4)), f32((3, 4))]),
    case("where", "where_broadcast_dynbatch", lambda n, c, a, b: F.where(c, a, b),
         [(("N", 1, 4), "bool", bools()), f32((3, 1)), f32(("N", 3, 4))], batches=DYN),
    case("where", "where_from_compare_scalar", lambda n, x: F.where(x > 0.0, x, 0.1 * x), [f32(("N", 8))],
         batches=DYN),
)

# ---- cast ---------------------------------------------------------------------------------------------------
add(
    case("cast", "cast_f32_to_i32_dynbatch", lambda n, x: F.cast(x, "int32"), [f32(("N", 7), -9.5, 9.5)], batches=DYN),
    case("cast", "cast_i32_to_f32", lambda n, x: F.cast(x, "float32") * 0.5, [((3, 4), "int32", ints(-50, 50))]),
    case("cast", "cast_bool_to_f32", lambda n, x: F.cast(x, "float32"), [((2, 6), "bool", bools())]),
    case("cast", "cast_f32_to_bool", lambda n, x: F.cast(F.cast(x, "int32"), "bool"), [f32((4, 5), -2.5, 2.5)]),
)
