"""Conformance cases for the lowerings' awkward corners (1-d conv/pool through 2-d layers, ceil_mode,
output_padding, negative gather indices, dynamic reshapes, folded batch norm, precision casts ...).
They started as TensorRT-specific cases; every backend runs them."""
from __future__ import annotations

import numpy as np

import netdsl.functional as F
from netdsl.dsl import Network
from .cases import Case, add, rand, simple


add(
    simple("conv", "corner_conv1d_dil", lambda n, x, w, b: F.conv(x, w, b, padding=2, dilation=2),
           [("N", 3, 11)], params={"w": (5, 3, 3), "b": (5,)}, batches=(1, 3)),
    simple("conv", "corner_conv3d_groups", lambda n, x, w: F.conv(x, w, None, stride=(1, 2, 1), padding=1, groups=2),
           [("N", 4, 5, 6, 5)], params={"w": (6, 2, 3, 3, 3)}),
    simple("conv", "corner_conv_runtime_weight", lambda n, x, w: F.conv(x, w, stride=1, padding=0),
           [(2, 3, 6, 6), (4, 3, 3, 3)], ranges=[(-2, 2), (-0.5, 0.5)]),
    simple("conv_transpose", "corner_deconv_outpad", lambda n, x, w, b: F.conv_transpose(
        x, w, b, stride=2, padding=1, output_padding=1), [("N", 4, 5, 5)], params={"w": (4, 3, 3, 3), "b": (3,)}),
    simple("conv_transpose", "corner_deconv_outpad_nopad", lambda n, x, w, b: F.conv_transpose(
        x, w, b, stride=2, padding=0, output_padding=1), [(2, 4, 4, 4)], params={"w": (4, 3, 3, 3), "b": (3,)}),
    simple("conv_transpose", "corner_deconv1d_groups", lambda n, x, w: F.conv_transpose(x, w, None, stride=3, groups=2),
           [(2, 4, 7)], params={"w": (4, 2, 4)}),
    simple("max_pool", "corner_maxpool_ceil", lambda n, x: F.max_pool(x, 3, 2, padding=1, ceil_mode=True),
           [("N", 2, 8, 8)], batches=(1, 2)),
    simple("avg_pool", "corner_avgpool_ceil_excl", lambda n, x: F.avg_pool(x, 3, 2, padding=1, ceil_mode=True,
                                                                         count_include_pad=False), [(2, 2, 8, 7)]),
    simple("avg_pool", "corner_avgpool1d_incl", lambda n, x: F.avg_pool(x, 3, 1, padding=1), [(2, 3, 9)]),
    simple("gather", "corner_gather_negative_runtime", lambda n, x, i: F.gather(x, i, axis=1),
           [(3, 5, 2), (4,)], dtypes=["float32", "int32"], ranges=[(-2, 2), (-5, 5)]),
    simple("gather", "corner_gather_negative_const", lambda n, x: F.gather(x, [-1, 0, 2], axis=0), [(4, 3)]),
    simple("reshape", "corner_reshape_dyn", lambda n, x: F.reshape(x, (0, -1, 2)), [("N", 4, 3)], batches=(1, 3)),
    simple("flatten", "corner_flatten_middle_dyn", lambda n, x: F.flatten(x, 1, 2), [("N", 2, 3, "N")],
           batches=(2,)),
    simple("unsqueeze", "corner_unsqueeze_dyn", lambda n, x: F.unsqueeze(x, (0, 2)), [("N", "N")], batches=(2, 3)),
    simple("slice", "corner_slice_dyn_tail", lambda n, x: F.slice(x, [1], [2 ** 31 - 1], axes=[0]), [("N", 3)],
           batches=(2, 4)),
    simple("slice", "corner_slice_negative_step", lambda n, x: F.slice(x, [-1, 4], [-6, 0], axes=[1, 2], steps=[-2, -1]),
           [(2, 6, 5)]),
    simple("pad", "corner_pad_value", lambda n, x: F.pad(x, pads=(0, 1, 2, 1, 0, 1), value=1.5), [(2, 3, 4)]),
    simple("pad", "corner_pad_dyn_reflect", lambda n, x: F.pad(x, pads=(0, 0, 2, 0, 0, 1), mode="reflect"),
           [("N", 3, 4)], batches=(1, 2)),
    simple("expand", "corner_expand_rank", lambda n, x: F.expand(x, (2, 3, 4)), [(3, 1)]),
    simple("tile", "corner_tile", lambda n, x: F.tile(x, (1, 3, 2)), [("N", 2, 3)]),
    simple("where", "corner_where_rank", lambda n, c, a, b: F.where(c, a, b), [(4,), (2, 3, 4), (3, 1)],
           dtypes=["bool", "float32", "float32"]),
    simple("linear", "corner_linear_3d", lambda n, x, w, b: F.linear(x, w, b), [("N", 5, 6)],
           params={"w": (4, 6), "b": (4,)}),
    simple("linear", "corner_linear_vector", lambda n, x, w: F.linear(x, w), [(6,)], params={"w": (3, 6)}),
    simple("matmul", "corner_matmul_broadcast", lambda n, a, b: F.matmul(a, b), [("N", 2, 3, 4), (4, 5)]),
    simple("argmax", "corner_argmin_keep", lambda n, x: F.argmin(x, axis=1, keepdims=True), [(3, 7, 2)]),
    simple("cast", "corner_cast_float_int", lambda n, x: F.cast(x, "int32"), [(3, 4)], low=-5, high=5),
    simple("clip", "corner_clip_min_only", lambda n, x: F.clip(x, min=-0.5), [(3, 4)]),
    simple("clip", "corner_clip_int", lambda n, x: F.clip(x, 0, 3), [(3, 4)], dtypes=["int32"], low=-5, high=7),
    simple("div", "corner_div_int_trunc", lambda n, a, b: F.div(a, b), [(3, 4), (3, 4)], dtypes=["int32", "int32"],
           ranges=[(-9, 9), (1, 4)]),
    simple("group_norm", "corner_group_norm_3d", lambda n, x, s, b: F.group_norm(x, 2, s, b), [(2, 4, 3, 2, 2)],
           params={"s": (4,), "b": (4,)}),
    simple("layer_norm", "corner_layer_norm_2axes", lambda n, x, s, b: F.layer_norm(x, weight=s, bias=b, axis=-2),
           [("N", 3, 4, 5)], params={"s": (4, 5), "b": (4, 5)}),
    simple("resize", "corner_resize_bilinear_align", lambda n, x: F.interpolate(x, size=(7, 5), mode="bilinear",
                                                                               align_corners=True), [(2, 2, 4, 3)]),
    simple("resize", "corner_resize_nearest_scale", lambda n, x: F.interpolate(x, scale_factor=2), [("N", 2, 3, 3)]),
    simple("resize", "corner_resize_pt_half_pixel", lambda n, x: F.interpolate(x, size=(1, 6), mode="bilinear"),
           [(1, 2, 4, 3)]),
    simple("log_softmax", "corner_log_softmax_axis1", lambda n, x: F.log_softmax(x, axis=1), [("N", 5, 3)]),
    simple("topk", "corner_topk_smallest", lambda n, x: F.topk(x, 3, axis=1, largest=False), [(2, 6, 3)]),
    simple("prelu", "corner_prelu_param", lambda n, x, s: F.prelu(x, s), [("N", 3, 4)], params={"s": (3,)}),
    simple("split", "corner_split_dyn", lambda n, x: F.split(x, [1, 3], axis=1), [("N", 4, 2)]),
    simple("gelu", "corner_gelu_tanh", lambda n, x: F.gelu(x, approximate="tanh"), [(3, 4)]),
)


