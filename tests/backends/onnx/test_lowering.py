"""ONNX-specific lowering variants: attribute combinations whose ONNX form differs (decompositions
opset-dependent ops, ceil_mode pools, even LRN sizes, symbolic dims in shape tensors ...).

The conformance table (tests/conformance/cases.py) covers every op; this table adds the paths of
the ONNX exporter that it may not reach. Each case: export at opset 17 and the newest ONNX Runtime
loads (plus checker/strict shape inference at the newest onnx opset), run, compare with float64.
"""
from __future__ import annotations

import numpy as np
import pytest

import netdsl.functional as F
from netdsl.backends import reference
from netdsl.compare import assert_close
from tests.conformance.cases import simple

from ._util import check_model, onnx, ort_max_opset

from netdsl.backends.onnx import compile as onnx_compile, to_model  # noqa: E402

C: list = []
N = "N"


def s(*args, **kw) -> None:
    """Add a case (symbolic batch N, run at batch 1 and 3 unless told)."""
    C.append(simple(*args, **{"batches": (1, 3), **kw}))


s("relu", "relu", lambda n, x: F.relu(x), [(N, 3, 4)])
s("leaky_relu", "lrelu", lambda n, x: F.leaky_relu(x, 0.2), [(N, 5)])
s("elu", "elu", lambda n, x: F.elu(x, 0.7), [(N, 5)])
s("selu", "selu", lambda n, x: F.selu(x), [(N, 5)])
s("sigmoid", "sig", lambda n, x: F.sigmoid(x), [(N, 5)])
s("hard_sigmoid", "hsig", lambda n, x: F.hard_sigmoid(x, 0.3, 0.4), [(N, 5)], low=-5, high=5)
s("tanh", "tanh", lambda n, x: F.tanh(x), [(N, 5)])
s("gelu", "gelu", lambda n, x: F.gelu(x), [(N, 5)])
s("gelu", "gelu_tanh", lambda n, x: F.gelu(x, "tanh"), [(N, 5)])
s("silu", "silu", lambda n, x: F.silu(x), [(N, 5)])
s("hard_swish", "hswish", lambda n, x: F.hard_swish(x), [(N, 5)], low=-5, high=5)
s("mish", "mish", lambda n, x: F.mish(x), [(N, 5)])
s("softplus", "softplus", lambda n, x: F.softplus(x), [(N, 5)])
s("softsign", "softsign", lambda n, x: F.softsign(x), [(N, 5)])
s("clip", "clip", lambda n, x: F.clip(x, -0.5, 1.0), [(N, 5)])
s("clip", "clip_max", lambda n, x: F.clip(x, None, 1.0), [(N, 5)])
s("clip", "relu6", lambda n, x: F.relu6(x), [(N, 5)], low=-3, high=9)
s("clip", "clip_int", lambda n, x: F.clip(x, -1.0, 2.0), [(N, 5)], dtypes=["int32"], low=-5, high=5)
s("prelu", "prelu", lambda n, x, w: F.prelu(x, w), [(N, 3, 4, 4)], params={"w": (3,)})
s("prelu", "prelu2", lambda n, x, w: F.prelu(x, w), [(N, 3)], params={"w": (3,)})
s("softmax", "softmax", lambda n, x: F.softmax(x, 1), [(N, 3, 4)])
s("log_softmax", "lsm", lambda n, x: F.log_softmax(x, -1), [(N, 3, 4)])
for u in ["neg", "abs", "exp", "log", "sqrt", "rsqrt", "reciprocal", "erf"]:
    lo = 0.1 if u in ("log", "sqrt", "rsqrt", "reciprocal") else -2
    s(u, u, (lambda u: lambda n, x: getattr(F, u)(x))(u), [(N, 5)], low=lo)
