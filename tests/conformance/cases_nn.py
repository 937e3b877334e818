"""Conformance cases: convolution, pooling, normalization, dense, embedding, attention, and a few
small models (op interplay)."""
from __future__ import annotations

import numpy as np

import netdsl.functional as F

from .cases import add
from .cases_util import DYN, bools, case, f32, ints


def _conv(wshape, bias=True, **kw):
    def fn(n, x):
        w = n.parameter("w", wshape)
        b = n.parameter("b", (wshape[0],), init="small") if bias else None
        return F.conv(x, w, b, **kw)
    return fn


def _convt(wshape, groups=1, bias=True, **kw):
    def fn(n, x):
        w = n.parameter("w", wshape)
        b = n.parameter("b", (wshape[1] * groups,), init="small") if bias else None
        return F.conv_transpose(x, w, b, groups=groups, **kw)
    return fn


add(
    case("conv", "conv2d_pad_stride_dynbatch", _conv((4, 3, 3, 3), stride=2, padding=1), [f32(("N", 3, 9, 9))],
         batches=DYN),
    case("conv", "conv2d_valid_nobias", _conv((6, 3, 3, 3), bias=False), [f32((2, 3, 8, 8))]),
    case("conv", "conv2d_same", _conv((4, 2, 5, 5), padding="same"), [f32(("N", 2, 7, 7))], batches=DYN),
    case("conv", "conv2d_same_stride2", _conv((3, 2, 3, 3), stride=2, padding="same"), [f32((1, 2, 8, 8))]),
    case("conv", "conv2d_asym_pads", _conv((4, 3, 3, 2), stride=(2, 1), padding=(1, 0, 2, 1)), [f32((1, 3, 9, 7))]),
    case("conv", "conv2d_depthwise_dilated", _conv((4, 1, 3, 3), padding=2, dilation=2, groups=4),
         [f32(("N", 4, 8, 8))], batches=DYN),
    case("conv", "conv2d_groups2", _conv((4, 3, 3, 3), stride=2, padding=1, groups=2), [f32((2, 6, 7, 7))]),
    case("conv", "conv2d_1x1", _conv((8, 4, 1, 1)), [f32((2, 4, 5, 5))]),
    case("conv", "conv1d_dynbatch", _conv((4, 3, 3), padding=1), [f32(("N", 3, 12))], batches=DYN),
    case("conv", "conv1d_stride_dilation", _conv((3, 2, 3), stride=2, dilation=2, padding=(2, 0)), [f32((2, 2, 13))]),
    case("conv", "conv3d", _conv((3, 2, 2, 3, 2), stride=(1, 2, 1), padding=1), [f32((1, 2, 5, 6, 4))]),
    case("conv_transpose", "convT2d_stride2_outpad_dynbatch",
         _convt((3, 2, 3, 3), stride=2, padding=1, output_padding=1), [f32(("N", 3, 4, 4))], batches=DYN),
    case("conv_transpose", "convT2d_k2s2_nobias", _convt((4, 3, 2, 2), bias=False, stride=2), [f32((2, 4, 5, 5))]),
    case("conv_transpose", "convT2d_groups_dilation", _convt((4, 1, 3, 3), groups=2, stride=2, dilation=2, padding=1),
         [f32((1, 4, 4, 4))]),
    case("conv_transpose", "convT1d", _convt((2, 3, 4), stride=3, padding=1, output_padding=2), [f32((2, 2, 5))]),
    case("conv_transpose", "convT3d", _convt((2, 2, 2, 2, 2), stride=2), [f32((1, 2, 2, 3, 2))]),
)

