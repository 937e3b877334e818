"""Conformance cases: arange and slice_to, whose sizes are read from another tensor's (symbolic) dims."""
from __future__ import annotations

import netdsl.functional as F

from .cases import add
from .cases_util import case, f32, ints

SEQ = (1, 3, 5)  # run-time lengths of the symbolic dims


def _positions(n, ids, table):
    pos = F.arange(ids.shape[1], net=n)                      # (S,) int32, S read at run time
    return F.embedding(ids, table) + F.embedding(F.unsqueeze(pos, 0), table)


def _ids(shape):
    return (shape, "int32", ints(0, 8))


add(
    case("arange", "arange_position_ids_symbolic",
         lambda n, ids: _positions(n, ids, n.parameter("table", (8, 4))), [_ids(("N", "S"))], batches=SEQ),
    case("arange", "arange_step_int64_symbolic",
         lambda n, x: (x * 2.0, F.arange(1, x.shape[1], 2, dtype="int64", net=n)),
         [f32((2, "T"))], batches=(1, 2, 5)),
    case("arange", "arange_negative_step_symbolic",
         lambda n, x: F.arange(6, x.shape[0], -2, net=n), [f32(("N", 3))], batches=(1, 2, 5)),
    case("arange", "arange_float_symbolic",
         lambda n, x: (x + 1.0, F.arange(0.5, x.shape[1], 0.75, dtype="float32", net=n)), [f32((2, "T"))], batches=SEQ),
    case("arange", "arange_static_float",
         lambda n, x: x * F.arange(-2.25, 2.75, 0.5, net=n), [f32(("N", 10))], batches=(1, 3)),
    case("slice_to", "slice_to_table_rows_symbolic",
         lambda n, ids: ids_f(ids) + n.parameter("table", (8, 4))[:ids.shape[1]], [_ids(("N", "S", 1))],
         batches=SEQ),
    case("slice_to", "slice_to_start_offset_step",
         lambda n, x, like: F.slice_to(x, like, axes=(1, 0), like_axes=(1, 1), starts=(1, 0), offsets=(1, -1),
                                       steps=(2, 1)),
         [f32((7, 9)), f32((2, "T"))], batches=SEQ),
    case("slice_to", "slice_to_negative_start_and_step",
         lambda n, x, like: F.slice_to(x, like, axes=-1, like_axes=0, starts=-1, steps=-1),
         [f32(("N", 8)), f32(("T", 2))], batches=SEQ),
)


def ids_f(ids):
    """(N, S, 1) ids as float32 (so a table slice of (S, 4) broadcasts against them)."""
    return F.cast(ids, "float32")


def _resize_like(mode, align=False, like_axes=None):
    """interpolate(x, size=y.shape[-2:]) (PyTorch) / resize_to: x resized to another input's run-time size."""
    def fn(n, x, y):
        if like_axes is None:
            return F.interpolate(x, size=y.shape[-2:], mode=mode, align_corners=align if mode != "nearest" else None)
        return F.resize_to(x, y, like_axes, mode="linear", coordinate_transformation="half_pixel")
    return fn


add(  # x (1, 2, 5, 4) to y's (S, S) or (S, 6): up (S = 7, 9) and down (S = 3); nearest floor, linear half pixel / corners
    case("resize_to", "resize_to_nearest_symbolic", _resize_like("nearest"), [f32((1, 2, 5, 4)), f32((1, 1, "S", 6))],
         batches=(3, 7, 9)),
    case("resize_to", "resize_to_bilinear_symbolic", _resize_like("bilinear"),
         [f32(("S", 2, 5, 4)), f32((1, 3, "S", "S"))], batches=(3, 7)),
    case("resize_to", "resize_to_bilinear_align_corners_symbolic", _resize_like("bilinear", True),
         [f32((1, 2, 5, 4)), f32((2, 1, "S", "S"))], batches=(3, 9)),
    case("resize_to", "resize_to_like_axes_nhwc_half_pixel", _resize_like("linear", like_axes=(1, 2)),
         [f32((2, 3, 4, 6)), f32((2, "S", 5, 3))], batches=(2, 7)),
)