s("neg", "neg_int", lambda n, x: F.neg(x), [(N, 5)], dtypes=["int32"])
s("cast", "cast_i", lambda n, x: F.cast(x, "int32"), [(N, 5)], low=-5, high=5)
s("cast", "cast_b", lambda n, x: F.cast(x, "bool"), [(N, 5)])
s("cast", "cast_f", lambda n, x: F.cast(x, "float32"), [(N, 5)], dtypes=["int64"])
s("cast", "cast_f16", lambda n, x: F.cast(F.cast(x, "float16"), "float32"), [(N, 5)])
s("cast", "cast_bf16", lambda n, x: F.cast(F.cast(x, "bfloat16"), "float32"), [(N, 5)])
s("identity", "identity", lambda n, x: F.identity(x), [(N, 5)])
s("dropout", "dropout", lambda n, x: F.dropout(x, 0.3), [(N, 5)])
for b in ["add", "sub", "mul", "div", "pow", "maximum", "minimum"]:
    s(b, b, (lambda b: lambda n, x, y: getattr(F, b)(x, y))(b), [(N, 3, 4), (4,)], low=0.5)
s("div", "div_int", lambda n, x, y: F.div(x, y), [(N, 4), (4,)], dtypes=["int32", "int32"], ranges=[(-20, 20), (1, 5)])
s("pow", "pow_int", lambda n, x, y: F.pow(x, y), [(N, 4), (4,)], dtypes=["int32", "int32"], ranges=[(-5, 5), (0, 4)])
for c in ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal"]:
    s(c, c, (lambda c: lambda n, x, y: getattr(F, c)(x, y))(c), [(N, 4), (4,)], dtypes=["int32", "int32"], low=-2, high=2)
