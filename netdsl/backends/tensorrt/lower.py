"""netdsl Graph -> TensorRT INetworkDefinition: ONE lowering table keyed by catalogue op name.

Strongly typed: float32 by default; ``precision="float16"|"bfloat16"`` is netdsl's own precision
pass (inputs cast down after the input layer, weights converted, outputs cast back to float32);
no builder precision flags are used. Only API common to ``tensorrt`` 10.x/11.x and ``tensorrt_rtx``.

A lowering function is ``fn(ctx, node) -> list[ITensor]`` (one per node output); see ``_ctx.Ctx``.
Plugins add theirs with :func:`register_lowering`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ...dtypes import DType
from ...errors import NetdslError
from ...graph import Graph, Node
from ...ops.nn import bn_std, spatial_attrs
from ...ops.tensor import slice_len
from ...shapes import Sym
from ._ctx import Ctx, dims_of
from ._trt import add_normalization, normalization_v2

Lowering = Callable[[Ctx, Node], list]
LOWERINGS: dict[str, Lowering] = {}


def register_lowering(op: str, fn: Lowering, *, replace: bool = False) -> Lowering:
    """Add (or with ``replace=True`` override) the TensorRT lowering of an op (plugins use this)."""
    if op in LOWERINGS and not replace:
        raise ValueError(f"op '{op}' already has a TensorRT lowering (pass replace=True)")
    LOWERINGS[op] = fn
    return fn


def _reg(*ops: str) -> Callable[[Lowering], Lowering]:
    def deco(fn: Lowering) -> Lowering:
        for o in ops:
            LOWERINGS[o] = fn
        return fn
    return deco


def _x(ctx: Ctx, node: Node, i: int = 0) -> Any:
    return ctx.t(node.inputs[i])


# ---- sources -------------------------------------------------------------------------------------
# parameters and constants get no layer of their own: ctx.t() makes a constant where a consumer needs a
# tensor, so weights used in place (convolution kernels ...) add no layer
_lazy_source: Lowering = lambda ctx, node: []  # noqa: E731
LOWERINGS["parameter"] = LOWERINGS["constant"] = _lazy_source


@_reg("identity", "dropout")
def _identity(ctx: Ctx, node: Node) -> list:
    return [_x(ctx, node)]  # an alias: no layer (an identity layer is added if it becomes an output)


# ---- activations -------------------------------------------------------------------------------
_SIMPLE_ACT = {"relu": "RELU", "sigmoid": "SIGMOID", "tanh": "TANH", "softsign": "SOFTSIGN"}


@_reg(*_SIMPLE_ACT)
def _simple_act(ctx: Ctx, node: Node) -> list:
    return [ctx.act(_x(ctx, node), getattr(ctx.trt.ActivationType, _SIMPLE_ACT[node.op]))]


@_reg("leaky_relu", "elu")
def _alpha_act(ctx: Ctx, node: Node) -> list:
    kind = ctx.trt.ActivationType.LEAKY_RELU if node.op == "leaky_relu" else ctx.trt.ActivationType.ELU
    return [ctx.act(_x(ctx, node), kind, alpha=node.attrs["alpha"])]


@_reg("selu")
def _selu(ctx: Ctx, node: Node) -> list:
    a = node.attrs
    return [ctx.act(_x(ctx, node), ctx.trt.ActivationType.SELU, alpha=a["alpha"], beta=a["gamma"])]


@_reg("hard_sigmoid")
def _hard_sigmoid(ctx: Ctx, node: Node) -> list:
    a = node.attrs
    return [ctx.act(_x(ctx, node), ctx.trt.ActivationType.HARD_SIGMOID, alpha=a["alpha"], beta=a["beta"])]


@_reg("softplus")
def _softplus(ctx: Ctx, node: Node) -> list:
    return [ctx.act(_x(ctx, node), ctx.trt.ActivationType.SOFTPLUS, alpha=1.0, beta=1.0)]


@_reg("gelu")
def _gelu(ctx: Ctx, node: Node) -> list:
    A = ctx.trt.ActivationType  # GELU_ERF / GELU_TANH exist from TensorRT 10.0 on (REQUIRED_API)
    return [ctx.act(_x(ctx, node), A.GELU_TANH if node.attrs["approximate"] == "tanh" else A.GELU_ERF)]


@_reg("silu", "hard_swish", "mish")
def _gated(ctx: Ctx, node: Node) -> list:
    trt, x = ctx.trt, _x(ctx, node)
    A = trt.ActivationType
    if node.op == "silu":
        g = ctx.act(x, A.SIGMOID, "sigmoid")
    elif node.op == "hard_swish":
        g = ctx.act(x, A.HARD_SIGMOID, "hard_sigmoid", alpha=1 / 6, beta=0.5)
    else:
        g = ctx.act(ctx.act(x, A.SOFTPLUS, "softplus", alpha=1.0, beta=1.0), A.TANH, "tanh")
    return [ctx.ew(x, g, trt.ElementWiseOperation.PROD)]


@_reg("clip")
def _clip(ctx: Ctx, node: Node) -> list:
    x, lo, hi = _x(ctx, node), node.attrs["min"], node.attrs["max"]
    E = ctx.trt.ElementWiseOperation
    if lo is not None and hi is not None and x.dtype in (ctx.trt.float32, ctx.trt.float16, ctx.trt.bfloat16):
        return [ctx.act(x, ctx.trt.ActivationType.CLIP, alpha=lo, beta=hi)]
    if lo is None and hi is None:
        return [x]
    y = x
    if lo is not None:
        y = ctx.ew(y, ctx.scalar(lo, x), E.MAX, "min" if hi is not None else None)
    if hi is not None:
        y = ctx.ew(y, ctx.scalar(hi, x), E.MIN)
    return [y]


@_reg("prelu")
def _prelu(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    r = len(x.shape)
    a = ctx.arr(node.inputs[1])
    if a is not None:
        s = ctx.constant(a.reshape((1, -1) + (1,) * (r - 2)), x.dtype, "slope")
    else:
        s = ctx.reshape(_x(ctx, node, 1), [1, ("in", 0)] + [1] * (r - 2), "slope")
    return [ctx.add(ctx.net.add_parametric_relu(x, s)).get_output(0)]


@_reg("softmax", "log_softmax")
def _softmax(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    layer = ctx.net.add_softmax(x)
    layer.axes = 1 << (node.attrs["axis"] % len(x.shape))
    if node.op == "softmax":
        return [ctx.add(layer).get_output(0)]
    y = ctx.add(layer, "softmax").get_output(0)
    return [ctx.unary(y, ctx.trt.UnaryOperation.LOG)]


# ---- unary / binary / compare ---------------------------------------------------------------------
_UNARY = {"neg": "NEG", "abs": "ABS", "exp": "EXP", "log": "LOG", "sqrt": "SQRT", "reciprocal": "RECIP",
          "erf": "ERF", "logical_not": "NOT"}


@_reg(*_UNARY)
def _unary(ctx: Ctx, node: Node) -> list:
    return [ctx.unary(_x(ctx, node), getattr(ctx.trt.UnaryOperation, _UNARY[node.op]))]


@_reg("rsqrt")
def _rsqrt(ctx: Ctx, node: Node) -> list:
    U = ctx.trt.UnaryOperation
    return [ctx.unary(ctx.unary(_x(ctx, node), U.SQRT, "sqrt"), U.RECIP)]


_BINARY = {"add": "SUM", "sub": "SUB", "mul": "PROD", "div": "DIV", "pow": "POW", "maximum": "MAX",
           "minimum": "MIN", "equal": "EQUAL", "less": "LESS", "greater": "GREATER", "logical_and": "AND",
           "logical_or": "OR"}
_NEGATED = {"not_equal": "EQUAL", "less_equal": "GREATER", "greater_equal": "LESS"}


def _operands(ctx: Ctx, node: Node) -> tuple:
    """Both operands; a constant operand is reshaped to the other's rank in place (no shuffle layer)."""
    va, vb = node.inputs[0], node.inputs[1]
    aa, ab = ctx.arr(va), ctx.arr(vb)
    if aa is not None and ab is None and va.name not in ctx.tensors and aa.ndim < vb.rank:
        b = ctx.t(vb)
        return ctx.constant(aa.reshape((1,) * (vb.rank - aa.ndim) + aa.shape), b.dtype, "lhs"), b
    if ab is not None and aa is None and vb.name not in ctx.tensors and ab.ndim < va.rank:
        a = ctx.t(va)
        return a, ctx.constant(ab.reshape((1,) * (va.rank - ab.ndim) + ab.shape), a.dtype, "rhs")
    return ctx.t(va), ctx.t(vb)


