#!/usr/bin/env python
"""Inject classic lowering bugs, one at a time, into a scratch copy of the repository and report which
tests catch each (docs/MUTATIONS.md describes a run).

The catalogue below holds single bugs in the TensorRT lowering (lower.py, _ctx.py), in the CPU evaluator
(inspect.py), **circular pairs** (the same wrong belief in lower.py *and* inspect.py, which the conformance
table alone cannot see), formula errors smaller than the tolerance netdsl used before element-wise limits,
weight-layout errors, and bugs in the OpenVINO and ONNX lowerings. Each mutation is a list of exact text
edits; a mutation whose text no longer occurs is reported as STALE (update the catalogue).

For each mutation the test groups it names run in order (``pytest -x``) until one fails:

  validation   tests/backends/tensorrt/test_inspect_settings.py + test_inspect_vs_onnxruntime.py
               (the evaluator against ONNX Runtime on networks TensorRT's ONNX parser built)
  tensorrt     tests/conformance/test_tensorrt.py (the CPU proof of every conformance case)
  openvino     tests/conformance/test_openvino.py
  onnx         tests/conformance/test_onnx.py

Usage::

    python scripts/mutate_lowerings.py                 # every mutation; a Markdown table on stdout
    python scripts/mutate_lowerings.py --check         # only verify that every edit applies
    python scripts/mutate_lowerings.py --only selu_pair gelu_tanh --json out.json
    python scripts/mutate_lowerings.py --only conv_dilation_ignored --groups tensorrt
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOWER = "netdsl/backends/tensorrt/lower.py"
CTX = "netdsl/backends/tensorrt/_ctx.py"
INSPECT = "netdsl/backends/tensorrt/inspect.py"
OV = "netdsl/backends/openvino/lower.py"
ONNX = "netdsl/backends/onnx/table.py"

GROUPS = {
    "validation": ["tests/backends/tensorrt/test_inspect_settings.py",
                   "tests/backends/tensorrt/test_inspect_vs_onnxruntime.py"],
    "tensorrt": ["tests/conformance/test_tensorrt.py"],
    "openvino": ["tests/conformance/test_openvino.py"],
    "onnx": ["tests/conformance/test_onnx.py"],
}
TRT = ("validation", "tensorrt")


@dataclass
class Mutation:
    id: str
    kind: str            # "lower", "inspect", "circular", "formula", "layout", "openvino", "onnx"
    what: str
    edits: list          # [(path, old, new)]
    groups: tuple = TRT
    note: str = field(default="")


M = Mutation
CATALOGUE: list[Mutation] = [
    # ---- circular pairs: the same wrong belief in the lowering and in the evaluator ----------------------
    M("conv_pads_pair", "circular", "convolution pre/post padding swapped in lower.py and inspect.py", [
        (LOWER, "    layer.pre_padding = tuple(pads[:n])\n    layer.post_padding = tuple(pads[n:])\n    layer.num_groups = a[\"groups\"]\n    y = ctx.add(layer, \"conv2d\"",
         "    layer.pre_padding = tuple(pads[n:])\n    layer.post_padding = tuple(pads[:n])\n    layer.num_groups = a[\"groups\"]\n    y = ctx.add(layer, \"conv2d\""),
        (INSPECT, "        pre, post = tuple(l.pre_padding), tuple(l.post_padding)\n        mode = l.padding_mode.name",
         "        post, pre = tuple(l.pre_padding), tuple(l.post_padding)\n        mode = l.padding_mode.name")]),
    M("pool_pads_pair", "circular", "pooling pre/post padding swapped in lower.py and inspect.py", [
        (LOWER, "    layer.pre_padding = pads[:n]\n    layer.post_padding = pads[n:]",
         "    layer.pre_padding = pads[n:]\n    layer.post_padding = pads[:n]"),
        (INSPECT, "tuple(l.stride_nd), tuple(l.pre_padding), tuple(l.post_padding), l.padding_mode.name,",
         "tuple(l.stride_nd), tuple(l.post_padding), tuple(l.pre_padding), l.padding_mode.name,")]),
    M("deconv_pads_pair", "circular", "transposed-convolution crop pre/post swapped in lower.py and inspect.py", [
        (LOWER, "    layer.pre_padding = pre\n    layer.post_padding = post", "    layer.pre_padding = post\n    layer.post_padding = pre"),
        (INSPECT, "    crop = tuple(slice(pre[i], full[i] - post[i]) for i in range(nd))",
         "    crop = tuple(slice(post[i], full[i] - pre[i]) for i in range(nd))")]),
    M("selu_pair", "circular", "SELU alpha and gamma swapped in lower.py and inspect.py", [
        (LOWER, "ActivationType.SELU, alpha=a[\"alpha\"], beta=a[\"gamma\"])", "ActivationType.SELU, alpha=a[\"gamma\"], beta=a[\"alpha\"])"),
        (INSPECT, "\"SELU\": lambda x, a, b: b * np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0))),",
         "\"SELU\": lambda x, a, b: a * np.where(x >= 0, x, b * np.expm1(np.minimum(x, 0))),")]),
    M("nearest_round_pair", "circular", "nearest rounding HALF_UP/HALF_DOWN swapped in lower.py and inspect.py", [
        (LOWER, "\"round_prefer_floor\": R.HALF_DOWN,", "\"round_prefer_floor\": R.HALF_UP,"),
        (LOWER, "\"round_prefer_ceil\": R.HALF_UP}", "\"round_prefer_ceil\": R.HALF_DOWN}"),
        (INSPECT, "\"HALF_DOWN\": np.where(frac > 0.5, f + 1, f),", "\"HALF_DOWN\": np.where(frac >= 0.5, f + 1, f),"),
        (INSPECT, "\"HALF_UP\": np.where(frac >= 0.5, f + 1, f)}", "\"HALF_UP\": np.where(frac > 0.5, f + 1, f)}")]),
    M("hard_sigmoid_pair", "circular", "hard sigmoid alpha/beta swapped in lower.py and inspect.py", [
        (LOWER, "ActivationType.HARD_SIGMOID, alpha=a[\"alpha\"], beta=a[\"beta\"])", "ActivationType.HARD_SIGMOID, alpha=a[\"beta\"], beta=a[\"alpha\"])"),
        (LOWER, "alpha=1 / 6, beta=0.5)", "alpha=0.5, beta=1 / 6)"),
        (INSPECT, "\"HARD_SIGMOID\": lambda x, a, b: np.clip(a * x + b, 0, 1),", "\"HARD_SIGMOID\": lambda x, a, b: np.clip(b * x + a, 0, 1),")]),
    M("kernel_flip_pair", "circular", "convolution as true convolution: kernel flipped in lower.py and flipped back in inspect.py", [
        (LOWER, "    n = len(wshape) - 2\n    wt = bt = None\n", "    n = len(wshape) - 2\n    w = None if w is None else np.ascontiguousarray(w[(Ellipsis,) + (slice(None, None, -1),) * n])\n    wt = bt = None\n"),
        (INSPECT, "        b = ins[2] if len(ins) > 2 and ins[2] is not None else _weights(l.bias)\n        nd = len(ks)",
         "        b = ins[2] if len(ins) > 2 and ins[2] is not None else _weights(l.bias)\n        nd = len(ks)\n        w = np.asarray(w)[(Ellipsis,) + (slice(None, None, -1),) * nd]")]),
    M("gelu_map_pair", "circular", "GELU_ERF/GELU_TANH exchanged in lower.py and in inspect.py's formulas", [
        (LOWER, "A.GELU_TANH if node.attrs[\"approximate\"] == \"tanh\" else A.GELU_ERF",
         "A.GELU_ERF if node.attrs[\"approximate\"] == \"tanh\" else A.GELU_TANH"),
        (INSPECT, "    \"GELU_ERF\": lambda x, a, b: 0.5 * x * (1 + _erf(x / math.sqrt(2))),\n    \"GELU_TANH\":",
         "    \"GELU_TANH\": lambda x, a, b: 0.5 * x * (1 + _erf(x / math.sqrt(2))),\n    \"GELU_ERF\":")]),
    M("axes_bits_pair", "circular", "softmax/reduce/top-k axis bitmasks read from the high bit in both lower.py and inspect.py", [
        (LOWER, "    layer.axes = 1 << (node.attrs[\"axis\"] % len(x.shape))", "    layer.axes = 1 << (len(x.shape) - 1 - node.attrs[\"axis\"] % len(x.shape))"),
        (INSPECT, "    return tuple(i for i in range(rank) if mask >> i & 1)", "    return tuple(rank - 1 - i for i in range(rank) if mask >> i & 1)")]),
    M("avg_exclude_pair", "circular", "average pooling's exclude-padding flag inverted in lower.py and inspect.py", [
        (LOWER, "layer.average_count_excludes_padding = not a[\"count_include_pad\"]", "layer.average_count_excludes_padding = a[\"count_include_pad\"]"),
        (INSPECT, "    cnt_src = inside if exclude_pad else declared", "    cnt_src = declared if exclude_pad else inside")]),
    M("pad_modes_pair", "circular", "reflect/edge padding exchanged: lower.py maps reflect->CLAMP, edge->REFLECT; inspect.py swaps CLAMP and REFLECT", [
        (LOWER, "mode = {\"constant\": trt.SampleMode.FILL, \"reflect\": trt.SampleMode.REFLECT,\n            \"edge\": trt.SampleMode.CLAMP}",
         "mode = {\"constant\": trt.SampleMode.FILL, \"reflect\": trt.SampleMode.CLAMP,\n            \"edge\": trt.SampleMode.REFLECT}"),
        (INSPECT, "    if mode == \"CLAMP\":", "    if mode == \"REFLECT_\":"),
        (INSPECT, "    if mode == \"REFLECT\":", "    if mode == \"CLAMP\":"),
        (INSPECT, "    if mode == \"REFLECT_\":", "    if mode == \"REFLECT\":")]),
    M("sub_order_pair", "circular", "elementwise SUB computed b - a in inspect.py while lower.py swaps the operands", [
        (LOWER, "    a, b = _operands(ctx, node)\n    return [ctx.ew(a, b, getattr(ctx.trt.ElementWiseOperation, _BINARY[node.op]))]",
         "    a, b = _operands(ctx, node)\n    if node.op == \"sub\":\n        a, b = b, a\n    return [ctx.ew(a, b, getattr(ctx.trt.ElementWiseOperation, _BINARY[node.op]))]"),
        (INSPECT, "\"SUB\": np.subtract,", "\"SUB\": lambda a, b: b - a,")]),
    M("norm_eps_pair", "circular", "normalization epsilon stored as sqrt(eps) by lower.py and squared back by inspect.py", [
        (LOWER, "    layer = add_normalization(ctx.net, x, s, b, sum(1 << i for i in range(axis, r)))\n    layer.epsilon = node.attrs[\"eps\"]",
         "    layer = add_normalization(ctx.net, x, s, b, sum(1 << i for i in range(axis, r)))\n    layer.epsilon = node.attrs[\"eps\"] ** 0.5"),
        (INSPECT, "        return (x - mu) / np.sqrt(var + eps) * s + b", "        return (x - mu) / np.sqrt(var + eps ** 2) * s + b")]),
    M("lrn_alpha_pair", "circular", "LRN alpha: lower.py passes alpha/size, inspect.py uses alpha undivided", [
        (LOWER, "ctx.net.add_lrn(_to_2d(ctx, x), a[\"size\"], a[\"alpha\"], a[\"beta\"], a[\"bias\"])",
         "ctx.net.add_lrn(_to_2d(ctx, x), a[\"size\"], a[\"alpha\"] / a[\"size\"], a[\"beta\"], a[\"bias\"])"),
        (LOWER, "ctx.net.add_lrn(x, a[\"size\"], a[\"alpha\"], a[\"beta\"], a[\"bias\"])",
         "ctx.net.add_lrn(x, a[\"size\"], a[\"alpha\"] / a[\"size\"], a[\"beta\"], a[\"bias\"])"),
        (INSPECT, "        return x / (l.k + l.alpha / n * s) ** l.beta", "        return x / (l.k + l.alpha * s) ** l.beta")]),
    M("prelu_sign_pair", "circular", "PReLU slope negated in lower.py and in inspect.py", [
        (LOWER, "    return [ctx.add(ctx.net.add_parametric_relu(x, s)).get_output(0)]",
         "    s = ctx.unary(s, ctx.trt.UnaryOperation.NEG, \"neg_slope\")\n    return [ctx.add(ctx.net.add_parametric_relu(x, s)).get_output(0)]"),
        (INSPECT, "        return np.where(x >= 0, x, x * s)", "        return np.where(x >= 0, x, -x * s)")]),
    M("resize_coord_pair", "circular", "align_corners and asymmetric coordinate transforms exchanged in lower.py and inspect.py", [
        (LOWER, "\"align_corners\": C.ALIGN_CORNERS, \"asymmetric\": C.ASYMMETRIC}", "\"align_corners\": C.ASYMMETRIC, \"asymmetric\": C.ALIGN_CORNERS}"),
        (INSPECT, "    if ct == \"ALIGN_CORNERS\":", "    if ct == \"ASYMMETRIC_\":"),
        (INSPECT, "    if ct == \"ASYMMETRIC\":", "    if ct == \"ALIGN_CORNERS\":"),
        (INSPECT, "    if ct == \"ASYMMETRIC_\":", "    if ct == \"ASYMMETRIC\":")]),
    M("gather_axis_pair", "circular", "gather axis off by one in lower.py, compensated in inspect.py", [
        (LOWER, "    return [ctx.add(ctx.net.add_gather(data, it, axis)).get_output(0)]",
         "    data = ctx.shuffle_perm(data, [len(data.shape) - 1] + list(range(len(data.shape) - 1)), \"rotate\")\n    return [ctx.add(ctx.net.add_gather(data, it, (axis + 1) % len(data.shape))).get_output(0)]"),
        (INSPECT, "            return np.take(data, idx.astype(np.int64), axis=l.axis)",
         "            return np.take(np.moveaxis(data, 0, -1), idx.astype(np.int64), axis=(l.axis - 1) % data.ndim)")]),

    # ---- formula errors below the old tolerance (2e-4 x max|ref|) ---------------------------------------
    M("gelu_tanh_for_erf", "formula", "GELU (erf) lowered with the tanh approximation", [
        (LOWER, "A.GELU_TANH if node.attrs[\"approximate\"] == \"tanh\" else A.GELU_ERF", "A.GELU_TANH")]),
    M("bn_eps_outside_sqrt", "formula", "batch norm: sqrt(var) + eps instead of sqrt(var + eps)", [
        (LOWER, "    scale = s.astype(np.float64) / np.sqrt(v.astype(np.float64) + node.attrs[\"eps\"])",
         "    scale = s.astype(np.float64) / (np.sqrt(v.astype(np.float64)) + node.attrs[\"eps\"])")]),
    M("bn_fold_variance", "formula", "batch norm folded into the convolution with the variance instead of the std", [
        (LOWER, "        scale = s / np.sqrt(var + bn.attrs[\"eps\"])", "        scale = s / (var + bn.attrs[\"eps\"])")]),
    M("bn_fold_eps_outside", "formula", "folded batch norm: sqrt(var) + eps", [
        (LOWER, "        scale = s / np.sqrt(var + bn.attrs[\"eps\"])", "        scale = s / (np.sqrt(var) + bn.attrs[\"eps\"])")]),
    M("bn_runtime_eps_missing", "formula", "batch norm with runtime statistics: epsilon dropped", [
        (LOWER, "sd = ctx.unary(ctx.ew(xs[3], ctx.scalar(node.attrs[\"eps\"], xs[3]), E.SUM, \"var_eps\"),",
         "sd = ctx.unary(ctx.ew(xs[3], ctx.scalar(0.0, xs[3]), E.SUM, \"var_eps\"),")]),
    M("layer_norm_eps_x10", "formula", "layer norm epsilon ten times too large", [
        (LOWER, "    layer = add_normalization(ctx.net, x, s, b, sum(1 << i for i in range(axis, r)))\n    layer.epsilon = node.attrs[\"eps\"]",
         "    layer = add_normalization(ctx.net, x, s, b, sum(1 << i for i in range(axis, r)))\n    layer.epsilon = node.attrs[\"eps\"] * 10")]),
    M("group_norm_eps_default", "formula", "group norm epsilon left at TensorRT's default", [
        (LOWER, "        layer = add_normalization(ctx.net, x, s, b, mask)\n        layer.epsilon = node.attrs[\"eps\"]\n        layer.num_groups = g",
         "        layer = add_normalization(ctx.net, x, s, b, mask)\n        layer.num_groups = g")]),
    M("hard_swish_sixth", "formula", "hard swish slope 0.1666 instead of 1/6", [
        (LOWER, "alpha=1 / 6, beta=0.5)", "alpha=0.1666, beta=0.5)")]),
    M("attention_scale_sqrt", "formula", "attention scale 1/sqrt(E+1) instead of 1/sqrt(E)", [
        (LOWER, "        scale = 1 / math.sqrt(e)", "        scale = 1 / math.sqrt(e + 1)")]),
    M("selu_gamma_rounded", "formula", "SELU gamma rounded to 1.05", [
        (LOWER, "ActivationType.SELU, alpha=a[\"alpha\"], beta=a[\"gamma\"])", "ActivationType.SELU, alpha=a[\"alpha\"], beta=round(a[\"gamma\"], 2))")]),
    M("elu_alpha_ignored", "formula", "ELU alpha ignored (1.0)", [
        (LOWER, "    return [ctx.act(_x(ctx, node), kind, alpha=node.attrs[\"alpha\"])]",
         "    return [ctx.act(_x(ctx, node), kind, alpha=node.attrs[\"alpha\"] if node.op == \"leaky_relu\" else 1.0)]")]),

    # ---- single lowering bugs ------------------------------------------------------------------------------
    M("conv_pads_swapped", "lower", "convolution pre/post padding swapped (lower.py only)", [
        (LOWER, "    layer.pre_padding = tuple(pads[:n])\n    layer.post_padding = tuple(pads[n:])\n    layer.num_groups = a[\"groups\"]\n    y = ctx.add(layer, \"conv2d\"",
         "    layer.pre_padding = tuple(pads[n:])\n    layer.post_padding = tuple(pads[:n])\n    layer.num_groups = a[\"groups\"]\n    y = ctx.add(layer, \"conv2d\"")]),
    M("conv_dilation_ignored", "lower", "convolution dilation not set", [
        (LOWER, "    layer.dilation_nd = tuple(dil)\n", "    layer.dilation_nd = (1,) * len(dil)\n")]),
    M("deconv_groups_ignored", "lower", "transposed convolution groups not set", [
        (LOWER, "    layer.post_padding = post\n    layer.num_groups = a[\"groups\"]", "    layer.post_padding = post\n    layer.num_groups = 1")]),
    M("avg_count_inverted", "lower", "average pooling counts padding when told not to", [
        (LOWER, "layer.average_count_excludes_padding = not a[\"count_include_pad\"]", "layer.average_count_excludes_padding = a[\"count_include_pad\"]")]),
    M("ceil_mode_ignored", "lower", "pooling ceil_mode ignored (always rounds down)", [
        (LOWER, "        mode = trt.PaddingMode.EXPLICIT_ROUND_UP\n", "        mode = trt.PaddingMode.EXPLICIT_ROUND_DOWN\n")]),
    M("clip_bounds_swapped", "lower", "clip: min and max exchanged", [
        (LOWER, "return [ctx.act(x, ctx.trt.ActivationType.CLIP, alpha=lo, beta=hi)]", "return [ctx.act(x, ctx.trt.ActivationType.CLIP, alpha=-hi, beta=hi)]")]),
    M("gather_negative_off_by_one", "lower", "negative gather indices wrapped by d - 1", [
        (LOWER, "            idx = np.where(idx < 0, idx + d, idx)", "            idx = np.where(idx < 0, idx + d - 1, idx)")]),
    M("transpose_inverse_perm", "lower", "transpose uses the inverse permutation", [
        (CTX, "        layer.first_transpose = tuple(int(p) for p in perm)", "        layer.first_transpose = tuple(int(p) for p in np.argsort(perm))")]),
    M("argmax_min_swapped", "lower", "argmax and argmin exchanged", [
        (LOWER, "    op = ctx.trt.TopKOperation.MAX if node.op == \"argmax\" else ctx.trt.TopKOperation.MIN",
         "    op = ctx.trt.TopKOperation.MIN if node.op == \"argmax\" else ctx.trt.TopKOperation.MAX")]),
    M("reduce_keepdims_ignored", "lower", "reductions always keep dims", [
        (LOWER, "sum(1 << a for a in set(axes)), node.attrs[\"keepdims\"])).get_output(0)]", "sum(1 << a for a in set(axes)), True)).get_output(0)]")]),
    M("pad_value_ignored", "lower", "constant padding with a non-zero value pads zeros", [
        (LOWER, "    if node.attrs[\"mode\"] == \"constant\" and node.attrs[\"value\"] != 0:", "    if False:")]),
    M("resize_pytorch_selector", "lower", "pytorch_half_pixel's single-pixel rule not selected", [
        (LOWER, "layer.selector_for_single_pixel = (trt.ResizeSelector.UPPER if ct == \"pytorch_half_pixel\"",
         "layer.selector_for_single_pixel = (trt.ResizeSelector.FORMULA if ct == \"pytorch_half_pixel\"")]),
    M("layer_norm_axes_off", "lower", "layer norm over one axis too many", [
        (LOWER, "    layer = add_normalization(ctx.net, x, s, b, sum(1 << i for i in range(axis, r)))",
         "    layer = add_normalization(ctx.net, x, s, b, sum(1 << i for i in range(max(axis - 1, 1), r)))")]),
    M("deconv_outpad_bias_dropped", "lower", "output_padding beyond the end padding: bias not added", [
        (LOWER, "        if b is not None:\n            y = ctx.ew(y, ctx.constant(b.reshape((1, -1) + (1,) * n), y.dtype, \"bias\"),",
         "        if b is None:\n            y = ctx.ew(y, ctx.constant(b.reshape((1, -1) + (1,) * n), y.dtype, \"bias\"),")]),
    M("split_offsets", "lower", "split: every piece starts at the previous piece's start", [
        (LOWER, "        off += s\n", "        off += 0 if i else s\n")]),
    M("not_equal_as_equal", "lower", "not_equal lowered without the NOT", [
        (LOWER, "    return [ctx.unary(y, ctx.trt.UnaryOperation.NOT)]\n\n\n@_reg(\"where\")",
         "    return [y if node.op == \"not_equal\" else ctx.unary(y, ctx.trt.UnaryOperation.NOT)]\n\n\n@_reg(\"where\")")]),

    # ---- evaluator bugs (inspect.py only): the ONNX validation must catch them ---------------------------
    M("inspect_selu", "inspect", "evaluator SELU without gamma", [
        (INSPECT, "\"SELU\": lambda x, a, b: b * np.where(", "\"SELU\": lambda x, a, b: 1.0 * np.where(")]),
    M("inspect_half_down", "inspect", "evaluator HALF_DOWN rounds ties up", [
        (INSPECT, "\"HALF_DOWN\": np.where(frac > 0.5, f + 1, f),", "\"HALF_DOWN\": np.where(frac >= 0.5, f + 1, f),")]),
    M("inspect_conv_pads", "inspect", "evaluator convolution pre/post padding swapped", [
        (INSPECT, "        pre, post = tuple(l.pre_padding), tuple(l.post_padding)\n        mode = l.padding_mode.name",
         "        post, pre = tuple(l.pre_padding), tuple(l.post_padding)\n        mode = l.padding_mode.name")]),
    M("inspect_deconv_layout", "inspect", "evaluator reads deconvolution weights as (O/g, C_in, k...)", [
        (INSPECT, "_weights(l.kernel).reshape((x.shape[1], o // g) + ks)", "_weights(l.kernel).reshape((o // g, x.shape[1]) + ks).swapaxes(0, 1)")]),
    M("inspect_conv_groups_layout", "inspect", "evaluator splits grouped convolution weights by input channel", [
        (INSPECT, "            wg = w[(slice(g * og, (g + 1) * og), slice(None)) + off]  # (og, cg)",
         "            wg = w[(slice(None), slice(None)) + off].reshape(-1)[g * og * cg:(g + 1) * og * cg].reshape(cg, og).T")]),
    M("inspect_lrn_alpha", "inspect", "evaluator LRN alpha not divided by the window", [
        (INSPECT, "        return x / (l.k + l.alpha / n * s) ** l.beta", "        return x / (l.k + l.alpha * s) ** l.beta")]),
    M("inspect_norm_eps", "inspect", "evaluator normalization: sqrt(var) + eps", [
        (INSPECT, "        return (x - mu) / np.sqrt(var + eps) * s + b", "        return (x - mu) / (np.sqrt(var) + eps) * s + b")]),
    M("inspect_pool_exclude", "inspect", "evaluator average pooling ignores the exclude-padding flag", [
        (INSPECT, "    cnt_src = inside if exclude_pad else declared", "    cnt_src = declared")]),
    M("inspect_int_div_floor", "inspect", "evaluator integer DIV floors instead of truncating", [
        (INSPECT, "        return np.trunc(a / b).astype(a.dtype)", "        return np.floor(a / b).astype(a.dtype)")]),
    M("inspect_reflect", "inspect", "evaluator REFLECT slice repeats the edge (symmetric padding)", [
        (INSPECT, "        period = 2 * (d - 1)\n        m = np.mod(idx, period)\n        return np.where(m >= d, period - m, m)",
         "        period = 2 * d\n        m = np.mod(idx, period)\n        return np.where(m >= d, period - 1 - m, m)")]),
    M("inspect_topk_order", "inspect", "evaluator top-k MIN takes the largest", [
        (INSPECT, "        key = -x if l.op.name == \"MAX\" else x", "        key = -x")]),
    M("inspect_gelu_tanh_constant", "inspect", "evaluator GELU_TANH with 0.0447 for 0.044715 (relative error < 1e-5)", [
        (INSPECT, "(x + 0.044715 * x ** 3)", "(x + 0.0447 * x ** 3)")]),
    M("inspect_norm_unbiased_var", "inspect", "evaluator normalization with the unbiased variance", [
        (INSPECT, "        var = ((x - mu) ** 2).mean(axis=ax, keepdims=True)",
         "        var = ((x - mu) ** 2).sum(axis=ax, keepdims=True) / (np.prod([x.shape[a] for a in ax]) - 1)")]),
    M("inspect_linear_no_clamp", "inspect", "evaluator linear resize does not clamp source coordinates", [
        (INSPECT, "            src = np.clip(src, 0, in_len - 1)\n", "            src = np.clip(src, -1, in_len)\n")]),

    # ---- other backends -------------------------------------------------------------------------------------
    M("ov_avg_exclude", "openvino", "OpenVINO average pooling exclude_pad inverted", [
        (OV, "    exclude = not node.attrs[\"count_include_pad\"]", "    exclude = node.attrs[\"count_include_pad\"]")], ("openvino",)),
    M("onnx_nearest_mode", "onnx", "ONNX Resize nearest_mode round_prefer_floor/ceil exchanged", [
        (ONNX, "        attrs[\"nearest_mode\"] = a[\"nearest_mode\"]", "        attrs[\"nearest_mode\"] = {\"round_prefer_floor\": \"round_prefer_ceil\", \"round_prefer_ceil\": \"round_prefer_floor\"}.get(a[\"nearest_mode\"], a[\"nearest_mode\"])")], ("onnx",)),
]


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    return [f for f in out if f and os.path.isfile(os.path.join(ROOT, f))]


def make_scratch() -> str:
    """A copy of the working tree (tracked and new files) in a temporary directory."""
    d = tempfile.mkdtemp(prefix="netdsl-mutants-")
    for f in _tracked_files():
        dst = os.path.join(d, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), dst)
    return d


def apply(scratch: str, m: Mutation) -> dict:
    """Apply the edits of ``m``; returns {path: original text}. Raises LookupError when an edit is stale."""
    originals: dict = {}
    texts: dict = {}
    for path, old, new in m.edits:
        full = os.path.join(scratch, path)
        if path not in texts:
            with open(full) as f:
                texts[path] = originals[path] = f.read()
        n = texts[path].count(old)
        if n != 1:
            raise LookupError(f"{path}: the text to replace occurs {n} times: {old[:70]!r}")
        texts[path] = texts[path].replace(old, new)
    for path, text in texts.items():
        with open(os.path.join(scratch, path), "w") as f:
            f.write(text)
    return originals


def restore(scratch: str, originals: dict) -> None:
    for path, text in originals.items():
        with open(os.path.join(scratch, path), "w") as f:
            f.write(text)


def run_group(scratch: str, group: str, timeout: int) -> tuple[bool, str, float]:
    """(caught, first failing test or summary, seconds) for one test group with pytest -x."""
    env = dict(os.environ, PYTHONPATH=scratch, NETDSL_CACHE=os.path.join(scratch, ".cache"), NETDSL_PROGRESS="0")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *GROUPS[group]]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timeout after {timeout} s", time.perf_counter() - t0
    dt = time.perf_counter() - t0
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", p.stdout, re.M)
    if failed:
        return True, failed[0], dt
    if p.returncode not in (0, 5):
        tail = (p.stdout + p.stderr).strip().splitlines()[-1:] or ["?"]
        return True, f"pytest exit {p.returncode}: {tail[0][:120]}", dt
    return False, (p.stdout.strip().splitlines() or ["no output"])[-1], dt


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", help="mutation ids to run")
    ap.add_argument("--check", action="store_true", help="only check that every mutation applies")
    ap.add_argument("--list", action="store_true", help="list the catalogue")
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per test group")
    ap.add_argument("--groups", nargs="*", choices=sorted(GROUPS), help="run these test groups instead of each "
                    "mutation's own (e.g. --groups tensorrt: does the conformance table alone catch it?)")
    args = ap.parse_args(argv)
    chosen = [m for m in CATALOGUE if not args.only or m.id in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.id:28s} {m.kind:9s} {m.what}")
        return 0
    scratch = make_scratch()
    results = []
    try:
        for m in chosen:
            try:
                originals = apply(scratch, m)
            except LookupError as e:
                results.append({"id": m.id, "kind": m.kind, "what": m.what, "status": "STALE", "detail": str(e)})
                print(f"STALE   {m.id}: {e}", file=sys.stderr)
                continue
            if args.check:
                restore(scratch, originals)
                results.append({"id": m.id, "kind": m.kind, "what": m.what, "status": "applies"})
                continue
            try:
                rec = {"id": m.id, "kind": m.kind, "what": m.what, "status": "MISSED", "groups": {}}
                for g in args.groups or m.groups:
                    caught, detail, dt = run_group(scratch, g, args.timeout)
                    rec["groups"][g] = {"caught": caught, "detail": detail, "seconds": round(dt, 1)}
                    if caught:
                        rec["status"] = "caught"
                        break
            finally:
                restore(scratch, originals)
            results.append(rec)
            first = next(((g, r) for g, r in rec["groups"].items() if r["caught"]), None)
            print(f"{rec['status']:7s} {m.id}: " + (f"{first[0]}: {first[1]['detail']}" if first else
                                                    "; ".join(f"{g}: {r['detail']}" for g, r in rec["groups"].items())),
                  file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print("| mutation | kind | bug | result | caught by |")
    print("|---|---|---|---|---|")
    for r in results:
        by = ""
        for g, gr in r.get("groups", {}).items():
            if gr["caught"]:
                by = f"{g}: `{gr['detail']}`"
        print(f"| `{r['id']}` | {r['kind']} | {r['what']} | {r['status']} | {by or r.get('detail', '')} |")
    bad = [r for r in results if r["status"] in ("MISSED", "STALE")]
    print(f"\n{len(results)} mutations: {sum(r['status'] == 'caught' for r in results)} caught, "
          f"{sum(r['status'] == 'MISSED' for r in results)} missed, {sum(r['status'] == 'STALE' for r in results)} stale"
          + (f", {sum(r['status'] == 'applies' for r in results)} apply" if args.check else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
