"""Shape and data-movement ops against torch and naive index arithmetic / Python list slicing."""
from __future__ import annotations

import math

import numpy as np
import pytest

from netdsl.backends import reference
from netdsl.dsl import Network

from .helpers import T, check, rnd, torch

COVERS = {"reshape", "flatten", "transpose", "squeeze", "unsqueeze", "concat", "split", "slice", "gather", "pad",
          "resize", "tile", "expand", "expand_as", "constant"}
TF = torch.nn.functional if torch is not None else None
BIG = 2 ** 63 - 1


def _n(shape):
    return (1, 3) if shape and shape[0] == "N" else (shape[0],)


def _sym(shape):
    return (0,) if shape and shape[0] == "N" else ()


def _flat_order(x, shape):
    """Reshape by walking the elements in row-major order (Python lists), not NumPy."""
    flat = [v for v in np.nditer(x, order="C")]
    return np.array(flat, dtype=x.dtype).reshape(shape)


# ---- reshape / flatten / transpose / squeeze / unsqueeze --------------------------------------------
@pytest.mark.parametrize("shape,target,want", [((2, 3, 4), (6, 4), (6, 4)), ((2, 3, 4), (0, -1), (2, 12)),
                                               ((2, 3, 4), (-1,), (24,)), ((2, 3, 4), (4, 0, 2), (4, 3, 2)),
                                               (("N", 3, 4), (0, -1), None), (("N", 6), (0, 2, 3), None),
                                               (("N", 2, 6), (-1, 3), None)], ids=str)
def test_reshape(shape, target, want):
    rng = np.random.default_rng(60)
    for n in _n(shape):
        x = rnd(rng, n, *shape[1:])
        w = want or tuple(x.shape[i] if t == 0 else t for i, t in enumerate(target))
        w = tuple(x.size // math.prod(d for d in w if d != -1) if d == -1 else d for d in w)
        check("reshape", [x], {"shape": target}, lambda x: _flat_order(x, w), sym=_sym(shape))
        if torch is not None:
            check("reshape", [x], {"shape": target}, lambda x: T(x).reshape(w), sym=_sym(shape))


@pytest.mark.parametrize("shape,start,end", [((2, 3, 4, 5), 1, -1), ((2, 3, 4, 5), 0, 1), ((2, 3, 4, 5), 1, 2),
                                             ((2, 3, 4, 5), -2, -1), (("N", 3, 4), 1, -1), (("N", 3, 4), 0, 1)],
                         ids=str)
def test_flatten(shape, start, end):
    rng = np.random.default_rng(61)
    for n in _n(shape):
        x = rnd(rng, n, *shape[1:])
        s, e = start % x.ndim, end % x.ndim
        w = x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:]
        check("flatten", [x], {"start": start, "end": end}, lambda x: _flat_order(x, w), sym=_sym(shape))
        if torch is not None:
            check("flatten", [x], {"start": start, "end": end}, lambda x: torch.flatten(T(x), start, end),
                  sym=_sym(shape))


def naive_transpose(x, perm):
    out = np.empty(tuple(x.shape[p] for p in perm), x.dtype)
    for idx in np.ndindex(*out.shape):
        src = [0] * x.ndim
        for i, p in enumerate(perm):
            src[p] = idx[i]
        out[idx] = x[tuple(src)]
    return out


@pytest.mark.parametrize("shape,perm", [((3, 4), (1, 0)), ((2, 3, 4), (2, 0, 1)), ((2, 3, 4, 5), (0, 2, 3, 1)),
                                        (("N", 3, 4), (0, 2, 1)), (("N", 3, 4), (2, 0, 1))], ids=str)
def test_transpose(shape, perm):
    rng = np.random.default_rng(62)
    for n in _n(shape):
        x = rnd(rng, n, *shape[1:])
        check("transpose", [x], {"perm": perm}, lambda x: naive_transpose(x, perm), sym=_sym(shape))
        if torch is not None:
            check("transpose", [x], {"perm": perm}, lambda x: T(x).permute(perm), sym=_sym(shape))


@pytest.mark.parametrize("shape,axes", [((1, 3, 1, 4), (0, 2)), ((3, 1), (-1,)), ((2, 1, 1, 5), (1, 2)),
                                        (("N", 1, 4), (1,))], ids=str)
