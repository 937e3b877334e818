"""Conformance cases: reshape, flatten, transpose, (un)squeeze, concat, split, slice, gather, pad,
resize, tile, expand, constant."""
from __future__ import annotations

import numpy as np

import netdsl.functional as F

from .cases import add
from .cases_util import DYN, case, f32, ints

BIG = 2 ** 63 - 1

add(
    case("reshape", "reshape_0_-1_dynbatch", lambda n, x: F.reshape(x, (0, -1)), [f32(("N", 3, 4, 2))], batches=DYN),
    case("reshape", "reshape_static", lambda n, x: x.reshape(4, 6), [f32((2, 3, 4))]),
    case("reshape", "reshape_split_dim_dynbatch", lambda n, x: F.reshape(x, (0, 2, 3, -1)), [f32(("N", 12, 2))],
         batches=DYN),
    case("flatten", "flatten_dynbatch", lambda n, x: F.flatten(x, 1), [f32(("N", 3, 4, 5))], batches=DYN),
    case("flatten", "flatten_middle", lambda n, x: F.flatten(x, 1, 2), [f32((2, 3, 4, 5))]),
    case("flatten", "flatten_leading", lambda n, x: F.flatten(x, 0, 1), [f32((2, 3, 4))]),
    case("transpose", "transpose_nchw_nhwc_dynbatch", lambda n, x: F.transpose(x, (0, 2, 3, 1)),
         [f32(("N", 3, 4, 5))], batches=DYN),
    case("transpose", "transpose_2d", lambda n, x: x.T, [f32((5, 7))]),
    case("transpose", "transpose_batch_last", lambda n, x: F.transpose(x, (2, 0, 1)), [f32(("N", 3, 4))], batches=DYN),
    case("squeeze", "squeeze_dynbatch", lambda n, x: F.squeeze(x, (1, 3)), [f32(("N", 1, 4, 1))], batches=DYN),
    case("squeeze", "squeeze_neg_axis", lambda n, x: F.squeeze(x, -1), [f32((3, 5, 1))]),
    case("unsqueeze", "unsqueeze_dynbatch", lambda n, x: F.unsqueeze(x, (1, -1)), [f32(("N", 4))], batches=DYN),
    case("unsqueeze", "unsqueeze_front", lambda n, x: F.unsqueeze(x, 0), [f32((3, 4))]),
    case("concat", "concat_channels_dynbatch", lambda n, a, b, c: F.concat([a, b, c], 1),
         [f32(("N", 2, 3)), f32(("N", 1, 3)), f32(("N", 4, 3))], batches=DYN),
    case("concat", "concat_axis0", lambda n, a, b: F.concat([a, b], 0), [f32((2, 5)), f32((3, 5))]),
    case("concat", "concat_with_const", lambda n, a: F.concat([a, n.constant(np.full((2, 2), 0.5, np.float32))], -1),
         [f32((2, 3))]),
    case("split", "split_dynbatch", lambda n, x: F.split(x, [2, 1, 3], axis=1), [f32(("N", 6, 2))], batches=DYN),
    case("split", "split_even_last", lambda n, x: F.split(x, 2, axis=-1), [f32((3, 6))]),
    case("slice", "slice_basic_dynbatch", lambda n, x: x[:, 1:3, ::2], [f32(("N", 4, 6))], batches=DYN),
    case("slice", "slice_negative_steps", lambda n, x: F.slice(x, (5, -1), (-BIG, 0), (0, 1), (-1, -2)),
         [f32((6, 5))]),
    case("slice", "slice_negative_start_clamped_end", lambda n, x: F.slice(x, (-3, 1), (100, BIG), (1, 2), (1, 2)),
         [f32((2, 6, 5))]),
    case("slice", "slice_index_and_reverse", lambda n, x: x[:, -1, ::-1], [f32(("N", 3, 5))], batches=DYN),
    case("slice", "slice_of_the_symbolic_dim",  # last token, clamped window, reversed stride on a dynamic length
         lambda n, x: (x[:, -1], x[:, 1:4], x[:, -2::-2], x[:, 2:-1]), [f32((2, "T", 3))], batches=(2, 3, 6)),
    case("gather", "gather_negative_indices", lambda n, x, i: F.gather(x, i, axis=1),
         [f32(("N", 5, 3)), ((2, 3), "int32", ints(-5, 5))], batches=DYN),
    case("gather", "gather_const_indices", lambda n, x: F.gather(x, [3, -1, 0, 0], axis=0), [f32((5, 4))]),
    case("gather", "gather_last_axis_int64", lambda n, x, i: F.gather(x, i, axis=-1),
         [f32((2, 3, 6)), ((4,), "int64", ints(-6, 6, "int64"))]),
    case("pad", "pad_constant_dynbatch", lambda n, x: F.pad(x, pads=(0, 0, 1, 2, 0, 0, 2, 1), value=-0.5),
         [f32(("N", 2, 4, 4))], batches=DYN),
    case("pad", "pad_reflect", lambda n, x: F.pad(x, pads=(0, 0, 2, 1, 0, 0, 1, 3), mode="reflect"), [f32((1, 2, 5, 6))]),
    case("pad", "pad_edge", lambda n, x: F.pad(x, pads=(0, 1, 2, 0, 3, 1), mode="edge"), [f32((2, 3, 4))]),
    case("pad", "pad_reflect_dynbatch", lambda n, x: F.pad(x, pads=(0, 0, 1, 0, 0, 2), mode="reflect"),
         [f32(("N", 3, 5))], batches=DYN),
)


