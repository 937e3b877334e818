"""Elementwise ops (activations, unary math, binary with broadcasting, comparisons, logical, where,
cast, identity, dropout) against torch float64 and the math module, never netdsl's own code."""
from __future__ import annotations

import math

import numpy as np
import pytest

from .helpers import T, check, needs_torch, rnd, run_op, seed, torch

SHAPES = [(7,), (2, 3, 5), ("N", 4, 3, 3)]


def _shape(s, b=3):
    return tuple(b if d == "N" else d for d in s)


def _sym(s):
    return (0,) if s and s[0] == "N" else ()


def _vec(f):
    """Elementwise Python-scalar function (math module) -> NumPy function."""
    return lambda x: np.vectorize(f, otypes=[np.float64])(x)


# op -> (attrs, torch function, math-module function, input range)
_SQ = math.sqrt(2 / math.pi)
ACT = {
    "relu": ({}, lambda t: torch.relu(t), lambda v: max(v, 0.0), (-3, 3)),
    "leaky_relu": ({"alpha": 0.07}, lambda t: torch.nn.functional.leaky_relu(t, 0.07),
                   lambda v: v if v >= 0 else 0.07 * v, (-3, 3)),
    "elu": ({"alpha": 0.8}, lambda t: torch.nn.functional.elu(t, 0.8), lambda v: v if v > 0 else 0.8 * math.expm1(v),
            (-3, 3)),
    "selu": ({}, lambda t: torch.selu(t),
             lambda v: 1.0507009873554805 * (v if v > 0 else 1.6732632423543772 * math.expm1(v)), (-3, 3)),
    "sigmoid": ({}, torch.sigmoid if torch else None, lambda v: 1 / (1 + math.exp(-v)), (-30, 30)),
    "hard_sigmoid": ({"alpha": 1 / 6, "beta": 0.5}, lambda t: torch.nn.functional.hardsigmoid(t),
                     lambda v: min(max(v / 6 + 0.5, 0.0), 1.0), (-5, 5)),
    "tanh": ({}, torch.tanh if torch else None, math.tanh, (-4, 4)),
    "gelu": ({}, lambda t: torch.nn.functional.gelu(t), lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))),
             (-4, 4)),
    "silu": ({}, lambda t: torch.nn.functional.silu(t), lambda v: v / (1 + math.exp(-v)), (-6, 6)),
    "hard_swish": ({}, lambda t: torch.nn.functional.hardswish(t), lambda v: v * min(max(v + 3, 0), 6) / 6,
                   (-5, 5)),
    "mish": ({}, lambda t: torch.nn.functional.mish(t), lambda v: v * math.tanh(math.log1p(math.exp(v))),
             (-5, 5)),
    "softplus": ({}, lambda t: torch.nn.functional.softplus(t), lambda v: math.log1p(math.exp(v)), (-8, 8)),
    "softsign": ({}, lambda t: torch.nn.functional.softsign(t), lambda v: v / (1 + abs(v)), (-5, 5)),
    "clip": ({"min": -0.5, "max": 1.25}, lambda t: torch.clamp(t, -0.5, 1.25),
             lambda v: min(max(v, -0.5), 1.25), (-3, 3)),
    "neg": ({}, torch.neg if torch else None, lambda v: -v, (-3, 3)),
    "abs": ({}, torch.abs if torch else None, abs, (-3, 3)),
    "exp": ({}, torch.exp if torch else None, math.exp, (-4, 4)),
    "log": ({}, torch.log if torch else None, math.log, (0.05, 5)),
    "sqrt": ({}, torch.sqrt if torch else None, math.sqrt, (0.05, 5)),
    "rsqrt": ({}, torch.rsqrt if torch else None, lambda v: 1 / math.sqrt(v), (0.05, 5)),
    "reciprocal": ({}, torch.reciprocal if torch else None, lambda v: 1 / v, (0.2, 5)),
    "erf": ({}, torch.erf if torch else None, math.erf, (-3, 3)),
    "identity": ({}, lambda t: t.clone(), lambda v: v, (-3, 3)),
    "dropout": ({"p": 0.3}, lambda t: torch.nn.functional.dropout(t, 0.3, training=False), lambda v: v, (-3, 3)),
}
# variants with other attributes (attrs, torch fn, math fn)
ACT_VARIANTS = [
    ("gelu", {"approximate": "tanh"}, lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
     lambda v: 0.5 * v * (1 + math.tanh(_SQ * (v + 0.044715 * v ** 3)))),
    ("hard_sigmoid", {}, None, lambda v: min(max(0.2 * v + 0.5, 0.0), 1.0)),
    ("leaky_relu", {}, lambda t: torch.nn.functional.leaky_relu(t), lambda v: v if v >= 0 else 0.01 * v),
    ("clip", {"min": 0.0, "max": 6.0}, lambda t: torch.nn.functional.relu6(t), lambda v: min(max(v, 0.0), 6.0)),
    ("clip", {"min": 0.3}, lambda t: torch.clamp(t, min=0.3), lambda v: max(v, 0.3)),
    ("clip", {"max": -0.2}, lambda t: torch.clamp(t, max=-0.2), lambda v: min(v, -0.2)),
    ("elu", {}, lambda t: torch.nn.functional.elu(t), lambda v: v if v > 0 else math.expm1(v)),
]
COVERS = set(ACT) | {"prelu", "softmax", "log_softmax", "add", "sub", "mul", "div", "pow", "maximum", "minimum",
                     "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
                     "logical_or", "logical_not", "where", "cast"}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op", sorted(ACT))
