"""Convolution, pooling, normalization, dense, embedding and attention ops against naive loops
(a different algorithm from netdsl's im2col/sliding windows) and torch.nn.functional (float64)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from .helpers import T, check, needs_torch, rnd, torch

COVERS = {"conv", "conv_transpose", "max_pool", "avg_pool", "global_avg_pool", "global_max_pool", "batch_norm",
          "layer_norm", "group_norm", "instance_norm", "lrn", "linear", "matmul", "embedding", "attention"}
TF = torch.nn.functional if torch is not None else None


# ---- convolution ----------------------------------------------------------------------------------
def naive_conv(x, w, b, strides, dils, pads, groups):
    """Direct convolution: loop over output channel, output position and kernel tap."""
    nd = x.ndim - 2
    n, c = x.shape[:2]
    o, ks = w.shape[0], w.shape[2:]
    cg, og = c // groups, o // groups
    out = [(x.shape[2 + i] + pads[i] + pads[nd + i] - dils[i] * (ks[i] - 1) - 1) // strides[i] + 1 for i in range(nd)]
    y = np.zeros((n, o, *out))
    for oc in range(o):
        g = oc // og
        for pos in np.ndindex(*out):
            acc = np.zeros(n)
            for kp in np.ndindex(*ks):
                src = [pos[i] * strides[i] - pads[i] + kp[i] * dils[i] for i in range(nd)]
                if all(0 <= src[i] < x.shape[2 + i] for i in range(nd)):
                    acc += x[(slice(None), slice(g * cg, (g + 1) * cg), *src)] @ w[(oc, slice(None), *kp)]
            y[(slice(None), oc, *pos)] = acc + (b[oc] if b is not None else 0.0)
    return y


def torch_conv(x, w, b, strides, dils, pads, groups):
    nd = x.ndim - 2
    tp = []
    for i in reversed(range(nd)):  # F.pad lists the last axis first
        tp += [pads[i], pads[nd + i]]
    xt = TF.pad(T(x), tp)
    fn = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}[nd]
    return fn(xt, T(w), None if b is None else T(b), stride=strides, dilation=dils, groups=groups)


# (x shape, w shape, strides, dilations, pads, groups, bias)
CONV = [
    ((2, 3, 9), (4, 3, 3), (1,), (1,), (1, 1), 1, True),                      # 1d same-ish
    ((2, 4, 11), (4, 2, 3), (2,), (2,), (2, 0), 2, False),                     # 1d grouped, dilated, asym pad
    ((2, 3, 8, 8), (5, 3, 3, 3), (1, 1), (1, 1), (0, 0, 0, 0), 1, True),       # valid
    ((1, 3, 9, 7), (4, 3, 3, 2), (2, 1), (1, 1), (1, 0, 2, 1), 1, True),       # strided, asymmetric pads
    ((2, 4, 8, 8), (4, 1, 3, 3), (1, 1), (2, 2), (2, 2, 2, 2), 4, True),       # depthwise, dilated
    ((1, 6, 7, 7), (4, 3, 3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 2, False),      # groups=2, stride 2
    ((1, 2, 10, 6), (3, 2, 1, 1), (3, 2), (1, 1), (0, 0, 0, 0), 1, True),      # 1x1, stride > 1
    ((1, 2, 5, 6, 4), (3, 2, 2, 3, 2), (1, 2, 1), (1, 1, 2), (1, 0, 0, 0, 1, 1), 1, True),  # 3d
]


@pytest.mark.parametrize("i", range(len(CONV)), ids=lambda i: f"conv{len(CONV[i][0]) - 2}d-{i}")
def test_conv(i):
    xs, ws, s, d, p, g, bias = CONV[i]
    rng = np.random.default_rng(100 + i)
    x, w = rnd(rng, *xs), rnd(rng, *ws, low=-1, high=1)
    b = rnd(rng, ws[0]) if bias else None
    attrs = dict(strides=s, dilations=d, pads=p, groups=g)
    check("conv", [x, w, b], attrs, lambda x, w, b: naive_conv(x, w, b, s, d, p, g))
    if torch is not None:
        check("conv", [x, w, b], attrs, lambda x, w, b: torch_conv(x, w, b, s, d, p, g))


def test_conv_symbolic_batch_and_defaults():
    """Empty strides/dilations/pads mean 1/1/0; the batch is symbolic."""
    rng = np.random.default_rng(7)
    w, b = rnd(rng, 3, 2, 3, 3), rnd(rng, 3)
    for n in (1, 3):
        x = rnd(rng, n, 2, 6, 5)
        check("conv", [x, w, b], {}, lambda x, w, b: naive_conv(x, w, b, (1, 1), (1, 1), (0,) * 4, 1), sym=(0,))


@needs_torch
def test_conv_same_padding_via_functional():
    """F.conv(padding='same') pads like TF/ONNX SAME_UPPER (extra pad at the end)."""
    import netdsl.functional as F
    from netdsl.backends import reference
    from netdsl.dsl import Network
    rng = np.random.default_rng(8)
    for stride, k, size in [(1, 4, 7), (2, 3, 8), (2, 3, 7), (3, 5, 10)]:
        net = Network("same")
        x_ = net.input("x", (1, 2, size, size))
        w_ = net.input("w", (3, 2, k, k))
        net.output(F.conv(x_, w_, stride=stride, padding="same"), "y")
        x, w = rnd(rng, 1, 2, size, size), rnd(rng, 3, 2, k, k)
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        pads = (total // 2, total // 2, total - total // 2, total - total // 2)
        got = reference.run(net.graph, {"x": x, "w": w})["y"]
        assert got.shape == (1, 3, out, out)
        np.testing.assert_allclose(got, torch_conv(x, w, None, (stride,) * 2, (1, 1), pads, 1).numpy(), atol=1e-10)


def _tf_same(size, k, s, d, lower=False):
    """TensorFlow's SAME (tf.nn.conv2d / tf.nn.pool docs): out = ceil(size / s), pad_along =
    max((out - 1) * s + (k - 1) * d + 1 - size, 0), pad_before = pad_along // 2 (ONNX SAME_LOWER: the
    larger half first)."""
    out = math.ceil(size / s)
    along = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    before = along - along // 2 if lower else along // 2
    return out, before, along - before


# (kernel, strides, auto_pad) on sizes 5, 7 and 8 (odd and even totals), H and W symbolic
SAME = [((3, 3), (2, 2), "same_upper"), ((3, 2), (2, 3), "same_lower"), ((4, 1), (3, 1), "same_upper"),
        ((2, 3), (1, 2), "same_lower")]


def _same_net(op, attrs, w_shape=None):
    from netdsl.dsl import Network
    net = Network("same")
    ins = [net.input("x", (2, 2, "H", "W"))] + ([net.input("w", w_shape)] if w_shape else [])
    y = net.apply(op, ins, **attrs)
    net.output(y, "y")
    assert all(not isinstance(d, int) for d in y.shape[2:])  # ceil(H / s), sized at run time
    return net


@pytest.mark.parametrize("i", range(len(SAME)), ids=lambda i: SAME[i][2] + str(i))
@pytest.mark.parametrize("op", ["conv", "max_pool", "avg_pool", "avg_pool_include_pad"])
def test_auto_pad_same_on_symbolic_sizes(op, i):
    """auto_pad on run-time sizes against naive loops with TensorFlow's SAME pads computed here."""
    from netdsl.backends import reference
    k, s, mode = SAME[i]
    d = (1, 1)
    rng = np.random.default_rng(40 + i)
    kind = {"conv": "conv", "max_pool": "max_pool"}.get(op, "avg_pool")
    attrs = dict(strides=s, auto_pad=mode)
    if kind != "conv":
        attrs["kernel"] = k
    if kind == "avg_pool":
        attrs["count_include_pad"] = op == "avg_pool_include_pad"
    w_shape = (3, 2, *k) if kind == "conv" else None
    net = _same_net(kind, attrs, w_shape)
    for h, wd in ((7, 8), (8, 7), (5, 5)):
        x = rnd(rng, 2, 2, h, wd)
        (oh, ph0, ph1), (ow, pw0, pw1) = (_tf_same(n, k[j], s[j], d[j], mode == "same_lower")
                                          for j, n in enumerate((h, wd)))
        pads = (ph0, pw0, ph1, pw1)
        feeds = {"x": x}
        if kind == "conv":
            w = rnd(rng, *w_shape)
            feeds["w"] = w
            want = naive_conv(x, w, None, s, d, pads, 1)
        else:
            want = naive_pool(x, k, s, pads, False, kind[:3], op == "avg_pool_include_pad")
        got = reference.run(net.graph, feeds, dtype="float64")["y"]
        assert got.shape == (2, 3 if kind == "conv" else 2, oh, ow)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"{op} {SAME[i]} on {h}x{wd}")