def test_squeeze(shape, axes):
    rng = np.random.default_rng(63)
    for n in _n(shape):
        x = rnd(rng, n, *shape[1:])
        ax = {a % x.ndim for a in axes}
        w = tuple(d for i, d in enumerate(x.shape) if i not in ax)
        check("squeeze", [x], {"axes": axes}, lambda x: _flat_order(x, w), sym=_sym(shape))
        if torch is not None:
            check("squeeze", [x], {"axes": axes}, lambda x: torch.squeeze(T(x), tuple(ax)), sym=_sym(shape))


@pytest.mark.parametrize("shape,axes", [((3, 4), (0,)), ((3, 4), (-1,)), ((3, 4), (0, 3)), ((2, 3), (1, -1)),
                                        (("N", 4), (1,)), (("N", 4), (0, 2))], ids=str)
def test_unsqueeze(shape, axes):
    rng = np.random.default_rng(64)
    for n in _n(shape):
        x = rnd(rng, n, *shape[1:])
        r = x.ndim + len(axes)
        ax = sorted(a % r for a in axes)
        w = list(x.shape)
        for a in ax:
            w.insert(a, 1)
        check("unsqueeze", [x], {"axes": axes}, lambda x: _flat_order(x, tuple(w)), sym=_sym(shape))
        if torch is not None:
            def tu(x):
                t = T(x)
                for a in ax:
                    t = t.unsqueeze(a)
                return t
            check("unsqueeze", [x], {"axes": axes}, tu, sym=_sym(shape))


# ---- concat / split -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes,axis", [([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 5)], 1),
                                         ([(2, 3, 4), (2, 3, 2)], -1), ([("N", 3), ("N", 2), ("N", 1)], 1),
                                         ([(1, 3), (1, 3)], 0)], ids=str)
def test_concat(shapes, axis):
    rng = np.random.default_rng(65)
    sym_all = shapes[0][0] == "N"
    for n in ((1, 3) if sym_all else (None,)):
        xs = [rnd(rng, *(n if d == "N" else d for d in s)) for s in shapes]

        def naive(*xs):
            a = axis % xs[0].ndim
            out = np.empty(xs[0].shape[:a] + (sum(x.shape[a] for x in xs),) + xs[0].shape[a + 1:])
            off = 0
            for x in xs:
                for idx in np.ndindex(*x.shape):
                    out[idx[:a] + (idx[a] + off,) + idx[a + 1:]] = x[idx]
                off += x.shape[a]
            return out
        sym = tuple(range(len(xs))) if sym_all else ()
        check("concat", xs, {"axis": axis}, naive, sym=sym)
        if torch is not None:
            check("concat", xs, {"axis": axis}, lambda *xs: torch.cat([T(x) for x in xs], axis), sym=sym)


@pytest.mark.parametrize("shape,axis,sizes", [((6, 3), 0, (2, 4)), ((2, 7), 1, (3, 1, 3)), ((2, 3, 4), -1, (4,)),
                                              (("N", 5), 1, (2, 3)), (("N", 6, 2), -2, (1, 2, 3))], ids=str)
def test_split(shape, axis, sizes):
    rng = np.random.default_rng(66)
    for n in _n(shape):
        x = rnd(rng, n, *shape[1:])
        a = axis % x.ndim

        def naive(x):
            outs, off = [], 0
            for s in sizes:
                idx = [slice(None)] * x.ndim
                idx[a] = list(range(off, off + s))
                outs.append(x[tuple(idx)])
                off += s
            return outs
        check("split", [x], {"axis": axis, "sizes": sizes}, naive, sym=_sym(shape))
        if torch is not None:
            check("split", [x], {"axis": axis, "sizes": sizes}, lambda x: list(torch.split(T(x), list(sizes), a)),
                  sym=_sym(shape))


# ---- slice: Python list slicing is the independent definition ----------------------------------------
def list_slice(x, starts, ends, axes, steps):
    axes = axes if axes is not None else tuple(range(len(starts)))
    steps = steps if steps is not None else (1,) * len(starts)
    per = [slice(None)] * x.ndim
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        per[ax % x.ndim] = slice(st, en, sp)

    def rec(lst, d):
        part = lst[per[d]]
        return part if d == x.ndim - 1 else [rec(e, d + 1) for e in part]
    return np.array(rec(x.tolist(), 0))


