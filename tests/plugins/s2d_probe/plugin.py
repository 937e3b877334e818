"""s2d_probe: a test plugin exercising what the framework must carry through every engine.

Space-to-depth by ``block`` (output dims N, C*b*b, H/b, W/b: divisions of possibly symbolic dims),
a second output of a fixed type (int32 count of output pixels), and one attribute of every kind,
all of which reach the result: ``y = s2d(x) * alpha + sum(offsets) + sum(weights) + flag + len(tag)``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from netdsl.dtypes import DType
from netdsl.errors import ShapeError
from netdsl.graph import TensorSpec
from netdsl.ops import Attr
from netdsl.plugins import Cpu, declare
from netdsl.plugins.cuda import CudaKernel, Launch, ceil_div, numel
from netdsl.shapes import dim_div

HERE = Path(__file__).parent
ATTRS = {"block": Attr("int", 2), "alpha": Attr("float", 1.0), "flag": Attr("bool", False), "tag": Attr("str", ""),
         "offsets": Attr("ints", ()), "weights": Attr("floats", ())}


def infer(x, *, block, alpha, flag, tag, offsets, weights):
    if x.rank != 4 or not x.dtype.is_float:
        raise ShapeError(f"s2d_probe needs a float (N, C, H, W) input, got {x}")
    n, c, h, w = x.shape
    ho, wo = dim_div(h, block), dim_div(w, block)
    if ho is None or wo is None:
        raise ShapeError(f"s2d_probe: H and W of {x} must be multiples of block {block}")
    return [TensorSpec(x.dtype, (n, c * block * block, ho, wo)), TensorSpec(DType.int32, (n,))]


def bias(attrs):
    return sum(attrs["offsets"]) + sum(attrs["weights"]) + float(attrs["flag"]) + len(attrs["tag"])


def reference(x, **attrs):
    n, c, h, w = x.shape
    b = attrs["block"]
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4).reshape(n, b * b * c, h // b, w // b)
    return [y * attrs["alpha"] + bias(attrs), np.full((n,), (h // b) * (w // b), np.int32)]


def launch(shapes, attrs):
    n, c, h, w = shapes[0]
    total = max(numel(shapes[0]), n)
    return Launch(grid=ceil_div(total, 128), block=128,
                  scalars=[("long long", n), ("long long", c), ("long long", h), ("long long", w),
                           ("int", attrs["block"]), ("float", attrs["alpha"]), ("float", bias(attrs))])


s2d_probe = declare(
    "s2d_probe", inputs=("x",), outputs=("y", "count"), attrs=ATTRS, dtypes=("float32", "float16"),
    infer=infer, reference=reference,
    cuda=CudaKernel.from_file(str(HERE / "kernel.cu"), entries={"float32": "s2d<float>", "float16": "s2d<nd_half>"},
                              launch=launch),
    cpu=Cpu(source=HERE / "cpu.cpp"), replace=True)