def test_auto_pad_refuses_explicit_pads_ceil_mode_and_dilation():
    from netdsl.dsl import Network
    from netdsl.errors import NetdslError
    net = Network("bad")
    x = net.input("x", (1, 2, "H", "W"))
    w = net.input("w", (3, 2, 3, 3))
    with pytest.raises(NetdslError, match="auto_pad"):
        net.apply("max_pool", [x], kernel=(2, 2), strides=(2, 2), pads=(1, 1, 1, 1), auto_pad="same_upper")
    with pytest.raises(NetdslError, match="auto_pad"):
        net.apply("max_pool", [x], kernel=(2, 2), strides=(2, 2), ceil_mode=True, auto_pad="same_upper")
    with pytest.raises(NetdslError, match="dilation"):
        net.apply("conv", [x, w], strides=(2, 2), dilations=(2, 2), auto_pad="same_upper")


def _keras_on_torch():
    """Keras with its torch backend (an implementation of SAME padding netdsl did not write), or a skip."""
    import os
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="keras is not installed")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras runs on {keras.backend.backend()}, not torch")
    return keras


def test_same_stride_matches_keras():
    """Keras (torch backend) conv and max pooling with padding='same' and strides on odd and even sizes."""
    keras = _keras_on_torch()
    import netdsl.functional as F
    from netdsl.backends import reference
    from netdsl.dsl import Network
    rng = np.random.default_rng(11)
    net = Network("keras_same")
    x_ = net.input("x", (1, 2, "H", "W"))
    w_ = net.input("w", (3, 2, 3, 2))
    net.output(F.conv(x_, w_, stride=(2, 3), padding="same"), "c")
    net.output(F.max_pool(x_, 3, 2, padding="same"), "m")
    for h, wd in ((7, 8), (8, 9)):
        x, w = rnd(rng, 1, 2, h, wd), rnd(rng, 3, 2, 3, 2)
        got = reference.run(net.graph, {"x": x, "w": w}, dtype="float64")
        xt = x.transpose(0, 2, 3, 1).astype(np.float32)
        c = keras.ops.conv(xt, w.transpose(2, 3, 1, 0).astype(np.float32), strides=(2, 3), padding="same")
        m = keras.ops.max_pool(xt, 3, 2, padding="same")
        np.testing.assert_allclose(got["c"], np.asarray(c).transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got["m"], np.asarray(m).transpose(0, 3, 1, 2), rtol=1e-6, atol=1e-6)



