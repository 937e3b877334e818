"""Read a built TensorRT INetworkDefinition back and evaluate it in NumPy.

This interprets *TensorRT's* layer semantics (convolution, shuffle, slice modes, normalization
groups, ...) from what TensorRT reports about each layer (its type, parameters and weights), and
shares no code with netdsl's lowering or reference: it is how a network is proved right on a
machine where no engine can run. It works on any network, including the ones TensorRT's ONNX
parser makes.

Float tensors are computed in float64 and rounded to the tensor's type (float16/bfloat16) after
each layer, so a reduced-precision network is evaluated at its precision.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ...errors import NetdslError


@dataclass
class LayerInfo:
    """One layer as TensorRT reports it."""

    index: int
    name: str
    type: str
    inputs: list      # tensor names (None for an unset optional input)
    outputs: list     # tensor names
    shapes: list      # TensorRT's inferred output shapes (-1: dynamic)
    dtypes: list      # output data types (names)
    params: dict = field(default_factory=dict)


def _cls(trt: Any, layer_type: Any) -> Any:
    name = "".join(w.capitalize() for w in layer_type.name.split("_"))
    special = {"Softmax": "ISoftMaxLayer", "Lrn": "ILRNLayer", "Topk": "ITopKLayer",
               "ParametricRelu": "IParametricReLULayer", "Elementwise": "IElementWiseLayer",
               "Einsum": "IEinsumLayer", "Nms": "INMSLayer", "ConditionalInput": "IIfConditionalInputLayer",
               "ConditionalOutput": "IIfConditionalOutputLayer"}
    cname = special.get(name, f"I{name}Layer")
    return getattr(trt, cname, None)


def concrete(trt: Any, layer: Any) -> Any:
    """Set ``layer.__class__`` to its concrete class by ``layer.type`` (what the Python API needs)."""
    c = _cls(trt, layer.type)
    if c is not None:
        layer.__class__ = c
    return layer


_PARAMS = {
    "CONVOLUTION": ("num_output_maps", "kernel_size_nd", "stride_nd", "dilation_nd", "pre_padding",
                    "post_padding", "padding_mode", "num_groups"),
    "DECONVOLUTION": ("num_output_maps", "kernel_size_nd", "stride_nd", "dilation_nd", "pre_padding",
                      "post_padding", "padding_mode", "num_groups"),
    "POOLING": ("type", "window_size_nd", "stride_nd", "pre_padding", "post_padding", "padding_mode",
                "average_count_excludes_padding", "blend_factor"),
    "ACTIVATION": ("type", "alpha", "beta"),
    "ELEMENTWISE": ("op",), "UNARY": ("op",), "REDUCE": ("op", "axes", "keep_dims"),
    "SOFTMAX": ("axes",), "CONCATENATION": ("axis",),
    "SHUFFLE": ("first_transpose", "reshape_dims", "second_transpose", "zero_is_placeholder"),
    "SLICE": ("start", "shape", "stride", "mode", "axes"), "GATHER": ("axis", "mode", "num_elementwise_dims"),
    "MATRIX_MULTIPLY": ("op0", "op1"), "TOPK": ("op", "k", "axes"), "CAST": ("to_type",),
    "NORMALIZATION": ("axes", "epsilon", "num_groups", "is_v2"), "LRN": ("window_size", "alpha", "beta", "k"),
    "SCALE": ("mode", "channel_axis"), "PADDING": ("pre_padding_nd", "post_padding_nd"),
    "RESIZE": ("shape", "scales", "resize_mode", "coordinate_transformation", "selector_for_single_pixel",
               "nearest_rounding", "cubic_coeff", "exclude_outside"),
    "QUANTIZE": ("axis", "to_type"), "DEQUANTIZE": ("axis", "to_type"),
    "CONSTANT": ("shape",), "FILL": ("shape", "operation", "alpha", "beta"), "EINSUM": ("equation",),
    "SQUEEZE": (), "UNSQUEEZE": (), "IDENTITY": (), "SELECT": (), "SHAPE": (), "PARAMETRIC_RELU": (),
}


def _val(v: Any) -> Any:
    if hasattr(v, "name") and hasattr(v, "value") and not isinstance(v, (int, float, str)):
        return v.name
    if v is None or isinstance(v, (int, float, bool, str)):
        return v
    try:
        return tuple(v)
    except TypeError:
        return v


def read(net: Any, trt: Any) -> list[LayerInfo]:
    """Every layer: type, parameters, input/output tensor names, TensorRT-inferred shapes."""
    out = []
    for i in range(net.num_layers):
        layer = net.get_layer(i)
        tname = layer.type.name
        concrete(trt, layer)
        params = {}
        for p in _PARAMS.get(tname, ()):
            if tname == "SLICE" and p == "shape" and layer.num_inputs > 2 and layer.get_input(2) is not None:
                continue  # a run-time size: reading it only makes TensorRT print a warning
            try:
                params[p] = _val(getattr(layer, p))
            except Exception:  # not readable in this TensorRT version
                pass
        ins = [(None if layer.get_input(j) is None else layer.get_input(j).name) for j in range(layer.num_inputs)]
        outs, shapes, dts = [], [], []
        for j in range(layer.num_outputs):
            t = layer.get_output(j)
            outs.append(t.name)
            try:
                shapes.append(tuple(t.shape))
            except Exception:
                shapes.append(None)
            dts.append(t.dtype.name)
        out.append(LayerInfo(i, layer.name, tname, ins, outs, shapes, dts, params))
    return out


def layer_counts(net: Any, trt: Any) -> dict[str, int]:
    """Number of layers per type."""
    counts: dict[str, int] = {}
    for i in range(net.num_layers):
        t = net.get_layer(i).type.name
        counts[t] = counts.get(t, 0) + 1
    return counts


# ---- evaluation ---------------------------------------------------------------------------------
def _round_bf16(x: np.ndarray) -> np.ndarray:
    shape = np.shape(x)
    b = np.array(x, np.float32).reshape(-1).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    return b.astype(np.uint32).view(np.float32).astype(np.float64).reshape(shape)


def _to_type(x: Any, dt: str) -> np.ndarray:
    x = np.asarray(x)
    if dt == "FLOAT":
        return x.astype(np.float32).astype(np.float64) if x.dtype != np.float64 else x.astype(np.float32).astype(np.float64)
    if dt == "HALF":
        return x.astype(np.float16).astype(np.float64)
    if dt == "BF16":
        return _round_bf16(x.astype(np.float64))
    if dt in ("INT32", "INT64", "INT8", "UINT8"):
        np_dt = {"INT32": np.int32, "INT64": np.int64, "INT8": np.int8, "UINT8": np.uint8}[dt]
        if x.dtype.kind == "f":
            x = np.trunc(x)
        return x.astype(np_dt)
    if dt == "BOOL":
        return x.astype(bool)
    raise NetdslError(f"inspect: tensor type {dt} is not supported")


def _weights(w: Any, dt_hint: Optional[str] = None) -> Optional[np.ndarray]:
    if w is None:
        return None
    try:
        a = np.asarray(w)
    except Exception:
        return None
    if a.dtype == object or a.size == 0:
        return None
    return a


def _mask_axes(mask: int, rank: int) -> tuple:
    return tuple(i for i in range(rank) if mask >> i & 1)


def _conv(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], stride, dil, pre, post, groups) -> np.ndarray:
    """Direct convolution: one GEMM per kernel offset (shift-and-accumulate)."""
    nd = x.ndim - 2
    x = np.pad(x, [(0, 0), (0, 0)] + [(pre[i], post[i]) for i in range(nd)])
    n, c = x.shape[:2]
    o = w.shape[0]
    ks = w.shape[2:]
    out = [(x.shape[2 + i] - dil[i] * (ks[i] - 1) - 1) // stride[i] + 1 for i in range(nd)]
    cg, og = c // groups, o // groups
    y = np.zeros((n, o, *out))
    for off in np.ndindex(*ks):
        sl = tuple(slice(off[i] * dil[i], off[i] * dil[i] + (out[i] - 1) * stride[i] + 1, stride[i]) for i in range(nd))
        patch = x[(slice(None), slice(None)) + sl]
        for g in range(groups):
            wg = w[(slice(g * og, (g + 1) * og), slice(None)) + off]  # (og, cg)
            y[:, g * og:(g + 1) * og] += np.tensordot(wg, patch[:, g * cg:(g + 1) * cg], axes=([1], [1])).swapaxes(0, 1)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * nd)
    return y


def _deconv(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], stride, dil, pre, post, groups) -> np.ndarray:
    """Transposed convolution by scattering each input pixel's contribution, then cropping the padding."""
    nd = x.ndim - 2
    n, c = x.shape[:2]
    og = w.shape[1]
    ks = w.shape[2:]
    cg = c // groups
    full = [(x.shape[2 + i] - 1) * stride[i] + dil[i] * (ks[i] - 1) + 1 for i in range(nd)]
    y = np.zeros((n, og * groups, *full))
    for off in np.ndindex(*ks):
        sl = tuple(slice(off[i] * dil[i], off[i] * dil[i] + (x.shape[2 + i] - 1) * stride[i] + 1, stride[i])
                   for i in range(nd))
        for g in range(groups):
            wg = w[(slice(g * cg, (g + 1) * cg), slice(None)) + off]  # (cg, og)
            contrib = np.tensordot(x[:, g * cg:(g + 1) * cg], wg, axes=([1], [0]))  # n, *in, og
            contrib = np.moveaxis(contrib, -1, 1)
            y[(slice(None), slice(g * og, (g + 1) * og)) + sl] += contrib
    crop = tuple(slice(pre[i], full[i] - post[i]) for i in range(nd))
    y = y[(slice(None), slice(None)) + crop]
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * nd)
    return y


