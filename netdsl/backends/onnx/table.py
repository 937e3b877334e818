"""THE ONNX lowering table: ``{catalogue op name: fn(ctx, node)}``.

Each function emits ONNX nodes through :class:`~.context.ExportContext` (opset 17 or newer),
decomposing where ONNX lacks the op or where an op only exists in newer opsets (Gelu 20, Mish 18,
GroupNormalization 21, Attention 23). Index outputs (argmax, topk) are cast to int32, as the
catalogue declares. Plugins (and anyone) add entries with :func:`register_export`.
This module imports no ``onnx``: the context does all protobuf work.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ...dtypes import DType
from ...graph import Node

ExportFn = Callable[[Any, Node], None]
TABLE: dict[str, ExportFn] = {}


def register_export(op: str, fn: ExportFn, *, replace: bool = True) -> ExportFn:
    """Export op ``op`` with ``fn(ctx, node)`` (e.g. a plugin as a custom-domain node)."""
    if op in TABLE and not replace:
        raise ValueError(f"op '{op}' already has an ONNX exporter")
    TABLE[op] = fn
    return fn


def _simple(op_type: str, **fixed: Any) -> ExportFn:
    """One ONNX node, same inputs and outputs; ``fixed`` attributes, or callables of node.attrs."""
    def fn(ctx, node):
        attrs = {k: (v(node.attrs) if callable(v) else v) for k, v in fixed.items()}
        ctx.add(op_type, [ctx.inp(node, i) for i in range(len(node.inputs))],
                [o.name for o in node.outputs], **attrs)
    return fn


def _a(name: str) -> Callable[[dict], Any]:
    return lambda attrs: attrs[name]


# ---- sources ----------------------------------------------------------------------------------
def _parameter(ctx, node):
    p = ctx.graph.params[node.attrs["name"]]
    ctx.initializer(ctx.out(node), _Lazy(p), p.dtype)


class _Lazy:
    """A parameter read only when its tensor is written (graph.params[name].value())."""

    def __init__(self, param):
        self.param = param
        self.shape = tuple(param.shape)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * param.dtype.itemsize

    def read(self) -> np.ndarray:
        return self.param.value()


def _constant(ctx, node):
    ctx.initializer(ctx.out(node), node.attrs["value"], node.outputs[0].dtype)


# ---- elementwise ------------------------------------------------------------------------------
def _mul_self_by(ctx, node, x: str, f: str) -> None:
    ctx.add("Mul", [x, f], [ctx.out(node)])


def _silu(ctx, node):
    x = ctx.inp(node, 0)
    _mul_self_by(ctx, node, x, ctx.add1("Sigmoid", [x]))


def _gelu(ctx, node):
    x, xv = ctx.inp(node, 0), node.inputs[0]
    tanh = node.attrs["approximate"] == "tanh"
    if ctx.opset >= 20:
        ctx.add("Gelu", [x], [ctx.out(node)], approximate="tanh" if tanh else "none")
        return
    if tanh:  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3 = ctx.add1("Mul", [ctx.add1("Mul", [x, x]), x])
        inner = ctx.add1("Add", [x, ctx.add1("Mul", [x3, ctx.scalar(0.044715, xv, "c")])])
        t = ctx.add1("Tanh", [ctx.add1("Mul", [inner, ctx.scalar(math.sqrt(2 / math.pi), xv, "sqrt_2_over_pi")])])
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        t = ctx.add1("Erf", [ctx.add1("Div", [x, ctx.scalar(math.sqrt(2), xv, "sqrt2")])])
    one_plus = ctx.add1("Add", [t, ctx.scalar(1.0, xv, "one")])
    half_x = ctx.add1("Mul", [x, ctx.scalar(0.5, xv, "half")])
    ctx.add("Mul", [half_x, one_plus], [ctx.out(node)])


def _mish(ctx, node):
    x = ctx.inp(node, 0)
    if ctx.opset >= 18:
        ctx.add("Mish", [x], [ctx.out(node)])
        return
    _mul_self_by(ctx, node, x, ctx.add1("Tanh", [ctx.add1("Softplus", [x])]))


def _clip(ctx, node):
    x, xv = ctx.inp(node, 0), node.inputs[0]
    lo, hi = node.attrs["min"], node.attrs["max"]

    def bound(v, hint):
        if v is None:
            return ""
        if xv.dtype.is_int or xv.dtype == DType.bool:
            v = int(v)  # the reference truncates a float bound for integer tensors
        return ctx.scalar(v, xv, hint)
    ctx.add("Clip", [x, bound(lo, "min"), bound(hi, "max")], [ctx.out(node)])


def _prelu(ctx, node):
    slope = ctx.unsqueeze_channels(ctx.inp(node, 1), node.inputs[0].rank)
    ctx.add("PRelu", [ctx.inp(node, 0), slope], [ctx.out(node)])


def _rsqrt(ctx, node):
    ctx.add("Reciprocal", [ctx.add1("Sqrt", [ctx.inp(node, 0)])], [ctx.out(node)])


def _not_equal(ctx, node):
    ctx.add("Not", [ctx.add1("Equal", [ctx.inp(node, 0), ctx.inp(node, 1)])], [ctx.out(node)])


def _cast(ctx, node):
    ctx.add("Cast", [ctx.inp(node, 0)], [ctx.out(node)], to=ctx.dtype(node.attrs["dtype"]))


def _dropout(ctx, node):
    xv = node.inputs[0]
    if xv.dtype.is_float:  # inference-mode Dropout keeps p for consumers of the model
        ctx.add("Dropout", [ctx.inp(node, 0), ctx.const(np.float32(node.attrs["p"]), "float32", "ratio")],
                [ctx.out(node)])
    else:
        ctx.add("Identity", [ctx.inp(node, 0)], [ctx.out(node)])


# ---- nn ---------------------------------------------------------------------------------------
def _padding(a: dict, nd: int) -> dict:
    """ONNX's auto_pad (SAME_UPPER / SAME_LOWER: TensorFlow's SAME) or explicit pads."""
    if a.get("auto_pad", "notset") != "notset":
        return {"auto_pad": a["auto_pad"].upper()}
    return {"pads": list(a["pads"]) or [0] * (2 * nd)}


def _spatial(node) -> dict:
    nd = node.inputs[0].rank - 2
    a = node.attrs
    return {"kernel_shape": list(node.inputs[1].shape[2:]),
            "strides": list(a["strides"]) or [1] * nd,
            "dilations": list(a["dilations"]) or [1] * nd,
            "pads": list(a["pads"]) or [0] * (2 * nd),
            "group": a["groups"]}


def _conv(ctx, node):
    attrs = _spatial(node)
    del attrs["pads"]
    attrs.update(_padding(node.attrs, node.inputs[0].rank - 2))
    ctx.add("Conv", [ctx.inp(node, i) for i in range(len(node.inputs))], [ctx.out(node)], **attrs)


def _conv_transpose(ctx, node):
    nd = node.inputs[0].rank - 2
    attrs = _spatial(node)
    attrs["output_padding"] = list(node.attrs["output_padding"]) or [0] * nd
    ctx.add("ConvTranspose", [ctx.inp(node, i) for i in range(len(node.inputs))], [ctx.out(node)], **attrs)


def _same_pads(ctx, x: str, kernel: list, strides: list, lower: bool) -> str:
    """ONNX Pad's pads for TensorFlow's SAME on sizes read at run time: ``max((ceil(n / s) - 1) * s + k - n,
    0)`` per spatial axis, the odd one at the end (``lower``: at the start)."""
    nd = len(kernel)
    begins, ends = [], []
    for i, (k, st) in enumerate(zip(kernel, strides)):
        n = ctx.shape_of(x, 2 + i, 3 + i)
        out = ctx.add1("Div", [ctx.add1("Add", [n, ctx.ints([st - 1])]), ctx.ints([st])])
        span = ctx.add1("Add", [ctx.add1("Mul", [ctx.add1("Sub", [out, ctx.ints([1])]), ctx.ints([st])]),
                                ctx.ints([k])])
        total = ctx.add1("Max", [ctx.add1("Sub", [span, n]), ctx.ints([0])])
        half = ctx.add1("Div", [total, ctx.ints([2])])
        rest = ctx.add1("Sub", [total, half])
        begins.append(rest if lower else half)
        ends.append(half if lower else rest)
    return ctx.add1("Concat", [ctx.ints([0, 0])] + begins + [ctx.ints([0, 0])] + ends, axis=0)


def _same_pool_padded(ctx, node, op_type: str, attrs: dict) -> None:
    """SAME pooling where a kernel is smaller than its stride: ONNX's auto_pad total is then negative on
    sizes that are multiples of the stride, which ONNX Runtime's pools refuse; pad explicitly (clamped
    at 0, as TensorFlow) and pool without padding. Average pooling that excludes the padding divides
    the window sums by the window counts of a padded mask of ones."""
    a, xv = node.attrs, node.inputs[0]
    x = ctx.inp(node, 0)
    pads = _same_pads(ctx, x, attrs["kernel_shape"], attrs["strides"], a["auto_pad"] == "same_lower")
    attrs = {k: v for k, v in attrs.items() if k != "auto_pad"}
    if op_type == "MaxPool":
        low = -np.inf if xv.dtype.is_float else np.iinfo(xv.dtype.numpy).min
        ctx.add("MaxPool", [ctx.add1("Pad", [x, pads, ctx.scalar(low, xv, "low")])], [ctx.out(node)], **attrs)
        return
    attrs["count_include_pad"] = 1
    padded = ctx.add1("Pad", [x, pads])
    if a["count_include_pad"]:
        ctx.add("AveragePool", [padded], [ctx.out(node)], **attrs)
        return
    summed = ctx.add1("AveragePool", [padded], **attrs)
    ones = ctx.add1("ConstantOfShape", [ctx.shape_of(x)], value=ctx.helper.make_tensor("one", ctx.dtype(xv), [1], [1]))
    counts = ctx.add1("AveragePool", [ctx.add1("Pad", [ones, pads])], **attrs)
    ctx.add("Div", [summed, counts], [ctx.out(node)])


def _pool(op_type: str) -> ExportFn:
    def fn(ctx, node):
        a, xv = node.attrs, node.inputs[0]
        nd = len(a["kernel"])
        kernel, strides = list(a["kernel"]), list(a["strides"]) or list(a["kernel"])
        if a.get("auto_pad", "notset") != "notset" and any(k < st for k, st in zip(kernel, strides)):
            return _same_pool_padded(ctx, node, op_type, {"kernel_shape": kernel, "strides": strides,
                                                          "auto_pad": a["auto_pad"]})
        pads = list(a["pads"]) or [0] * (2 * nd)
        attrs = {"kernel_shape": kernel, "strides": strides, "ceil_mode": int(a["ceil_mode"]), **_padding(a, nd)}
        if "count_include_pad" in a:
            attrs["count_include_pad"] = int(a["count_include_pad"])
        # ceil_mode: the catalogue drops a last window that would start in the end padding (as PyTorch
        # does); ONNX (opset <= 18 inference) keeps it. Make ONNX's extra window and slice it off.
        extra = []
        if a["ceil_mode"]:
            for i in range(nd):
                d, o = xv.shape[2 + i], node.outputs[0].shape[2 + i]
                if isinstance(d, int) and isinstance(o, int):
                    onnx_o = -(-(d + pads[i] + pads[nd + i] - kernel[i]) // strides[i]) + 1
                    if onnx_o != o:
                        extra.append((2 + i, o))
        y = ctx.add1(op_type, [ctx.inp(node, 0)], None if extra else ctx.out(node), **attrs)
        if extra:
            ctx.add("Slice", [y, ctx.ints([0] * len(extra), "starts"), ctx.ints([o for _, o in extra], "ends"),
                              ctx.ints([ax for ax, _ in extra], "axes")], [ctx.out(node)])
    return fn


def _batch_norm(ctx, node):
    if node.attrs["eps_mode"] == "inside_sqrt":
        ctx.add("BatchNormalization", [ctx.inp(node, i) for i in range(5)], [ctx.out(node)],
                epsilon=node.attrs["eps"])
        return
    # (x - mean) / (sqrt(var) + eps) * scale + bias: BatchNormalization has no such epsilon, decompose
    x, xv = ctx.inp(node, 0), node.inputs[0]
    scale, bias, mean, var = (ctx.inp(node, i) for i in range(1, 5))
    std = ctx.add1("Add", [ctx.add1("Sqrt", [var]), ctx.scalar(node.attrs["eps"], xv, "eps")])
    k = ctx.unsqueeze_channels(ctx.add1("Div", [scale, std]), xv.rank)
    y = ctx.add1("Mul", [ctx.add1("Sub", [x, ctx.unsqueeze_channels(mean, xv.rank)]), k])
    ctx.add("Add", [y, ctx.unsqueeze_channels(bias, xv.rank)], [ctx.out(node)])


def _layer_norm(ctx, node):
    x, xv = ctx.inp(node, 0), node.inputs[0]
    axis = node.attrs["axis"] % xv.rank
    scale = ctx.inp(node, 1)
    if not scale:  # ONNX needs a scale: ones of the normalized shape
        norm = xv.shape[axis:]
        if all(isinstance(d, int) for d in norm):
            scale = ctx.const(np.ones(norm, xv.dtype.numpy), xv.dtype, "ones")
        else:
            one = ctx.helper.make_tensor("value", ctx.dtype(xv), [1], [1])
            scale = ctx.add1("ConstantOfShape", [ctx.shape_of(x, axis)], value=one)
    ctx.add("LayerNormalization", [x, scale, ctx.inp(node, 2)], [ctx.out(node)], axis=axis,
            epsilon=node.attrs["eps"])


def _group_norm(ctx, node):
    x, xv = ctx.inp(node, 0), node.inputs[0]
    g, eps = node.attrs["num_groups"], node.attrs["eps"]
    if ctx.opset >= 21:
        ctx.add("GroupNormalization", [x, ctx.inp(node, 1), ctx.inp(node, 2)], [ctx.out(node)],
                num_groups=g, epsilon=eps)
        return
    # (N, C, *s) -> (N, G, C/G * prod(s)), instance-normalize the groups, reshape back, affine
    xg = ctx.add1("Reshape", [x, ctx.ints([0, g, -1], "grouped")])
    ones = ctx.const(np.ones(g, xv.dtype.numpy), xv.dtype, "ones")
    zeros = ctx.const(np.zeros(g, xv.dtype.numpy), xv.dtype, "zeros")
    yg = ctx.add1("InstanceNormalization", [xg, ones, zeros], epsilon=eps)
    y = ctx.add1("Reshape", [yg, ctx.shape_of(x)])
    y = ctx.add1("Mul", [y, ctx.unsqueeze_channels(ctx.inp(node, 1), xv.rank)])
    ctx.add("Add", [y, ctx.unsqueeze_channels(ctx.inp(node, 2), xv.rank)], [ctx.out(node)])


def _lrn(ctx, node):
    x, xv = ctx.inp(node, 0), node.inputs[0]
    a = node.attrs
    size = a["size"]
    if size % 2 == 0:  # ONNX Runtime's LRN takes odd sizes only: sum the squares with an AveragePool
        lo = (size - 1) // 2
        sq = ctx.add1("Unsqueeze", [ctx.add1("Mul", [x, x]), ctx.ints([1], "axes")])  # (N, 1, C, *s)
        rest = xv.rank - 2
        mean = ctx.add1("AveragePool", [sq], kernel_shape=[size] + [1] * rest,
                        pads=[lo] + [0] * rest + [size - 1 - lo] + [0] * rest, count_include_pad=1)
        mean = ctx.add1("Squeeze", [mean, ctx.ints([1], "axes")])
        den = ctx.add1("Add", [ctx.add1("Mul", [mean, ctx.scalar(a["alpha"], xv, "alpha")]),
                               ctx.scalar(a["bias"], xv, "bias")])
        ctx.add("Div", [x, ctx.add1("Pow", [den, ctx.scalar(a["beta"], xv, "beta")])], [ctx.out(node)])
        return
    attrs = dict(size=size, alpha=a["alpha"], beta=a["beta"], bias=a["bias"])
    if xv.rank == 4:
        ctx.add("LRN", [x], [ctx.out(node)], **attrs)
        return
    x4 = ctx.add1("Reshape", [x, ctx.ints([0, 0, -1, 1], "as_4d")])  # ONNX Runtime's LRN wants 4-d
    ctx.add("Reshape", [ctx.add1("LRN", [x4], **attrs), ctx.shape_of(x)], [ctx.out(node)])


def _linear(ctx, node):
    x, w, b = ctx.inp(node, 0), ctx.inp(node, 1), ctx.inp(node, 2)
    if node.inputs[0].rank == 2:
        ctx.add("Gemm", [x, w, b], [ctx.out(node)], transB=1)
        return
    y = ctx.add1("MatMul", [x, ctx.add1("Transpose", [w], perm=[1, 0])], None if b else ctx.out(node))
    if b:
        ctx.add("Add", [y, b], [ctx.out(node)])


def _embedding(ctx, node):
    ids = ctx.inp(node, 0)
    if node.inputs[0].dtype not in (DType.int32, DType.int64):
        ids = ctx.add1("Cast", [ids], to=ctx.dtype(DType.int64))
    ctx.add("Gather", [ctx.inp(node, 1), ids], [ctx.out(node)], axis=0)


def _attention(ctx, node):
    q, k, v, mask = (ctx.inp(node, i) for i in range(4))
    qv, kv, vv = node.inputs[:3]
    scale, causal = node.attrs["scale"], node.attrs["causal"]
    if ctx.opset >= 23 and qv.rank == 4 and qv.shape[:2] == kv.shape[:2] == vv.shape[:2]:
        ctx.add("Attention", [q, k, v, mask], [ctx.out(node)], scale=scale, is_causal=int(causal))
        return
    perm = list(range(qv.rank))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    s = ctx.add1("MatMul", [q, ctx.add1("Transpose", [k], perm=perm)])
    e = qv.shape[-1]
    if scale is not None or isinstance(e, int):
        s = ctx.add1("Mul", [s, ctx.scalar(scale if scale is not None else 1 / math.sqrt(e), qv, "scale")])
    else:  # feature size known at run time only
        fe = ctx.add1("Cast", [ctx.shape_of(q, -1)], to=ctx.dtype(qv))
        s = ctx.add1("Div", [s, ctx.add1("Sqrt", [fe])])
    neg_inf = None
    if mask:
        if node.inputs[3].dtype == DType.bool:
            neg_inf = ctx.scalar(-np.inf, qv, "neg_inf")
            s = ctx.add1("Where", [mask, s, neg_inf])
        else:
            s = ctx.add1("Add", [s, mask])
    if causal:
        keep = _causal_keep(ctx, qv, kv, q, k)
        s = ctx.add1("Where", [keep, s, neg_inf or ctx.scalar(-np.inf, qv, "neg_inf")])
    p = ctx.add1("Softmax", [s], axis=-1)
    ctx.add("MatMul", [p, v], [ctx.out(node)])


def _causal_keep(ctx, qv, kv, q: str, k: str) -> str:
    """bool (L, S): row i attends to columns j <= i (top-left aligned, like numpy.tril)."""
    L, S = qv.shape[-2], kv.shape[-2]
    if isinstance(L, int) and isinstance(S, int):
        return ctx.const(np.tril(np.ones((L, S), bool)), "bool", "causal")
    zero, one = ctx.const(np.int64(0), "int64", "zero"), ctx.const(np.int64(1), "int64", "one")

    def arange(x: str, axis: int) -> str:
        n = ctx.add1("Squeeze", [ctx.shape_of(x, axis, axis + 1), ctx.ints([0], "axes")])
        return ctx.add1("Range", [zero, n, one])
    rows = ctx.add1("Unsqueeze", [arange(q, -2), ctx.ints([1], "axes")])
    return ctx.add1("GreaterOrEqual", [rows, arange(k, -2)])


# ---- reductions -------------------------------------------------------------------------------
def _reduce(op_type: str) -> ExportFn:
    def fn(ctx, node):
        axes, keep = node.attrs["axes"], int(node.attrs["keepdims"])
        x = ctx.inp(node, 0)
        if axes is None:
            ctx.add(op_type, [x], [ctx.out(node)], keepdims=keep)
        elif ctx.opset >= 18 or op_type == "ReduceSum":
            ctx.add(op_type, [x, ctx.ints(axes, "axes")], [ctx.out(node)], keepdims=keep)
        else:
            ctx.add(op_type, [x], [ctx.out(node)], axes=list(axes), keepdims=keep)
    return fn


def _arg(op_type: str) -> ExportFn:
    def fn(ctx, node):
        i64 = ctx.add1(op_type, [ctx.inp(node, 0)], axis=node.attrs["axis"], keepdims=int(node.attrs["keepdims"]))
        ctx.add("Cast", [i64], [ctx.out(node)], to=ctx.dtype(DType.int32))
    return fn


def _topk(ctx, node):
    a = node.attrs
    idx64 = ctx.fresh("indices_int64")
    ctx.add("TopK", [ctx.inp(node, 0), ctx.ints([a["k"]], "k")], [ctx.out(node, 0), idx64],
            axis=a["axis"], largest=int(a["largest"]), sorted=1)
    ctx.add("Cast", [idx64], [ctx.out(node, 1)], to=ctx.dtype(DType.int32))


# ---- shape ops --------------------------------------------------------------------------------
def _reshape(ctx, node):
    ctx.add("Reshape", [ctx.inp(node, 0), ctx.ints(node.attrs["shape"], "shape")], [ctx.out(node)])


def _flatten(ctx, node):
    xv = node.inputs[0]
    if xv.rank == 0:
        dims: list = [1]
    else:
        s, e = node.attrs["start"] % xv.rank, node.attrs["end"] % xv.rank
        merged = xv.shape[s:e + 1]
        mid = math.prod(merged) if all(isinstance(d, int) for d in merged) else -1  # static: works for 0-size batches
        dims = [("dim", i) for i in range(s)] + [mid] + [("dim", j) for j in range(e + 1, xv.rank)]
    ctx.add("Reshape", [ctx.inp(node, 0), ctx.target_shape(xv, dims)], [ctx.out(node)])


def _with_ints(op_type: str, attr: str, hint: str, fix: Callable = lambda n, v: v, **extra: Any) -> ExportFn:
    """Op whose integer list attribute became an int64 input in ONNX (Squeeze axes, Tile repeats ...)."""
    def fn(ctx, node):
        ctx.add(op_type, [ctx.inp(node, 0), ctx.ints(fix(node, node.attrs[attr]), hint)],
                [o.name for o in node.outputs], **{k: v(node.attrs) for k, v in extra.items()})
    return fn


def _slice(ctx, node):
    a = node.attrs
    n = len(a["starts"])
    axes = a["axes"] if a["axes"] is not None else range(n)
    steps = a["steps"] if a["steps"] is not None else [1] * n
    ctx.add("Slice", [ctx.inp(node, 0), ctx.ints(a["starts"], "starts"), ctx.ints(a["ends"], "ends"),
                      ctx.ints(axes, "axes"), ctx.ints(steps, "steps")], [ctx.out(node)])


def _gather(ctx, node):
    idx = ctx.inp(node, 1)
    if node.inputs[1].dtype not in (DType.int32, DType.int64):
        idx = ctx.add1("Cast", [idx], to=ctx.dtype(DType.int64))
    ctx.add("Gather", [ctx.inp(node, 0), idx], [ctx.out(node)], axis=node.attrs["axis"])


def _pad(ctx, node):
    a, xv = node.attrs, node.inputs[0]
    value = ""
    if a["mode"] == "constant":
        v = a["value"]
        value = ctx.scalar(v if xv.dtype.is_float else (bool(v) if xv.dtype == DType.bool else int(v)), xv, "value")
    ctx.add("Pad", [ctx.inp(node, 0), ctx.ints(a["pads"], "pads"), value], [ctx.out(node)], mode=a["mode"])


def _resize(ctx, node):
    a, xv = node.attrs, node.inputs[0]
    x = ctx.inp(node, 0)
    attrs = dict(mode=a["mode"], coordinate_transformation_mode=a["coordinate_transformation"])
    if a["mode"] == "nearest":
        attrs["nearest_mode"] = a["nearest_mode"]
    if a["scales"] is not None:
        scales = ctx.const(np.asarray(a["scales"], np.float32), "float32", "scales")
        ctx.add("Resize", [x, "", scales], [ctx.out(node)], **attrs)
        return
    spatial = list(a["sizes"][2:])
    if ctx.opset >= 18:
        ctx.add("Resize", [x, "", "", ctx.ints(spatial, "sizes")], [ctx.out(node)],
                axes=list(range(2, xv.rank)), **attrs)
        return
    if all(isinstance(d, int) for d in xv.shape[:2]):
        sizes = ctx.ints(list(xv.shape[:2]) + spatial, "sizes")
    else:  # opset 17 wants every dim: read N, C at run time
        sizes = ctx.add1("Concat", [ctx.shape_of(x, 0, 2), ctx.ints(spatial, "sizes")], axis=0)
    ctx.add("Resize", [x, "", "", sizes], [ctx.out(node)], **attrs)


def _expand(ctx, node):
    shape = [1 if s == -1 else s for s in node.attrs["shape"]]  # 1 keeps the input dim (bidirectional)
    ctx.add("Expand", [ctx.inp(node, 0), ctx.ints(shape, "shape")], [ctx.out(node)])


def _expand_as(ctx, node):
    like = node.inputs[1]
    ctx.add("Expand", [ctx.inp(node, 0), ctx.shape_of(ctx.inp(node, 1), 0, like.rank)], [ctx.out(node)])


def _split(ctx, node):
    ctx.add("Split", [ctx.inp(node, 0), ctx.ints(node.attrs["sizes"], "sizes")],
            [o.name for o in node.outputs], axis=node.attrs["axis"])


TABLE.update({
    # sources
    "parameter": _parameter, "constant": _constant,
    # activations
    "relu": _simple("Relu"), "leaky_relu": _simple("LeakyRelu", alpha=_a("alpha")),
    "elu": _simple("Elu", alpha=_a("alpha")), "selu": _simple("Selu", alpha=_a("alpha"), gamma=_a("gamma")),
    "sigmoid": _simple("Sigmoid"), "tanh": _simple("Tanh"),
    "hard_sigmoid": _simple("HardSigmoid", alpha=_a("alpha"), beta=_a("beta")),
    "gelu": _gelu, "silu": _silu, "hard_swish": _simple("HardSwish"), "mish": _mish,
    "softplus": _simple("Softplus"), "softsign": _simple("Softsign"), "clip": _clip, "prelu": _prelu,
    "softmax": _simple("Softmax", axis=_a("axis")), "log_softmax": _simple("LogSoftmax", axis=_a("axis")),
    # unary math
    "neg": _simple("Neg"), "abs": _simple("Abs"), "exp": _simple("Exp"), "log": _simple("Log"),
    "sqrt": _simple("Sqrt"), "rsqrt": _rsqrt, "reciprocal": _simple("Reciprocal"), "erf": _simple("Erf"),
    "cast": _cast, "identity": _simple("Identity"), "dropout": _dropout,
    # binary, comparisons, logic
    "add": _simple("Add"), "sub": _simple("Sub"), "mul": _simple("Mul"), "div": _simple("Div"),
    "pow": _simple("Pow"), "maximum": _simple("Max"), "minimum": _simple("Min"),
    "equal": _simple("Equal"), "not_equal": _not_equal, "less": _simple("Less"),
    "less_equal": _simple("LessOrEqual"), "greater": _simple("Greater"),
    "greater_equal": _simple("GreaterOrEqual"), "logical_and": _simple("And"), "logical_or": _simple("Or"),
    "logical_not": _simple("Not"), "where": _simple("Where"),
    # nn
    "conv": _conv, "conv_transpose": _conv_transpose, "max_pool": _pool("MaxPool"),
    "avg_pool": _pool("AveragePool"), "global_avg_pool": _simple("GlobalAveragePool"),
    "global_max_pool": _simple("GlobalMaxPool"),
    "batch_norm": _batch_norm, "layer_norm": _layer_norm,
    "group_norm": _group_norm, "instance_norm": _simple("InstanceNormalization", epsilon=_a("eps")),
    "lrn": _lrn, "linear": _linear, "matmul": _simple("MatMul"), "embedding": _embedding,
    "attention": _attention,
    # reductions
    "reduce_sum": _reduce("ReduceSum"), "reduce_mean": _reduce("ReduceMean"), "reduce_max": _reduce("ReduceMax"),
    "reduce_min": _reduce("ReduceMin"), "reduce_prod": _reduce("ReduceProd"),
    "argmax": _arg("ArgMax"), "argmin": _arg("ArgMin"), "topk": _topk,
    # shape
    "reshape": _reshape, "flatten": _flatten, "transpose": _simple("Transpose", perm=lambda a: list(a["perm"])),
    "squeeze": _with_ints("Squeeze", "axes", "axes"), "unsqueeze": _with_ints("Unsqueeze", "axes", "axes"),
    "concat": _simple("Concat", axis=_a("axis")), "split": _split, "slice": _slice, "gather": _gather,
    "pad": _pad, "resize": _resize, "tile": _with_ints("Tile", "repeats", "repeats"), "expand": _expand, "expand_as": _expand_as,
})

from . import qdq as _qdq  # noqa: E402,F401  (registers quantize_linear / dequantize_linear)