SLICES = [
    ((6, 5), (1,), (4,), None, None),
    ((6, 5), (-3,), (BIG,), (0,), None),                   # negative start, open end
    ((6, 5), (5, 4), (-BIG, 0), (0, 1), (-1, -2)),          # negative steps, down to the start
    ((6, 5), (-1,), (-5,), (1,), (-1,)),                    # negative start and end, reverse
    ((7, 4, 3), (1, 0), (100, -1), (0, 2), (3, 1)),         # clamped end, step 3
    ((7, 4, 3), (-100, 10), (3, -10), (0, 1), (1, -1)),     # clamped start, reversed clamped
    ((4, 6), (2,), (3,), (1,), None),                       # a single element
    (("N", 6, 4), (1, -1), (5, BIG), (1, 2), None),
    (("N", 6, 4), (0,), (1,), (2,), None),
    (("N", 5), (1,), (BIG,), (0,), None),                  # slicing the symbolic batch itself
    (("N", 8), (6,), (0,), (1,), (-2,)),
]


@pytest.mark.parametrize("i", range(len(SLICES)), ids=lambda i: f"slice-{i}")
def test_slice(i):
    shape, starts, ends, axes, steps = SLICES[i]
    rng = np.random.default_rng(67 + i)
    attrs = {"starts": starts, "ends": ends, "axes": axes, "steps": steps}
    sizes = (2, 4) if shape[0] == "N" and i == 9 else _n(shape)
    for n in sizes:
        x = rnd(rng, n, *shape[1:])
        check("slice", [x], attrs, lambda x: list_slice(x, starts, ends, axes, steps), sym=_sym(shape))


def test_slice_via_indexing_matches_python():
    """Tensor[...] lowers to slice (+squeeze); compare with Python indexing of nested lists."""
    rng = np.random.default_rng(70)
    x = rnd(rng, 5, 6, 4)
    lst = x.tolist()
    cases = [(lambda t: t[1:4, ::-2, -1], lambda l: [[r[-1] for r in p[::-2]] for p in l[1:4]]),
             (lambda t: t[-1, 2:, :3], lambda l: [r[:3] for r in l[-1][2:]]),
             (lambda t: t[::-1, -3:-1, ::3], lambda l: [[r[::3] for r in p[-3:-1]] for p in l[::-1]])]
    for f, g in cases:
        net = Network("idx")
        net.output(f(net.input("x", x.shape)), "y")
        got = reference.run(net.graph, {"x": x})["y"]
        np.testing.assert_array_equal(got, np.array(g(lst)))


# ---- gather ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,ishape,axis,dtype", [((5, 3), (4,), 0, "int32"), ((4, 6, 2), (2, 3), 1, "int64"),
                                                     ((3, 4), (), -1, "int32"), ((2, 3, 5), (3,), -1, "int64"),
                                                     (("N", 5), (2, 2), 1, "int32")], ids=str)
def test_gather(shape, ishape, axis, dtype):
    rng = np.random.default_rng(71)
    for n in _n(shape):
        x = rnd(rng, n, *shape[1:])
        a = axis % x.ndim
        d = x.shape[a]
        idx = rng.integers(-d, d, size=ishape).astype(dtype)  # negative indices count from the end
        if idx.size > 1:
            idx.flat[0], idx.flat[1] = -d, d - 1

        def naive(x, idx):
            out = np.empty(x.shape[:a] + idx.shape + x.shape[a + 1:])
            for o in np.ndindex(*out.shape):
                j = int(idx[o[a:a + idx.ndim]])
                out[o] = x[o[:a] + (j if j >= 0 else j + d,) + o[a + idx.ndim:]]
            return out
        check("gather", [x, idx], {"axis": axis}, naive, sym=_sym(shape))
        if torch is not None:
            check("gather", [x, idx], {"axis": axis}, lambda x, idx: torch.index_select(
                T(x), a, T((idx % d).astype(np.int64).ravel())).reshape(x.shape[:a] + idx.shape + x.shape[a + 1:]),
                sym=_sym(shape))


