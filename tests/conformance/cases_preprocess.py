"""Conformance cases: preprocess (layout, element type, channel order, mean and scale of an input)."""
from __future__ import annotations

import netdsl.functional as F

from .cases import add
from .cases_util import DYN, case, f32, ints

IMAGENET = dict(mean=(123.675, 116.28, 103.53), scale=(58.395, 57.12, 57.375))


def _u8(shape):
    return (shape, "uint8", ints(0, 256, "uint8"))


add(
    # on a network input: OpenVINO's PrePostProcessor path
    case("preprocess", "preprocess_nhwc_uint8_bgr_dynbatch",
         lambda n, x: F.preprocess(x, "NHWC", reverse_channels=True, **IMAGENET), [_u8(("N", 5, 6, 3))], batches=DYN),
    case("preprocess", "preprocess_nhwc_into_conv",
         lambda n, x: F.conv(F.preprocess(x, "NHWC", mean=127.5, scale=127.5), n.parameter("w", (4, 3, 3, 3))),
         [_u8((2, 7, 6, 3))]),
    case("preprocess", "preprocess_nchw_float_scalar",
         lambda n, x: F.preprocess(x, "NCHW", mean=0.5, scale=-2.0), [f32(("N", 2, 3, 4))], batches=DYN),
    case("preprocess", "preprocess_nwc_layout_only", lambda n, x: F.preprocess(x, "NWC"), [f32((2, 9, 4))]),
    # not on a network input: plain ops on every backend
    case("preprocess", "preprocess_mid_graph",
         lambda n, x: F.preprocess(x * 3.0, "NHWC", mean=(1.0, -2.0), scale=(0.5, 4.0), reverse_channels=True),
         [f32(("N", 3, 4, 2))], batches=DYN),
)