def test_unary_vs_math_module(op, shape):
    attrs, _, f, (lo, hi) = ACT[op]
    rng = np.random.default_rng(seed(op, shape))
    x = rnd(rng, *_shape(shape), low=lo, high=hi)
    check(op, [x], attrs, _vec(f), sym=_sym(shape))


@needs_torch
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op", sorted(ACT))
def test_unary_vs_torch(op, shape):
    attrs, tf, _, (lo, hi) = ACT[op]
    rng = np.random.default_rng(seed(op, shape, 1))
    for b in (1, 4):  # several batch sizes through the symbolic batch
        x = rnd(rng, *_shape(shape, b), low=lo, high=hi)
        check(op, [x], attrs, lambda a: tf(T(a)), sym=_sym(shape))


@pytest.mark.parametrize("i", range(len(ACT_VARIANTS)), ids=lambda i: f"{ACT_VARIANTS[i][0]}-{i}")
def test_unary_attribute_variants(i):
    op, attrs, tf, f = ACT_VARIANTS[i]
    x = rnd(np.random.default_rng(i), 3, 4, 5, low=-7, high=7)
    check(op, [x], attrs, _vec(f))
    if tf is not None and torch is not None:
        check(op, [x], attrs, lambda a: tf(T(a)))


def test_activation_extremes_are_finite_and_exact():
    """Stable formulations: no overflow for large |x| (sigmoid, softplus, silu, mish)."""
    x = np.array([[-200.0, -50.0, -1.0, 1.0, 50.0, 200.0]])
    for op, f in [("sigmoid", lambda v: 1 / (1 + math.exp(-v)) if v > -100 else math.exp(v)),
                  ("softplus", lambda v: max(v, 0) + math.log1p(math.exp(-abs(v))))]:
        with np.errstate(over="ignore"):
            got = run_op(op, [x], {}, "float64")[0]
        np.testing.assert_allclose(got, _vec(f)(x), rtol=1e-12, atol=0)


# ---- prelu -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,slope_n", [((2, 3, 4, 4), 3), ((3, 5), 5), ((2, 4, 6), 1), (("N", 3, 5), 3)],
                         ids=str)
def test_prelu(shape, slope_n):
    rng = np.random.default_rng(3)
    for b in (1, 3):
        x = rnd(rng, *_shape(shape, b))
        s = rnd(rng, slope_n, low=0.05, high=0.9)

        def naive(x, s):
            out = x.copy()
            for idx in np.ndindex(x.shape):
                if x[idx] < 0:
                    out[idx] = x[idx] * s[idx[1] if slope_n > 1 else 0]
            return out
        check("prelu", [x, s], {}, naive, sym=_sym(shape))
        if torch is not None:
            check("prelu", [x, s], {}, lambda x, s: torch.nn.functional.prelu(T(x), T(s)), sym=_sym(shape))


