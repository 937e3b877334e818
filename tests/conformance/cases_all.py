"""Conformance cases for every catalogue op (see cases.py for the format)."""
from __future__ import annotations

import netdsl.functional as F

from .cases import add, simple

add(
    simple("relu", "relu_nchw_dynbatch", lambda n, x: F.relu(x), [("N", 3, 5, 5)], batches=(1, 3)),
    simple("add", "add_broadcast", lambda n, a, b: F.add(a, b), [("N", 3, 4), (4,)], batches=(1, 2)),
    simple("conv", "conv2d_pad_stride", lambda n, x, w, b: F.conv(x, w, b, stride=2, padding=1),
           [("N", 3, 9, 9)], params={"w": (4, 3, 3, 3), "b": (4,)}, batches=(1, 2)),
)
