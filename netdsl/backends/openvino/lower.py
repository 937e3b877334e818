"""Lowering a netdsl Graph to an OpenVINO ``ov.Model``: ONE table {op name: function}.

Each lowering function is ``fn(ctx, node, *inputs) -> Output | list[Output]`` where ``inputs`` are
OpenVINO outputs (``None`` for omitted optional inputs), ``node`` is the netdsl
:class:`~netdsl.graph.Node` (read ``node.attrs``) and ``ctx`` is a :class:`Lowering` that gives
``ctx.ops`` (``openvino.opset16``), typed constants and names. Plugins add functions with
:func:`register_lowering`.

OpenVINO does no implicit type promotion (a Python float becomes an f64 constant), so every scalar
is made with :meth:`Lowering.scalar` in the element type of the tensor it combines with.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from ...dtypes import DType
from ...errors import NetdslError, UnsupportedOpError
from ...graph import Graph, Node
from ...ops.nn import bn_std
from ...shapes import Sym
from ..base import import_engine

LoweringFn = Callable[..., Any]
LOWERINGS: dict[str, LoweringFn] = {}

INSTALL_HINT = "pip install openvino  (or: pip install netdsl[openvino])"


def import_openvino() -> tuple[Any, Any]:
    """``(openvino, openvino.opset16)``, or BackendUnavailable saying what to install."""
    ov = import_engine("openvino", "the OpenVINO backend", INSTALL_HINT)
    return ov, import_engine("openvino.opset16", "the OpenVINO backend", INSTALL_HINT)


def register_lowering(op: str, fn: Optional[LoweringFn] = None, *, replace: bool = False) -> Any:
    """Add the OpenVINO lowering of op ``op`` (usable as a decorator). Plugins call this."""
    def deco(f: LoweringFn) -> LoweringFn:
        if op in LOWERINGS and not replace:
            raise ValueError(f"OpenVINO lowering for op '{op}' already exists (pass replace=True)")
        LOWERINGS[op] = f
        return f
    return deco(fn) if fn is not None else deco


def supported_ops() -> list[str]:
    """Names of the ops this backend lowers (does not import openvino)."""
    return sorted(LOWERINGS)


_OV_TYPES = {DType.float32: "f32", DType.float16: "f16", DType.bfloat16: "bf16", DType.float64: "f64",
             DType.int8: "i8", DType.uint8: "u8", DType.int32: "i32", DType.int64: "i64", DType.bool: "boolean"}


def ov_type(dtype: DType) -> Any:
    ov, _ = import_openvino()
    return getattr(ov.Type, _OV_TYPES[dtype])


def partial_shape(shape: Sequence[Any], dynamic: Optional[dict] = None) -> Any:
    """An ``ov.PartialShape``: ints stay static, symbols become dynamic (ranged via ``dynamic``)."""
    ov, _ = import_openvino()
    dims = []
    for d in shape:
        if isinstance(d, int):
            dims.append(ov.Dimension(d))
            continue
        rng = None
        if isinstance(d, Sym) and len(d.symbols) == 1 and dynamic:
            rng = dynamic.get(d.symbols[0]) if d.terms[0][1] == 1 and d.coeff == 1 else None
        if rng is None:
            dims.append(ov.Dimension(-1))
        elif isinstance(rng, int):
            dims.append(ov.Dimension(rng))
        else:
            lo, hi = rng
            dims.append(ov.Dimension(int(lo), int(hi)))
    return ov.PartialShape(dims)


class Lowering:
    """State of one lowering: the opset, the current node, helpers for constants and names."""

    def __init__(self, graph: Graph, dynamic: Optional[dict] = None):
        self.ov, self.ops = import_openvino()
        self.graph = graph
        self.dynamic = dict(dynamic or {})
        self.node: Optional[Node] = None
        self._k = 0
        self.params: list = []        # the model's Parameters (a lowering may swap one, see preprocess)
        self.model_hooks: list = []   # fn(ov.Model) -> ov.Model, applied once the model is built

    # ---- names -------------------------------------------------------------------------------
    def name(self, suffix: str = "") -> str:
        """A friendly name for a helper node of the current layer (``layer/suffix``)."""
        base = self.node.name if self.node is not None else "netdsl"
        self._k += 1
        return f"{base}/{suffix or 'op'}{self._k}"

    # ---- constants ---------------------------------------------------------------------------
    def const(self, value: Any, dtype: Any = None, name: Optional[str] = None) -> Any:
        """A Constant holding ``value`` (float64 becomes f32 unless ``dtype`` says otherwise).

        Weights memory-mapped from a checkpoint are shared, not copied (the compile reads the file's
        pages; see :func:`netdsl.weights.base.shares_file_pages`). Anything else is copied exactly
        once, into an array only this Constant references (the caller may change its array later)."""
        from ...weights.base import shares_file_pages
        arr = np.asarray(value)
        want = np.dtype(dtype) if dtype is not None else (np.dtype(np.float32) if arr.dtype == np.float64 else arr.dtype)
        if not (arr.dtype == want and arr.flags.c_contiguous and arr.flags.writeable and shares_file_pages(arr)):
            arr = np.array(arr, dtype=want, order="C", copy=True)
        # the Constant class itself: opset constant()'s argument checking costs more than the node
        c = self.ov.op.Constant(arr, shared_memory=arr.ndim > 0)
        c.set_friendly_name(name or self.name("const"))
        return c.output(0)

    def i64(self, values: Any) -> Any:
        return self.const(np.asarray(values, np.int64), np.int64)

    def scalar(self, value: float, like: Any, shape: tuple = ()) -> Any:
        """A constant in the element type of ``like`` (an OpenVINO output)."""
        et = like.get_element_type()
        ov = self.ov
        if et == ov.Type.bf16:
            return self.ops.convert(self.const(np.full(shape, value, np.float32)), "bf16").output(0)
        np_dt = {ov.Type.f32: np.float32, ov.Type.f16: np.float16, ov.Type.f64: np.float64,
                 ov.Type.i32: np.int32, ov.Type.i64: np.int64, ov.Type.i8: np.int8, ov.Type.u8: np.uint8,
                 ov.Type.boolean: np.bool_}.get(et, np.float32)
        return self.const(np.full(shape, value, np_dt), np_dt)

    def typed(self, arr: np.ndarray, dtype: DType) -> Any:
        """A constant holding ``arr`` with netdsl dtype ``dtype`` (bf16 via a Convert)."""
        if dtype is DType.bfloat16:
            return self.ops.convert(self.const(arr.astype(np.float32)), "bf16").output(0)
        return self.const(arr, dtype.numpy)

    # ---- shape helpers -----------------------------------------------------------------------
    def rank(self, x: Any) -> int:
        return x.get_partial_shape().rank.get_length()

    def shape_of(self, x: Any) -> Any:
        return self.ops.shape_of(x, "i64").output(0)

    def dims(self, x: Any, start: int, stop: int) -> Any:
        """``shape(x)[start:stop]`` as an i64 tensor."""
        return self.ops.slice(self.shape_of(x), self.i64([start]), self.i64([stop]), self.i64([1])).output(0)

    def channel_shape(self, v: Any, rank: int) -> Any:
        """Reshape a per-channel vector (C,) to (1, C, 1, ...) for broadcasting over (N, C, *spatial)."""
        return self.ops.reshape(v, self.i64([1, -1] + [1] * (rank - 2)), False).output(0)


def lower(graph: Graph, dynamic: Optional[dict] = None, keep_f32: Any = ()) -> Any:
    """Lower ``graph`` to an ``ov.Model`` (friendly names = layer names; tensor names = DSL names).
    Layers named in ``keep_f32`` are marked to stay in f32 under bf16/f16 inference (see precision.py)."""
    from ...ops import get_op

    graph.validate()  # before the engine is imported: a network error needs no engine
    ctx = Lowering(graph, dynamic)
    ov, ops = ctx.ov, ctx.ops
    env: dict[int, Any] = {}
    params = ctx.params
    for v in graph.inputs:
        p = ops.parameter(partial_shape(v.shape, dynamic),
                          ov.Type.f32 if v.dtype is DType.bfloat16 else ov_type(v.dtype), name=v.name)
        p.output(0).get_tensor().set_names({v.name})
        params.append(p)
        out = p.output(0)
        if v.dtype is DType.bfloat16:
            out = ops.convert(out, "bf16", name=f"{v.name}/to_bf16").output(0)
        env[id(v)] = out
    for node in graph.nodes:
        fn = LOWERINGS.get(node.op)
        if fn is None:  # not a lowering path: plugin ops (tests/plugins) and unknown ones
            opdef = get_op(node.op)
            fn = getattr(opdef.plugin, "openvino", None) if opdef.plugin is not None else None
        if fn is None:
            raise UnsupportedOpError(
                f"OpenVINO backend: no lowering for op '{node.op}' (layer '{node.name}'"
                f"{', ' + node.location if node.location else ''}). Add one with "
                f"netdsl.backends.openvino.register_lowering('{node.op}', fn), or declare the op as a "
                "plugin with an OpenVINO implementation (see netdsl.plugins).")
        ctx.node = node
        args = [None if v is None else env[id(v)] for v in node.inputs]
        before = {a.get_node().get_name() for a in args if a is not None}
        try:
            res = fn(ctx, node, *args)
        except NetdslError:  # not a lowering path
            raise
        except Exception as e:  # not a lowering path: an engine error, named (layer, op, shapes, user's line)
            shapes = ", ".join("None" if a is None else f"{a.get_element_type().get_type_name()}"
                               f"{a.get_partial_shape()}" for a in args)
            raise NetdslError(f"OpenVINO backend: lowering layer '{node.name}' ({node.op}"
                              f"{', ' + node.location if node.location else ''}) failed with inputs "
                              f"[{shapes}]: {type(e).__name__}: {e}") from e
        outs = list(res) if isinstance(res, (list, tuple)) else [res]
        if len(outs) != len(node.outputs):
            raise NetdslError(f"OpenVINO lowering of '{node.op}' returned {len(outs)} outputs for layer "
                              f"'{node.name}', expected {len(node.outputs)}")
        for v, o in zip(node.outputs, outs):
            if hasattr(o, "output") and not hasattr(o, "get_node"):  # not a lowering path: a plugin returned
                o = o.output(0)  # a Node, not an Output
            n = o.get_node()
            if n.get_name() not in before:  # not a pass-through: name the node after the layer
                n.set_friendly_name(node.name if len(node.outputs) == 1 else node.name)
            o.get_tensor().add_names({v.name})
            env[id(v)] = o
        if node.name in keep_f32:
            from .precision import mark_layer
            mark_layer([env[id(v)] for v in node.outputs], before)
    results = []
    for v in graph.outputs:
        o = env[id(v)]
        is_param = o.get_node().get_type_name() == "Parameter"
        if v.dtype is DType.bfloat16 or is_param:  # bf16: NumPy has none; Parameter->Result loses names
            t = o.get_tensor()
            t.set_names(t.get_names() - {v.name})
            o = (ops.convert(o, "f32", name=f"{v.name}/to_f32") if v.dtype is DType.bfloat16
                 else ops.identity(o, name=v.name)).output(0)
        r = ops.result(o, name=v.name)
        if v.producer is not None and v.producer.name in keep_f32:  # an island's result leaves in f32
            from .precision import PRECISE
            r.get_rt_info()[PRECISE] = ""
        results.append(r)
    model = ov.Model(results, params, graph.name)
    for hook in ctx.model_hooks:
        model = hook(model)
    for i, v in enumerate(graph.outputs):  # output tensor names = DSL output names (exactly)
        model.output(i).get_tensor().add_names({v.name})
    _record_interface(model, graph)
    return model


def _record_interface(model: Any, graph: Graph) -> None:
    """Keep the DSL interface (names, dtypes, symbolic shapes) in the model's rt_info (saved in IR)."""
    model.set_rt_info(graph.name, ["netdsl", "name"])
    model.set_rt_info(";".join(f"{v.name}:{v.dtype}:{','.join(str(d) for d in v.shape)}" for v in graph.inputs),
                      ["netdsl", "inputs"])
    model.set_rt_info(";".join(f"{v.name}:{v.dtype}:{','.join(str(d) for d in v.shape)}" for v in graph.outputs),
                      ["netdsl", "outputs"])


