"""Conformance cases: reductions (axes, keepdims, all axes), argmax/argmin and topk (no ties)."""
from __future__ import annotations

import netdsl.functional as F

from .cases import add
from .cases_util import DYN, case, distinct, f32, ints

_RED = {"reduce_sum": F.sum, "reduce_mean": F.mean, "reduce_max": F.max, "reduce_min": F.min, "reduce_prod": F.prod}

for _op, _fn in _RED.items():
    _lo, _hi = (0.7, 1.3) if _op == "reduce_prod" else (-2, 2)
    add(case(_op, f"{_op}_axis_keepdims_dynbatch", (lambda f: lambda n, x: f(x, (2, 3), keepdims=True))(_fn),
             [f32(("N", 3, 4, 5), _lo, _hi)], batches=DYN),
        case(_op, f"{_op}_axis1", (lambda f: lambda n, x: f(x, 1))(_fn), [f32((3, 6, 2), _lo, _hi)]),
        case(_op, f"{_op}_all", (lambda f: lambda n, x: f(x))(_fn), [f32((4, 5), _lo, _hi)]),
        case(_op, f"{_op}_neg_axes_dynbatch", (lambda f: lambda n, x: f(x, (-1, -2)))(_fn), [f32(("N", 3, 4), _lo, _hi)],
             batches=DYN))

add(
    case("reduce_sum", "reduce_sum_int32", lambda n, x: F.sum(x, 0), [((5, 3), "int32", ints(-9, 9))]),
    case("reduce_max", "reduce_max_all_keepdims", lambda n, x: F.max(x, keepdims=True), [f32((2, 3, 4))]),
)

for _op, _fn in (("argmax", F.argmax), ("argmin", F.argmin)):
    add(case(_op, f"{_op}_last_dynbatch", (lambda f: lambda n, x: f(x, -1))(_fn),
             [(("N", 7), "float32", distinct())], batches=DYN),
        case(_op, f"{_op}_axis1_keepdims", (lambda f: lambda n, x: f(x, 1, keepdims=True))(_fn),
             [((2, 5, 3), "float32", distinct())]),
        case(_op, f"{_op}_axis0", (lambda f: lambda n, x: f(x, 0))(_fn), [((6, 4), "float32", distinct())]))

add(
    case("topk", "topk3_last_dynbatch", lambda n, x: F.topk(x, 3), [(("N", 8), "float32", distinct())], batches=DYN),
    case("topk", "topk2_smallest", lambda n, x: F.topk(x, 2, largest=False), [((3, 6), "float32", distinct())]),
    case("topk", "topk_axis0_all", lambda n, x: F.topk(x, 4, axis=0), [((4, 3, 2), "float32", distinct())]),
    case("topk", "topk1_axis1", lambda n, x: F.topk(x, 1, axis=1), [((2, 5, 3), "float32", distinct())]),
)