@pytest.mark.parametrize("k,s,dil", [(3, 2, 1), (4, 2, 1), (2, 3, 1), (5, 3, 1), (1, 2, 1), (3, 2, 2)], ids=str)
def test_conv_transpose_same_matches_keras(k, s, dil):
    """Keras' Conv2DTranspose(padding='same') (torch backend): H * stride outputs on symbolic sizes."""
    keras = _keras_on_torch()
    import netdsl.functional as F
    from netdsl.backends import reference
    from netdsl.dsl import Network
    rng = np.random.default_rng(12)
    net = Network("keras_same_t")
    x_ = net.input("x", (1, 2, "H", "W"))
    net.output(F.conv_transpose(x_, net.input("w", (2, 3, k, k)), stride=s, padding="same", dilation=dil), "y")
    for h, wd in ((5, 4), (6, 7)):
        x, w = rnd(rng, 1, 2, h, wd), rnd(rng, 2, 3, k, k)
        got = reference.run(net.graph, {"x": x, "w": w}, dtype="float64")["y"]
        want = keras.ops.conv_transpose(x.transpose(0, 2, 3, 1).astype(np.float32),
                                        w.transpose(2, 3, 1, 0).astype(np.float32), s, padding="same",
                                        dilation_rate=dil)
        assert got.shape == (1, 3, h * s, wd * s)
        np.testing.assert_allclose(got, np.asarray(want).transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-5)


# ---- transposed convolution ------------------------------------------------------------------------
def naive_conv_transpose(x, w, b, strides, dils, pads, out_pad, groups):
    """Scatter: every input pixel adds its weighted kernel into the (uncropped) output, then crop."""
    nd = x.ndim - 2
    n, c = x.shape[:2]
    og, ks = w.shape[1], w.shape[2:]
    cg = c // groups
    full = [(x.shape[2 + i] - 1) * strides[i] + dils[i] * (ks[i] - 1) + 1 + out_pad[i] for i in range(nd)]
    y = np.zeros((n, og * groups, *full))
    for ci in range(c):
        g = ci // cg
        for pos in np.ndindex(*x.shape[2:]):
            for kp in np.ndindex(*ks):
                dst = tuple(pos[i] * strides[i] + kp[i] * dils[i] for i in range(nd))
                y[(slice(None), slice(g * og, (g + 1) * og), *dst)] += \
                    x[(slice(None), ci, *pos)][:, None] * w[(ci, slice(None), *kp)][None, :]
    crop = tuple(slice(pads[i], full[i] - pads[nd + i]) for i in range(nd))
    y = y[(slice(None), slice(None), *crop)]
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * nd)
    return y


def torch_conv_transpose(x, w, b, strides, dils, pads, out_pad, groups):
    nd = x.ndim - 2
    fn = {1: TF.conv_transpose1d, 2: TF.conv_transpose2d, 3: TF.conv_transpose3d}[nd]
    y = fn(T(x), T(w), None if b is None else T(b), stride=strides, padding=0, output_padding=out_pad,
           groups=groups, dilation=dils)
    crop = tuple(slice(pads[i], y.shape[2 + i] - pads[nd + i]) for i in range(nd))
    return y[(slice(None), slice(None), *crop)]


# (x shape, w shape, strides, dilations, pads, output_padding, groups, bias)
CONVT = [
    ((2, 3, 4, 4), (3, 2, 3, 3), (2, 2), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),
    ((1, 4, 3, 5), (4, 3, 2, 3), (2, 3), (1, 1), (0, 1, 0, 0), (0, 2), 1, False),   # asymmetric pads
    ((2, 4, 4, 4), (4, 1, 3, 3), (2, 2), (2, 1), (1, 0, 2, 1), (1, 0), 2, True),    # groups, dilation
    ((1, 2, 5), (2, 3, 4), (3,), (1,), (1, 2), (2,), 1, True),                      # 1d
    ((1, 2, 3, 3, 2), (2, 2, 2, 2, 3), (2, 1, 2), (1, 2, 1), (0,) * 6, (1, 0, 1), 1, True),  # 3d
    ((1, 6, 4, 4), (6, 1, 3, 3), (1, 1), (1, 1), (1, 1, 1, 1), (0, 0), 6, False),   # depthwise, stride 1
]


