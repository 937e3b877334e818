"""Conformance cases: TensorFlow's SAME padding (``padding="same"`` / ``"same_lower"``) with strides on
spatial dims known only at run time (the op's ``auto_pad``; conv_transpose: Keras' Conv2DTranspose SAME), sizes chosen so that the total padding is odd
on some runs (the extra row at the end for SAME_UPPER, at the beginning for SAME_LOWER) and even on others.
"""
from __future__ import annotations

import netdsl.functional as F

from .cases import add
from .cases_util import case, f32

HW = (7, 8)  # run-time sizes of the symbolic spatial dims


def _conv(wshape, groups=1, **kw):
    def fn(n, x):
        return F.conv(x, n.parameter("w", wshape), n.parameter("b", (wshape[0],), init="small"), groups=groups, **kw)
    return fn


add(
    case("conv", "conv2d_same_stride2_symbolic", _conv((3, 2, 3, 3), stride=2, padding="same"),
         [f32((1, 2, "H", 9))], batches=HW),
    case("conv", "conv2d_same_lower_stride_groups_symbolic",
         _conv((4, 1, 3, 2), groups=2, stride=(2, 3), padding="same_lower"),
         [f32((2, 2, "H", "H"))], batches=HW),
    case("conv", "conv1d_same_stride3_symbolic", _conv((3, 2, 4), stride=3, padding="same"),
         [f32((2, 2, "L"))], batches=(7, 8, 9)),
    case("conv_transpose", "convT2d_same_k3s2_symbolic",
         lambda n, x: F.conv_transpose(x, n.parameter("w", (2, 3, 3, 3)), n.parameter("b", (3,), init="small"),
                                       stride=2, padding="same"), [f32((1, 2, "H", 4))], batches=HW),
    case("conv_transpose", "convT2d_same_k2s3_output_padding_symbolic",
         lambda n, x: F.conv_transpose(x, n.parameter("w", (2, 3, 2, 1)), stride=(3, 2), padding="same"),
         [f32((2, 2, "H", 3))], batches=HW),
    case("max_pool", "maxpool_same_k3s2_symbolic", lambda n, x: F.max_pool(x, 3, 2, padding="same"),
         [f32((1, 3, "H", "H"))], batches=HW),
    case("max_pool", "maxpool_same_lower_k2s2_symbolic", lambda n, x: F.max_pool(x, 2, 2, padding="same_lower"),
         [f32((1, 2, "H", 6))], batches=HW),
    case("avg_pool", "avgpool_same_k3s2_symbolic", lambda n, x: F.avg_pool(x, 3, 2, padding="same"),
         [f32((1, 3, "H", "H"))], batches=HW),
    case("avg_pool", "avgpool_same_lower_k4s3_include_pad_symbolic",
         lambda n, x: F.avg_pool(x, (4, 2), (3, 2), padding="same_lower", count_include_pad=True),
         [f32((2, 2, "H", 5))], batches=HW),
    case("avg_pool", "avgpool1d_same_k3s2_symbolic", lambda n, x: F.avg_pool(x, 3, 2, padding="same"),
         [f32((2, 3, "L"))], batches=(7, 8)),
    case("avg_pool", "avgpool_same_k3s2_static", lambda n, x: F.avg_pool(x, 3, 2, padding="same"),
         [f32((1, 2, 7, 8))]),
    # kernel below stride: ONNX's auto_pad total is negative on multiples of the stride (6), clamped at 0
    case("max_pool", "maxpool_same_k2s3_symbolic", lambda n, x: F.max_pool(x, 2, 3, padding="same"),
         [f32((1, 2, "H", "H"))], batches=(6, 7)),
    case("avg_pool", "avgpool_same_lower_k2s3_symbolic", lambda n, x: F.avg_pool(x, 2, 3, padding="same_lower"),
         [f32((1, 2, "H", 5))], batches=(6, 7)),
    case("avg_pool", "avgpool_same_k1s2_include_pad_symbolic",
         lambda n, x: F.avg_pool(x, 1, 2, padding="same", count_include_pad=True), [f32((2, 3, "L"))], batches=(4, 5)),
)