add(
    case("max_pool", "maxpool2_dynbatch", lambda n, x: F.max_pool(x, 2), [f32(("N", 3, 8, 8))], batches=DYN),
    case("max_pool", "maxpool3_s2_p1_ceil", lambda n, x: F.max_pool(x, 3, 2, 1, ceil_mode=True), [f32((1, 2, 8, 9))]),
    case("max_pool", "maxpool_ceil_overhang", lambda n, x: F.max_pool(x, (3, 2), 2, ceil_mode=True),
         [f32((2, 2, 6, 7))]),
    case("max_pool", "maxpool1d", lambda n, x: F.max_pool(x, 3, 2, 1), [f32(("N", 3, 11))], batches=DYN),
    case("max_pool", "maxpool3d", lambda n, x: F.max_pool(x, 2), [f32((1, 2, 4, 6, 4))]),
    case("avg_pool", "avgpool2_dynbatch", lambda n, x: F.avg_pool(x, 2), [f32(("N", 3, 8, 8))], batches=DYN),
    case("avg_pool", "avgpool3_p1_include_pad", lambda n, x: F.avg_pool(x, 3, 2, 1, count_include_pad=True),
         [f32((1, 2, 9, 7))]),
    case("avg_pool", "avgpool3_p1_exclude_pad", lambda n, x: F.avg_pool(x, 3, 2, 1, count_include_pad=False),
         [f32((1, 2, 9, 7))]),
    case("avg_pool", "avgpool_ceil_include_pad", lambda n, x: F.avg_pool(x, 3, 2, 1, ceil_mode=True,
                                                                          count_include_pad=True), [f32((2, 2, 8, 8))]),
    case("avg_pool", "avgpool_ceil_exclude_pad", lambda n, x: F.avg_pool(x, 3, 2, 1, ceil_mode=True,
                                                                          count_include_pad=False), [f32((1, 2, 8, 8))]),
    case("avg_pool", "avgpool1d", lambda n, x: F.avg_pool(x, 4, 2), [f32((2, 3, 10))]),
    case("global_avg_pool", "gap2d_dynbatch", lambda n, x: F.global_avg_pool(x), [f32(("N", 4, 5, 6))], batches=DYN),
    case("global_avg_pool", "gap1d", lambda n, x: F.global_avg_pool(x), [f32((2, 3, 9))]),
    case("global_max_pool", "gmp2d_dynbatch", lambda n, x: F.global_max_pool(x), [f32(("N", 4, 5, 6))], batches=DYN),
    case("global_max_pool", "gmp3d", lambda n, x: F.global_max_pool(x), [f32((1, 2, 3, 4, 3))]),
)


def _bn(c, eps=1e-5):
    def fn(n, x):
        scale, bias = n.parameter("scale", (c,), init="ones"), n.parameter("bias", (c,), init="small")
        return F.batch_norm(x, n.parameter("mean", (c,), init="small"), n.parameter("var", (c,), init="positive"),
                            scale, bias, eps=eps)
    return fn


def _ln(shape, axis=-1, scale=True, bias=True):
    def fn(n, x):
        return F.layer_norm(x, weight=n.parameter("scale", shape, init="ones") if scale else None,
                            bias=n.parameter("bias", shape, init="small") if bias else None, axis=axis)
    return fn


def _gn(c, groups):
    return lambda n, x: F.group_norm(x, groups, n.parameter("scale", (c,), init="ones"),
                                     n.parameter("bias", (c,), init="small"))


def _in(c):
    return lambda n, x: F.instance_norm(x, weight=n.parameter("scale", (c,), init="ones"),
                                        bias=n.parameter("bias", (c,), init="small"))