@pytest.mark.parametrize("i", range(len(CONVT)), ids=lambda i: f"convt{len(CONVT[i][0]) - 2}d-{i}")
def test_conv_transpose(i):
    xs, ws, s, d, p, op_, g, bias = CONVT[i]
    rng = np.random.default_rng(200 + i)
    x, w = rnd(rng, *xs), rnd(rng, *ws, low=-1, high=1)
    b = rnd(rng, ws[1] * g) if bias else None
    attrs = dict(strides=s, dilations=d, pads=p, output_padding=op_, groups=g)
    check("conv_transpose", [x, w, b], attrs, lambda x, w, b: naive_conv_transpose(x, w, b, s, d, p, op_, g))
    if torch is not None:
        check("conv_transpose", [x, w, b], attrs, lambda x, w, b: torch_conv_transpose(x, w, b, s, d, p, op_, g))


def test_conv_transpose_symbolic_batch():
    rng = np.random.default_rng(9)
    w = rnd(rng, 2, 3, 3, 3)
    for n in (1, 3):
        x = rnd(rng, n, 2, 4, 3)
        attrs = dict(strides=(2, 2), pads=(1, 1, 1, 1), output_padding=(1, 1))
        check("conv_transpose", [x, w, None], attrs,
              lambda x, w, b: naive_conv_transpose(x, w, None, (2, 2), (1, 1), (1, 1, 1, 1), (1, 1), 1), sym=(0,))


# ---- pooling ---------------------------------------------------------------------------------------
def _pool_len(d, k, s, pb, pe, ceil):
    num = d + pb + pe - k
    n = (-(-num // s) if ceil else num // s) + 1
    if ceil and (n - 1) * s >= d + pb:
        n -= 1
    return n


def naive_pool(x, kernel, strides, pads, ceil, kind, count_include_pad=False):
    """Window by window with explicit bounds (PyTorch's/ONNX's definition)."""
    nd = x.ndim - 2
    out = [_pool_len(x.shape[2 + i], kernel[i], strides[i], pads[i], pads[nd + i], ceil) for i in range(nd)]
    y = np.zeros(x.shape[:2] + tuple(out))
    for pos in np.ndindex(*out):
        lo = [pos[i] * strides[i] - pads[i] for i in range(nd)]
        hi = [lo[i] + kernel[i] for i in range(nd)]
        pad_hi = [min(hi[i], x.shape[2 + i] + pads[nd + i]) for i in range(nd)]  # counted padding
        vlo = [max(v, 0) for v in lo]
        vhi = [min(hi[i], x.shape[2 + i]) for i in range(nd)]
        win = x[(slice(None), slice(None), *(slice(a, b) for a, b in zip(vlo, vhi)))]
        if kind == "max":
            y[(slice(None), slice(None), *pos)] = win.reshape(win.shape[:2] + (-1,)).max(-1)
        else:
            cnt = math.prod(pad_hi[i] - lo[i] for i in range(nd)) if count_include_pad else \
                math.prod(vhi[i] - vlo[i] for i in range(nd))
            y[(slice(None), slice(None), *pos)] = win.reshape(win.shape[:2] + (-1,)).sum(-1) / cnt
    return y


# (x shape, kernel, strides, pads, ceil_mode)
POOLS = [
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0, 0, 0), False),
    ((1, 2, 7, 9), (3, 3), (2, 2), (1, 1, 1, 1), False),
    ((1, 2, 7, 9), (3, 3), (2, 2), (1, 1, 1, 1), True),
    ((2, 2, 6, 7), (3, 2), (2, 2), (0, 0, 0, 0), True),        # ceil overhang
    ((1, 3, 10, 10), (3, 3), (3, 3), (1, 1, 1, 1), True),      # last window would start in the end pad
    ((1, 2, 9, 8), (4, 3), (1, 2), (2, 1, 2, 1), False),
    ((2, 3, 11), (3,), (2,), (1, 1), True),                    # 1d
    ((1, 2, 5, 6, 7), (2, 3, 2), (2, 2, 2), (1, 1, 0, 1, 1, 0), True),  # 3d
]


def _torch_pool(x, kernel, strides, pads, ceil, kind, cip=False):
    nd = x.ndim - 2
    fn = getattr(TF, f"{kind}_pool{nd}d")
    kw = dict(count_include_pad=cip) if kind == "avg" else {}
    return fn(T(x), kernel, strides, pads[:nd], ceil_mode=ceil, **kw)