# =============================================================================================
# The table
# =============================================================================================
L = register_lowering


# ---- sources --------------------------------------------------------------------------------
@L("parameter")
def _parameter(ctx: Lowering, node: Node) -> Any:
    p = ctx.graph.params[node.attrs["name"]]
    try:
        arr = p.value()
    except NetdslError as e:  # not a lowering path
        raise NetdslError(f"OpenVINO backend: layer '{node.name}': {e}") from None
    return ctx.typed(arr, p.dtype)


@L("constant")
def _constant(ctx: Lowering, node: Node) -> Any:
    return ctx.typed(np.asarray(node.attrs["value"]), node.outputs[0].dtype)


@L("identity")
@L("dropout")
def _identity(ctx: Lowering, node: Node, x: Any) -> Any:
    return x


# ---- activations ----------------------------------------------------------------------------
def _simple(ov_name: str) -> LoweringFn:
    def fn(ctx: Lowering, node: Node, x: Any) -> Any:
        return getattr(ctx.ops, ov_name)(x).output(0)
    return fn


for _op, _ov in {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "silu": "swish", "hard_swish": "hswish",
                 "mish": "mish", "softplus": "softplus", "softsign": "softsign", "neg": "negative", "abs": "abs",
                 "exp": "exp", "log": "log", "sqrt": "sqrt", "erf": "erf", "logical_not": "logical_not"}.items():
    register_lowering(_op, _simple(_ov))