# ---- pad -------------------------------------------------------------------------------------------------
def naive_pad(x, pads, mode, value):
    r = x.ndim
    out = np.empty(tuple(x.shape[i] + pads[i] + pads[r + i] for i in range(r)))
    for idx in np.ndindex(*out.shape):
        src = []
        inside = True
        for i, o in enumerate(idx):
            j, d = o - pads[i], x.shape[i]
            if mode == "edge":
                j = min(max(j, 0), d - 1)
            elif mode == "reflect":
                while j < 0 or j >= d:
                    j = -j if j < 0 else 2 * (d - 1) - j
            elif not 0 <= j < d:
                inside = False
            src.append(j)
        out[idx] = x[tuple(src)] if inside else value
    return out


PADS = [((3, 4), (1, 2, 0, 1)), ((2, 3, 4, 5), (0, 0, 1, 2, 0, 0, 2, 1)), ((5,), (3, 4)), ((2, 3, 4), (1, 0, 2, 0, 1, 3)),
        (("N", 3, 4), (0, 1, 2, 0, 2, 1))]


@pytest.mark.parametrize("shape,pads", PADS, ids=str)
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad(mode, shape, pads):
    rng = np.random.default_rng(72)
    value = 0.0 if mode != "constant" else -1.5
    attrs = {"pads": pads, "mode": mode, "value": value}
    for n in _n(shape):
        x = rnd(rng, n, *shape[1:])
        check("pad", [x], attrs, lambda x: naive_pad(x, pads, mode, value), sym=_sym(shape))
        r = x.ndim
        spatial_only = r >= 3 and pads[0] == pads[1] == pads[r] == pads[r + 1] == 0
        if torch is not None and (mode == "constant" or spatial_only):
            tp = []
            for i in reversed(range(r if mode == "constant" else r)):
                if mode != "constant" and i < 2:
                    continue
                tp += [pads[i], pads[r + i]]
            tm = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[mode]
            kw = {"value": value} if mode == "constant" else {}
            check("pad", [x], attrs, lambda x: TF.pad(T(x), tp, mode=tm, **kw), sym=_sym(shape))


def test_pad_default_value_and_int():
    x = np.arange(1, 7, dtype=np.int32).reshape(2, 3)
    check("pad", [x], {"pads": (1, 0, 0, 2)}, lambda x: naive_pad(x, (1, 0, 0, 2), "constant", 0).astype(np.int32))


# ---- resize ---------------------------------------------------------------------------------------------
def _src(o, in_len, out_len, scale, ct):
    if ct == "align_corners":
        return 0.0 if out_len == 1 else o * (in_len - 1) / (out_len - 1)
    if ct == "asymmetric":
        return o / scale
    if ct == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if out_len > 1 else 0.0
    return (o + 0.5) / scale - 0.5


def _nearest(v, mode, in_len):
    if mode == "floor":
        i = math.floor(v)
    elif mode == "ceil":
        i = math.ceil(v)
    elif mode == "round_prefer_floor":
        i = math.ceil(v - 0.5)
    else:
        i = math.floor(v + 0.5)
    return min(max(i, 0), in_len - 1)


def naive_resize(x, out_shape, scales, mode, ct, nm):
    """Per output pixel: nearest source pixel, or the weighted sum over all 2^d neighbours (not separable)."""
    nd = x.ndim - 2
    ins = x.shape[2:]
    outs = out_shape[2:]
    sc = [scales[2 + i] if scales is not None else outs[i] / ins[i] for i in range(nd)]
    y = np.zeros(x.shape[:2] + tuple(outs))
    for pos in np.ndindex(*outs):
        src = [_src(pos[i], ins[i], outs[i], sc[i], ct) if outs[i] != ins[i] or (scales and sc[i] != 1) else pos[i]
               for i in range(nd)]
        if mode == "nearest":
            y[(slice(None), slice(None), *pos)] = x[(slice(None), slice(None),
                                                     *(_nearest(src[i], nm, ins[i]) for i in range(nd)))]
            continue
        src = [min(max(s, 0.0), ins[i] - 1) for i, s in enumerate(src)]
        for corner in np.ndindex(*(2,) * nd):
            wgt, idx = 1.0, []
            for i in range(nd):
                lo = math.floor(src[i])
                f = src[i] - lo
                wgt *= f if corner[i] else 1 - f
                idx.append(min(lo + corner[i], ins[i] - 1))
            y[(slice(None), slice(None), *pos)] += wgt * x[(slice(None), slice(None), *idx)]
    return y