@pytest.mark.parametrize("i", range(len(POOLS)), ids=lambda i: f"pool-{i}")
@pytest.mark.parametrize("kind", ["max", "avg", "avg_include_pad"])
def test_pool(kind, i):
    xs, k, s, p, ceil = POOLS[i]
    rng = np.random.default_rng(300 + i)
    x = rnd(rng, *xs)
    op = "max_pool" if kind == "max" else "avg_pool"
    cip = kind == "avg_include_pad"
    attrs = dict(kernel=k, strides=s, pads=p, ceil_mode=ceil)
    if op == "avg_pool":
        attrs["count_include_pad"] = cip
    check(op, [x], attrs, lambda x: naive_pool(x, k, s, p, ceil, kind[:3], cip))
    nd = len(k)
    symmetric = p[:nd] == p[nd:] and all(p[j] <= k[j] // 2 for j in range(nd))
    if torch is not None and symmetric:
        check(op, [x], attrs, lambda x: _torch_pool(x, k, s, p, ceil, kind[:3], cip))


def test_pool_default_strides_and_symbolic_batch():
    rng = np.random.default_rng(10)
    for n in (1, 3):
        x = rnd(rng, n, 2, 6, 6)
        check("max_pool", [x], {"kernel": (3, 3)}, lambda x: naive_pool(x, (3, 3), (3, 3), (0,) * 4, False, "max"),
              sym=(0,))
        check("avg_pool", [x], {"kernel": (2, 3)}, lambda x: naive_pool(x, (2, 3), (2, 3), (0,) * 4, False, "avg"),
              sym=(0,))


def test_max_pool_all_negative_with_padding():
    """Padding never wins the max, even when every value is negative."""
    x = rnd(np.random.default_rng(4), 1, 1, 4, 4, low=-3, high=-1)
    check("max_pool", [x], dict(kernel=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1)),
          lambda x: naive_pool(x, (3, 3), (1, 1), (1, 1, 1, 1), False, "max"))


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (2, 3, 7), (1, 2, 3, 4, 2), ("N", 4, 3, 3)], ids=str)
def test_global_pools(shape):
    rng = np.random.default_rng(12)
    for n in ((1, 3) if shape[0] == "N" else (shape[0],)):
        x = rnd(rng, n, *shape[1:])
        sym = (0,) if shape[0] == "N" else ()
        keep = lambda r: r.reshape(x.shape[:2] + (1,) * (x.ndim - 2))  # noqa: E731
        check("global_avg_pool", [x], {}, lambda x: keep(np.array(
            [[math.fsum(x[i, c].ravel()) / x[i, c].size for c in range(x.shape[1])] for i in range(n)])), sym=sym)
        check("global_max_pool", [x], {}, lambda x: keep(np.array(
            [[max(x[i, c].ravel()) for c in range(x.shape[1])] for i in range(n)])), sym=sym)
        if torch is not None:
            ax = tuple(range(2, x.ndim))
            check("global_avg_pool", [x], {}, lambda x: T(x).mean(dim=ax, keepdim=True), sym=sym)
            check("global_max_pool", [x], {}, lambda x: T(x).amax(dim=ax, keepdim=True), sym=sym)


# ---- normalization -----------------------------------------------------------------------------------
def _stats(vals):
    vals = [float(v) for v in np.ravel(vals)]
    mu = math.fsum(vals) / len(vals)
    return mu, math.fsum((v - mu) ** 2 for v in vals) / len(vals)


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (3, 5), (2, 4, 6), (1, 2, 3, 2, 2), ("N", 3, 5, 5)], ids=str)
def test_batch_norm(shape):
    rng = np.random.default_rng(13)
    c = shape[1]
    sc, bi, mu = rnd(rng, c), rnd(rng, c), rnd(rng, c)
    var = rnd(rng, c, low=0.1, high=2)
    for n in ((1, 3) if shape[0] == "N" else (shape[0],)):
        x = rnd(rng, n, *shape[1:])
        sym = (0,) if shape[0] == "N" else ()

        def naive(x, sc, bi, mu, var):
            y = np.empty_like(x)
            for idx in np.ndindex(x.shape):
                ch = idx[1]
                y[idx] = (x[idx] - mu[ch]) / math.sqrt(var[ch] + 1e-3) * sc[ch] + bi[ch]
            return y
        check("batch_norm", [x, sc, bi, mu, var], {"eps": 1e-3}, naive, sym=sym)
        if torch is not None:
            check("batch_norm", [x, sc, bi, mu, var], {"eps": 1e-3}, lambda x, sc, bi, mu, var: TF.batch_norm(
                T(x), T(mu), T(var), T(sc), T(bi), training=False, eps=1e-3), sym=sym)


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (3, 5), ("N", 4, 3, 5)], ids=str)
def test_batch_norm_eps_outside_sqrt(shape):
    """Darknet's batch norm, written as its normalize_cpu then scale_bias: x = (x - mean) / (sqrt(var) + eps);
    x *= scale; x += bias. Variances near eps**2 so that where eps goes matters."""
    rng = np.random.default_rng(17)
    c = shape[1]
    sc, bi, mu = rnd(rng, c), rnd(rng, c), rnd(rng, c)
    var = rnd(rng, c, low=1e-4, high=4e-3)
    for n in ((1, 2) if shape[0] == "N" else (shape[0],)):
        x = rnd(rng, n, *shape[1:])

        def darknet(x, sc, bi, mu, var):
            y = np.array(x, copy=True)
            for idx in np.ndindex(x.shape):
                y[idx] = (y[idx] - mu[idx[1]]) / (math.sqrt(var[idx[1]]) + 1e-3)
            for idx in np.ndindex(x.shape):
                y[idx] = y[idx] * sc[idx[1]] + bi[idx[1]]
            return y
        check("batch_norm", [x, sc, bi, mu, var], {"eps": 1e-3, "eps_mode": "outside_sqrt"}, darknet,
              sym=(0,) if shape[0] == "N" else ())