# ---- softmax / log_softmax -------------------------------------------------------------------------
def _naive_softmax(x, axis, log):
    xm = np.moveaxis(x, axis, -1)
    out = np.empty_like(xm)
    for idx in np.ndindex(xm.shape[:-1]):
        row = [float(v) for v in xm[idx]]
        m = max(row)
        s = math.fsum(math.exp(v - m) for v in row)
        out[idx] = [(v - m - math.log(s)) if log else math.exp(v - m) / s for v in row]
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,axis", [((5,), 0), ((3, 7), -1), ((3, 7), 0), ((2, 4, 3, 3), 1),
                                        (("N", 3, 6), -1), (("N", 3, 6), 1)], ids=str)
def test_softmax(log, shape, axis):
    op = "log_softmax" if log else "softmax"
    rng = np.random.default_rng(5)
    for b in (1, 3):
        x = rnd(rng, *_shape(shape, b), low=-8, high=8)
        check(op, [x], {"axis": axis}, lambda a: _naive_softmax(a, axis, log), sym=_sym(shape))
        if torch is not None:
            tf = torch.log_softmax if log else torch.softmax
            check(op, [x], {"axis": axis}, lambda a: tf(T(a), axis), sym=_sym(shape))


def test_softmax_large_logits_stable():
    x = np.array([[1000.0, 999.0, -1000.0]])
    got = run_op("softmax", [x], {"axis": -1}, "float64")[0]
    np.testing.assert_allclose(got, _naive_softmax(x, -1, False), rtol=1e-12)


# ---- binary with broadcasting -------------------------------------------------------------------------
BINARY = {
    "add": (lambda a, b: a + b, "add"), "sub": (lambda a, b: a - b, "sub"), "mul": (lambda a, b: a * b, "mul"),
    "div": (lambda a, b: a / b, "div"), "pow": (lambda a, b: a ** b, "pow"),
    "maximum": (max, "maximum"), "minimum": (min, "minimum"),
}
BSHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (2, 3)), ((2, 3, 1, 5), (1, 3, 4, 1)),
           ((), (3, 2))]


def _naive_binary(f, a, b, out_dtype=np.float64):
    """Broadcast by explicit index arithmetic (not NumPy broadcasting), then a Python scalar op."""
    r = max(a.ndim, b.ndim)
    sa, sb = (1,) * (r - a.ndim) + a.shape, (1,) * (r - b.ndim) + b.shape
    shape = tuple(max(x, y) for x, y in zip(sa, sb))
    ar, br = a.reshape(sa), b.reshape(sb)
    out = np.empty(shape, out_dtype)
    for idx in np.ndindex(shape):
        ia = tuple(i if d > 1 else 0 for i, d in zip(idx, sa))
        ib = tuple(i if d > 1 else 0 for i, d in zip(idx, sb))
        out[idx] = f(ar[ia].item(), br[ib].item())
    return out


@pytest.mark.parametrize("shapes", BSHAPES, ids=str)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_broadcast(op, shapes):
    rng = np.random.default_rng(11)
    a = rnd(rng, *shapes[0], low=0.2 if op == "pow" else -3, high=3)
    b = rnd(rng, *shapes[1], low=-2 if op == "pow" else -3, high=2 if op == "pow" else 3)
    if op == "div":
        b = np.where(np.abs(b) < 0.2, 0.5, b)
    f = BINARY[op][0]
    check(op, [a, b], {}, lambda a, b: _naive_binary(f, a, b))
    if torch is not None:
        tf = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow,
              "maximum": torch.maximum, "minimum": torch.minimum}[op]
        check(op, [a, b], {}, lambda a, b: tf(T(a), T(b)))