@L("leaky_relu")
def _leaky_relu(ctx: Lowering, node: Node, x: Any) -> Any:
    return ctx.ops.prelu(x, ctx.scalar(node.attrs["alpha"], x, (1,))).output(0)


@L("elu")
def _elu(ctx: Lowering, node: Node, x: Any) -> Any:
    return ctx.ops.elu(x, node.attrs["alpha"]).output(0)


@L("selu")
def _selu(ctx: Lowering, node: Node, x: Any) -> Any:
    a = node.attrs
    return ctx.ops.selu(x, ctx.scalar(a["alpha"], x, (1,)), ctx.scalar(a["gamma"], x, (1,))).output(0)


@L("hard_sigmoid")
def _hard_sigmoid(ctx: Lowering, node: Node, x: Any) -> Any:
    a = node.attrs
    return ctx.ops.hard_sigmoid(x, ctx.scalar(a["alpha"], x), ctx.scalar(a["beta"], x)).output(0)


@L("gelu")
def _gelu(ctx: Lowering, node: Node, x: Any) -> Any:
    return ctx.ops.gelu(x, "tanh" if node.attrs["approximate"] == "tanh" else "erf").output(0)


@L("clip")
def _clip(ctx: Lowering, node: Node, x: Any) -> Any:
    lo, hi = node.attrs["min"], node.attrs["max"]
    if lo is not None:
        x = ctx.ops.maximum(x, ctx.scalar(lo, x)).output(0)
    if hi is not None:
        x = ctx.ops.minimum(x, ctx.scalar(hi, x)).output(0)
    return x