# (x shape, scales, sizes)
RESIZE_SHAPES = [((1, 2, 4, 5), (1.0, 1.0, 2.0, 2.0), None),       # up 2x
                 ((1, 2, 8, 6), (1.0, 1.0, 0.5, 0.5), None),       # down 2x
                 ((2, 1, 5, 4), None, (2, 1, 7, 3)),               # up on one axis, down on the other
                 ((1, 2, 6), (1.0, 1.0, 1.5), None),               # 1d, fractional scale
                 ((1, 1, 3, 4, 2), None, (1, 1, 5, 3, 4))]         # 3d
CTS = ["half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"]
NMS = ["floor", "ceil", "round_prefer_floor", "round_prefer_ceil"]


def _out_shape(xs, scales, sizes):
    return sizes if sizes is not None else tuple(int(math.floor(d * s)) for d, s in zip(xs, scales))


@pytest.mark.parametrize("j", range(len(RESIZE_SHAPES)), ids=lambda j: f"shape{j}")
@pytest.mark.parametrize("ct", CTS)
def test_resize_linear(ct, j):
    xs, scales, sizes = RESIZE_SHAPES[j]
    x = rnd(np.random.default_rng(80 + j), *xs)
    attrs = {"scales": scales, "sizes": sizes, "mode": "linear", "coordinate_transformation": ct}
    check("resize", [x], attrs, lambda x: naive_resize(x, _out_shape(xs, scales, sizes), scales, "linear", ct, None))


@pytest.mark.parametrize("j", range(len(RESIZE_SHAPES)), ids=lambda j: f"shape{j}")
@pytest.mark.parametrize("nm", NMS)
@pytest.mark.parametrize("ct", CTS)
def test_resize_nearest(ct, nm, j):
    xs, scales, sizes = RESIZE_SHAPES[j]
    x = rnd(np.random.default_rng(90 + j), *xs)
    attrs = {"scales": scales, "sizes": sizes, "mode": "nearest", "coordinate_transformation": ct, "nearest_mode": nm}
    check("resize", [x], attrs, lambda x: naive_resize(x, _out_shape(xs, scales, sizes), scales, "nearest", ct, nm))


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("xs,sizes", [((1, 2, 4, 5), (1, 2, 8, 10)), ((2, 3, 8, 6), (2, 3, 4, 3)),
                                      ((1, 2, 5, 4), (1, 2, 7, 3)), ((1, 2, 6), (1, 2, 9)),
                                      ((1, 1, 3, 4, 2), (1, 1, 6, 2, 4))], ids=str)
def test_resize_vs_torch_interpolate(xs, sizes):
    x = rnd(np.random.default_rng(99), *xs)
    nd = len(xs) - 2
    lin = {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]
    for attrs, kw in [
        (dict(mode="nearest", coordinate_transformation="asymmetric", nearest_mode="floor"), dict(mode="nearest")),
        (dict(mode="nearest", coordinate_transformation="half_pixel", nearest_mode="round_prefer_ceil"),
         dict(mode="nearest-exact")),
        (dict(mode="linear", coordinate_transformation="pytorch_half_pixel"), dict(mode=lin, align_corners=False)),
        (dict(mode="linear", coordinate_transformation="align_corners"), dict(mode=lin, align_corners=True)),
    ]:
        check("resize", [x], dict(sizes=sizes, **attrs), lambda x: TF.interpolate(T(x), size=sizes[2:], **kw))


def test_resize_symbolic_batch():
    rng = np.random.default_rng(98)
    for n in (1, 3):
        x = rnd(rng, n, 2, 3, 4)
        for mode in ("nearest", "linear"):
            attrs = {"scales": (1.0, 1.0, 2.0, 1.5), "mode": mode}
            check("resize", [x], attrs, lambda x: naive_resize(x, (n, 2, 6, 6), (1, 1, 2.0, 1.5), mode, "half_pixel",
                                                               "round_prefer_floor"), sym=(0,))


# ---- tile / expand -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,reps", [((2, 3), (2, 1)), ((2, 3), (1, 3)), ((2, 1, 3), (2, 3, 2)), ((4,), (3,)),
                                        (("N", 3), (1, 2)), (("N", 2, 2), (1, 2, 3))], ids=str)
