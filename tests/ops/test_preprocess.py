"""preprocess against torch (permute, flip, Normalize's formula), and the input declaration that adds it."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.dsl import Network
from netdsl.errors import ShapeError

from .helpers import T, check, needs_torch, torch

COVERS = {"preprocess"}


@needs_torch
@pytest.mark.parametrize("layout,shape,mean,scale,rev", [
    ("NHWC", (2, 4, 5, 3), (123.675, 116.28, 103.53), (58.395, 57.12, 57.375), True),
    ("NHWC", (1, 3, 3, 1), (127.5,), (127.5,), False),
    ("NCHW", (2, 3, 2, 2), (), (255.0,), True),
    ("NWC", (2, 6, 2), (0.5, -1.0), (), False),
    ("HWC", (4, 3, 3), (10.0,), (2.0, 4.0, 8.0), True),
], ids=str)
def test_preprocess_matches_torch(layout, shape, mean, scale, rev):
    x = np.random.default_rng(1).integers(0, 256, size=shape).astype(np.uint8)
    c = layout.index("C")
    order = [layout.index(a) for a in "NC" if a in layout] + [i for i, a in enumerate(layout) if a not in "NC"]

    def want(x):
        t = T(x).to(torch.float64)
        if rev:
            t = torch.flip(t, dims=[c])
        t = t.permute(*order)  # now channel-first (after N): Normalize's (x - mean) / std per channel
        cm = 1 if "N" in layout else 0
        shp = [1] * t.dim()
        if mean:
            shp[cm] = len(mean)
            t = t - torch.tensor(mean, dtype=torch.float64).reshape(shp)
        if scale:
            shp[cm] = len(scale)
            t = t / torch.tensor(scale, dtype=torch.float64).reshape(shp)
        return t

    attrs = {"layout": layout, "mean": mean, "scale": scale, "reverse_channels": rev}
    check("preprocess", [x], attrs, want)


def test_input_declaration_gives_the_model_layout():
    net = Network("img")
    x = net.input("image", ("N", 224, 224, 3), "uint8", layout="NHWC",
                  preprocess=nd.Preprocess(mean=(1, 2, 3), scale=2, reverse_channels=True))
    assert x.shape == (nd.Sym.of("N"), 3, 224, 224) and str(x.dtype) == "float32"
    assert [str(v.dtype) for v in net.graph.inputs] == ["uint8"] and net.graph.inputs[0].shape[1:] == (224, 224, 3)
    net2 = Network("img2")
    y = net2.input("image", (2, 5, 6, 3), "float32", layout="NHWC")  # a layout alone: a transpose
    assert y.shape == (2, 3, 5, 6)
    net2.output(y, "y")
    a = np.random.default_rng(0).standard_normal((2, 5, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(reference.run(net2.graph, {"image": a})["y"], a.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("kw,msg", [
    (dict(layout="NHW"), "has 3 axes"),
    (dict(layout="NHWX"), "no channel axis 'C'"),
    (dict(layout="nhwc"), "upper-case"),
    (dict(layout="NHWC", mean=(1.0, 2.0)), "mean has 2 values but .* 3 channels"),
    (dict(layout="NHWC", scale=(1.0, 0.0, 1.0)), "must not contain 0"),
    (dict(layout="NHWC", dtype="int32"), "floating type"),
], ids=str)
def test_preprocess_errors_name_the_input(kw, msg):
    net = Network("bad")
    x = net.input("image", ("N", 4, 4, 3), "uint8")
    with pytest.raises(ShapeError, match=msg):
        nd.preprocess(x, **kw)


def test_input_rejects_a_non_preprocess_object():
    with pytest.raises(ShapeError, match="netdsl.Preprocess"):
        Network("bad").input("image", (1, 4, 4, 3), "uint8", layout="NHWC", preprocess={"mean": 1})