def _bn_case(name: str, shape: tuple, conv: bool) -> Case:
    """batch_norm with positive variances (folded into the conv when one precedes it)."""
    c = 4 if conv else shape[1]

    def build():
        net = Network(name)
        x = net.input("x0", shape)
        if conv:
            x = F.conv(x, net.parameter("w", (4, shape[1], 3, 3)), net.parameter("cb", (4,)), padding=1)
        ps = [net.parameter(k, (c,), init="positive" if k in ("s", "v") else "normal") for k in "sbmv"]
        s, b, m, v = ps
        net.output(F.batch_norm(x, m, v, s, b), "y0")
        net.init_random(seed=3)
        return net

    return Case("batch_norm", name, build, lambda rng, b: {"x0": rand(rng, (b,) + shape[1:])}, (1, 2))


def _attn_case() -> Case:
    """causal attention with a bool mask that keeps the diagonal (no fully masked row)."""
    def build():
        net = Network("attn_mask")
        q, k, v = (net.input(n, (2, 2, 5, d)) for n, d in (("q", 4), ("k", 4), ("v", 3)))
        m = net.input("m", (5, 5), "bool")
        net.output(F.attention(q, k, v, m, causal=True), "y0")
        return net

    def feeds(rng, b):
        m = rng.random((5, 5)) < 0.5
        np.fill_diagonal(m, True)
        return {"q": rand(rng, (2, 2, 5, 4)), "k": rand(rng, (2, 2, 5, 4)), "v": rand(rng, (2, 2, 5, 3)), "m": m}

    return Case("attention", "corner_attention_causal_boolmask", build, feeds)


add(_bn_case("corner_conv_bn_folded", ("N", 3, 6, 6), True), _bn_case("corner_bn_rank2", ("N", 5), False),
    _bn_case("corner_bn_rank4_scale", ("N", 3, 2, 2), False), _attn_case())