@pytest.mark.parametrize("shape,axis,affine", [((3, 8), -1, "both"), ((2, 4, 6), -1, "scale"), ((2, 3, 4, 5), 1, "both"),
                                               ((2, 3, 4, 5), -2, "none"), (("N", 5, 16), 2, "both")], ids=str)
def test_layer_norm(shape, axis, affine):
    rng = np.random.default_rng(14)
    for n in ((1, 3) if shape[0] == "N" else (shape[0],)):
        x = rnd(rng, n, *shape[1:], low=-3, high=5)
        a = axis % x.ndim
        ns = x.shape[a:]
        sc = rnd(rng, *ns) if affine != "none" else None
        bi = rnd(rng, *ns) if affine == "both" else None
        sym = (0,) if shape[0] == "N" else ()

        def naive(x, sc, bi):
            lead = x.shape[:a]
            y = np.empty_like(x)
            for idx in np.ndindex(*lead):
                mu, v = _stats(x[idx])
                z = (x[idx] - mu) / math.sqrt(v + 1e-5)
                y[idx] = z * (sc if sc is not None else 1) + (bi if bi is not None else 0)
            return y
        check("layer_norm", [x, sc, bi], {"axis": axis}, naive, sym=sym)
        if torch is not None:
            check("layer_norm", [x, sc, bi], {"axis": axis}, lambda x, sc, bi: TF.layer_norm(
                T(x), ns, None if sc is None else T(sc), None if bi is None else T(bi), eps=1e-5), sym=sym)


@pytest.mark.parametrize("shape,groups", [((2, 6, 4, 4), 3), ((2, 4, 5), 2), ((1, 4, 3, 3), 4), ((2, 4, 3, 3), 1),
                                          ((1, 6, 2, 3, 2), 2), (("N", 8, 3, 3), 4)], ids=str)
def test_group_norm(shape, groups):
    rng = np.random.default_rng(15)
    c = shape[1]
    sc, bi = rnd(rng, c), rnd(rng, c)
    for n in ((1, 3) if shape[0] == "N" else (shape[0],)):
        x = rnd(rng, n, *shape[1:], low=-1, high=3)
        sym = (0,) if shape[0] == "N" else ()

        def naive(x, sc, bi):
            y = np.empty_like(x)
            cg = c // groups
            for i in range(n):
                for g in range(groups):
                    mu, v = _stats(x[i, g * cg:(g + 1) * cg])
                    for ch in range(g * cg, (g + 1) * cg):
                        y[i, ch] = (x[i, ch] - mu) / math.sqrt(v + 1e-5) * sc[ch] + bi[ch]
            return y
        check("group_norm", [x, sc, bi], {"num_groups": groups}, naive, sym=sym)
        if torch is not None:
            check("group_norm", [x, sc, bi], {"num_groups": groups},
                  lambda x, sc, bi: TF.group_norm(T(x), groups, T(sc), T(bi), eps=1e-5), sym=sym)


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (2, 4, 7), (1, 2, 3, 3, 2), ("N", 3, 5, 4)], ids=str)
def test_instance_norm(shape):
    rng = np.random.default_rng(16)
    c = shape[1]
    sc, bi = rnd(rng, c), rnd(rng, c)
    for n in ((1, 3) if shape[0] == "N" else (shape[0],)):
        x = rnd(rng, n, *shape[1:], low=-2, high=4)
        sym = (0,) if shape[0] == "N" else ()

        def naive(x, sc, bi):
            y = np.empty_like(x)
            for i in range(n):
                for ch in range(c):
                    mu, v = _stats(x[i, ch])
                    y[i, ch] = (x[i, ch] - mu) / math.sqrt(v + 1e-4) * sc[ch] + bi[ch]
            return y
        check("instance_norm", [x, sc, bi], {"eps": 1e-4}, naive, sym=sym)
        if torch is not None:
            check("instance_norm", [x, sc, bi], {"eps": 1e-4},
                  lambda x, sc, bi: TF.instance_norm(T(x), weight=T(sc), bias=T(bi), eps=1e-4), sym=sym)