add(
    case("batch_norm", "bn2d_dynbatch", _bn(3), [f32(("N", 3, 5, 5))], batches=DYN),
    case("batch_norm", "bn1d_features", _bn(6, 1e-3), [f32((4, 6))]),
    case("batch_norm", "bn_rank3", _bn(4), [f32((2, 4, 7))]),
    case("layer_norm", "ln_last_dynbatch", _ln((16,)), [f32(("N", 5, 16), -1, 3)], batches=DYN),
    case("layer_norm", "ln_two_axes", _ln((4, 5), axis=-2), [f32((2, 3, 4, 5))]),
    case("layer_norm", "ln_no_affine", _ln((8,), scale=False, bias=False), [f32((3, 8), -2, 4)]),
    case("layer_norm", "ln_scale_only", _ln((6,), bias=False), [f32((2, 6))]),
    case("group_norm", "gn_dynbatch", _gn(6, 3), [f32(("N", 6, 4, 4), -1, 3)], batches=DYN),
    case("group_norm", "gn_rank3_g1", _gn(4, 1), [f32((2, 4, 5))]),
    case("instance_norm", "in2d_dynbatch", _in(3), [f32(("N", 3, 5, 5), -1, 3)], batches=DYN),
    case("instance_norm", "in1d", _in(4), [f32((2, 4, 7))]),
    case("lrn", "lrn5_dynbatch", lambda n, x: F.lrn(x, 5, 1e-2, 0.75, 1.0), [f32(("N", 7, 3, 3), -3, 3)],
         batches=DYN),
    case("lrn", "lrn3_alexnet_like", lambda n, x: F.lrn(x, 3, 1e-1, 0.75, 2.0), [f32((1, 6, 4, 4), -3, 3)]),
)


def _linear(i, o, bias=True):
    return lambda n, x: F.linear(x, n.parameter("w", (o, i)), n.parameter("b", (o,), init="small") if bias else None)


add(
    case("linear", "linear_dynbatch", _linear(12, 5), [f32(("N", 12))], batches=DYN),
    case("linear", "linear_rank3_nobias", _linear(8, 6, bias=False), [f32((2, 3, 8))]),
    case("linear", "linear_seq_dynbatch", _linear(6, 4), [f32(("N", 5, 6))], batches=DYN),
    case("matmul", "matmul_2d", lambda n, a, b: a @ b, [f32((4, 6)), f32((6, 3))]),
    case("matmul", "matmul_batched_broadcast", lambda n, a, b: F.matmul(a, b), [f32((2, 1, 3, 4)), f32((5, 4, 2))]),
    case("matmul", "matmul_dynbatch_weight", lambda n, a: a @ n.parameter("w", (8, 3)), [f32(("N", 4, 8))],
         batches=DYN),
    case("matmul", "matmul_dynbatch_both", lambda n, a, b: a @ b, [f32(("N", 2, 3, 4)), f32(("N", 2, 4, 5))],
         batches=DYN),
    case("embedding", "embedding_dynbatch", lambda n, i: F.embedding(i, n.parameter("table", (10, 6))),
         [(("N", 5), "int32", ints(0, 10))], batches=DYN),
    case("embedding", "embedding_2d_ids", lambda n, i: F.embedding(i, n.parameter("table", (7, 3))),
         [((2, 3), "int32", ints(0, 7))]),
)


def _attn(**kw):
    return lambda n, q, k, v: F.attention(q, k, v, **kw)


def _mask_keep_first(n, m):
    """A bool mask whose first key is always attended (no fully masked rows)."""
    first = n.constant(np.array([True] + [False] * (m.shape[-1] - 1)))
    return m | first


add(
    case("attention", "attn_dynbatch", _attn(), [f32(("N", 2, 5, 8)), f32(("N", 2, 5, 8)), f32(("N", 2, 5, 8))],
         batches=DYN),
    case("attention", "attn_cross_scale", _attn(scale=0.3), [f32((2, 3, 4, 8)), f32((2, 3, 6, 8)), f32((2, 3, 6, 5))]),
    case("attention", "attn_causal", _attn(causal=True), [f32((2, 6, 4)), f32((2, 6, 4)), f32((2, 6, 4))]),
    case("attention", "attn_causal_dynamic_seq", _attn(causal=True),
         [f32((2, "T", 4)), f32((2, "T", 4)), f32((2, "T", 4))], batches=(1, 3, 5)),
    case("attention", "attn_bool_mask_dynbatch",
         lambda n, q, k, v, m: F.attention(q, k, v, _mask_keep_first(n, m)),
         [f32(("N", 2, 4, 8)), f32(("N", 2, 6, 8)), f32(("N", 2, 6, 8)), ((4, 6), "bool", bools(0.6))], batches=DYN),
    case("attention", "attn_float_mask", lambda n, q, k, v, m: F.attention(q, k, v, m),
         [f32((1, 2, 4, 4)), f32((1, 2, 6, 4)), f32((1, 2, 6, 3)), f32((1, 1, 4, 6), -3, 1)]),
)