@_reg(*_BINARY)
def _binary(ctx: Ctx, node: Node) -> list:
    a, b = _operands(ctx, node)
    return [ctx.ew(a, b, getattr(ctx.trt.ElementWiseOperation, _BINARY[node.op]))]


@_reg(*_NEGATED)
def _negated(ctx: Ctx, node: Node) -> list:
    a, b = _operands(ctx, node)
    y = ctx.ew(a, b, getattr(ctx.trt.ElementWiseOperation, _NEGATED[node.op]), "cmp")
    return [ctx.unary(y, ctx.trt.UnaryOperation.NOT)]


@_reg("where")
def _where(ctx: Ctx, node: Node) -> list:
    c, a, b = (ctx.t(v) for v in node.inputs)
    r = max(len(c.shape), len(a.shape), len(b.shape))
    c, a, b = ctx.to_rank(c, r, "cond_unsqueeze"), ctx.to_rank(a, r, "a_unsqueeze"), ctx.to_rank(b, r, "b_unsqueeze")
    return [ctx.add(ctx.net.add_select(c, a, b)).get_output(0)]


@_reg("cast")
def _cast(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    dt = ctx.trt_dtype(node.attrs["dtype"])
    if x.dtype == dt:
        return [x]
    return [ctx.cast(x, dt, None)]


# ---- convolution / pooling ------------------------------------------------------------------------
def _to_2d(ctx: Ctx, x: Any) -> Any:
    """(N, C, L) -> (N, C, L, 1) so that 1-d conv/pool use the 2-d layers."""
    return ctx.reshape(x, [("in", 0), ("in", 1), ("in", 2), 1], "to_2d")


def _from_2d(ctx: Ctx, y: Any) -> Any:
    return ctx.reshape(y, [("in", 0), ("in", 1), ("in", 2)], None)


def _same_mode(trt: Any, auto_pad: str) -> Any:
    """PaddingMode.SAME_UPPER / SAME_LOWER: ceil(H / stride) outputs, the odd padding at the end / beginning."""
    return trt.PaddingMode.SAME_UPPER if auto_pad == "same_upper" else trt.PaddingMode.SAME_LOWER


@_reg("conv")
def _conv(ctx: Ctx, node: Node) -> list:
    trt = ctx.trt
    x = _x(ctx, node)
    nd = len(x.shape) - 2
    a = node.attrs
    strides, dil, pads = spatial_attrs(nd, a["strides"], a["dilations"], a["pads"])
    w, b = ctx.fold.get(node.name, (ctx.arr(node.inputs[1]), ctx.arr(node.inputs[2])))
    wshape = tuple(node.inputs[1].shape)
    one_d = nd == 1
    if one_d:
        x = _to_2d(ctx, x)
        strides, dil, pads = strides + (1,), dil + (1,), (pads[0], 0, pads[1], 0)
        wshape = wshape + (1,)
        w = None if w is None else w.reshape(wshape)
    n = len(wshape) - 2
    wt = bt = None
    if w is None:
        wt = _x(ctx, node, 1)
        wt = ctx.reshape(wt, [("in", i) for i in range(n + 1)] + [1], "w_2d") if one_d else wt
    elif ctx.weights_as_tensors:
        wt, w = ctx.constant(w, None, "weight"), None
    if b is None and node.inputs[2] is not None:
        bt = _x(ctx, node, 2)
    elif b is not None and ctx.weights_as_tensors:
        bt, b = ctx.constant(b, None, "bias"), None
    layer = ctx.net.add_convolution_nd(x, int(wshape[0]), tuple(int(k) for k in wshape[2:]),
                                       ctx.np_weights(w) if w is not None else trt.Weights(x.dtype),
                                       ctx.np_weights(b) if b is not None else None)
    if wt is not None:
        layer.set_input(1, wt)
    if bt is not None:
        layer.set_input(2, bt)
    layer.stride_nd = tuple(strides)
    layer.dilation_nd = tuple(dil)
    layer.pre_padding = tuple(pads[:n])
    layer.post_padding = tuple(pads[n:])
    if a["auto_pad"] != "notset":  # TensorFlow's SAME, sized at run time
        layer.padding_mode = _same_mode(trt, a["auto_pad"])
    layer.num_groups = a["groups"]
    y = ctx.add(layer, "conv2d" if one_d else None).get_output(0)
    return [_from_2d(ctx, y) if one_d else y]


@_reg("conv_transpose")
def _conv_transpose(ctx: Ctx, node: Node) -> list:
    trt = ctx.trt
    x = _x(ctx, node)
    nd = len(x.shape) - 2
    a = node.attrs
    strides, dil, pads = spatial_attrs(nd, a["strides"], a["dilations"], a["pads"])
    op_ = tuple(a["output_padding"]) or (0,) * nd
    w, b = ctx.arr(node.inputs[1]), ctx.arr(node.inputs[2])
    if w is None:
        raise ctx.unsupported("the weight must be a parameter or constant")
    wshape = w.shape
    one_d = nd == 1
    if one_d:
        x = _to_2d(ctx, x)
        strides, dil, pads, op_ = strides + (1,), dil + (1,), (pads[0], 0, pads[1], 0), op_ + (0,)
        w = w.reshape(wshape + (1,))
        wshape = w.shape
    n = len(wshape) - 2
    if any(d != 1 for d in dil):  # dilate the kernel itself (TensorRT-RTX has no strided+dilated deconv)
        k2 = [dil[i] * (wshape[2 + i] - 1) + 1 for i in range(n)]
        wd = np.zeros(wshape[:2] + tuple(k2), w.dtype)
        wd[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dil)] = w
        w, wshape, dil = wd, wd.shape, (1,) * n
    pre = tuple(pads[:n])
    post = tuple(pads[n + i] - op_[i] for i in range(n))  # output_padding shrinks the end crop
    extend = [max(0, -p) for p in post]
    post = tuple(max(0, p) for p in post)
    o = int(wshape[1]) * a["groups"]
    has_extend = any(extend)
    bias_in_layer = b is not None and not has_extend
    low = x.dtype
    f32 = ctx.weights_as_tensors  # bfloat16: TensorRT-RTX cannot build a bf16 deconvolution with tensor
    if f32:                       # weights and bf16 weights cannot be read back: run it in float32
        x = ctx.cast(x, trt.float32, "to_float32")
    wdt = trt.float32 if f32 else None
    layer = ctx.net.add_deconvolution_nd(x, o, tuple(int(k) for k in wshape[2:]), ctx.np_weights(w, wdt),
                                         ctx.np_weights(b, wdt) if bias_in_layer else None)
    layer.stride_nd = tuple(strides)
    layer.pre_padding = pre
    layer.post_padding = post
    layer.num_groups = a["groups"]
    if b is None and node.inputs[2] is not None:
        raise ctx.unsupported("the bias must be a parameter or constant")
    last = not has_extend and not one_d and not f32
    y = ctx.add(layer, None if last else "deconv").get_output(0)
    if f32:
        y = ctx.cast(y, low, None if not has_extend and not one_d else "to_low")
    if has_extend:  # output_padding beyond the end padding: zeros (then the bias) at the end
        r = len(y.shape)
        spec = [("in", 0), ("in", 1)] + [("add", 2 + i, extend[i]) for i in range(n)]
        y = ctx.slice(y, (0,) * r, spec, (1,) * r, "output_padding", mode=trt.SampleMode.FILL)
        if b is not None:
            y = ctx.ew(y, ctx.constant(b.reshape((1, -1) + (1,) * n), y.dtype, "bias"),
                       trt.ElementWiseOperation.SUM, None if not one_d else "bias_add")
    return [_from_2d(ctx, y) if one_d else y]