@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_symbolic_batch(op):
    rng = np.random.default_rng(12)
    f = BINARY[op][0]
    for n in (1, 2, 5):
        a = rnd(rng, n, 3, 4, low=0.3, high=3)
        b = rnd(rng, 1, 3, 1, low=0.3, high=2)
        check(op, [a, b], {}, lambda a, b: _naive_binary(f, a, b), sym=(0,))
        check(op, [b, a], {}, lambda b, a: _naive_binary(f, b, a), sym=(1,))  # the symbolic input second


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_binary(dtype):
    """Integer arithmetic, division truncating toward zero (C semantics)."""
    rng = np.random.default_rng(13)
    a = rng.integers(-50, 50, size=(4, 5)).astype(dtype)
    b = rng.integers(1, 9, size=(5,)).astype(dtype) * rng.choice([-1, 1], size=5).astype(dtype)
    tdiv = lambda x, y: int(x / y) if x * y >= 0 else -(abs(x) // abs(y))  # noqa: E731
    for op, f in [("add", lambda x, y: x + y), ("sub", lambda x, y: x - y), ("mul", lambda x, y: x * y),
                  ("div", tdiv), ("maximum", max), ("minimum", min)]:
        check(op, [a, b], {}, lambda a, b: _naive_binary(f, a, b, np.dtype(dtype)))
        if torch is not None and op == "div":
            check(op, [a, b], {}, lambda a, b: torch.div(T(a), T(b), rounding_mode="trunc"))


# ---- comparisons / logical / where --------------------------------------------------------------------
CMP = {"equal": lambda a, b: a == b, "not_equal": lambda a, b: a != b, "less": lambda a, b: a < b,
       "less_equal": lambda a, b: a <= b, "greater": lambda a, b: a > b, "greater_equal": lambda a, b: a >= b}


@pytest.mark.parametrize("shapes", BSHAPES[:5], ids=str)
@pytest.mark.parametrize("op", sorted(CMP))
def test_compare(op, shapes):
    rng = np.random.default_rng(17)
    # small integer-valued floats so that equality happens often
    a = rng.integers(-2, 3, size=shapes[0]).astype(np.float64)
    b = rng.integers(-2, 3, size=shapes[1]).astype(np.float64)
    check(op, [a, b], {}, lambda a, b: _naive_binary(CMP[op], a, b, np.bool_))
    if torch is not None:
        tf = getattr(torch, {"equal": "eq", "not_equal": "ne", "less": "lt", "less_equal": "le",
                             "greater": "gt", "greater_equal": "ge"}[op])
        check(op, [a, b], {}, lambda a, b: tf(T(a), T(b)))
    ia, ib = a.astype(np.int32), b.astype(np.int32)
    check(op, [ia, ib], {}, lambda a, b: _naive_binary(CMP[op], a, b, np.bool_))


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (3, 1)), ((5,), (2, 1))], ids=str)
def test_logical(shapes):
    rng = np.random.default_rng(19)
    a, b = rng.random(shapes[0]) < 0.5, rng.random(shapes[1]) < 0.5
    check("logical_and", [a, b], {}, lambda a, b: _naive_binary(lambda x, y: x and y, a, b, np.bool_))
    check("logical_or", [a, b], {}, lambda a, b: _naive_binary(lambda x, y: x or y, a, b, np.bool_))
    check("logical_not", [a], {}, lambda a: np.vectorize(lambda v: not v, otypes=[np.bool_])(a))
    if torch is not None:
        check("logical_and", [a, b], {}, lambda a, b: torch.logical_and(T(a), T(b)))
        check("logical_or", [a, b], {}, lambda a, b: torch.logical_or(T(a), T(b)))
        check("logical_not", [a], {}, lambda a: torch.logical_not(T(a)))


def test_logical_symbolic_batch():
    rng = np.random.default_rng(20)
    for n in (1, 3):
        a, b = rng.random((n, 4)) < 0.5, rng.random((1, 4)) < 0.5
        check("logical_and", [a, b], {}, lambda a, b: _naive_binary(lambda x, y: x and y, a, b, np.bool_), sym=(0,))
        check("logical_not", [a], {}, lambda a: ~a, sym=(0,))


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), (4,)), ((2, 3, 4), (4,), ()),
                                    ((4,), (2, 3, 4), (2, 1, 1))], ids=str)
