"""arange, slice_to and resize_to against naive loops, Python list slicing and torch, with symbolic limits."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.dsl import Network
from netdsl.errors import ShapeError
from netdsl.shapes import Sym

from .helpers import rnd

COVERS = {"arange", "slice_to", "resize_to"}


def _run(net, feeds, dtype="float64"):
    return reference.compile(net.graph, dtype=dtype)(feeds)


@pytest.mark.parametrize("start,step,dtype", [(0, 1, "int32"), (1, 2, "int64"), (7, -2, "int32"),
                                               (0.5, 0.75, "float32"), (-1.25, 0.5, "float64")], ids=str)
def test_arange_symbolic_limit(start, step, dtype):
    net = Network("ar")
    x = net.input("x", (2, "T"))
    net.output(nd.arange(start, x.shape[1], step, dtype=dtype, net=net), "y")
    for t in (1, 4, 9):
        got = _run(net, {"x": np.ones((2, t), np.float32)})["y"]
        want = []  # a naive loop, as the ONNX Range spec describes it
        while (start + len(want) * step < t) if step > 0 else (start + len(want) * step > t):
            want.append(start + len(want) * step)
        assert got.shape == np.shape(want), (t, got, want)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert got.dtype == np.dtype(dtype) or "float" in dtype  # the float64 oracle computes floats in float64


def test_arange_static_and_shape():
    net = Network("ar")
    y = nd.arange(3, 11, 3, net=net)
    assert y.shape == (3,) and str(y.dtype) == "int32"
    net.output(y, "y")
    np.testing.assert_array_equal(_run(net, {})["y"], [3, 6, 9])
    net2 = Network("ar2")
    x = net2.input("x", ("N", "S"))
    assert nd.arange(x.shape[1], net=net2).shape == (Sym.of("S"),)  # the same symbol: adds to (N, S, ...)
    assert nd.arange(like=x, axis=0).shape == (Sym.of("N"),)


def test_arange_errors_name_the_problem():
    net = Network("ar")
    x = net.input("x", ("N", 3))
    with pytest.raises(ShapeError, match="net="):
        nd.arange(x.shape[0])
    with pytest.raises(ShapeError, match="no tensor .* has the dim M"):
        nd.arange(Sym.of("M"), net=net)
    with pytest.raises(ShapeError, match="step must not be 0"):
        nd.arange(0, 4, 0, net=net)
    with pytest.raises(ShapeError, match="whole numbers"):
        nd.arange(0.5, 4, 1, dtype="int32", net=net)


@pytest.mark.parametrize("start,offset,step", [(0, 0, 1), (1, -1, 1), (-3, 2, 2), (-1, 0, -1), (5, -7, -2)], ids=str)
def test_slice_to_matches_python_slicing(start, offset, step):
    rng = np.random.default_rng(3)
    net = Network("st")
    x = net.input("x", (8, 3))
    like = net.input("like", ("N", "S"))
    net.output(nd.slice_to(x, like, axes=0, like_axes=1, starts=start, offsets=offset, steps=step), "y")
    xv = rnd(rng, 8, 3)
    for s in (0, 1, 4, 8, 11):  # past the end: clamped like Python
        got = _run(net, {"x": xv, "like": np.ones((2, s), np.float32)})["y"]
        want = np.array(xv.tolist()[start:s + offset:step]).reshape(-1, 3)
        np.testing.assert_array_equal(got, want)


def test_getitem_with_a_symbolic_end():
    rng = np.random.default_rng(4)
    net = Network("gi")
    ids = net.input("ids", ("N", "S"), "int32")
    table = net.input("table", (10, 4))
    rows = table[:ids.shape[1]]
    assert rows.shape == (Sym.of("S"), 4) and rows.value.producer.op == "slice_to"
    net.output(table[1:ids.shape[1]:2, ::-1], "odd")
    net.output(rows, "rows")
    t = rnd(rng, 10, 4)
    for s in (1, 5):
        out = _run(net, {"ids": np.zeros((2, s), np.int32), "table": t})
        np.testing.assert_array_equal(out["rows"], t[:s])
        np.testing.assert_array_equal(out["odd"], np.array([r[::-1] for r in t.tolist()[1:s:2]]).reshape(-1, 4))
    with pytest.raises(ShapeError, match="only the end"):
        table[ids.shape[1]:]


@pytest.mark.parametrize("mode,align", [("nearest", None), ("bilinear", False), ("bilinear", True)], ids=str)
def test_resize_to_is_torch_interpolate_to_a_run_time_size(mode, align):
    """F.interpolate(x, size=y.shape[-2:]) with y's H, W symbolic: torch's interpolate on each run's sizes."""
    torch = pytest.importorskip("torch", reason="torch is not installed (its interpolate is the oracle)")
    net = Network("rt")
    x = net.input("x", (2, 3, 5, 4))
    y = net.input("y", (1, 1, "H", "W"))
    out = nd.interpolate(x, size=y.shape[-2:], mode=mode, align_corners=align)
    assert [n.op for n in net.graph.nodes][-1] == "resize_to" and out.shape[2:] == y.shape[2:]
    net.output(out, "z")
    rng = np.random.default_rng(21)
    xv = rnd(rng, 2, 3, 5, 4)
    for h, w in ((9, 7), (3, 2), (5, 4), (2, 6)):
        got = _run(net, {"x": xv, "y": np.zeros((1, 1, h, w))})["z"]
        want = torch.nn.functional.interpolate(torch.from_numpy(xv), size=(h, w), mode=mode, align_corners=align)
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12, err_msg=f"{mode} to {h}x{w}")