@L("prelu")
def _prelu(ctx: Lowering, node: Node, x: Any, slope: Any) -> Any:
    r = ctx.rank(x)
    if r > 2:  # slope per channel on axis 1
        slope = ctx.channel_shape(slope, r)
    return ctx.ops.prelu(x, slope).output(0)


@L("softmax")
def _softmax(ctx: Lowering, node: Node, x: Any) -> Any:
    """Softmax-1 (a non-negative axis): the CPU plugin turns Softmax-8 into it, and that copy loses a
    float32 island's mark (the island's softmax then ran in bf16)."""
    import openvino.opset1 as ops1
    return ops1.softmax(x, node.attrs["axis"] % len(node.inputs[0].shape)).output(0)


@L("log_softmax")
def _log_softmax(ctx: Lowering, node: Node, x: Any) -> Any:
    return ctx.ops.log_softmax(x, node.attrs["axis"]).output(0)


# ---- unary / binary math ----------------------------------------------------------------------
@L("rsqrt")
def _rsqrt(ctx: Lowering, node: Node, x: Any) -> Any:
    return ctx.ops.divide(ctx.scalar(1, x), ctx.ops.sqrt(x)).output(0)


@L("reciprocal")
def _reciprocal(ctx: Lowering, node: Node, x: Any) -> Any:
    return ctx.ops.divide(ctx.scalar(1, x), x).output(0)


def _binary(ov_name: str) -> LoweringFn:
    def fn(ctx: Lowering, node: Node, a: Any, b: Any) -> Any:
        return getattr(ctx.ops, ov_name)(a, b).output(0)
    return fn


for _op, _ov in {"add": "add", "sub": "subtract", "mul": "multiply", "pow": "power", "maximum": "maximum",
                 "minimum": "minimum", "equal": "equal", "not_equal": "not_equal", "less": "less",
                 "less_equal": "less_equal", "greater": "greater", "greater_equal": "greater_equal",
                 "logical_and": "logical_and", "logical_or": "logical_or"}.items():
    register_lowering(_op, _binary(_ov))


@L("div")
def _div(ctx: Lowering, node: Node, a: Any, b: Any) -> Any:
    if node.outputs[0].dtype.is_int:
        # OpenVINO's integer Divide floors; netdsl truncates (C-style): (a - a mod b) / b is exact
        a = ctx.ops.subtract(a, ctx.ops.mod(a, b)).output(0)
    return ctx.ops.divide(a, b).output(0)


@L("where")
def _where(ctx: Lowering, node: Node, cond: Any, a: Any, b: Any) -> Any:
    return ctx.ops.select(cond, a, b).output(0)


@L("cast")
def _cast(ctx: Lowering, node: Node, x: Any) -> Any:
    dt = node.attrs["dtype"]
    src = node.inputs[0].dtype
    if src.is_float and dt.is_int:  # truncate toward zero explicitly (engines round differently)
        x = ctx.ops.multiply(ctx.ops.sign(x), ctx.ops.floor(ctx.ops.abs(x))).output(0)
    if src is DType.bool and dt.is_float:
        x = ctx.ops.convert(x, "u8").output(0)
    if dt is DType.bfloat16 and src is DType.float32:
        # OpenVINO drops f32->bf16->f32 Convert pairs when it computes in f32: round to bf16's 8
        # significant bits explicitly (Veltkamp split, round to nearest); overflow keeps x
        ops = ctx.ops
        y = ops.multiply(x, ctx.scalar(65537.0, x))
        hi = ops.subtract(y, ops.subtract(y, x))
        x = ops.select(ops.is_finite(y), hi, x).output(0)
    return ctx.ops.convert(x, ov_type(dt)).output(0)


# ---- convolution / pooling ------------------------------------------------------------------------
def _spatial(node: Node, nd: int) -> tuple:
    a = node.attrs
    strides = list(a["strides"]) or [1] * nd
    dil = list(a["dilations"]) or [1] * nd
    pads = list(a["pads"]) or [0] * (2 * nd)
    return strides, dil, pads[:nd], pads[nd:]