def test_where(shapes):
    rng = np.random.default_rng(23)
    c = rng.random(shapes[0]) < 0.5
    a, b = rnd(rng, *shapes[1]), rnd(rng, *shapes[2])

    def naive(c, a, b):
        r = max(c.ndim, a.ndim, b.ndim)
        shp = np.broadcast_shapes(c.shape, a.shape, b.shape)
        cc, aa, bb = (v.reshape((1,) * (r - v.ndim) + v.shape) for v in (c, a, b))
        out = np.empty(shp)
        for idx in np.ndindex(shp):
            pick = lambda v: v[tuple(i if d > 1 else 0 for i, d in zip(idx, v.shape))]  # noqa: E731
            out[idx] = pick(aa) if pick(cc) else pick(bb)
        return out
    check("where", [c, a, b], {}, naive)
    if torch is not None:
        check("where", [c, a, b], {}, lambda c, a, b: torch.where(T(c), T(a), T(b)))


def test_where_symbolic_batch():
    rng = np.random.default_rng(24)
    for n in (1, 3):
        c, a, b = rng.random((n, 5)) < 0.5, rnd(rng, n, 5), rnd(rng, 5)
        check("where", [c, a, b], {}, lambda c, a, b: np.array(
            [[a[i, j] if c[i, j] else b[j] for j in range(5)] for i in range(n)]), sym=(0, 1))


# ---- cast ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("to", ["int32", "int64", "int8", "float16", "bool", "float32", "bfloat16"])
def test_cast_from_float(to):
    rng = np.random.default_rng(29)
    x = rnd(rng, 3, 7, low=-100, high=100)
    x[0, :4] = [2.5, -2.5, 0.999, -0.999]
    if to in ("int32", "int64", "int8"):
        hi = 127 if to == "int8" else 10 ** 6
        x = np.clip(x, -hi, hi)
        want = np.vectorize(lambda v: math.trunc(v), otypes=[np.dtype(to)])(x)  # toward zero
        check("cast", [x], {"dtype": to}, lambda a: want)
        if torch is not None:
            check("cast", [x], {"dtype": to}, lambda a: T(a).to(getattr(torch, to)))
    elif to == "bool":
        x[1, :2] = 0.0  # zeros matter here: 0 -> False
        check("cast", [x], {"dtype": to}, lambda a: np.vectorize(bool, otypes=[np.bool_])(a))
    elif to == "float16":
        # float16 rounding is the engines' business; torch gives the independent answer
        if torch is not None:
            for dt in ("float64", "float32"):
                got = run_op("cast", [x], {"dtype": to}, dt)[0]
                np.testing.assert_array_equal(got, T(x.astype(np.float32)).to(torch.float16).numpy())
    elif to == "bfloat16":
        if torch is None:
            pytest.skip("torch not installed")
        got = run_op("cast", [x], {"dtype": to}, "float32")[0]
        want = T(x.astype(np.float32)).to(torch.bfloat16).to(torch.float32).numpy()
        np.testing.assert_array_equal(got, want)
    else:
        check("cast", [x], {"dtype": to}, lambda a: a.astype(np.float32))


@pytest.mark.parametrize("src", ["int32", "bool"])
def test_cast_to_float(src):
    rng = np.random.default_rng(31)
    x = rng.integers(-5, 6, size=(4, 6)).astype(src) if src != "bool" else rng.random((4, 6)) < 0.5
    check("cast", [x], {"dtype": "float32"},
          lambda a: np.array([[float(v) for v in row] for row in a.tolist()]))
    check("cast", [x], {"dtype": "int64"}, lambda a: np.array([[int(v) for v in row] for row in a.tolist()]))


def test_cast_symbolic_batch():
    rng = np.random.default_rng(32)
    for n in (1, 3):
        x = rnd(rng, n, 5, low=-9, high=9)
        check("cast", [x], {"dtype": "int32"}, lambda a: np.vectorize(math.trunc, otypes=[np.int32])(a), sym=(0,))
