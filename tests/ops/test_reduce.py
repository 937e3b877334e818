"""Reductions, argmax/argmin and topk against torch and naive Python loops (math.fsum, sorted)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from .helpers import T, check, distinct, rnd, run_op, torch

COVERS = {"reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "argmax", "argmin", "topk"}

PY = {"reduce_sum": math.fsum, "reduce_mean": lambda v: math.fsum(v) / len(v), "reduce_max": max,
      "reduce_min": min, "reduce_prod": math.prod}


def naive_reduce(x, axes, keepdims, f):
    ax = tuple(range(x.ndim)) if axes is None else tuple(sorted(a % x.ndim for a in axes))
    rest = [i for i in range(x.ndim) if i not in ax]
    xm = np.transpose(x, rest + list(ax))
    lead = xm.shape[:len(rest)]
    out = np.empty(lead)
    for idx in np.ndindex(*lead):
        out[idx] = f([float(v) for v in xm[idx].ravel()])
    if keepdims:
        out = out.reshape(tuple(1 if i in ax else d for i, d in enumerate(x.shape)))
    return out


def torch_reduce(x, axes, keepdims, op):
    t = T(x)
    dims = tuple(range(x.ndim)) if axes is None else tuple(a % x.ndim for a in axes)
    if op == "reduce_prod":
        for d in sorted(dims, reverse=True):
            t = torch.prod(t, dim=d, keepdim=keepdims)
        return t
    fn = {"reduce_sum": torch.sum, "reduce_mean": torch.mean, "reduce_max": torch.amax, "reduce_min": torch.amin}[op]
    return fn(t, dim=dims, keepdim=keepdims)


REDUCE_CASES = [((3, 4, 5), (1,), False), ((3, 4, 5), (0, 2), True), ((3, 4, 5), None, False),
                ((3, 4, 5), None, True), ((2, 3, 4, 2), (-1, -3), False), ((6,), (0,), True),
                (("N", 3, 4), (1, 2), True), (("N", 3, 4), (-1,), False)]


@pytest.mark.parametrize("shape,axes,keepdims", REDUCE_CASES, ids=str)
@pytest.mark.parametrize("op", sorted(PY))
def test_reduce(op, shape, axes, keepdims):
    rng = np.random.default_rng(50)
    lo, hi = (0.6, 1.4) if op == "reduce_prod" else (-3, 3)
    for n in ((1, 3) if shape[0] == "N" else (shape[0],)):
        x = rnd(rng, n, *shape[1:], low=lo, high=hi)
        sym = (0,) if shape[0] == "N" else ()
        attrs = {"axes": axes, "keepdims": keepdims}
        check(op, [x], attrs, lambda x: naive_reduce(x, axes, keepdims, PY[op]), sym=sym)
        if torch is not None:
            check(op, [x], attrs, lambda x: torch_reduce(x, axes, keepdims, op), sym=sym)


@pytest.mark.parametrize("op", sorted(set(PY) - {"reduce_mean"}))  # integer mean: engine-specific rounding
def test_reduce_int32(op):
    rng = np.random.default_rng(51)
    x = rng.integers(-4, 5, size=(3, 4)).astype(np.int32)
    if op == "reduce_prod":
        x = rng.integers(1, 4, size=(3, 4)).astype(np.int32)
    f = lambda v: int(PY[op]([int(a) for a in v]))  # noqa: E731
    check(op, [x], {"axes": (1,)}, lambda x: naive_reduce(x, (1,), False, f).astype(np.int32))


# ---- argmax / argmin --------------------------------------------------------------------------------
def naive_arg(x, axis, keepdims, largest):
    xm = np.moveaxis(x, axis, -1)
    out = np.empty(xm.shape[:-1], np.int32)
    for idx in np.ndindex(*xm.shape[:-1]):
        row = xm[idx].tolist()
        best = 0
        for j, v in enumerate(row):  # strict comparison: the first extremum wins
            if (v > row[best]) if largest else (v < row[best]):
                best = j
        out[idx] = best
    return np.expand_dims(out, axis % x.ndim) if keepdims else out


@pytest.mark.parametrize("shape,axis,keepdims", [((4, 7), -1, False), ((4, 7), 0, True), ((2, 3, 5), 1, False),
                                                 ((2, 3, 5), 1, True), (("N", 6), 1, False)], ids=str)
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_arg(op, shape, axis, keepdims):
    rng = np.random.default_rng(52)
    for n in ((1, 3) if shape[0] == "N" else (shape[0],)):
        x = distinct(rng, n, *shape[1:])
        sym = (0,) if shape[0] == "N" else ()
        attrs = {"axis": axis, "keepdims": keepdims}
        check(op, [x], attrs, lambda x: naive_arg(x, axis, keepdims, op == "argmax"), sym=sym)
        if torch is not None:
            tf = torch.argmax if op == "argmax" else torch.argmin
            check(op, [x], attrs, lambda x: tf(T(x), dim=axis, keepdim=keepdims).to(torch.int32), sym=sym)
        got = run_op(op, [x], attrs, "float64", sym)[0]
        assert got.dtype == np.int32


@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_arg_ties_pick_first(op):
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [0.0, -1.0, 5.0, -1.0]])
    check(op, [x], {"axis": 1}, lambda x: naive_arg(x, 1, False, op == "argmax"))


# ---- topk --------------------------------------------------------------------------------------------
def naive_topk(x, k, axis, largest):
    xm = np.moveaxis(x, axis, -1)
    vals = np.empty(xm.shape[:-1] + (k,))
    idxs = np.empty(xm.shape[:-1] + (k,), np.int32)
    for idx in np.ndindex(*xm.shape[:-1]):
        row = xm[idx].tolist()
        order = sorted(range(len(row)), key=lambda j: (-row[j] if largest else row[j], j))[:k]
        vals[idx] = [row[j] for j in order]
        idxs[idx] = order
    return [np.moveaxis(vals, -1, axis), np.moveaxis(idxs, -1, axis)]


@pytest.mark.parametrize("shape,k,axis,largest", [((3, 8), 3, -1, True), ((3, 8), 2, -1, False),
                                                  ((5, 4, 3), 4, 0, True), ((2, 6, 3), 6, 1, False),
                                                  (("N", 7), 1, 1, True)], ids=str)
def test_topk(shape, k, axis, largest):
    rng = np.random.default_rng(53)
    attrs = {"k": k, "axis": axis, "largest": largest}
    for n in ((1, 3) if shape[0] == "N" else (shape[0],)):
        x = distinct(rng, n, *shape[1:])
        sym = (0,) if shape[0] == "N" else ()
        check("topk", [x], attrs, lambda x: naive_topk(x, k, axis, largest), sym=sym)
        if torch is not None:
            def tk(x):
                v, i = torch.topk(T(x), k, dim=axis, largest=largest, sorted=True)
                return [v, i.to(torch.int32)]
            check("topk", [x], attrs, tk, sym=sym)


@pytest.mark.parametrize("largest", [True, False])
def test_topk_ties_lower_index_first(largest):
    x = np.array([[1.0, 2.0, 2.0, 0.5, 2.0, 1.0], [3.0, 3.0, 3.0, 3.0, 3.0, 3.0]])
    for k in (1, 2, 4):
        check("topk", [x], {"k": k, "largest": largest}, lambda x: naive_topk(x, k, -1, largest))
