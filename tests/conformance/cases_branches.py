"""Conformance cases that run lowering branches no other case reaches (scripts/lowering_coverage.py checks
that every branch of every backend's lowering runs in the table): 0-d tensors, identity casts, bfloat16
graphs, symbolic spatial or feature dims, rank-2 attention, pooling windows that would start in the padding,
even LRN windows, int8 indices, batch norm that is not folded ..."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import numpy as np

import netdsl.functional as F

from .cases import add
from .cases_util import DYN, case, f32, ints

BIG = 2 ** 63 - 1
_SYMBOLIC_E = {"tensorrt": "TensorRT lowering: attention without an explicit scale needs a static feature size"}

add(
    case("cast", "cast_same_type", lambda n, x: F.cast(x, "float32") * 2.0, [f32((3, 4))]),
    case("cast", "cast_roundtrip_bfloat16", lambda n, x: F.cast(F.cast(x, "bfloat16"), "float32"),
         [f32(("N", 7), -300, 300)], batches=DYN),
    case("parameter", "parameter_bfloat16_graph",
         lambda n, x: F.cast(F.cast(x, "bfloat16") + n.parameter("b", (4,), dtype="bfloat16"), "float32"),
         [f32((3, 4))], skip={"onnx": "ONNX Runtime's CPU provider has no bfloat16 Add kernel"}),
    case("dropout", "dropout_int", lambda n, x: F.dropout(x, 0.5), [((3, 4), "int32", ints(-9, 9))]),
    case("reduce_sum", "reduce_of_a_scalar", lambda n, x: F.sum(F.sum(x)), [f32((3, 4))]),
    case("flatten", "flatten_of_a_scalar", lambda n, x: F.flatten(F.max(x)), [f32((2, 5))]),
    case("flatten", "flatten_two_dynamic_dims", lambda n, x: F.flatten(x, 0, 1), [f32(("N", 3, "N", 2))],
         batches=(2, 3)),
    case("embedding", "embedding_int8_ids", lambda n, i: F.embedding(i, n.parameter("t", (10, 4))),
         [((2, 3), "int8", ints(0, 10, "int8"))]),
    case("gather", "gather_uint8_indices", lambda n, x, i: F.gather(x, i, axis=1),
         [f32((3, 5)), ((4,), "uint8", ints(0, 5, "uint8"))]),
    case("gather", "gather_symbolic_axis_const", lambda n, x: F.gather(x, [1, 0, 1], axis=0), [f32(("N", 3))],
         batches=(2, 4)),
    case("gather", "gather_symbolic_axis_runtime", lambda n, x, i: F.gather(x, i, axis=0),
         [f32(("N", 3)), ((2,), "int32", ints(0, 2))], batches=(2, 4)),
    case("slice", "slice_static_length_of_symbolic_dim", lambda n, x: F.slice(x, [-2], [BIG], axes=[0]),
         [f32(("N",))], batches=(2, 5)),
    case("slice", "index_last_of_symbolic_vector", lambda n, x: x[-1] * 2.0, [f32(("N",))], batches=(2, 5)),
    case("split", "split_single_piece", lambda n, x: F.split(x, [4], axis=1)[0] * 2.0, [f32((3, 4))]),
    case("clip", "clip_bfloat16_graph", lambda n, x: F.cast(F.clip(F.cast(x, "bfloat16"), -0.5, 0.5), "float32"),
         [f32((3, 5))], skip={"onnx": "ONNX Runtime's CPU provider has no bfloat16 Clip/Less kernels"}),
    case("relu", "input_bfloat16", lambda n, x: F.cast(F.relu(x), "float32"), [((3, 4), "bfloat16", lambda r, s: r.uniform(-2, 2, s).astype(np.float32))],
         skip={"onnx": "ONNX Runtime's Python API takes no bfloat16 inputs"}),
    case("cast", "float32_island_shared_input",  # at float16/bfloat16, layers after an explicit float32 cast compute
         lambda n, x: (lambda z, h: (z + h) * (z - h))(F.cast(x, "float32"), F.relu(x)),  # in float32
         [f32(("N", 6))], batches=DYN),
    case("resize", "resize_sizes_dynbatch", lambda n, x: F.resize(x, sizes=(1, 2, 6, 10), mode="linear",
                                                                  coordinate_transformation="align_corners"),
         [f32(("N", 2, 3, 5))], batches=(1,)),  # (sizes cover the batch axis too: it must be 1 at run time)
    case("max_pool", "maxpool_ceil_window_in_pad", lambda n, x: F.max_pool(x, 2, 2, 1, ceil_mode=True),
         [f32((2, 2, 5, 7))]),
    case("avg_pool", "avgpool_ceil_include_pad_nopad", lambda n, x: F.avg_pool(x, 3, 2, 0, ceil_mode=True,
                                                                                count_include_pad=True),
         [f32((2, 2, 8, 6))]),
    case("max_pool", "maxpool_ceil_symbolic_spatial", lambda n, x: F.max_pool(x, 2, 2, 1, ceil_mode=True),
         [f32((1, 2, "H", 8))], batches=(5, 6, 7)),  # H = 5, 7: the last ceil window would start in the padding
    case("avg_pool", "avgpool_ceil_symbolic_spatial_1d", lambda n, x: F.avg_pool(x, 3, 2, 1, ceil_mode=True),
         [f32((2, 3, "L"))], batches=(6, 7, 8)),
    case("lrn", "lrn_even_window", lambda n, x: F.lrn(x, 4, 0.3, 0.6, 1.5), [f32((2, 6, 3, 3))],
         skip={"tensorrt": "TensorRT's LRN layer takes odd windows only (the lowering says so)"}),
    case("lrn", "lrn_rank3", lambda n, x: F.lrn(x, 3, 0.2, 0.75, 2.0), [f32((2, 5, 7))]),
    case("layer_norm", "ln_runtime_affine", lambda n, x, s, b: F.layer_norm(x, weight=s, bias=b, axis=-1),
         [f32((2, 3, 6)), f32((6,), 0.5, 1.5), f32((6,))]),
    case("layer_norm", "ln_no_affine_symbolic_dims", lambda n, x: F.layer_norm(x, axis=0), [f32(("N", 4))],
         batches=(2, 3), skip={"tensorrt": "TensorRT lowering: the normalized dims must be static"}),
    case("attention", "attn_rank2", lambda n, q, k, v: F.attention(q, k, v), [f32((5, 8)), f32((6, 8)), f32((6, 3))]),
    case("attention", "attn_rank2_mask", lambda n, q, k, v, m: F.attention(q, k, v, m),
         [f32((5, 8)), f32((6, 8)), f32((6, 3)), f32((5, 6), -1, 1)]),
    case("attention", "attn_symbolic_feature_size", lambda n, q, k, v: F.attention(q, k, v),
         [f32((2, 4, "E")), f32((2, 6, "E")), f32((2, 6, 3))], batches=(4, 8), skip=_SYMBOLIC_E),
    case("attention", "attn_causal_float_mask", lambda n, q, k, v, m: F.attention(q, k, v, m, causal=True),
         [f32((2, 4, 8)), f32((2, 4, 8)), f32((2, 4, 3)), f32((4, 4), -1, 1)]),
)


_CKPT_DIR: list = []


def _mapped_weights(n, x):
    """A convolution whose weight comes from a safetensors file: memory-mapped copy-on-write pages, which the
    OpenVINO lowering shares instead of copying."""
    from safetensors.numpy import save_file
    if not _CKPT_DIR:
        _CKPT_DIR.append(tempfile.mkdtemp(prefix="netdsl-conformance-"))
        atexit.register(shutil.rmtree, _CKPT_DIR[0], True)
    path = os.path.join(_CKPT_DIR[0], "conv.safetensors")
    if not os.path.exists(path):
        save_file({"w": np.random.default_rng(5).uniform(-0.5, 0.5, (4, 3, 3, 3)).astype(np.float32)}, path)
    w = n.parameter("w", (4, 3, 3, 3))
    n.load_weights(path)
    return F.conv(x, w, padding=1)


def _conv_then_bn(n, x, keep_conv_output: bool):
    y = F.conv(x, n.parameter("w", (4, 3, 3, 3)), None, padding=1)
    r = np.random.default_rng(9)
    c = lambda lo, hi: n.constant(r.uniform(lo, hi, 4).astype(np.float32))  # noqa: E731
    w, b, mean, var = c(0.5, 1.5), c(-0.5, 0.5), c(-0.2, 0.2), c(0.5, 1.5)
    z = F.batch_norm(y, mean, var, w, b, eps=1e-3)
    return (y, z) if keep_conv_output else z


add(
    case("conv", "conv_weights_memory_mapped", _mapped_weights, [f32(("N", 3, 5, 5))], batches=DYN),
    case("batch_norm", "conv_bn_not_folded_conv_is_output", lambda n, x: _conv_then_bn(n, x, True),
         [f32(("N", 3, 5, 5))], batches=DYN),
    case("batch_norm", "conv_bn_not_folded_runtime_weight",
         lambda n, x, w: F.batch_norm(F.conv(x, w, padding=1), *[n.constant(np.full(4, v, np.float32))
                                                                 for v in (-0.1, 0.8, 1.2, 0.1)]),
         [f32((2, 3, 5, 5)), f32((4, 3, 3, 3), -0.5, 0.5)]),
    case("conv_transpose", "convT1d_outpad_beyond_pad_nobias",
         lambda n, x: F.conv_transpose(x, n.parameter("w", (3, 2, 3)), None, stride=3, padding=(2, 0),
                                       output_padding=2), [f32((2, 3, 4))]),
)