s("logical_and", "land", lambda n, x, y: F.logical_and(x, y), [(N, 4), (4,)], dtypes=["bool", "bool"])
s("logical_or", "lor", lambda n, x, y: F.logical_or(x, y), [(N, 4), (4,)], dtypes=["bool", "bool"])
s("logical_not", "lnot", lambda n, x: F.logical_not(x), [(N, 4)], dtypes=["bool"])
s("where", "where", lambda n, c, x, y: F.where(c, x, y), [(N, 4), (N, 4), (4,)], dtypes=["bool", "float32", "float32"])
s("conv", "conv1d", lambda n, x, w: F.conv(x, w, stride=2, padding=1, dilation=2), [(N, 3, 11)], params={"w": (4, 3, 3)})
s("conv", "conv2d_g", lambda n, x, w, b: F.conv(x, w, b, padding="same", groups=2), [(N, 4, 7, 7)], params={"w": (6, 2, 3, 3), "b": (6,)})
s("conv", "conv3d", lambda n, x, w: F.conv(x, w, padding=(1, 0, 1)), [(N, 2, 5, 5, 5)], params={"w": (3, 2, 3, 3, 3)})
s("conv_transpose", "convt", lambda n, x, w, b: F.conv_transpose(x, w, b, stride=2, padding=1, output_padding=1), [(N, 4, 5, 5)], params={"w": (4, 3, 3, 3), "b": (3,)})
s("conv_transpose", "convt_g", lambda n, x, w: F.conv_transpose(x, w, stride=2, groups=2, dilation=2), [(N, 4, 5)], params={"w": (4, 3, 3)})
s("max_pool", "maxpool", lambda n, x: F.max_pool(x, 3, 2, 1), [(N, 3, 8, 8)])
s("max_pool", "maxpool_ceil", lambda n, x: F.max_pool(x, 3, 2, 0, ceil_mode=True), [(N, 3, 8, 8)])
s("max_pool", "maxpool_ceil_pad", lambda n, x: F.max_pool(x, 2, 2, 1, ceil_mode=True), [(N, 3, 7, 7)])
s("avg_pool", "avgpool", lambda n, x: F.avg_pool(x, 3, 2, 1), [(N, 3, 8, 8)])
s("avg_pool", "avgpool_ex", lambda n, x: F.avg_pool(x, 3, 2, 1, count_include_pad=False), [(N, 3, 8, 8)])
s("avg_pool", "avgpool_ceil", lambda n, x: F.avg_pool(x, 3, 2, 1, ceil_mode=True), [(N, 3, 8, 8)])
s("avg_pool", "avgpool_ceil_ex", lambda n, x: F.avg_pool(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [(N, 3, 8, 8)])
s("avg_pool", "avgpool1d", lambda n, x: F.avg_pool(x, 2), [(N, 3, 8)])
s("global_avg_pool", "gap", lambda n, x: F.global_avg_pool(x), [(N, 3, 4, 5)])
s("global_max_pool", "gmp", lambda n, x: F.global_max_pool(x), [(N, 3, 4)])
s("batch_norm", "bn", lambda n, x, a, b, m: F.batch_norm(x, m, n.parameter("v", (3,), init="positive"), a, b), [(N, 3, 4, 4)], params={"a": (3,), "b": (3,), "m": (3,)})
s("batch_norm", "bn2d", lambda n, x, a, b, m: F.batch_norm(x, m, n.parameter("v", (3,), init="positive"), a, b), [(N, 3)], params={"a": (3,), "b": (3,), "m": (3,)})
s("layer_norm", "ln", lambda n, x, a, b: F.layer_norm(x, (8,), a, b), [(N, 3, 8)], params={"a": (8,), "b": (8,)})
s("layer_norm", "ln_ax", lambda n, x, a: F.layer_norm(x, weight=a, axis=1), [(N, 3, 8)], params={"a": (3, 8)})
s("layer_norm", "ln_noscale", lambda n, x: F.layer_norm(x, axis=-2), [(N, 3, 8)])
s("layer_norm", "ln_noscale_dyn", lambda n, x: F.layer_norm(x, axis=0), [(N, 3)])
s("group_norm", "gn", lambda n, x, a, b: F.group_norm(x, 2, a, b), [(N, 4, 3, 3)], params={"a": (4,), "b": (4,)})
s("instance_norm", "in", lambda n, x, a, b: F.instance_norm(x, weight=a, bias=b), [(N, 4, 3, 3)], params={"a": (4,), "b": (4,)})
s("lrn", "lrn", lambda n, x: F.lrn(x, 3, 0.1, 0.75, 2.0), [(N, 5, 3, 3)])
s("lrn", "lrn3d", lambda n, x: F.lrn(x, 4, 0.1, 0.75, 2.0), [(N, 5, 3)])
s("lrn", "lrn4d_even", lambda n, x: F.lrn(x, 2, 0.1, 0.75, 2.0), [(N, 5, 3, 2)])
s("lrn", "lrn3d_odd", lambda n, x: F.lrn(x, 3, 0.1, 0.75, 2.0), [(N, 5, 3)])
s("linear", "linear", lambda n, x, w, b: F.linear(x, w, b), [(N, 5)], params={"w": (3, 5), "b": (3,)})
s("linear", "linear3", lambda n, x, w, b: F.linear(x, w, b), [(N, 2, 5)], params={"w": (3, 5), "b": (3,)})
s("linear", "linear3nb", lambda n, x, w: F.linear(x, w), [(N, 2, 5)], params={"w": (3, 5)})
s("linear", "linear2nb", lambda n, x, w: F.linear(x, w), [(N, 5)], params={"w": (3, 5)})
s("matmul", "matmul", lambda n, x, y: F.matmul(x, y), [(N, 1, 3, 4), (2, 4, 5)])
s("embedding", "emb", lambda n, i, t: F.embedding(i, t), [(N, 3)], dtypes=["int32"], ranges=[(0, 10)], params={"t": (10, 4)})
s("embedding", "emb8", lambda n, i, t: F.embedding(i, t), [(N, 3)], dtypes=["uint8"], ranges=[(0, 10)], params={"t": (10, 4)})
s("attention", "attn", lambda n, q, k, v: F.attention(q, k, v), [(N, 2, 3, 4), (N, 2, 5, 4), (N, 2, 5, 6)])
s("attention", "attn_causal", lambda n, q, k, v: F.attention(q, k, v, causal=True, scale=0.3), [(N, 2, 4, 4), (N, 2, 4, 4), (N, 2, 4, 6)])
s("attention", "attn_bmask", lambda n, q, k, v, m: F.attention(q, k, v, m), [(N, 2, 3, 4), (N, 2, 5, 4), (N, 2, 5, 6), (3, 5)], dtypes=["float32"]*3+["bool"], ranges=[(-2, 2)]*3+[(0, 1)])
s("attention", "attn_fmask", lambda n, q, k, v, m: F.attention(q, k, v, m), [(N, 3, 4), (N, 5, 4), (N, 5, 6), (N, 3, 5)])
s("attention", "attn_dyn_causal", lambda n, q, k, v: F.attention(q, k, v, causal=True), [(2, N, 4), (2, N, 4), (2, N, 6)])
for r in ["sum", "mean", "max", "min", "prod"]:
    s("reduce_"+r, "r"+r, (lambda r: lambda n, x: getattr(F, r)(x, (1,), True))(r), [(N, 3, 4)])
    s("reduce_"+r, "r"+r+"_all", (lambda r: lambda n, x: getattr(F, r)(x))(r), [(N, 3, 4)], low=0.5, high=1.5)
s("argmax", "argmax", lambda n, x: F.argmax(x, 1), [(N, 3, 4)])
s("argmin", "argmin", lambda n, x: F.argmin(x, -1, True), [(N, 3, 4)])
s("topk", "topk", lambda n, x: F.topk(x, 2, 1), [(N, 5, 3)])
s("topk", "topk_small", lambda n, x: F.topk(x, 3, largest=False), [(N, 5)])
s("reshape", "reshape", lambda n, x: F.reshape(x, (0, -1, 2)), [(N, 3, 4)])
s("flatten", "flatten", lambda n, x: F.flatten(x), [(N, 3, 4, 5)])
s("flatten", "flatten_mid", lambda n, x: F.flatten(x, 1, 2), [(N, 3, 4, 5)])
s("flatten", "flatten_all", lambda n, x: F.flatten(x, 0, 1), [(N, 3, 4)])
s("flatten", "flatten_dyn_after", lambda n, x: F.flatten(x, 0, 1), [(2, 3, N)])
s("transpose", "transpose", lambda n, x: F.transpose(x, (0, 2, 1)), [(N, 3, 4)])
s("squeeze", "squeeze", lambda n, x: F.squeeze(x, 1), [(N, 1, 4)])
s("unsqueeze", "unsqueeze", lambda n, x: F.unsqueeze(x, (0, -1)), [(N, 4)])
s("concat", "concat", lambda n, x, y: F.concat([x, y], 1), [(N, 2, 4), (N, 3, 4)])
s("split", "split", lambda n, x: F.split(x, (1, 3), 1), [(N, 4, 2)])
s("slice", "slice", lambda n, x: x[:, 1:3, ::-1], [(N, 4, 5)])
s("slice", "slice2", lambda n, x: x[:, -1, 1::2], [(N, 4, 5)])
s("gather", "gather", lambda n, x, i: F.gather(x, i, 1), [(N, 5, 3), (2, 2)], dtypes=["float32", "int32"], ranges=[(-2, 2), (-5, 5)])
s("gather", "gather64", lambda n, x, i: F.gather(x, i, 0), [(6, 3), (N,)], dtypes=["float32", "int64"], ranges=[(-2, 2), (0, 6)])
_NO_Q28 = {"onnx-opset28": "ONNX Runtime has no QuantizeLinear/DequantizeLinear kernel at opset 28"}
# quantization: a (1,)-shaped scale/zero point passed as scalars, an omitted zero point made explicit
# (ONNX's default type is uint8), int32 dequantized without one; power-of-two scales divide exactly
s("quantize_linear", "q_scale1_zp", lambda n, x: F.quantize_linear(x, np.array([0.25]), np.array([3])), [(N, 3, 4)], low=-40, high=40, skip=_NO_Q28)
s("quantize_linear", "q_u8_nozp", lambda n, x: F.quantize_linear(x, 0.5, dtype="uint8"), [(N, 5)], low=-10, high=140, skip=_NO_Q28)
s("dequantize_linear", "dq_scale1_zp", lambda n, x: F.dequantize_linear(x, np.array([0.125]), np.array([-2])), [(N, 3, 4)], dtypes=["int8"], ranges=[(-128, 127)], skip=_NO_Q28)
s("dequantize_linear", "dq_i32_nozp", lambda n, x: F.dequantize_linear(x, 0.03), [(N, 5)], dtypes=["int32"], ranges=[(-1000, 1000)], skip=_NO_Q28)
for m in ["constant", "reflect", "edge"]:
    s("pad", "pad_"+m, (lambda m: lambda n, x: F.pad(x, pads=(0, 1, 2, 0, 2, 1), mode=m, value=1.5))(m), [(N, 4, 5)])
s("pad", "pad_int", lambda n, x: F.pad(x, pads=(0, 1, 0, 2), mode="constant", value=3.0), [(N, 4)], dtypes=["int32"])
s("resize", "resize_near", lambda n, x: F.resize(x, scales=(1, 1, 2, 1.5)), [(N, 2, 4, 4)])
s("resize", "resize_lin", lambda n, x: F.resize(x, scales=(1, 1, 2, 2), mode="linear"), [(N, 2, 4, 4)])
s("resize", "resize_ac", lambda n, x: F.resize(x, sizes=(1, 2, 7, 5), mode="linear", coordinate_transformation="align_corners"), [(N, 2, 4, 4)], batches=(1,))
s("resize", "resize_sizes_near", lambda n, x: F.resize(x, sizes=(1, 2, 3, 9), nearest_mode="floor", coordinate_transformation="asymmetric"), [(N, 2, 4, 4)], batches=(1,))
s("resize", "resize_1d", lambda n, x: F.resize(x, scales=(1, 1, 2), mode="linear"), [(N, 2, 4)])
s("resize", "resize_ppix", lambda n, x: F.resize(x, sizes=(1, 2, 1, 6), mode="linear", coordinate_transformation="pytorch_half_pixel"), [(N, 2, 4, 4)], batches=(1,))
s("tile", "tile", lambda n, x: F.tile(x, (1, 2, 3)), [(N, 2, 3)])
s("expand", "expand", lambda n, x: F.expand(x, (2, -1, 3, 4)), [(N, 1, 4)])
s("expand_as", "expand_as_int_like", lambda n, x, i: F.expand_as(x, i), [(1, 4), (N, 1)], dtypes=["float32", "int32"])
s("constant", "const", lambda n, x: x+n.constant(np.arange(4, dtype=np.float32)), [(N, 4)])
s("constant", "const_out", lambda n, x: (F.relu(x), n.constant(np.arange(4, dtype=np.float32))), [(N, 4)])

s("arange", "arange_int64_limit", lambda n, x: (x + 1.0, F.arange(2, x.shape[1], 3, dtype="int64", net=n)), [(2, N)])
s("arange", "arange_float16_via_cast", lambda n, x: (x + 1.0, F.arange(0.5, x.shape[0], dtype="float16", net=n)),
  [(N, 2)])
s("arange", "arange_static_initializer", lambda n, x: x * F.arange(1, 6, net=n, dtype="float32"), [(N, 5)])
s("slice_to", "slice_to_two_axes_offsets", lambda n, x, y: F.slice_to(x, y, (0, 1), (0, 0), offsets=(0, -1)),
  [(6, 7), (N, 2)])
s("resize_to", "resize_to_like_symbolic", lambda n, x, y: F.interpolate(x, size=y.shape[-2:], mode="bilinear"),
  [(1, 2, 3, 4), (1, 1, N, N)])
s("preprocess", "preprocess_nchw_identity", lambda n, x: F.preprocess(x, "NCHW", mean=(0.5, 1.0, -1.0)), [(N, 3, 2, 2)])
s("preprocess", "preprocess_nhwc_int32_reversed", lambda n, x: F.preprocess(x, "NHWC", scale=2.0, reverse_channels=True),
  [(N, 2, 3, 3)], dtypes=["int32"], ranges=[(0, 256)])

_NO_Q28 = {"onnx-opset28": "ONNX Runtime has no QuantizeLinear kernel at opset 28"}
# power-of-two scales: x / scale is exact in float32 and float64 alike, so rounding cannot differ
s("quantize_linear", "quantize_pow2", lambda n, x: F.quantize_linear(x, 0.25), [(N, 3, 4)], ranges=[(-40, 40)],
  skip=_NO_Q28)
s("dequantize_linear", "qdq_per_channel", lambda n, x: F.dequantize_linear(
    F.quantize_linear(x, [0.5, 0.125, 2.0], [0, 8, 250], dtype="uint8"), [0.5, 0.125, 2.0], [0, 8, 250]),
  [(N, 3, 4)], ranges=[(-300, 300)], skip=_NO_Q28)

OPSETS = sorted({17, ort_max_opset()})


@pytest.mark.parametrize("case", C, ids=lambda c: c.name)
def test_lowering(case):
    net = case.build()
    check_model(to_model(net.graph, opset=onnx.defs.onnx_opset_version()))
    ref_model = reference.compile(net.graph, dtype="float64")
    for opset in OPSETS:
        if f"onnx-opset{opset}" in case.skip:  # a kernel ONNX Runtime lacks at that opset (reason in the case)
            continue
        m = to_model(net.graph, opset=opset)
        check_model(m)
        compiled = onnx_compile(net.graph, opset=opset)
        rng = np.random.default_rng(0)
        for b in case.batches:
            feeds = case.feeds(rng, b)
            got, ref = compiled(feeds), ref_model(feeds)
            for k in ref:
                assert_close(got[k], ref[k], "float32", case.tol, what=f"{case.name}:{k} opset {opset} batch {b}")


def test_table_covers_every_catalogue_op():
    from netdsl.backends.onnx import TABLE
    from netdsl.ops import all_ops
    builtin = {n for n, d in all_ops().items() if d.plugin is None}
    assert not builtin - set(TABLE), f"ops without an ONNX exporter: {sorted(builtin - set(TABLE))}"
    assert not (builtin - {"parameter"}) - {c.op for c in C}


@pytest.mark.parametrize("pool", ["max", "avg", "avg_include_pad"])
@pytest.mark.parametrize("mode", ["same", "same_lower"])
def test_same_pool_with_kernel_below_stride_on_run_time_sizes(pool, mode):
    """kernel 2, stride 3, SAME on sizes known at run time: ONNX's auto_pad total (out - 1) * s + k - n is
    negative when n is a multiple of s, which ONNX Runtime's pools refuse ('padding values must be
    non-negative'); TensorFlow's SAME clamps it to 0."""
    from netdsl.dsl import Network
    net = Network("p")
    x = net.input("x", (N, 2, "H", "W"))
    if pool == "max":
        y = F.max_pool(x, 2, 3, padding=mode)
    else:
        y = F.avg_pool(x, (2, 2), 3, padding=mode, count_include_pad=pool == "avg_include_pad")
    net.output(y, "y")
    check_model(to_model(net.graph, opset=onnx.defs.onnx_opset_version()))
    ref_model = reference.compile(net.graph, dtype="float64")
    compiled = onnx_compile(net.graph, opset=17)
    rng = np.random.default_rng(1)
    for h, w in ((3, 6), (4, 7), (1, 2), (9, 5)):
        feeds = {"x": rng.standard_normal((2, 2, h, w)).astype(np.float32)}
        assert_close(compiled(feeds)["y"], ref_model(feeds)["y"], "float32", what=f"{pool} {mode} {h}x{w}")