def naive_lrn(x, size, alpha, beta, bias):
    """ONNX/Caffe window: channels c - floor((size-1)/2) .. c + ceil((size-1)/2)."""
    c = x.shape[1]
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    y = np.empty_like(x)
    for ch in range(c):
        sq = sum(x[:, j] ** 2 for j in range(max(0, ch - lo), min(c, ch + hi + 1)))
        y[:, ch] = x[:, ch] / (bias + alpha / size * sq) ** beta
    return y


@pytest.mark.parametrize("shape,size,alpha,beta,bias", [((2, 7, 3, 3), 5, 1e-2, 0.75, 1.0),
                                                        ((1, 6, 4, 4), 3, 0.5, 0.6, 2.0),
                                                        ((2, 5, 6), 4, 0.3, 0.75, 1.0),   # even size
                                                        ((1, 4, 2, 2, 2), 1, 0.2, 0.5, 1.5),
                                                        (("N", 8, 3, 3), 5, 1e-1, 0.75, 1.0)], ids=str)
def test_lrn(shape, size, alpha, beta, bias):
    rng = np.random.default_rng(17)
    attrs = dict(size=size, alpha=alpha, beta=beta, bias=bias)
    for n in ((1, 3) if shape[0] == "N" else (shape[0],)):
        x = rnd(rng, n, *shape[1:], low=-3, high=3)
        sym = (0,) if shape[0] == "N" else ()
        check("lrn", [x], attrs, lambda x: naive_lrn(x, size, alpha, beta, bias), sym=sym)
        if torch is not None and size % 2 == 1:  # torch centres even windows differently from ONNX/Caffe
            check("lrn", [x], attrs, lambda x: TF.local_response_norm(T(x), size, alpha, beta, bias), sym=sym)


# ---- dense ----------------------------------------------------------------------------------------------
def naive_matmul(a, b):
    """Broadcast batch dims by index arithmetic; each entry an exactly-rounded dot product."""
    r = max(a.ndim, b.ndim)
    a = a.reshape((1,) * (r - a.ndim) + a.shape)
    b = b.reshape((1,) * (r - b.ndim) + b.shape)
    batch = tuple(max(x, y) for x, y in zip(a.shape[:-2], b.shape[:-2]))
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    y = np.empty(batch + (m, n))
    for idx in np.ndindex(*batch):
        ia = tuple(i if d > 1 else 0 for i, d in zip(idx, a.shape[:-2]))
        ib = tuple(i if d > 1 else 0 for i, d in zip(idx, b.shape[:-2]))
        for i in range(m):
            for j in range(n):
                y[idx + (i, j)] = math.fsum(a[ia + (i, t)] * b[ib + (t, j)] for t in range(k))
    return y


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((2, 1, 3, 4), (5, 4, 2)),
                                   ((1, 3, 4), (2, 1, 4, 3)), ((6, 1, 5), (6, 5, 1)), ((4, 4), (3, 4, 2))], ids=str)
def test_matmul(sa, sb):
    rng = np.random.default_rng(18)
    a, b = rnd(rng, *sa), rnd(rng, *sb)
    check("matmul", [a, b], {}, naive_matmul)
    if torch is not None:
        check("matmul", [a, b], {}, lambda a, b: torch.matmul(T(a), T(b)))


def test_matmul_symbolic_batch():
    rng = np.random.default_rng(19)
    w = rnd(rng, 4, 3)
    for n in (1, 3):
        a = rnd(rng, n, 2, 4)
        check("matmul", [a, w], {}, naive_matmul, sym=(0,))
        bb = rnd(rng, n, 5, 2)
        check("matmul", [rnd(rng, 3, 5), bb], {}, naive_matmul, sym=(1,))


@pytest.mark.parametrize("xs,out,bias", [((4, 6), 3, True), ((2, 3, 5), 7, False), ((5,), 2, True),
                                         (("N", 8), 4, True), (("N", 2, 3), 5, False)], ids=str)
def test_linear(xs, out, bias):
    rng = np.random.default_rng(20)
    w = rnd(rng, out, xs[-1])
    b = rnd(rng, out) if bias else None
    for n in ((1, 4) if xs[0] == "N" else (xs[0],)):
        x = rnd(rng, n, *xs[1:])
        sym = (0,) if xs[0] == "N" else ()

        def naive(x, w, b):
            y = np.empty(x.shape[:-1] + (out,))
            for idx in np.ndindex(*x.shape[:-1]):
                for o in range(out):
                    y[idx + (o,)] = math.fsum(x[idx][t] * w[o, t] for t in range(w.shape[1])) + (b[o] if bias else 0)
            return y
        check("linear", [x, w, b], {}, naive, sym=sym)
        if torch is not None:
            check("linear", [x, w, b], {}, lambda x, w, b: TF.linear(T(x), T(w), None if b is None else T(b)), sym=sym)


@pytest.mark.parametrize("ids_shape,num,dim,dtype", [((5,), 10, 4, "int32"), ((2, 3), 7, 3, "int64"),
                                                     (("N", 4), 6, 5, "int32")], ids=str)