@_reg("max_pool", "avg_pool")
def _pool(ctx: Ctx, node: Node) -> list:
    trt = ctx.trt
    x = _x(ctx, node)
    nd = len(x.shape) - 2
    a = node.attrs
    kernel = tuple(a["kernel"])
    strides = tuple(a["strides"]) or kernel
    pads = tuple(a["pads"]) or (0,) * (2 * nd)
    want = node.outputs[0].shape[2:]
    one_d = nd == 1
    if one_d:
        x = _to_2d(ctx, x)
        kernel, strides, pads, want = kernel + (1,), strides + (1,), (pads[0], 0, pads[1], 0), tuple(want) + (1,)
    n = len(kernel)
    kind = trt.PoolingType.MAX if node.op == "max_pool" else trt.PoolingType.AVERAGE
    layer = ctx.net.add_pooling_nd(x, kind, kernel)
    layer.stride_nd = strides
    layer.pre_padding = pads[:n]
    layer.post_padding = pads[n:]
    mode = trt.PaddingMode.EXPLICIT_ROUND_DOWN
    clip: list = []
    if a["ceil_mode"]:
        # netdsl (like PyTorch) drops a last window that would start in the end padding; TensorRT's ROUND_UP
        # keeps it. Static dims: pick the rounding that gives netdsl's size. Dynamic dims: ROUND_UP, then cut
        # the output to (H + pre - 1) // stride + 1 windows at run time where a window can start there.
        ins = tuple(x.shape)[2:]
        floor_ = [(ins[i] + pads[i] + pads[n + i] - kernel[i]) // strides[i] + 1 for i in range(n)]
        if all(d >= 0 for d in ins) and tuple(floor_) == tuple(want):
            pass
        else:
            mode = trt.PaddingMode.EXPLICIT_ROUND_UP
            clip = [i for i in range(n) if ins[i] < 0 and (pads[n + i] > 0 or kernel[i] < strides[i])]
    layer.padding_mode = mode if a["auto_pad"] == "notset" else _same_mode(trt, a["auto_pad"])
    if node.op == "avg_pool":
        layer.average_count_excludes_padding = not a["count_include_pad"]
    y = ctx.add(layer, "pool2d" if one_d or clip else None).get_output(0)
    if clip:
        y = _drop_windows_in_end_padding(ctx, x, y, clip, pads[:n], strides)
    return [_from_2d(ctx, y) if one_d else y]


def _drop_windows_in_end_padding(ctx: Ctx, x: Any, y: Any, axes: list, pre: tuple, strides: tuple) -> Any:
    """Slice ``y`` (pooled with ROUND_UP) to min(its size, (H + pre - 1) // stride + 1) on spatial ``axes``."""
    E, i64 = ctx.trt.ElementWiseOperation, ctx.trt.int64
    r = len(y.shape)
    parts = []
    for j in range(r):
        up = ctx.shape_tensor(y, [("in", j)], f"ceil_dim{j}")
        if j - 2 in axes:
            i = j - 2
            span = ctx.shape_tensor(x, [("add", j, pre[i] - 1)], f"ceil_span{j}")
            last = ctx.ew(span, ctx.constant(np.array([strides[i]], np.int64), i64, f"ceil_stride{j}"), E.FLOOR_DIV,
                          f"ceil_windows{j}")
            last = ctx.ew(last, ctx.constant(np.array([1], np.int64), i64, f"ceil_one{j}"), E.SUM, f"ceil_count{j}")
            up = ctx.ew(up, last, E.MIN, f"ceil_size{j}")
        parts.append(up)
    cat = ctx.net.add_concatenation(parts)
    cat.axis = 0
    size = ctx.add(cat, "ceil_size").get_output(0)
    layer = ctx.net.add_slice(y, (0,) * r, (0,) * r, (1,) * r)
    layer.set_input(2, size)
    return ctx.add(layer).get_output(0)


@_reg("global_avg_pool", "global_max_pool")
def _global_pool(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    R = ctx.trt.ReduceOperation
    mask = sum(1 << i for i in range(2, len(x.shape)))
    op = R.AVG if node.op == "global_avg_pool" else R.MAX
    return [ctx.add(ctx.net.add_reduce(x, op, mask, True)).get_output(0)]


# ---- normalization -------------------------------------------------------------------------------
def _chan(ctx: Ctx, a: np.ndarray, rank: int, like: Any, suffix: str) -> Any:
    return ctx.constant(np.asarray(a).reshape((1, -1) + (1,) * (rank - 2)), like.dtype, suffix)


@_reg("batch_norm")
def _batch_norm(ctx: Ctx, node: Node) -> list:
    if node.name in ctx.fold:  # folded into the preceding convolution
        return [ctx.t(node.inputs[0])]
    trt = ctx.trt
    x = _x(ctx, node)
    r = len(x.shape)
    s, b, m, v = (ctx.arr(i) for i in node.inputs[1:])
    E = trt.ElementWiseOperation
    if any(p is None for p in (s, b, m, v)):  # runtime statistics: decompose
        xs = [ctx.reshape(ctx.t(i), [1, ("in", 0)] + [1] * (r - 2), f"{k}_c")
              for k, i in zip(("scale", "bias", "mean", "var"), node.inputs[1:])]
        eps = ctx.scalar(node.attrs["eps"], xs[3])
        if node.attrs["eps_mode"] == "inside_sqrt":
            sd = ctx.unary(ctx.ew(xs[3], eps, E.SUM, "var_eps"), trt.UnaryOperation.SQRT, "std")
        else:  # sqrt(var) + eps
            sd = ctx.ew(ctx.unary(xs[3], trt.UnaryOperation.SQRT, "sqrt_var"), eps, E.SUM, "std")
        y = ctx.ew(ctx.ew(x, xs[2], E.SUB, "centre"), sd, E.DIV, "normalize")
        return [ctx.ew(ctx.ew(y, xs[0], E.PROD, "scale"), xs[1], E.SUM)]
    scale = s.astype(np.float64) / bn_std(v.astype(np.float64), node.attrs["eps"], node.attrs["eps_mode"])
    shift = b - m.astype(np.float64) * scale
    if r >= 4 and not ctx.weights_as_tensors:
        layer = ctx.net.add_scale_nd(x, trt.ScaleMode.CHANNEL, ctx.np_weights(shift), ctx.np_weights(scale),
                                     trt.Weights(x.dtype), 1)
        return [ctx.add(layer).get_output(0)]
    y = ctx.ew(x, _chan(ctx, scale, r, x, "scale"), E.PROD, "scale")
    return [ctx.ew(y, _chan(ctx, shift, r, x, "shift"), E.SUM)]


def _affine_tensor(ctx: Ctx, node: Node, i: int, shape: tuple, default: float, like: Any, suffix: str) -> Any:
    v = node.inputs[i] if i < len(node.inputs) else None
    if v is None:
        return ctx.constant(np.full(shape, default), like.dtype, suffix)
    a = ctx.arr(v)
    if a is not None:
        return ctx.constant(a.reshape(shape), like.dtype, suffix)
    t = ctx.t(v)
    return ctx.to_rank(t, len(shape), suffix)


@_reg("layer_norm")
def _layer_norm(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    r = len(x.shape)
    axis = node.attrs["axis"] % r
    norm = tuple(int(d) for d in node.inputs[0].shape[axis:]) if all(
        isinstance(d, int) for d in node.inputs[0].shape[axis:]) else None
    if norm is None:
        raise ctx.unsupported("the normalized dims must be static")
    shape = (1,) * axis + norm
    s = _affine_tensor(ctx, node, 1, shape, 1.0, x, "scale")
    b = _affine_tensor(ctx, node, 2, shape, 0.0, x, "bias")
    layer = add_normalization(ctx.net, x, s, b, sum(1 << i for i in range(axis, r)))
    layer.epsilon = node.attrs["eps"]
    return [ctx.add(layer).get_output(0)]


@_reg("instance_norm", "group_norm")
def _group_norm(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    r = len(x.shape)
    mask = sum(1 << i for i in range(2, r))
    c = node.inputs[0].shape[1]
    if not isinstance(c, int):
        raise ctx.unsupported("the channel dim must be static")
    if node.op == "instance_norm":
        s = _affine_tensor(ctx, node, 1, (1, c) + (1,) * (r - 2), 1.0, x, "scale")
        b = _affine_tensor(ctx, node, 2, (1, c) + (1,) * (r - 2), 0.0, x, "bias")
        layer = add_normalization(ctx.net, x, s, b, mask)
        layer.epsilon = node.attrs["eps"]
        return [ctx.add(layer).get_output(0)]
    g = node.attrs["num_groups"]
    if g == 1:  # one group: normalize over channels and space together
        mask |= 1 << 1
    if normalization_v2(ctx.net):  # v2 (TensorRT 10.15+, 11.x, RTX): scale and bias per channel
        s = _affine_tensor(ctx, node, 1, (1, c) + (1,) * (r - 2), 1.0, x, "scale")
        b = _affine_tensor(ctx, node, 2, (1, c) + (1,) * (r - 2), 0.0, x, "bias")
        layer = add_normalization(ctx.net, x, s, b, mask)
        layer.epsilon = node.attrs["eps"]
        layer.num_groups = g
        return [ctx.add(layer).get_output(0)]
    # v1 (TensorRT 10.0-10.14): scale/bias are per group, so normalize, then scale per channel
    ones = ctx.constant(np.ones((1, g) + (1,) * (r - 2)), x.dtype, "ones")
    zeros = ctx.constant(np.zeros((1, g) + (1,) * (r - 2)), x.dtype, "zeros")
    layer = add_normalization(ctx.net, x, ones, zeros, mask)
    layer.epsilon = node.attrs["eps"]
    layer.num_groups = g
    y = ctx.add(layer, "normalize").get_output(0)
    E = ctx.trt.ElementWiseOperation
    s = _affine_tensor(ctx, node, 1, (1, c) + (1,) * (r - 2), 1.0, x, "scale")
    b = _affine_tensor(ctx, node, 2, (1, c) + (1,) * (r - 2), 0.0, x, "bias")
    return [ctx.ew(ctx.ew(y, s, E.PROD, "scale_mul"), b, E.SUM)]


@_reg("lrn")
def _lrn(ctx: Ctx, node: Node) -> list:
    a = node.attrs
    if a["size"] % 2 == 0 or a["size"] > 15:
        raise ctx.unsupported(f"TensorRT LRN needs an odd window size <= 15, got {a['size']}")
    x = _x(ctx, node)
    if len(x.shape) == 3:  # TensorRT's LRN wants at least 4 dims: (N, C, L) -> (N, C, L, 1)
        y = ctx.add(ctx.net.add_lrn(_to_2d(ctx, x), a["size"], a["alpha"], a["beta"], a["bias"]), "lrn2d")
        return [_from_2d(ctx, y.get_output(0))]
    return [ctx.add(ctx.net.add_lrn(x, a["size"], a["alpha"], a["beta"], a["bias"])).get_output(0)]


# ---- linear algebra ------------------------------------------------------------------------------
def _mm(ctx: Ctx, a: Any, b: Any, suffix: Optional[str] = None, transpose_b: bool = False) -> Any:
    """a @ b (or a @ b^T): MatrixOperation.TRANSPOSE for 2-d operands; batched operands are transposed by a
    shuffle (the layer settings TensorRT's ONNX parser makes, so the CPU evaluator is validated on them)."""
    M = ctx.trt.MatrixOperation
    r = max(len(a.shape), len(b.shape))
    a, b = ctx.to_rank(a, r, "a_unsqueeze"), ctx.to_rank(b, r, "b_unsqueeze")
    op1 = M.NONE
    if transpose_b and r > 2:
        b = ctx.shuffle_perm(b, list(range(r - 2)) + [r - 1, r - 2], "b_transpose")
    elif transpose_b:
        op1 = M.TRANSPOSE
    layer = ctx.net.add_matrix_multiply(a, M.NONE, b, op1)
    return ctx.add(layer, suffix).get_output(0)


@_reg("matmul")
def _matmul(ctx: Ctx, node: Node) -> list:
    a, b = _operands(ctx, node)
    return [_mm(ctx, a, b)]


@_reg("linear")
def _linear(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    r = len(x.shape)
    w, bias = ctx.arr(node.inputs[1]), ctx.arr(node.inputs[2])
    vec = r == 1
    if vec:
        x, r = ctx.reshape(x, [1, ("in", 0)], "as_matrix"), 2
    if w is not None:
        wt = ctx.constant(np.ascontiguousarray(w.T).reshape((1,) * (r - 2) + w.T.shape), x.dtype, "weight")
        y = _mm(ctx, x, wt, "matmul" if node.inputs[2] is not None or vec else None)
    else:
        y = _mm(ctx, x, _x(ctx, node, 1), "matmul" if node.inputs[2] is not None or vec else None, True)
    if node.inputs[2] is not None:
        bt = ctx.constant(bias.reshape((1,) * (r - 1) + bias.shape), x.dtype, "bias") if bias is not None \
            else _x(ctx, node, 2)
        y = ctx.ew(y, bt, ctx.trt.ElementWiseOperation.SUM, "bias_add" if vec else None)
    if vec:
        y = ctx.reshape(y, [("in", 1)], None)
    return [y]


@_reg("embedding")
def _embedding(ctx: Ctx, node: Node) -> list:
    ids, table = _indices(ctx, _x(ctx, node)), _x(ctx, node, 1)
    return [ctx.add(ctx.net.add_gather(table, ids, 0)).get_output(0)]


def _indices(ctx: Ctx, t: Any) -> Any:
    """Gather indices as int32 or int64 (the only index types TensorRT's gather takes)."""
    return t if t.dtype in (ctx.trt.int32, ctx.trt.int64) else ctx.cast(t, ctx.trt.int32, "indices_int32")


@_reg("attention")
def _attention(ctx: Ctx, node: Node) -> list:
    trt = ctx.trt
    E = trt.ElementWiseOperation
    q, k, v = (ctx.t(i) for i in node.inputs[:3])
    scale = node.attrs["scale"]
    if scale is None:
        e = node.inputs[0].shape[-1]
        if not isinstance(e, int):
            raise ctx.unsupported("the feature size must be static when scale is not given")
        scale = 1 / math.sqrt(e)
    s = _mm(ctx, q, k, "scores", transpose_b=True)
    s = ctx.ew(s, ctx.scalar(scale, s), E.PROD, "scale")
    neg = ctx.scalar(-np.inf, s, suffix="neg_inf")
    mv = node.inputs[3] if len(node.inputs) > 3 else None
    if mv is not None:
        m = ctx.t(mv)
        if mv.dtype == DType.bool:
            r = len(s.shape)
            s = ctx.add(ctx.net.add_select(ctx.to_rank(m, r, "mask_unsqueeze"), s, neg), "mask").get_output(0)
        else:
            s = ctx.ew(s, m, E.SUM, "mask")
    if node.attrs["causal"]:
        L, S = node.inputs[0].shape[-2], node.inputs[1].shape[-2]
        if isinstance(L, int) and isinstance(S, int):
            keep = np.tril(np.ones((L, S), bool)).reshape((1,) * (len(s.shape) - 2) + (L, S))
            s = ctx.add(ctx.net.add_select(ctx.constant(keep, trt.bool, "causal_mask"), s, neg),
                        "causal").get_output(0)
        else:  # dynamic lengths: mask built at run time from arange(L) and arange(S)
            s = ctx.add(ctx.net.add_select(_causal_drop(ctx, q, k, len(s.shape)), neg, s), "causal").get_output(0)
    sm = ctx.net.add_softmax(s)
    sm.axes = 1 << (len(s.shape) - 1)
    p = ctx.add(sm, "softmax").get_output(0)
    return [_mm(ctx, p, v)]


def _causal_drop(ctx: Ctx, q: Any, k: Any, rank: int) -> Any:
    """bool (1, ..., L, S): True where key j > query i (masked out), for run-time L and S."""
    trt = ctx.trt

    def arange(x: Any, dims: tuple, what: str) -> Any:
        n = ctx.shape_tensor(x, [("in", len(x.shape) - 2)], f"causal_{what}_len")
        fill = ctx.net.add_fill((0,), trt.FillOperation.LINSPACE, trt.float32)
        fill.set_input(0, n)
        fill.set_input(1, ctx.constant(np.array(0, np.float32), trt.float32, f"causal_{what}_start"))
        fill.set_input(2, ctx.constant(np.array([1], np.float32), trt.float32, f"causal_{what}_step"))
        idx = ctx.add(fill, f"causal_{what}_arange").get_output(0)
        sh = ctx.net.add_shuffle(idx)
        sh.reshape_dims = dims
        return ctx.add(sh, f"causal_{what}_index").get_output(0)

    rows = arange(q, (1,) * (rank - 2) + (-1, 1), "q")
    cols = arange(k, (1,) * (rank - 1) + (-1,), "k")
    return ctx.ew(cols, rows, trt.ElementWiseOperation.GREATER, "causal_mask")


# ---- reductions ----------------------------------------------------------------------------------
_REDUCE = {"reduce_sum": "SUM", "reduce_mean": "AVG", "reduce_max": "MAX", "reduce_min": "MIN",
           "reduce_prod": "PROD"}


@_reg(*_REDUCE)
def _reduce(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    r = len(x.shape)
    axes = range(r) if node.attrs["axes"] is None else [a % r for a in node.attrs["axes"]]
    op = getattr(ctx.trt.ReduceOperation, _REDUCE[node.op])
    if r == 0:
        return [x]
    return [ctx.add(ctx.net.add_reduce(x, op, sum(1 << a for a in set(axes)), node.attrs["keepdims"])).get_output(0)]


def _drop_axis(ctx: Ctx, y: Any, axis: int) -> Any:
    r = len(y.shape)
    return ctx.reshape(y, [("in", i) for i in range(r) if i != axis], None)


@_reg("argmax", "argmin")
def _arg(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    r = len(x.shape)
    axis = node.attrs["axis"] % r
    op = ctx.trt.TopKOperation.MAX if node.op == "argmax" else ctx.trt.TopKOperation.MIN
    layer = ctx.add(ctx.net.add_topk(x, op, 1, 1 << axis), None if node.attrs["keepdims"] else "topk")
    y = ctx.cast(layer.get_output(1), ctx.trt.int32, "to_int32")
    return [y if node.attrs["keepdims"] else _drop_axis(ctx, y, axis)]


@_reg("topk")
def _topk(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    axis = node.attrs["axis"] % len(x.shape)
    op = ctx.trt.TopKOperation.MAX if node.attrs["largest"] else ctx.trt.TopKOperation.MIN
    layer = ctx.add(ctx.net.add_topk(x, op, node.attrs["k"], 1 << axis))
    return [layer.get_output(0), ctx.cast(layer.get_output(1), ctx.trt.int32, "to_int32")]


# ---- shape ops -----------------------------------------------------------------------------------
@_reg("reshape")
def _reshape(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    out = node.outputs[0].shape
    if all(isinstance(d, int) for d in out):
        return [ctx.reshape(x, list(out), None)]
    layer = ctx.net.add_shuffle(x)
    layer.reshape_dims = tuple(node.attrs["shape"])  # same 0/-1 conventions as TensorRT
    return [ctx.add(layer).get_output(0)]


@_reg("flatten")
def _flatten(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    r = len(x.shape)
    if r == 0:
        return [ctx.reshape(x, [1], None)]
    s, e = node.attrs["start"] % r, node.attrs["end"] % r
    spec = [("in", i) for i in range(s)] + [("prod", s, e)] + [("in", i) for i in range(e + 1, r)]
    return [ctx.reshape(x, spec, None)]


@_reg("squeeze")
def _squeeze(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    r = len(x.shape)
    axes = {a % r for a in node.attrs["axes"]}
    return [ctx.reshape(x, [("in", i) for i in range(r) if i not in axes], None)]


@_reg("unsqueeze")
def _unsqueeze(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    r = len(x.shape)
    out_r = r + len(node.attrs["axes"])
    axes = {a % out_r for a in node.attrs["axes"]}
    spec: list = []
    i = 0
    for p in range(out_r):
        if p in axes:
            spec.append(1)
        else:
            spec.append(("in", i))
            i += 1
    return [ctx.reshape(x, spec, None)]


@_reg("transpose")
def _transpose(ctx: Ctx, node: Node) -> list:
    return [ctx.shuffle_perm(_x(ctx, node), node.attrs["perm"])]


@_reg("concat")
def _concat(ctx: Ctx, node: Node) -> list:
    xs = [ctx.t(v) for v in node.inputs]
    layer = ctx.net.add_concatenation(xs)
    layer.axis = node.attrs["axis"] % len(xs[0].shape)
    return [ctx.add(layer).get_output(0)]


@_reg("split")
def _split(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    r = len(x.shape)
    axis = node.attrs["axis"] % r
    outs, off = [], 0
    for i, s in enumerate(node.attrs["sizes"]):
        start = [0] * r
        start[axis] = off
        spec = [s if j == axis else ("in", j) for j in range(r)]
        outs.append(ctx.slice(x, start, spec, (1,) * r, str(i)))
        off += s
    return outs


@_reg("slice")
def _slice(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    r = len(x.shape)
    a = node.attrs
    axes = a["axes"] if a["axes"] is not None else tuple(range(len(a["starts"])))
    steps = a["steps"] if a["steps"] is not None else (1,) * len(a["starts"])
    start, stride = [0] * r, [1] * r
    spec: list = [("in", i) for i in range(r)]
    shape = node.inputs[0].shape
    for st, en, ax, sp in zip(a["starts"], a["ends"], axes, steps):
        ax %= r
        d = shape[ax]
        if isinstance(d, int):
            s0, _, n = slice_len(d, st, en, sp)
            start[ax], stride[ax], spec[ax] = s0, sp, n
        elif sp == 1 and st >= 0 and en >= 2 ** 31 - 1:
            start[ax], spec[ax] = st, ("add", ax, -st)
        else:  # start and length depend on the run-time size: computed by shape arithmetic
            start[ax], spec[ax] = _dynamic_slice_axis(ctx, x, ax, st, en, sp)
            stride[ax] = sp
            if isinstance(node.outputs[0].shape[ax], int):  # e.g. x[:, -1]: the length is known
                spec[ax] = node.outputs[0].shape[ax]
    if not any(isinstance(v, tuple) and v[0] == "tensor" for v in start + spec):
        return [ctx.slice(x, start, spec, stride)]
    i64 = ctx.trt.int64

    def vec(items: list, what: str) -> Any:
        parts = [v[1] if isinstance(v, tuple) and v[0] == "tensor" else
                 ctx.shape_tensor(x, [v], f"{what}_{i}") if isinstance(v, tuple) else
                 ctx.constant(np.array([v], np.int64), i64, f"{what}_{i}") for i, v in enumerate(items)]
        cat = ctx.net.add_concatenation(parts)
        cat.axis = 0
        return ctx.add(cat, what).get_output(0)

    # (the size goes in as a tensor even when it is static: the form TensorRT's ONNX parser makes)
    st_t, n_t = vec(start, "slice_start"), vec(spec, "slice_size")
    layer = ctx.net.add_slice(x, (0,) * r, (0,) * r, tuple(stride))
    layer.set_input(1, st_t)
    layer.set_input(2, n_t)
    return [ctx.add(layer).get_output(0)]


def _dynamic_slice_axis(ctx: Ctx, x: Any, ax: int, st: int, en: int, sp: int) -> tuple:
    """Python-slice start and length of axis ``ax`` for its run-time size, as 1-element int64 tensors."""
    E = ctx.trt.ElementWiseOperation
    d = ctx.shape_tensor(x, [("in", ax)], f"slice_dim{ax}")

    def c(v: int, what: str) -> Any:
        return ctx.constant(np.array([v], np.int64), ctx.trt.int64, f"slice{ax}_{what}")

    def clamp(v: int, what: str) -> Any:  # Python's clamping of a start/end index
        if v >= 0:
            hi = d if sp > 0 else ctx.ew(d, c(1, "one"), E.SUB, f"slice{ax}_last")
            return ctx.ew(c(v, what), hi, E.MIN, f"slice{ax}_{what}_min")
        v = ctx.ew(d, c(v, what), E.SUM, f"slice{ax}_{what}_wrap")
        return ctx.ew(v, c(0 if sp > 0 else -1, "floor"), E.MAX, f"slice{ax}_{what}_max")

    s, e = clamp(st, "start"), clamp(max(min(en, 2 ** 62), -2 ** 62), "end")
    span = ctx.ew(e, s, E.SUB, f"slice{ax}_span") if sp > 0 else ctx.ew(s, e, E.SUB, f"slice{ax}_span")
    k = abs(sp)
    n = ctx.ew(ctx.ew(span, c(k - 1, "round"), E.SUM, f"slice{ax}_ceil"), c(k, "step"), E.FLOOR_DIV, f"slice{ax}_len")
    n = ctx.ew(n, c(0, "zero"), E.MAX, f"slice{ax}_size")
    return ("tensor", s), ("tensor", n)


@_reg("gather")
def _gather(ctx: Ctx, node: Node) -> list:
    data = _x(ctx, node)
    axis = node.attrs["axis"] % len(data.shape)
    d = node.inputs[0].shape[axis]
    idx = ctx.arr(node.inputs[1])
    if idx is not None:
        if isinstance(d, int):
            idx = np.where(idx < 0, idx + d, idx)
        it = ctx.constant(idx.astype(np.int64 if idx.dtype == np.int64 else np.int32), None, "indices")
    else:
        it = _indices(ctx, _x(ctx, node, 1))
        if isinstance(d, int):  # negative indices count from the end (TensorRT wants them >= 0)
            E = ctx.trt.ElementWiseOperation
            zero = ctx.scalar(0, it, suffix="zero")
            neg = ctx.ew(it, zero, E.LESS, "is_negative")
            wrapped = ctx.ew(it, ctx.scalar(d, it, suffix="dim"), E.SUM, "wrapped")
            it = ctx.add(ctx.net.add_select(neg, wrapped, it), "indices").get_output(0)
    return [ctx.add(ctx.net.add_gather(data, it, axis)).get_output(0)]


@_reg("pad")
def _pad(ctx: Ctx, node: Node) -> list:
    trt = ctx.trt
    x = _x(ctx, node)
    r = len(x.shape)
    p = node.attrs["pads"]
    mode = {"constant": trt.SampleMode.FILL, "reflect": trt.SampleMode.REFLECT,
            "edge": trt.SampleMode.CLAMP}[node.attrs["mode"]]
    fill = None
    if node.attrs["mode"] == "constant" and node.attrs["value"] != 0:
        v = np.array(node.attrs["value"], dtype=ctx.np_dtype(x.dtype))
        fill = ctx.constant(v, x.dtype, "value")
    spec = [("add", i, p[i] + p[r + i]) for i in range(r)]
    return [ctx.slice(x, [-p[i] for i in range(r)], spec, (1,) * r, None, mode=mode, fill=fill)]


@_reg("resize")
def _resize(ctx: Ctx, node: Node) -> list:
    trt = ctx.trt
    x = _x(ctx, node)
    a = node.attrs
    layer = ctx.net.add_resize(x)
    out = node.outputs[0].shape
    ins = node.inputs[0].shape
    if all(isinstance(d, int) for d in out) and a["sizes"] is not None:
        layer.shape = tuple(int(d) for d in out)
    elif a["scales"] is not None:
        layer.scales = tuple(float(s) for s in a["scales"])
    elif all(isinstance(ins[i], int) for i in range(2, len(ins))):
        layer.scales = (1.0, 1.0) + tuple(a["sizes"][i] / ins[i] for i in range(2, len(ins)))
    else:
        raise ctx.unsupported("resize to sizes needs static spatial dims")
    return [ctx.add(resize_modes(trt, layer, a)).get_output(0)]


def resize_modes(trt: Any, layer: Any, a: dict) -> Any:
    """Set an IResizeLayer's mode, coordinate transformation and rounding from resize's attributes."""
    layer.resize_mode = trt.InterpolationMode.NEAREST if a["mode"] == "nearest" else trt.InterpolationMode.LINEAR
    ct = a["coordinate_transformation"]
    C = trt.ResizeCoordinateTransformation
    layer.coordinate_transformation = {"half_pixel": C.HALF_PIXEL, "pytorch_half_pixel": C.HALF_PIXEL,
                                       "align_corners": C.ALIGN_CORNERS, "asymmetric": C.ASYMMETRIC}[ct]
    layer.selector_for_single_pixel = (trt.ResizeSelector.UPPER if ct == "pytorch_half_pixel"
                                       else trt.ResizeSelector.FORMULA)
    R = trt.ResizeRoundMode
    layer.nearest_rounding = {"floor": R.FLOOR, "ceil": R.CEIL, "round_prefer_floor": R.HALF_DOWN,
                              "round_prefer_ceil": R.HALF_UP}[a["nearest_mode"]]
    return layer


@_reg("tile")
def _tile(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    r = len(x.shape)
    reps = node.attrs["repeats"]
    spec = [("in", i) if reps[i] == 1 else ("mul", i, reps[i]) for i in range(r)]  # symbolic dims: run time
    return [ctx.slice(x, (0,) * r, spec, (1,) * r, None, mode=ctx.trt.SampleMode.WRAP)]


@_reg("expand")
def _expand(ctx: Ctx, node: Node) -> list:
    x = _x(ctx, node)
    out = node.outputs[0].shape
    r = len(out)
    x = ctx.to_rank(x, r)
    ins = tuple(x.shape)
    spec: list = []
    stride = []
    for i, d in enumerate(out):
        if ins[i] == 1 and d != 1:
            stride.append(0)
            spec.append(int(d) if isinstance(d, int) else None)
            if spec[-1] is None:
                raise ctx.unsupported(f"expanding a size-1 axis {i} to the symbolic dim {d}")
        else:
            stride.append(1)
            spec.append(("in", i))
    return [ctx.slice(x, (0,) * r, spec, stride)]


@_reg("expand_as")
def _expand_as(ctx: Ctx, node: Node) -> list:
    out = node.outputs[0].shape
    r = len(out)
    x = ctx.to_rank(_x(ctx, node), r)
    like = ctx.to_rank(_x(ctx, node, 1), r, "like_unsqueeze")
    ins = tuple(x.shape)
    stride = [0 if ins[i] == 1 and d != 1 else 1 for i, d in enumerate(out)]
    if all(isinstance(d, int) for d in out):
        return [ctx.slice(x, (0,) * r, [int(d) for d in out], stride)]
    # run-time size: each dim from x where it is kept, from ``like`` where x is broadcast
    parts = [ctx.shape_tensor(like if stride[i] == 0 or ins[i] == 1 else x, [("in", i)], f"dim{i}") for i in range(r)]
    cat = ctx.net.add_concatenation(parts)
    cat.axis = 0
    size = ctx.add(cat, "size").get_output(0)
    layer = ctx.net.add_slice(x, (0,) * r, (0,) * r, tuple(stride))
    layer.set_input(2, size)
    return [ctx.add(layer).get_output(0)]


# ---- the driver ----------------------------------------------------------------------------------
@dataclass
class Lowered:
    """The result of :func:`lower`: the network and what is needed to build and check it."""

    trt: Any
    builder: Any
    network: Any
    ctx: Ctx
    precision: str
    input_dims: dict = field(default_factory=dict)   # input name -> TensorRT dims (-1 symbolic)


def fold_batch_norm(ctx: Ctx) -> None:
    """conv -> batch_norm with constant weights and a single consumer: fold into the conv weights."""
    g = ctx.graph
    cons = g.consumers()
    outs = {id(v) for v in g.outputs}
    for bn in g.nodes:
        if bn.op != "batch_norm":
            continue
        conv = ctx.producers.get(id(bn.inputs[0]))
        if conv is None or conv.op != "conv" or id(conv.outputs[0]) in outs or len(cons[id(conv.outputs[0])]) != 1:
            continue
        w, b = ctx.arr(conv.inputs[1]), ctx.arr(conv.inputs[2]) if conv.inputs[2] is not None else None
        p = [ctx.arr(v) for v in bn.inputs[1:]]
        if w is None or (conv.inputs[2] is not None and b is None) or any(a is None for a in p):
            continue
        s, beta, mean, var = (a.astype(np.float64) for a in p)
        scale = s / bn_std(var, bn.attrs["eps"], bn.attrs["eps_mode"])
        w2 = w.astype(np.float64) * scale.reshape((-1,) + (1,) * (w.ndim - 1))
        b2 = ((b.astype(np.float64) if b is not None else 0.0) - mean) * scale + beta
        ctx.fold[conv.name] = (w2, b2)
        ctx.fold[bn.name] = True


def lower(graph: Graph, trt: Any, precision: str = "float32", builder: Any = None) -> Lowered:
    """Build the INetworkDefinition for ``graph`` (layer and tensor names are the DSL's)."""
    from ._trt import logger, network_flags, take_errors
    from ...ops import get_op

    graph.validate()
    builder = builder or trt.Builder(logger(trt))
    net = builder.create_network(network_flags(trt))  # strongly typed on 10.x, 11.x and RTX
    net.name = graph.name
    ctx = Ctx(trt, net, graph, precision)
    take_errors(trt)
    lowered = Lowered(trt, builder, net, ctx, precision)
    fold_batch_norm(ctx)
    from ...passes.precision import layer_precisions
    ftypes = {DType.float32: trt.float32, DType.float16: trt.float16, DType.bfloat16: trt.bfloat16}
    islands = ctx.islands = {k: ftypes[v] for k, v in layer_precisions(graph).items()} \
        if precision != "float32" or graph.precision else {}  # before prepare(): plugin layers' types
    if any(get_op(n.op).plugin is not None for n in graph.nodes):  # not a lowering path: plugins (tests/plugins)
        from ...plugins.tensorrt_lowering import prepare
        prepare(ctx)  # plugin layers TensorRT-RTX's ONNX parser adds (into the still empty network)
    for v in graph.inputs:
        dims = dims_of(v.shape)
        lowered.input_dims[v.name] = dims
        low = ctx.trt_dtype(v.dtype)
        io = trt.float32 if v.dtype in (DType.float32, DType.float64) else low
        t = net.add_input(v.name, io, dims)
        if t is None:
            raise NetdslError(f"TensorRT refused input '{v.name}' {dims}: " + " | ".join(take_errors(trt)))
        ctx.tnames.add(v.name)
        ctx.dsl_names.add(v.name)
        for i, d in enumerate(v.shape):
            if isinstance(d, Sym) and len(d.terms) == 1 and d.coeff == 1 and d.terms[0][1] == 1:
                t.set_dimension_name(i, d.terms[0][0])
        if io != low:  # the precision pass: cast down right after the input
            ctx.fold[(v.name, str(io))] = t  # float32 islands read the input as fed, not cast down and up
            ctx.node = Node("cast", v.name, [], {})
            t = ctx.cast(t, low, f"to_{precision}")
            ctx.node = None
        ctx.tensors[v.name] = t
    base = ctx.fdt
    for node in graph.nodes:
        ctx.node = node
        fn = LOWERINGS.get(node.op) or getattr(get_op(node.op).plugin, "tensorrt", None)  # unknown op raises
        if fn is None:
            raise ctx.unsupported("TensorRT has no such layer and netdsl has no decomposition for it")
        if fn is _lazy_source:  # parameters and constants: materialized by ctx.t() in their consumers
            continue
        ctx.fdt = islands.get(node.name, base)
        saved = _island_inputs(ctx, node) if islands else {}
        try:
            outs = fn(ctx, node)
        except NetdslError:  # not a lowering path
            raise
        except Exception as e:  # not a lowering path: a TensorRT API error, named after the layer
            errs = take_errors(trt)
            raise ctx.error(f"{type(e).__name__}: {e}" + (" | " + " | ".join(errs) if errs else "")) from e
        finally:
            ctx.tensors.update(saved)
            ctx.fdt = base
        if len(outs) != len(node.outputs):
            raise ctx.error(f"lowering produced {len(outs)} outputs, the op has {len(node.outputs)}")
        for v, t in zip(node.outputs, outs):
            try:
                t.shape  # noqa: B018 - raises when TensorRT rejected the layer
            except Exception:  # not a lowering path
                raise ctx.error("TensorRT rejected the layer: " + " | ".join(take_errors(trt))) from None
            if t.name not in ctx.dsl_names:  # not an alias of another DSL tensor: give it the DSL name
                ctx.rename(t, v.name)
                ctx.dsl_names.add(t.name)
            ctx.tensors[v.name] = t
    ctx.node = None
    _mark_outputs(ctx, graph)
    return lowered


def _island_inputs(ctx: Ctx, node: Node) -> dict:
    """Cast the layer's float32-class inputs to the type it computes in (``ctx.fdt``); returns the
    tensors replaced, to be restored after the layer (casts are made once per tensor and type)."""
    trt = ctx.trt
    floats = (trt.float32, trt.float16, trt.bfloat16)
    saved = {}
    for v in node.inputs:
        if v is None or v.dtype not in (DType.float32, DType.float64) or v.name not in ctx.tensors:
            continue
        t = ctx.tensors[v.name]
        if t.dtype not in floats or t.dtype == ctx.fdt:
            continue
        key = (v.name, str(ctx.fdt))
        if key not in ctx.fold:
            ctx.fold[key] = ctx.cast(t, ctx.fdt, f"{v.name.replace('/', '_')}_to_{ctx.fdt.name.lower()}")
        saved.setdefault(v.name, t)
        ctx.tensors[v.name] = ctx.fold[key]
    return saved


def _mark_outputs(ctx: Ctx, graph: Graph) -> None:
    trt, net = ctx.trt, ctx.net
    marked: set = set()
    for v in graph.outputs:
        t = ctx.t(v)
        ctx.node = Node("output", v.name, [], {})
        if v.dtype in (DType.float32, DType.float64) and t.dtype != trt.float32:
            if t.name == v.name:
                ctx.rename(t, f"{v.name}/{ctx.precision}")
            t = ctx.cast(t, trt.float32, "to_float32")
        if t.is_network_input or t.name in marked or (t.name != v.name and t.name in ctx.dsl_names):
            t = ctx.add(net.add_identity(t), "output").get_output(0)
        ctx.rename(t, v.name)
        net.mark_output(t)
        marked.add(t.name)
        ctx.outputs[v.name] = t
    ctx.node = None

from . import qdq as _qdq  # noqa: E402,F401  (registers quantize_linear / dequantize_linear)