def test_resize_to_like_axes_and_errors():
    net = Network("rt")
    x = net.input("x", (1, 2, 4, 4))
    y = net.input("y", (1, "H", "W", 3))  # NHWC: tf.image.resize(x, tf.shape(y)[1:3])
    z = nd.resize_to(x, y, (1, 2), mode="linear", coordinate_transformation="half_pixel")
    assert z.shape[2:] == y.shape[1:3]
    net.output(z, "z")
    xv = rnd(np.random.default_rng(3), 1, 2, 4, 4)
    got = _run(net, {"x": xv, "y": np.zeros((1, 8, 2, 3))})["z"]
    # half_pixel, 4 -> 8: source (o + 0.5) / 2 - 0.5, clamped; 4 -> 2: source 0.5 and 2.5 (the pair means)
    rows = np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3)
    lo = np.floor(rows).astype(int)
    hi = np.minimum(lo + 1, 3)
    f = (rows - lo)[:, None]
    up = xv[:, :, lo] * (1 - f) + xv[:, :, hi] * f
    want = (up[..., [0, 2]] + up[..., [1, 3]]) / 2
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ShapeError, match="like_axes"):
        nd.resize_to(x, y, (1,))
    with pytest.raises(Exception, match="no tensor"):
        nd.interpolate(x, size=(Sym.of("Q"), 3))


def test_interpolate_to_one_run_time_dim_twice():
    """``size=(y.shape[1], y.shape[1])`` (a square of y's one symbolic dim) reads that dim twice; it was
    refused ('no tensor has the dims (P, P)') although resize_to takes like_axes=(1, 1)."""
    torch = pytest.importorskip("torch", reason="torch is not installed (its interpolate is the oracle)")
    net = Network("sq")
    x = net.input("x", (2, 3, 5, 4))
    y = net.input("y", (1, "P", "Q"))
    out = nd.interpolate(x, size=(y.shape[1], y.shape[1]), mode="bilinear")
    assert out.shape[2:] == (y.shape[1], y.shape[1])
    net.output(out, "z")
    xv = rnd(np.random.default_rng(5), 2, 3, 5, 4)
    for p in (7, 2):
        got = _run(net, {"x": xv, "y": np.zeros((1, p, 3))})["z"]
        want = torch.nn.functional.interpolate(torch.from_numpy(xv), size=(p, p), mode="bilinear")
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)