def test_embedding(ids_shape, num, dim, dtype):
    rng = np.random.default_rng(21)
    table = rnd(rng, num, dim)
    for n in ((1, 3) if ids_shape[0] == "N" else (ids_shape[0],)):
        ids = rng.integers(0, num, size=(n, *ids_shape[1:])).astype(dtype)
        ids.flat[0], ids.flat[-1] = 0, num - 1  # both ends of the table
        sym = (0,) if ids_shape[0] == "N" else ()
        check("embedding", [ids, table], {}, lambda ids, t: np.array(
            [t.tolist()[i] for i in ids.ravel().tolist()]).reshape(ids.shape + (dim,)), sym=sym)
        if torch is not None:
            check("embedding", [ids, table], {}, lambda ids, t: TF.embedding(T(ids.astype(np.int64)), T(t)), sym=sym)


# ---- attention ------------------------------------------------------------------------------------------
def naive_attention(q, k, v, mask=None, scale=None, causal=False):
    """Row by row: logits, masked entries dropped, exact softmax, weighted sum of v rows."""
    r = q.ndim
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    L, S, E = q.shape[-2], k.shape[-2], q.shape[-1]
    s = scale if scale is not None else 1 / math.sqrt(E)
    if mask is not None:
        mask = np.broadcast_to(mask, batch + (L, S))
    pick = lambda t, idx: t[tuple(i if d > 1 else 0 for i, d in zip(idx, t.shape[:r - 2]))]  # noqa: E731
    y = np.empty(batch + (L, v.shape[-1]))
    for idx in np.ndindex(*batch):
        qq, kk, vv = pick(q, idx), pick(k, idx), pick(v, idx)
        for i in range(L):
            logits = []
            for j in range(S):
                lg = math.fsum(qq[i, t] * kk[j, t] for t in range(E)) * s
                if mask is not None:
                    if mask.dtype == bool:
                        lg = lg if mask[idx + (i, j)] else None
                    else:
                        lg = lg + mask[idx + (i, j)]
                if causal and j > i:
                    lg = None
                logits.append(lg)
            m = max(lg for lg in logits if lg is not None)
            w = [0.0 if lg is None else math.exp(lg - m) for lg in logits]
            tot = math.fsum(w)
            y[idx + (i,)] = sum(w[j] / tot * vv[j] for j in range(S))
    return y


# (q shape, k shape, v shape, mask shape or None, mask kind, scale, causal)
ATTN = [
    ((2, 5, 4), (2, 5, 4), (2, 5, 4), None, None, None, False),
    ((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5), None, None, 0.3, False),      # L != S, Ev != E
    ((2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 4), (5, 5), "bool", None, False),  # mask broadcast over batch
    ((1, 2, 4, 4), (1, 2, 6, 4), (1, 2, 6, 3), (1, 1, 4, 6), "float", None, False),
    ((2, 6, 4), (2, 6, 4), (2, 6, 4), None, None, None, True),               # causal
    ((1, 2, 4, 3), (1, 2, 7, 3), (1, 2, 7, 3), None, None, 0.5, True),       # causal, L < S (top-left aligned)
    ((2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 4), (2, 1, 5, 5), "float", None, True),  # float mask + causal
    ((2, 4, 4), (1, 5, 4), (1, 5, 4), (2, 4, 5), "bool", None, False),       # k/v broadcast over batch
]


def _mask(rng, shape, kind):
    if kind == "bool":
        m = rng.random(shape) < 0.6
        m[..., 0] = True  # every query attends to something
        return m
    return rnd(rng, *shape, low=-3, high=1)


@pytest.mark.parametrize("i", range(len(ATTN)), ids=lambda i: f"attn-{i}")
def test_attention(i):
    qs, ks, vs, ms, kind, scale, causal = ATTN[i]
    rng = np.random.default_rng(400 + i)
    q, k, v = rnd(rng, *qs), rnd(rng, *ks), rnd(rng, *vs)
    mask = _mask(rng, ms, kind) if ms else None
    attrs = dict(scale=scale, causal=causal)
    check("attention", [q, k, v, mask], attrs, lambda q, k, v, m: naive_attention(q, k, v, m, scale, causal))
    if torch is not None and not (causal and mask is not None):  # torch takes a mask or is_causal, not both
        def tsdpa(q, k, v, m):
            bq = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
            tq, tk, tv = (T(np.broadcast_to(t, bq + t.shape[-2:]).copy()) for t in (q, k, v))
            return TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=None if m is None else T(m),
                                                   is_causal=causal, scale=scale)
        check("attention", [q, k, v, mask], attrs, tsdpa)


def test_attention_symbolic_batch():
    rng = np.random.default_rng(22)
    mask = _mask(rng, (4, 4), "bool")
    for n in (1, 3):
        q, k, v = rnd(rng, n, 2, 4, 8), rnd(rng, n, 2, 4, 8), rnd(rng, n, 2, 4, 8)
        check("attention", [q, k, v, mask], {}, lambda q, k, v, m: naive_attention(q, k, v, m), sym=(0, 1, 2))