def _same_pads(mode: str, ins, ks, stride, dil):
    pre, post = [], []
    for d, k, s, di in zip(ins, ks, stride, dil):
        out = -(-d // s)
        total = max(0, (out - 1) * s + di * (k - 1) + 1 - d)
        lo = total // 2 if mode == "SAME_UPPER" else total - total // 2
        pre.append(lo)
        post.append(total - lo)
    return pre, post


def _pool(x, kind, window, stride, pre, post, mode, exclude_pad, blend) -> np.ndarray:
    nd = len(window)
    sp = x.shape[-nd:]
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        pre, post = _same_pads(mode, sp, window, stride, (1,) * nd)
    up = mode in ("EXPLICIT_ROUND_UP", "CAFFE_ROUND_UP")
    out = []
    for i in range(nd):
        span = sp[i] + pre[i] + post[i] - window[i]
        o = (-(-span // stride[i]) if up else span // stride[i]) + 1
        out.append(o)
    extra = [max(0, (out[i] - 1) * stride[i] + window[i] - sp[i] - pre[i] - post[i]) for i in range(nd)]
    lead = [(0, 0)] * (x.ndim - nd)
    padw = lead + [(pre[i], post[i] + extra[i]) for i in range(nd)]
    xmax = np.pad(x, padw, constant_values=-np.inf)
    xsum = np.pad(x, padw)
    # valid element count: inside the input, or (counting padding) inside the declared padding
    inside = np.pad(np.ones(sp), [(pre[i], post[i] + extra[i]) for i in range(nd)])
    declared = np.pad(np.ones([sp[i] + pre[i] + post[i] for i in range(nd)]), [(0, extra[i]) for i in range(nd)])
    cnt_src = inside if exclude_pad else declared
    mx = np.full(x.shape[:-nd] + tuple(out), -np.inf)
    sm = np.zeros(x.shape[:-nd] + tuple(out))
    cnt = np.zeros(tuple(out))
    for off in np.ndindex(*window):
        sl = tuple(slice(off[i], off[i] + (out[i] - 1) * stride[i] + 1, stride[i]) for i in range(nd))
        lsl = (Ellipsis,) + sl
        mx = np.maximum(mx, xmax[lsl])
        sm = sm + xsum[lsl]
        cnt = cnt + cnt_src[sl]
    avg = sm / cnt
    if kind == "MAX":
        return mx
    if kind == "AVERAGE":
        return avg
    return blend * mx + (1 - blend) * avg


def _sample_index(idx: np.ndarray, d: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Source index per output index for a slice mode; second array marks out-of-range (FILL)."""
    oob = (idx < 0) | (idx >= d)
    if mode == "WRAP":
        return np.mod(idx, d), np.zeros_like(oob)
    if mode == "CLAMP":
        return np.clip(idx, 0, d - 1), np.zeros_like(oob)
    if mode == "REFLECT":
        if d == 1:
            return np.zeros_like(idx), np.zeros_like(oob)
        period = 2 * (d - 1)
        m = np.mod(idx, period)
        return np.where(m >= d, period - m, m), np.zeros_like(oob)
    if mode == "FILL":
        return np.clip(idx, 0, d - 1), oob
    if oob.any():
        raise NetdslError(f"inspect: slice reads out of bounds (index range {idx.min()}..{idx.max()}, dim {d})")
    return idx, oob


def _resize_src(out_len: int, in_len: int, scale: float, ct: str, selector: str) -> np.ndarray:
    o = np.arange(out_len, dtype=np.float64)
    if out_len == 1 and selector == "UPPER":
        return np.zeros(1)
    if ct == "ALIGN_CORNERS":
        return o * (in_len - 1) / (out_len - 1) if out_len > 1 else np.zeros(1)
    if ct == "ASYMMETRIC":
        return o / scale
    return (o + 0.5) / scale - 0.5


def _resize(x, out_shape, scales, mode, ct, selector, rounding) -> np.ndarray:
    y = x
    for ax in range(x.ndim):
        in_len, out_len = x.shape[ax], out_shape[ax]
        scale = scales[ax] if scales else out_len / in_len
        if in_len == out_len and scale == 1:
            continue
        src = _resize_src(out_len, in_len, scale, ct, selector)
        if mode == "NEAREST":
            f = np.floor(src)
            frac = src - f
            idx = {"FLOOR": f, "CEIL": np.ceil(src), "HALF_DOWN": np.where(frac > 0.5, f + 1, f),
                   "HALF_UP": np.where(frac >= 0.5, f + 1, f)}[rounding]
            y = np.take(y, np.clip(idx, 0, in_len - 1).astype(np.int64), axis=ax)
        elif mode == "LINEAR":
            src = np.clip(src, 0, in_len - 1)
            lo = np.floor(src).astype(np.int64)
            hi = np.minimum(lo + 1, in_len - 1)
            shp = [1] * x.ndim
            shp[ax] = out_len
            wgt = (src - lo).reshape(shp)
            y = np.take(y, lo, axis=ax) * (1 - wgt) + np.take(y, hi, axis=ax) * wgt
        else:
            raise NetdslError(f"inspect: resize mode {mode} is not supported")
    return y


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


_ACT: dict[str, Callable] = {
    "RELU": lambda x, a, b: np.maximum(x, 0),
    "SIGMOID": lambda x, a, b: 1 / (1 + np.exp(-x)),
    "TANH": lambda x, a, b: np.tanh(x),
    "LEAKY_RELU": lambda x, a, b: np.where(x >= 0, x, a * x),
    "ELU": lambda x, a, b: np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0))),
    "SELU": lambda x, a, b: b * np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0))),
    "SOFTSIGN": lambda x, a, b: x / (1 + np.abs(x)),
    "SOFTPLUS": lambda x, a, b: a * np.logaddexp(0, b * x),
    "CLIP": lambda x, a, b: np.clip(x, a, b),
    "HARD_SIGMOID": lambda x, a, b: np.clip(a * x + b, 0, 1),
    "SCALED_TANH": lambda x, a, b: a * np.tanh(b * x),
    "THRESHOLDED_RELU": lambda x, a, b: np.where(x > a, x, 0),
    "GELU_ERF": lambda x, a, b: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "GELU_TANH": lambda x, a, b: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
}

_UNARY: dict[str, Callable] = {
    "EXP": np.exp, "LOG": np.log, "SQRT": np.sqrt, "RECIP": lambda x: 1 / x, "ABS": np.abs, "NEG": np.negative,
    "SIN": np.sin, "COS": np.cos, "TAN": np.tan, "SINH": np.sinh, "COSH": np.cosh, "ASIN": np.arcsin,
    "ACOS": np.arccos, "ATAN": np.arctan, "ASINH": np.arcsinh, "ACOSH": np.arccosh, "ATANH": np.arctanh,
    "CEIL": np.ceil, "FLOOR": np.floor, "ERF": _erf, "NOT": np.logical_not, "SIGN": np.sign,
    "ROUND": np.round, "ISINF": np.isinf, "ISNAN": np.isnan,
}


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return np.trunc(a / b).astype(a.dtype)
    return a / b


_ELTWISE: dict[str, Callable] = {
    "SUM": np.add, "PROD": np.multiply, "MAX": np.maximum, "MIN": np.minimum, "SUB": np.subtract,
    "DIV": _div, "POW": np.power, "FLOOR_DIV": np.floor_divide, "AND": np.logical_and, "OR": np.logical_or,
    "XOR": np.logical_xor, "EQUAL": np.equal, "GREATER": np.greater, "LESS": np.less,
}

_REDUCE: dict[str, Callable] = {"SUM": np.sum, "PROD": np.prod, "MAX": np.max, "MIN": np.min, "AVG": np.mean}


class _Failed:
    """A value that could not be computed (e.g. in an untaken if-branch); raised only when used."""

    def __init__(self, error: Exception):
        self.error = error


class Evaluator:
    """Evaluates a TensorRT network layer by layer in NumPy."""

    def __init__(self, net: Any, trt: Any):
        self.net = net
        self.trt = trt
        self.env: dict[str, np.ndarray] = {}
        self.conditions: dict[str, bool] = {}

    def run(self, feeds: dict, keep: bool = False) -> dict[str, np.ndarray]:
        net = self.net
        env = self.env = {}
        for i in range(net.num_inputs):
            t = net.get_input(i)
            if t.name not in feeds:
                raise NetdslError(f"inspect: no value for network input '{t.name}'")
            env[t.name] = _to_type(feeds[t.name], t.dtype.name)
        for i in topological_order(net):
            layer = net.get_layer(i)
            ltype = layer.type.name
            concrete(self.trt, layer)
            ins = []
            for j in range(layer.num_inputs):
                t = layer.get_input(j)
                ins.append(None if t is None else env[t.name])
            fn = getattr(self, "_" + ltype.lower(), None)
            if fn is None:
                raise NetdslError(f"inspect: layer '{layer.name}' of type {ltype} is not supported")
            failed = next((a for a in ins if isinstance(a, _Failed)), None)
            if failed is not None and ltype != "CONDITIONAL_OUTPUT":
                outs = [failed] * layer.num_outputs  # inside a branch that may not be taken
            else:
                try:
                    outs = fn(layer, ins)
                except Exception as e:  # kept: only an error if a taken branch or an output needs it
                    err = e if isinstance(e, NetdslError) else NetdslError(
                        f"inspect: evaluating layer '{layer.name}' ({ltype}) failed: {type(e).__name__}: {e}")
                    outs = [_Failed(err)] * max(layer.num_outputs, 1)
            if not isinstance(outs, (list, tuple)):
                outs = [outs]
            for j in range(layer.num_outputs):
                t = layer.get_output(j)
                env[t.name] = outs[j] if isinstance(outs[j], _Failed) else _to_type(outs[j], t.dtype.name)
        res = {}
        for i in range(net.num_outputs):
            v = env[net.get_output(i).name]
            if isinstance(v, _Failed):
                raise v.error
            res[net.get_output(i).name] = v
        return res

    # -- conditionals: both branches are evaluated; the output layer picks one --
    def _condition(self, l: Any, ins: list) -> Any:
        self.conditions[l.conditional.name] = bool(np.asarray(ins[0]).reshape(()))
        return []

    def _conditional_input(self, l: Any, ins: list) -> Any:
        return ins[0]

    def _conditional_output(self, l: Any, ins: list) -> Any:
        v = ins[0] if self.conditions[l.conditional.name] else ins[1]
        if isinstance(v, _Failed):
            raise v.error
        return v

    # -- layers (one method per TensorRT LayerType, lower-cased) --
    def _constant(self, l: Any, ins: list) -> Any:
        w = _weights(l.weights)
        shape = tuple(l.shape)
        if w is None:  # bf16 weights cannot be viewed by NumPy: read them from the typed tensor
            raise NetdslError(f"inspect: cannot read the weights of constant '{l.name}'")
        return w.reshape(shape).astype(np.float64) if w.dtype.kind == "f" else w.reshape(shape)

    def _convolution(self, l: Any, ins: list) -> Any:
        x = ins[0]
        ks = tuple(l.kernel_size_nd)
        o = l.num_output_maps
        g = l.num_groups
        w = ins[1] if len(ins) > 1 and ins[1] is not None else _weights(l.kernel).reshape((o, x.shape[1] // g) + ks)
        b = ins[2] if len(ins) > 2 and ins[2] is not None else _weights(l.bias)
        nd = len(ks)
        stride, dil = tuple(l.stride_nd), tuple(l.dilation_nd)
        pre, post = tuple(l.pre_padding), tuple(l.post_padding)
        mode = l.padding_mode.name
        if mode.startswith("SAME"):
            pre, post = _same_pads(mode, x.shape[2:], ks, stride, dil)
        return _conv(x.astype(np.float64), np.asarray(w, np.float64), None if b is None else np.asarray(b, np.float64),
                     stride, dil, pre, post, g)

    def _deconvolution(self, l: Any, ins: list) -> Any:
        x = ins[0]
        ks = tuple(l.kernel_size_nd)
        g = l.num_groups
        o = l.num_output_maps
        w = ins[1] if len(ins) > 1 and ins[1] is not None else _weights(l.kernel).reshape((x.shape[1], o // g) + ks)
        b = ins[2] if len(ins) > 2 and ins[2] is not None else _weights(l.bias)
        stride, dil = tuple(l.stride_nd), tuple(l.dilation_nd)
        pre, post = tuple(l.pre_padding), tuple(l.post_padding)
        if l.padding_mode.name.startswith("SAME"):
            raise NetdslError(f"inspect: SAME padding of deconvolution '{l.name}' is not supported")
        return _deconv(x.astype(np.float64), np.asarray(w, np.float64), None if b is None else np.asarray(b, np.float64),
                       stride, dil, pre, post, g)

    def _pooling(self, l: Any, ins: list) -> Any:
        return _pool(ins[0].astype(np.float64), l.type.name, tuple(l.window_size_nd),
                     tuple(l.stride_nd), tuple(l.pre_padding), tuple(l.post_padding), l.padding_mode.name,
                     l.average_count_excludes_padding, l.blend_factor)

    def _activation(self, l: Any, ins: list) -> Any:
        return _ACT[l.type.name](ins[0].astype(np.float64), l.alpha, l.beta)

    def _unary(self, l: Any, ins: list) -> Any:
        return _UNARY[l.op.name](ins[0])

    def _elementwise(self, l: Any, ins: list) -> Any:
        a, b = ins
        if a.ndim != b.ndim:
            raise NetdslError(f"inspect: elementwise '{l.name}' inputs differ in rank {a.shape} vs {b.shape}")
        return _ELTWISE[l.op.name](a, b)

    def _softmax(self, l: Any, ins: list) -> Any:
        x = ins[0]
        ax = _mask_axes(l.axes, x.ndim)
        e = np.exp(x - x.max(axis=ax, keepdims=True))
        return e / e.sum(axis=ax, keepdims=True)

    def _reduce(self, l: Any, ins: list) -> Any:
        x = ins[0]
        ax = _mask_axes(l.axes, x.ndim)
        return _REDUCE[l.op.name](x, axis=ax, keepdims=l.keep_dims)

    def _concatenation(self, l: Any, ins: list) -> Any:
        return np.concatenate(ins, axis=l.axis)

    def _shuffle(self, l: Any, ins: list) -> Any:
        x = ins[0]
        perm1 = tuple(l.first_transpose)[:x.ndim]
        y = np.transpose(x, perm1)
        if len(ins) > 1 and ins[1] is not None:
            dims = [int(d) for d in ins[1]]
        else:
            rd = l.reshape_dims
            dims = None if rd is None else [int(d) for d in rd]
        if dims is not None:
            if l.zero_is_placeholder:
                dims = [y.shape[i] if d == 0 else d for i, d in enumerate(dims)]
            y = y.reshape(dims)
        perm2 = tuple(l.second_transpose)[:y.ndim]
        return np.transpose(y, perm2)

    def _slice(self, l: Any, ins: list) -> Any:
        x = ins[0]
        r = x.ndim
        start = list(ins[1]) if len(ins) > 1 and ins[1] is not None else list(l.start)
        size = list(ins[2]) if len(ins) > 2 and ins[2] is not None else list(l.shape)
        stride = list(ins[3]) if len(ins) > 3 and ins[3] is not None else list(l.stride)
        fill = ins[4] if len(ins) > 4 and ins[4] is not None else None
        axes = list(ins[5]) if len(ins) > 5 and ins[5] is not None else None
        if axes is None:
            try:
                a = l.axes
                axes = None if a is None or len(tuple(a)) in (0, r) and tuple(a) == tuple(range(r)) else list(a)
            except Exception:  # TensorRT without slice axes
                axes = None
        if axes is not None and len(axes) == 0:
            axes = None
        if axes is not None:  # start/size/stride given for these axes only
            full_s, full_n, full_st = [0] * r, list(x.shape), [1] * r
            for k, a in enumerate(axes):
                a = int(a) % r
                full_s[a], full_n[a], full_st[a] = start[k], size[k], stride[k]
            start, size, stride = full_s, full_n, full_st
        mode = l.mode.name
        y = x
        mask = np.zeros((1,) * r, bool)
        for ax in range(r):
            idx = int(start[ax]) + np.arange(int(size[ax])) * int(stride[ax])
            src, oob = _sample_index(idx, x.shape[ax], mode)
            y = np.take(y, src, axis=ax)
            shp = [1] * r
            shp[ax] = len(idx)
            mask = mask | oob.reshape(shp)
        if mode == "FILL":
            fv = 0 if fill is None else np.asarray(fill).reshape(())
            y = np.where(mask, fv, y)
        return y

    def _gather(self, l: Any, ins: list) -> Any:
        data, idx = ins
        mode = l.mode.name
        if mode == "DEFAULT":
            d = data.shape[l.axis]
            if idx.size and (idx.min() < 0 or idx.max() >= d):
                raise NetdslError(f"inspect: gather '{l.name}' index out of range [0, {d})")
            return np.take(data, idx.astype(np.int64), axis=l.axis)
        if mode == "ELEMENT":
            return np.take_along_axis(data, idx.astype(np.int64), axis=l.axis)
        raise NetdslError(f"inspect: gather mode {mode} is not supported")

    def _matrix_multiply(self, l: Any, ins: list) -> Any:
        a, b = ins
        if l.op0.name == "TRANSPOSE":
            a = np.swapaxes(a, -1, -2)
        if l.op1.name == "TRANSPOSE":
            b = np.swapaxes(b, -1, -2)
        if l.op0.name == "VECTOR" or l.op1.name == "VECTOR":
            return np.matmul(a, b)
        return np.matmul(a, b)

    def _topk(self, l: Any, ins: list) -> Any:
        x = ins[0]
        k = int(ins[1]) if len(ins) > 1 and ins[1] is not None else l.k
        (ax,) = _mask_axes(l.axes, x.ndim)
        key = -x if l.op.name == "MAX" else x
        idx = np.take(np.argsort(key, axis=ax, kind="stable"), np.arange(k), axis=ax)
        return [np.take_along_axis(x, idx, axis=ax), idx]

    def _cast(self, l: Any, ins: list) -> Any:
        return ins[0]  # conversion (float -> int truncates) happens when the output is typed

    def _identity(self, l: Any, ins: list) -> Any:
        return ins[0]

    def _qdq_params(self, l: Any, ins: list) -> tuple:
        """(scale, zero point) shaped to broadcast against the input: 0-d per tensor, else along axis."""
        x, s = ins[0], np.asarray(ins[1], np.float64)
        z = np.zeros_like(s) if len(ins) < 3 or ins[2] is None else np.asarray(ins[2], np.float64)
        if s.ndim > 1:
            raise NetdslError(f"inspect: layer '{l.name}': block quantization is not supported")
        if s.size > 1 or s.ndim == 1:
            shape = [1] * x.ndim
            shape[l.axis % x.ndim] = -1
            s, z = s.reshape(shape), z.reshape(shape)
        return s, z

    def _quantize(self, l: Any, ins: list) -> Any:
        """clamp(round half to even(x / scale) + zero point) to the output type's range."""
        s, z = self._qdq_params(l, ins)
        lo, hi = {"INT8": (-128, 127), "UINT8": (0, 255)}.get(l.get_output(0).dtype.name, (None, None))
        if lo is None:
            raise NetdslError(f"inspect: layer '{l.name}': quantization to {l.get_output(0).dtype.name}")
        return np.clip(np.rint(np.asarray(ins[0], np.float64) / s) + z, lo, hi)

    def _dequantize(self, l: Any, ins: list) -> Any:
        s, z = self._qdq_params(l, ins)
        return (np.asarray(ins[0], np.float64) - z) * s

    def _select(self, l: Any, ins: list) -> Any:
        c, a, b = ins
        return np.where(c.astype(bool), a, b)

    def _shape(self, l: Any, ins: list) -> Any:
        return np.array(ins[0].shape, np.int64)

    def _parametric_relu(self, l: Any, ins: list) -> Any:
        x, s = ins
        return np.where(x >= 0, x, x * s)

    def _scale(self, l: Any, ins: list) -> Any:
        x = ins[0]
        mode = l.mode.name
        ax = l.channel_axis
        shift, scale, power = (_weights(getattr(l, k)) for k in ("shift", "scale", "power"))

        def shaped(w: Optional[np.ndarray], default: float) -> Any:
            if w is None:
                return default
            w = w.astype(np.float64)
            if mode == "UNIFORM":
                return w.reshape(())
            if mode == "CHANNEL":
                shp = [1] * x.ndim
                shp[ax] = -1
                return w.reshape(shp)
            return w.reshape(x.shape[ax:])
        y = x * shaped(scale, 1.0) + shaped(shift, 0.0)
        p = shaped(power, 1.0)
        return y if isinstance(p, float) and p == 1.0 else np.power(y, p)

    def _normalization(self, l: Any, ins: list) -> Any:
        x, s, b = ins
        ax = _mask_axes(l.axes, x.ndim)
        g = l.num_groups
        eps = l.epsilon
        if g > 1:
            n, c = x.shape[:2]
            xg = x.reshape((n, g, c // g) + x.shape[2:])
            axg = tuple(range(2, xg.ndim))
            mu = xg.mean(axis=axg, keepdims=True)
            var = ((xg - mu) ** 2).mean(axis=axg, keepdims=True)
            yg = (xg - mu) / np.sqrt(var + eps)
            if getattr(l, "is_v2", False):  # add_normalization_v2: scale and bias per channel
                return yg.reshape(x.shape) * s + b
            sg = s.reshape((1, g) + (1,) * (xg.ndim - 2))
            bg = b.reshape((1, g) + (1,) * (xg.ndim - 2))
            return (yg * sg + bg).reshape(x.shape)
        mu = x.mean(axis=ax, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=ax, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * s + b

    def _lrn(self, l: Any, ins: list) -> Any:
        x = ins[0]
        n = l.window_size
        c = x.shape[1]
        sq = np.pad(x ** 2, [(0, 0), ((n - 1) // 2, n // 2)] + [(0, 0)] * (x.ndim - 2))
        s = sum(sq[:, i:i + c] for i in range(n))
        return x / (l.k + l.alpha / n * s) ** l.beta

    def _padding(self, l: Any, ins: list) -> Any:
        x = ins[0]
        pre, post = tuple(l.pre_padding_nd), tuple(l.post_padding_nd)
        nd = len(pre)
        lead = x.ndim - nd
        y = np.pad(x, [(0, 0)] * lead + [(max(p, 0), max(q, 0)) for p, q in zip(pre, post)])
        sl = tuple(slice(-p if p < 0 else 0, (y.shape[lead + i] + q) if q < 0 else None)
                   for i, (p, q) in enumerate(zip(pre, post)))
        return y[(slice(None),) * lead + sl]

    def _resize(self, l: Any, ins: list) -> Any:
        x = ins[0]
        scales = list(l.scales) if l.scales else None
        if len(ins) > 1 and ins[1] is not None:
            out = [int(d) for d in ins[1]]
            scales = None
        elif scales:
            out = [int(math.floor(d * s)) for d, s in zip(x.shape, scales)]
        else:
            out = list(l.shape)
        return _resize(x, out, scales, l.resize_mode.name, l.coordinate_transformation.name,
                       l.selector_for_single_pixel.name, l.nearest_rounding.name)

    def _squeeze(self, l: Any, ins: list) -> Any:
        return np.squeeze(ins[0], axis=tuple(int(a) % ins[0].ndim for a in np.atleast_1d(ins[1])))

    def _unsqueeze(self, l: Any, ins: list) -> Any:
        axes = [int(a) for a in np.atleast_1d(ins[1])]
        r = ins[0].ndim + len(axes)
        return np.expand_dims(ins[0], tuple(sorted(a % r for a in axes)))

    def _fill(self, l: Any, ins: list) -> Any:
        shape = [int(d) for d in ins[0]] if ins and ins[0] is not None else list(l.shape)
        op = l.operation.name
        alpha = ins[1] if len(ins) > 1 and ins[1] is not None else l.alpha
        beta = ins[2] if len(ins) > 2 and ins[2] is not None else l.beta
        if op != "LINSPACE":
            raise NetdslError(f"inspect: fill operation {op} is not deterministic / supported")
        out = np.full(shape, np.asarray(alpha, np.float64).reshape(-1)[0])
        delta = np.asarray(beta, np.float64).reshape(-1)
        for ax in range(len(shape)):
            shp = [1] * len(shape)
            shp[ax] = -1
            out = out + np.arange(shape[ax]).reshape(shp) * delta[ax if delta.size > 1 else 0]
        return out

    def _einsum(self, l: Any, ins: list) -> Any:
        return np.einsum(l.equation, *ins)

    def _plugin_v3(self, l: Any, ins: list) -> Any:
        from ...plugins.tensorrt_plugin import evaluate_plugin_layer  # the plugin's declared reference
        return evaluate_plugin_layer(l, ins, self.trt)


def topological_order(net: Any) -> list[int]:
    """Layer indices in an order where every layer follows the producers of its inputs."""
    produced = {net.get_input(i).name for i in range(net.num_inputs)}
    pending = list(range(net.num_layers))
    order: list[int] = []
    while pending:
        rest = []
        for i in pending:
            layer = net.get_layer(i)
            ins = [layer.get_input(j) for j in range(layer.num_inputs)]
            if all(t is None or t.name in produced for t in ins):
                order.append(i)
                produced.update(layer.get_output(j).name for j in range(layer.num_outputs))
            else:
                rest.append(i)
        if len(rest) == len(pending):
            raise NetdslError("inspect: the network has a cycle or an input no layer produces: "
                              + ", ".join(net.get_layer(i).name for i in rest[:5]))
        pending = rest
    return order


def evaluate(net: Any, feeds: dict, trt: Any = None) -> dict[str, np.ndarray]:
    """Outputs of a TensorRT network for these inputs, computed in NumPy from the network read back."""
    if trt is None:
        from ._trt import load
        trt = load()
    return Evaluator(net, trt).run(feeds)