def test_tile(shape, reps):
    rng = np.random.default_rng(100)
    for n in _n(shape):
        x = rnd(rng, n, *shape[1:])

        def naive(x):
            out = np.empty(tuple(d * r for d, r in zip(x.shape, reps)))
            for idx in np.ndindex(*out.shape):
                out[idx] = x[tuple(i % d for i, d in zip(idx, x.shape))]
            return out
        check("tile", [x], {"repeats": reps}, naive, sym=_sym(shape))
        if torch is not None:
            check("tile", [x], {"repeats": reps}, lambda x: T(x).repeat(*reps), sym=_sym(shape))


@pytest.mark.parametrize("shape,target", [((3, 1), (3, 4)), ((1, 4), (2, 3, 4)), ((3, 1), (2, 1, 5)),
                                          ((2, 3, 1), (2, 1, 4)), ((2, 1), (-1, 3)), ((4,), (2, -1)),
                                          (("N", 1, 3), (-1, 2, 3)), (("N", 1), (1, 5))], ids=str)
def test_expand(shape, target):
    """Bidirectional broadcast (ONNX Expand); -1 keeps the input dim."""
    rng = np.random.default_rng(101)
    for n in _n(shape):
        x = rnd(rng, n, *shape[1:])
        r = max(x.ndim, len(target))
        xs = (1,) * (r - x.ndim) + x.shape
        ts = (1,) * (r - len(target)) + tuple(target)
        ts = tuple(xs[i] if t == -1 else t for i, t in enumerate(ts))
        out = tuple(max(a, b) for a, b in zip(xs, ts))

        def naive(x):
            xr = x.reshape(xs)
            y = np.empty(out)
            for idx in np.ndindex(*out):
                y[idx] = xr[tuple(i if d > 1 else 0 for i, d in zip(idx, xs))]
            return y
        check("expand", [x], {"shape": target}, naive, sym=_sym(shape))
        if torch is not None:
            check("expand", [x], {"shape": target}, lambda x: T(x).reshape(xs).expand(*out), sym=_sym(shape))


@pytest.mark.parametrize("xshape,lshape", [((1, 1, 4), ("N", 1, 4)), ((1, 3), (2, 1)), ((4,), ("N", 3, 1)),
                                            (("N", 1, 2), (5, 1))], ids=str)
def test_expand_as(xshape, lshape):
    """Broadcast against another tensor's shape (symbolic dims included); its values are never read."""
    rng = np.random.default_rng(102)
    for n in (1, 3):
        x = rnd(rng, *[n if d == "N" else d for d in xshape])
        like = rnd(rng, *[n if d == "N" else d for d in lshape])
        r = max(x.ndim, like.ndim)
        xs, ls = (1,) * (r - x.ndim) + x.shape, (1,) * (r - like.ndim) + like.shape
        out = tuple(max(a, b) for a, b in zip(xs, ls))

        def naive(x, like):
            y = np.empty(out)
            xr = x.reshape(xs)
            for idx in np.ndindex(*out):
                y[idx] = xr[tuple(i if d > 1 else 0 for i, d in zip(idx, xs))]
            return y
        sym = tuple(i for i, d in enumerate((xshape, lshape)) if d and d[0] == "N")
        check("expand_as", [x, like], None, naive, sym=sym)
        if torch is not None:
            check("expand_as", [x, like], None, lambda x, like: T(x).reshape(xs).expand(*out), sym=sym)


# ---- constant -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.linspace(-1, 2, 12, dtype=np.float32).reshape(3, 4),
                                   np.array([3, -1, 7], np.int32), np.array([[True, False]]),
                                   np.float32(2.5)], ids=["float", "int", "bool", "scalar"])
def test_constant(value):
    """A constant node yields its value (as an output and as an operand)."""
    net = Network("const")
    c = net.apply("constant", [], value=np.asarray(value))
    net.output(c, "y")
    for dt in ("float64", "float32"):
        got = reference.run(net.graph, {}, dtype=dt)["y"]
        assert got.shape == np.shape(value)
        np.testing.assert_array_equal(got, np.asarray(value).tolist())
    if np.asarray(value).dtype.kind == "f" and np.ndim(value) == 2:
        net = Network("const_add")
        x = net.input("x", ("N", 4))
        net.output(x + net.constant(value[0]), "y")
        xv = rnd(np.random.default_rng(3), 2, 4)
        got = reference.run(net.graph, {"x": xv})["y"]
        want = [[a + float(b) for a, b in zip(row, value[0].tolist())] for row in xv.tolist()]
        np.testing.assert_allclose(got, want, rtol=1e-12)