def _auto_pad(node: Node) -> str:
    """OpenVINO's auto_pad: 'same_upper' / 'same_lower' (TensorFlow's SAME, sized at run time) or 'explicit'."""
    mode = node.attrs.get("auto_pad", "notset")
    return "explicit" if mode == "notset" else mode


def _add_bias(ctx: Lowering, y: Any, b: Optional[Any], rank: int) -> Any:
    if b is None:
        return y
    return ctx.ops.add(y, ctx.channel_shape(b, rank)).output(0)


@L("conv")
def _conv(ctx: Lowering, node: Node, x: Any, w: Any, b: Optional[Any] = None) -> Any:
    rank = node.inputs[0].rank
    nd = rank - 2
    s, d, pb, pe = _spatial(node, nd)
    g = node.attrs["groups"]
    if g == 1:
        y = ctx.ops.convolution(x, w, s, pb, pe, d, _auto_pad(node))
    else:
        wshape = node.inputs[1].shape  # (O, C/g, *k) -> (g, O/g, C/g, *k)
        w = ctx.ops.reshape(w, ctx.i64([g, wshape[0] // g, *wshape[1:]]), False)
        y = ctx.ops.group_convolution(x, w, s, pb, pe, d, _auto_pad(node))
    return _add_bias(ctx, y.output(0), b, rank)


@L("conv_transpose")
def _conv_transpose(ctx: Lowering, node: Node, x: Any, w: Any, b: Optional[Any] = None) -> Any:
    rank = node.inputs[0].rank
    nd = rank - 2
    s, d, pb, pe = _spatial(node, nd)
    op_ = list(node.attrs["output_padding"]) or [0] * nd
    g = node.attrs["groups"]
    if g == 1:
        y = ctx.ops.convolution_backprop_data(x, w, s, pads_begin=pb, pads_end=pe, dilations=d,
                                              output_padding=op_)
    else:
        wshape = node.inputs[1].shape  # (C_in, O/g, *k) -> (g, C_in/g, O/g, *k)
        w = ctx.ops.reshape(w, ctx.i64([g, wshape[0] // g, *wshape[1:]]), False)
        y = ctx.ops.group_convolution_backprop_data(x, w, s, pads_begin=pb, pads_end=pe, dilations=d,
                                                    output_padding=op_)
    return _add_bias(ctx, y.output(0), b, rank)


def _pool_attrs(node: Node, nd: int) -> tuple:
    a = node.attrs
    k = list(a["kernel"])
    s = list(a["strides"]) or k
    pads = list(a["pads"]) or [0] * (2 * nd)
    return k, s, pads[:nd], pads[nd:], ("ceil_torch" if a["ceil_mode"] else "floor")


@L("max_pool")
def _max_pool(ctx: Lowering, node: Node, x: Any) -> Any:
    nd = node.inputs[0].rank - 2
    k, s, pb, pe, rt = _pool_attrs(node, nd)
    # MaxPool has two outputs (values, indices): the values are output 0
    return ctx.ops.max_pool(x, s, [1] * nd, pb, pe, k, rounding_type=rt, auto_pad=_auto_pad(node)).output(0)


@L("avg_pool")
def _avg_pool(ctx: Lowering, node: Node, x: Any) -> Any:
    nd = node.inputs[0].rank - 2
    k, s, pb, pe, rt = _pool_attrs(node, nd)
    exclude = not node.attrs["count_include_pad"]
    if node.attrs["ceil_mode"] and not exclude:
        # OpenVINO counts the ceil-mode overhang in the divisor; netdsl (like PyTorch) counts only the
        # declared padding: make that padding real zeros and exclude the (implicit) overhang
        if any(pb) or any(pe):
            zeros = [0, 0]
            x = ctx.ops.pad(x, ctx.i64(zeros + pb), ctx.i64(zeros + pe), "constant", ctx.scalar(0, x)).output(0)
        pb, pe, exclude = [0] * nd, [0] * nd, True
    # dilations must be explicit: opset16 avg_pool without them segfaults in compile (OpenVINO 2026.4)
    y = ctx.ops.avg_pool(x, s, pb, pe, k, exclude, rounding_type=rt, auto_pad=_auto_pad(node),
                         dilations=[1] * nd).output(0)
    out = node.outputs[0].shape[2:]
    if node.attrs["ceil_mode"] and all(isinstance(d, int) for d in out):  # windows starting in the end pad
        y = ctx.ops.slice(y, ctx.i64([0] * nd), ctx.i64(list(out)), ctx.i64([1] * nd), ctx.i64(list(range(2, 2 + nd))))
        y = y.output(0)
    return y


@L("global_avg_pool")
def _global_avg_pool(ctx: Lowering, node: Node, x: Any) -> Any:
    return ctx.ops.reduce_mean(x, ctx.i64(list(range(2, node.inputs[0].rank))), True).output(0)


@L("global_max_pool")
def _global_max_pool(ctx: Lowering, node: Node, x: Any) -> Any:
    return ctx.ops.reduce_max(x, ctx.i64(list(range(2, node.inputs[0].rank))), True).output(0)


# ---- normalization -------------------------------------------------------------------------------
@L("batch_norm")
def _batch_norm(ctx: Lowering, node: Node, x: Any, scale: Any, bias: Any, mean: Any, var: Any) -> Any:
    eps = node.attrs["eps"]
    outside = node.attrs["eps_mode"] == "outside_sqrt"
    folded = _fold_batch_norm(ctx, node, eps)
    rank = node.inputs[0].rank
    if folded is not None:  # weights known: y = x * k + c with k, c computed once in float64
        k, c = folded
        dt = node.inputs[0].dtype
        y = ctx.ops.multiply(x, ctx.channel_shape(ctx.typed(k, dt), rank))
        return ctx.ops.add(y, ctx.channel_shape(ctx.typed(c, dt), rank)).output(0)
    if not outside:
        return ctx.ops.batch_norm_inference(x, scale, bias, mean, var, eps).output(0)
    # statistics known only at run time, eps outside the square root: (x - mean) / (sqrt(var) + eps) * scale + bias
    ops = ctx.ops
    std = ops.add(ops.sqrt(var), ctx.scalar(eps, var))
    k = ops.divide(scale, std)
    y = ops.multiply(ops.subtract(x, ctx.channel_shape(mean, rank)), ctx.channel_shape(k.output(0), rank))
    return ops.add(y, ctx.channel_shape(bias, rank)).output(0)


def _fold_batch_norm(ctx: Lowering, node: Node, eps: float) -> Optional[tuple]:
    vals = []
    for v in node.inputs[1:]:
        p = v.producer
        if p is None or p.op not in ("parameter", "constant"):
            return None
        arr = ctx.graph.params[p.attrs["name"]].value() if p.op == "parameter" else p.attrs["value"]
        vals.append(np.asarray(arr, np.float64))
    scale, bias, mean, var = vals
    k = scale / bn_std(var, eps, node.attrs["eps_mode"])
    return k, bias - mean * k


def _mvn(ctx: Lowering, x: Any, axes: list, eps: float) -> Any:
    return ctx.ops.mvn(x, ctx.i64(axes), True, eps, "inside_sqrt").output(0)


@L("layer_norm")
def _layer_norm(ctx: Lowering, node: Node, x: Any, scale: Optional[Any] = None, bias: Optional[Any] = None) -> Any:
    r = node.inputs[0].rank
    y = _mvn(ctx, x, list(range(node.attrs["axis"] % r, r)), node.attrs["eps"])
    if scale is not None:
        y = ctx.ops.multiply(y, scale).output(0)
    if bias is not None:
        y = ctx.ops.add(y, bias).output(0)
    return y


@L("group_norm")
def _group_norm(ctx: Lowering, node: Node, x: Any, scale: Any, bias: Any) -> Any:
    return ctx.ops.group_normalization(x, scale, bias, node.attrs["num_groups"], node.attrs["eps"]).output(0)


@L("instance_norm")
def _instance_norm(ctx: Lowering, node: Node, x: Any, scale: Any, bias: Any) -> Any:
    r = node.inputs[0].rank
    y = _mvn(ctx, x, list(range(2, r)), node.attrs["eps"])
    y = ctx.ops.multiply(y, ctx.channel_shape(scale, r))
    return ctx.ops.add(y, ctx.channel_shape(bias, r)).output(0)


@L("lrn")
def _lrn(ctx: Lowering, node: Node, x: Any) -> Any:
    a = node.attrs
    size = a["size"]
    # OpenVINO's LRN disagrees with the ONNX/PyTorch formula (seen: size 4; size 5 at alpha=0.5): sum the
    # window explicitly, (size-1)//2 channels before and the rest after
    ops, r = ctx.ops, node.inputs[0].rank
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    sq = ops.multiply(x, x)
    zeros = [0] * (r - 2)
    padded = ops.pad(sq, ctx.i64([0, lo] + zeros), ctx.i64([0, hi] + zeros), "constant", ctx.scalar(0, x))
    c = ctx.dims(x, 1, 2)
    total = None
    for i in range(size):
        part = ops.slice(padded, ctx.i64([i]), ops.add(c, ctx.i64([i])), ctx.i64([1]), ctx.i64([1]))
        total = part if total is None else ops.add(total, part)
    den = ops.add(ctx.scalar(a["bias"], x), ops.multiply(ctx.scalar(a["alpha"] / size, x), total))
    return ops.divide(x, ops.power(den, ctx.scalar(a["beta"], x))).output(0)


# ---- linear / matmul / embedding / attention -------------------------------------------------------
@L("linear")
def _linear(ctx: Lowering, node: Node, x: Any, w: Any, b: Optional[Any] = None) -> Any:
    y = ctx.ops.matmul(x, w, False, True).output(0)
    return y if b is None else ctx.ops.add(y, b).output(0)


@L("matmul")
def _matmul(ctx: Lowering, node: Node, a: Any, b: Any) -> Any:
    return ctx.ops.matmul(a, b, False, False).output(0)


@L("embedding")
def _embedding(ctx: Lowering, node: Node, ids: Any, table: Any) -> Any:
    return ctx.ops.gather(table, ids, ctx.i64(0)).output(0)


@L("attention")
def _attention(ctx: Lowering, node: Node, q: Any, k: Any, v: Any, mask: Optional[Any] = None) -> Any:
    ops = ctx.ops
    a = node.attrs
    qv = node.inputs[0]
    e = qv.shape[-1]
    scale = a["scale"] if a["scale"] is not None else (1 / np.sqrt(e) if isinstance(e, int) else None)
    causal = a["causal"]
    if causal and mask is not None:  # SDPA ignores the mask when causal: fold causality into the mask
        mask = _causal_mask(ctx, q, k, mask)
        causal = False
    rank = qv.rank
    if rank < 3:  # SDPA wants (..., L, E) with at least one batch dim
        q, k, v = (ops.unsqueeze(t, ctx.i64([0])).output(0) for t in (q, k, v))
        if mask is not None and len(mask.get_partial_shape()) >= 2:
            mask = ops.unsqueeze(mask, ctx.i64([0])).output(0)
    sc = ctx.scalar(scale, q) if scale is not None else None
    if sc is None:  # feature size is symbolic: 1/sqrt(E) at run time
        ed = ops.convert(ctx.dims(q, -1, 2 ** 62), q.get_element_type())
        sc = ops.divide(ctx.scalar(1, q), ops.sqrt(ops.squeeze(ed, ctx.i64([0])))).output(0)
    y = ops.scaled_dot_product_attention(q, k, v, mask, sc, causal).output(0)
    if rank < 3:
        y = ops.squeeze(y, ctx.i64([0])).output(0)
    return y


def _causal_mask(ctx: Lowering, q: Any, k: Any, mask: Any) -> Any:
    """Combine a user mask with the lower-triangular causal mask (as bool or additive)."""
    ops = ctx.ops
    L_ = ops.squeeze(ctx.dims(q, -2, -1), ctx.i64([0]))
    S_ = ops.squeeze(ctx.dims(k, -2, -1), ctx.i64([0]))
    rows = ops.unsqueeze(ops.range(ctx.i64(0), L_, ctx.i64(1), "i64"), ctx.i64([1]))
    cols = ops.unsqueeze(ops.range(ctx.i64(0), S_, ctx.i64(1), "i64"), ctx.i64([0]))
    keep = ops.greater_equal(rows, cols).output(0)
    if mask.get_element_type() == ctx.ov.Type.boolean:
        return ops.logical_and(mask, keep).output(0)
    neg = ctx.scalar(-np.inf, mask)
    return ops.select(keep, mask, neg).output(0)


# ---- reductions ----------------------------------------------------------------------------------
def _reduce(ov_name: str) -> LoweringFn:
    def fn(ctx: Lowering, node: Node, x: Any) -> Any:
        r = node.inputs[0].rank
        axes = node.attrs["axes"]
        axes = list(range(r)) if axes is None else [a % r for a in axes]
        return getattr(ctx.ops, ov_name)(x, ctx.i64(axes), node.attrs["keepdims"]).output(0)
    return fn


for _op in ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod"):
    register_lowering(_op, _reduce(_op))


def _arg(mode: str) -> LoweringFn:
    def fn(ctx: Lowering, node: Node, x: Any) -> Any:
        axis = node.attrs["axis"] % node.inputs[0].rank
        t = ctx.ops.topk(x, ctx.i64(1), axis, mode, "value", "i32", stable=True)
        idx = t.output(1)
        if not node.attrs["keepdims"]:
            idx = ctx.ops.squeeze(idx, ctx.i64([axis])).output(0)
        return idx
    return fn


register_lowering("argmax", _arg("max"))
register_lowering("argmin", _arg("min"))


@L("topk")
def _topk(ctx: Lowering, node: Node, x: Any) -> Any:
    a = node.attrs
    axis = a["axis"] % node.inputs[0].rank
    t = ctx.ops.topk(x, ctx.i64(a["k"]), axis, "max" if a["largest"] else "min", "value", "i32", stable=True)
    return [t.output(0), t.output(1)]


# ---- shape ops ------------------------------------------------------------------------------------
@L("reshape")
def _reshape(ctx: Lowering, node: Node, x: Any) -> Any:
    return ctx.ops.reshape(x, ctx.i64(list(node.attrs["shape"])), True).output(0)


@L("flatten")
def _flatten(ctx: Lowering, node: Node, x: Any) -> Any:
    shape = node.inputs[0].shape
    r = len(shape)
    if r == 0:
        return ctx.ops.reshape(x, ctx.i64([1]), False).output(0)
    s, e = node.attrs["start"] % r, node.attrs["end"] % r
    tail = shape[e + 1:]
    if all(isinstance(d, int) for d in tail):
        target = ctx.i64([0] * s + [-1] + list(tail))
    else:  # dynamic trailing dims: build the target shape at run time
        parts = [ctx.dims(x, 0, s)] if s else []
        parts += [ctx.i64([-1]), ctx.dims(x, e + 1, r)]
        target = ctx.ops.concat(parts, 0).output(0)
        return ctx.ops.reshape(x, target, False).output(0)
    return ctx.ops.reshape(x, target, True).output(0)


@L("transpose")
def _transpose(ctx: Lowering, node: Node, x: Any) -> Any:
    return ctx.ops.transpose(x, ctx.i64(list(node.attrs["perm"]))).output(0)


@L("squeeze")
def _squeeze(ctx: Lowering, node: Node, x: Any) -> Any:
    r = node.inputs[0].rank
    return ctx.ops.squeeze(x, ctx.i64(sorted({a % r for a in node.attrs["axes"]}))).output(0)


@L("unsqueeze")
def _unsqueeze(ctx: Lowering, node: Node, x: Any) -> Any:
    r = node.outputs[0].rank
    return ctx.ops.unsqueeze(x, ctx.i64(sorted(a % r for a in node.attrs["axes"]))).output(0)


@L("concat")
def _concat(ctx: Lowering, node: Node, *xs: Any) -> Any:
    return ctx.ops.concat(list(xs), node.attrs["axis"] % node.inputs[0].rank).output(0)


@L("split")
def _split(ctx: Lowering, node: Node, x: Any) -> Any:
    axis = node.attrs["axis"] % node.inputs[0].rank
    sizes = list(node.attrs["sizes"])
    if len(sizes) == 1:
        return [x]
    s = ctx.ops.variadic_split(x, ctx.i64(axis), ctx.i64(sizes))
    return [s.output(i) for i in range(len(sizes))]


@L("slice")
def _slice(ctx: Lowering, node: Node, x: Any) -> Any:
    a = node.attrs
    n = len(a["starts"])
    r = node.inputs[0].rank
    axes = [ax % r for ax in (a["axes"] if a["axes"] is not None else range(n))]
    steps = list(a["steps"]) if a["steps"] is not None else [1] * n
    big = 2 ** 62
    ends = [max(min(e, big), -big) for e in a["ends"]]
    return ctx.ops.slice(x, ctx.i64(list(a["starts"])), ctx.i64(ends), ctx.i64(steps), ctx.i64(axes)).output(0)


@L("gather")
def _gather(ctx: Lowering, node: Node, data: Any, indices: Any) -> Any:
    return ctx.ops.gather(data, indices, ctx.i64(node.attrs["axis"] % node.inputs[0].rank)).output(0)


@L("pad")
def _pad(ctx: Lowering, node: Node, x: Any) -> Any:
    a = node.attrs
    r = node.inputs[0].rank
    pads = list(a["pads"])
    mode = {"constant": "constant", "reflect": "reflect", "edge": "edge"}[a["mode"]]
    value = ctx.scalar(a["value"], x) if mode == "constant" else None
    return ctx.ops.pad(x, ctx.i64(pads[:r]), ctx.i64(pads[r:]), mode, value).output(0)


@L("resize")
def _resize(ctx: Lowering, node: Node, x: Any) -> Any:
    a = node.attrs
    r = node.inputs[0].rank
    axes = ctx.i64(list(range(2, r)))
    if a["scales"] is not None:
        target, calc = ctx.const(np.asarray(a["scales"][2:], np.float32)), "scales"
    else:
        target, calc = ctx.i64(list(a["sizes"][2:])), "sizes"
    mode = "nearest" if a["mode"] == "nearest" else "linear_onnx"
    return ctx.ops.interpolate(x, target, mode, calc, coordinate_transformation_mode=a["coordinate_transformation"],
                               nearest_mode=a["nearest_mode"], axes=axes).output(0)


@L("tile")
def _tile(ctx: Lowering, node: Node, x: Any) -> Any:
    return ctx.ops.tile(x, ctx.i64(list(node.attrs["repeats"]))).output(0)


@L("expand_as")
def _expand_as(ctx: Lowering, node: Node, x: Any, like: Any) -> Any:
    return ctx.ops.broadcast(x, ctx.ops.shape_of(like, "i64"), broadcast_spec="BIDIRECTIONAL").output(0)


@L("expand")
def _expand(ctx: Lowering, node: Node, x: Any) -> Any:
    target = [1 if s == -1 else s for s in node.attrs["shape"]]  # 1 keeps the input dim (bidirectional)
    return ctx.ops.broadcast(x, ctx.i64(target), broadcast_spec="BIDIRECTIONAL").output(0)

from . import qdq as _qdq  # noqa: E402,F401  (registers quantize_linear / dequantize_linear)