def _rs(**kw):
    return lambda n, x: F.resize(x, **kw)


add(
    case("resize", "resize_nearest_up2_dynbatch", _rs(scales=(1, 1, 2, 2)), [f32(("N", 2, 4, 5))], batches=DYN),
    case("resize", "resize_nearest_asym_floor", _rs(sizes=(1, 2, 7, 3), coordinate_transformation="asymmetric",
                                                    nearest_mode="floor"), [f32((1, 2, 5, 4))]),
    case("resize", "resize_nearest_ceil_align", _rs(sizes=(1, 2, 6, 9), coordinate_transformation="align_corners",
                                                    nearest_mode="ceil"), [f32((1, 2, 4, 4))]),
    case("resize", "resize_nearest_round_ceil_down", _rs(scales=(1, 1, 0.5, 0.5), nearest_mode="round_prefer_ceil"),
         [f32((1, 2, 8, 6))]),
    case("resize", "resize_linear_half_pixel_dynbatch", _rs(scales=(1, 1, 2, 2), mode="linear"),
         [f32(("N", 2, 4, 5))], batches=DYN),
    case("resize", "resize_linear_align_corners", _rs(sizes=(1, 2, 7, 9), mode="linear",
                                                      coordinate_transformation="align_corners"), [f32((1, 2, 4, 5))]),
    case("resize", "resize_linear_pytorch_down", _rs(sizes=(2, 1, 3, 4), mode="linear",
                                                     coordinate_transformation="pytorch_half_pixel"),
         [f32((2, 1, 6, 8))]),
    case("resize", "resize_linear_asymmetric", _rs(scales=(1, 1, 1.5, 2), mode="linear",
                                                   coordinate_transformation="asymmetric"), [f32((1, 2, 4, 4))]),
    case("resize", "resize_interpolate_bilinear", lambda n, x: F.interpolate(x, scale_factor=2, mode="bilinear"),
         [f32((1, 3, 4, 4))]),
    case("resize", "resize_linear_1d", _rs(scales=(1, 1, 1.5), mode="linear"), [f32((2, 2, 6))]),
    case("tile", "tile_dynbatch", lambda n, x: F.tile(x, (1, 2, 3)), [f32(("N", 2, 3))], batches=DYN),
    case("tile", "tile_2d", lambda n, x: F.tile(x, (3, 1)), [f32((2, 4))]),
    case("expand_as", "expand_as_class_token", lambda n, c, x: F.concat([F.expand_as(c, x[:, :1]), x], axis=1),
         [f32((1, 1, 4)), f32(("N", 3, 4))], batches=DYN),
    case("expand_as", "expand_as_bidirectional", lambda n, a, b: F.expand_as(a, b), [f32((1, 3)), f32((2, 1))]),
    case("tile", "tile_symbolic_dim", lambda n, x: F.tile(x, (2, 1, 3)), [f32(("N", 2, 3))], batches=DYN),
    case("expand", "expand_unidirectional_dynbatch", lambda n, x: F.expand(x, (-1, 3, 4)), [f32(("N", 1, 4))],
         batches=DYN),
    case("expand", "expand_new_leading_dims", lambda n, x: F.expand(x, (2, 3, 4)), [f32((3, 1))]),
    case("expand", "expand_bidirectional", lambda n, x: F.expand(x, (2, 1, 5)), [f32((3, 1))]),
    case("constant", "constant_add_dynbatch",
         lambda n, x: x + n.constant(np.linspace(-1, 1, 6, dtype=np.float32)), [f32(("N", 6))], batches=DYN),
    case("constant", "constant_mul_2d", lambda n, x: x * n.constant(np.arange(1, 13, dtype=np.float32).reshape(3, 4) / 4),
         [f32((3, 4))]),
)