# ---- model-like cases (op interplay) ---------------------------------------------------------------------


def _convnet(n, x):
    """conv + batch_norm + relu + max_pool + conv + global pool + flatten + linear + softmax."""
    y = _conv((8, 3, 3, 3), padding=1)(n, x)
    y = F.relu(_bn(8)(n, y))
    y = F.max_pool(y, 2)
    w2 = n.parameter("w2", (6, 8, 3, 3))
    y = F.relu(F.conv(y, w2, n.parameter("b2", (6,), init="small"), padding="same"))
    y = F.flatten(F.global_avg_pool(y), 1)
    return F.softmax(F.linear(y, n.parameter("fc.w", (10, 6)), n.parameter("fc.b", (10,), init="small")), 1)


def _lenet_like(n, x):
    y = F.max_pool(F.relu(F.conv(x, n.parameter("c1", (4, 1, 5, 5)), n.parameter("c1b", (4,), init="small"))), 2)
    y = F.avg_pool(F.relu(F.conv(y, n.parameter("c2", (6, 4, 3, 3)))), 2)
    y = F.reshape(y, (0, -1))
    y = F.relu(F.linear(y, n.parameter("f1", (16, 24)), n.parameter("f1b", (16,), init="small")))
    return F.log_softmax(F.linear(F.dropout(y, 0.5), n.parameter("f2", (5, 16))), -1)


def _transformer(n, x):
    """Pre-norm transformer block: layer_norm, QKV matmuls, multi-head attention, gelu MLP, residuals."""
    d, h = 16, 2
    y = F.layer_norm(x, (d,), n.parameter("ln1.s", (d,), init="ones"), n.parameter("ln1.b", (d,), init="small"))
    heads = lambda t: F.transpose(F.reshape(t, (0, 0, h, d // h)), (0, 2, 1, 3))  # noqa: E731
    q = heads(F.linear(y, n.parameter("wq", (d, d)), n.parameter("bq", (d,), init="small")))
    k = heads(F.linear(y, n.parameter("wk", (d, d))))
    v = heads(y @ n.parameter("wv", (d, d)))
    a = F.reshape(F.transpose(F.attention(q, k, v, causal=True), (0, 2, 1, 3)), (0, 0, d))
    x = x + F.linear(a, n.parameter("wo", (d, d)))
    y = F.layer_norm(x, (d,), n.parameter("ln2.s", (d,), init="ones"), n.parameter("ln2.b", (d,), init="small"))
    y = F.gelu(F.linear(y, n.parameter("w1", (32, d)), n.parameter("b1", (32,), init="small")))
    return x + F.linear(y, n.parameter("w2", (d, 32)))


def _embed_classifier(n, ids):
    e = F.embedding(ids, n.parameter("emb", (20, 8)))
    m = F.mean(e, axis=1)
    return F.linear(F.tanh(m), n.parameter("w", (4, 8))), F.sigmoid(m)


add(
    case("conv", "model_convnet", _convnet, [f32(("N", 3, 12, 12))], batches=DYN, tol=2.0),
    case("max_pool", "model_lenet_like", _lenet_like, [f32(("N", 1, 16, 16))], batches=DYN, tol=2.0),
    case("attention", "model_transformer_block", _transformer, [f32(("N", 6, 16))], batches=DYN, tol=2.0),
    case("embedding", "model_embed_classifier", _embed_classifier, [(("N", 7), "int32", ints(0, 20))], batches=DYN),
)
