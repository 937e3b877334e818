"""Neural-network ops: convolution, pooling, normalization, linear/matmul, embedding, attention.

Layout is channels-first (N, C, *spatial). Convolution weights are (O, C/groups, *k); transposed
convolution weights are (C_in, O/groups, *k) (PyTorch's layouts). ``pads`` lists the spatial
begin pads then the end pads (ONNX order).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..dtypes import DType
from ..errors import ShapeError
from ..graph import TensorSpec
from ..shapes import Sym, affine, broadcast_shapes, fmt_shape, numel
from .registry import Attr, define, require_float, require_same_dtype


def spatial_attrs(nd: int, strides, dilations, pads):
    strides = tuple(strides) or (1,) * nd
    dilations = tuple(dilations) or (1,) * nd
    pads = tuple(pads) or (0,) * (2 * nd)
    return strides, dilations, pads


def _check_spatial(op, nd, strides, dilations, pads, kernel=None):
    if len(strides) != nd or len(dilations) != nd or len(pads) != 2 * nd:
        raise ShapeError(f"{op}: {nd}-d op needs {nd} strides/dilations and {2 * nd} pads, got "
                         f"strides={strides} dilations={dilations} pads={pads}")
    if min(strides) < 1 or min(dilations) < 1 or min(pads) < 0:
        raise ShapeError(f"{op}: strides/dilations must be >= 1 and pads >= 0")
    if kernel is not None and (len(kernel) != nd or min(kernel) < 1):
        raise ShapeError(f"{op}: kernel {kernel} must have {nd} sizes >= 1")


AUTO_PADS = ("notset", "same_upper", "same_lower")


def same_pads(sizes, kernel, strides, dilations, auto_pad: str) -> tuple:
    """TensorFlow's SAME padding for known ``sizes``: ``ceil(H / s)`` outputs, total padding
    ``max((ceil(H / s) - 1) * s + (k - 1) * d + 1 - H, 0)``, the odd one at the end (``same_upper``) or at
    the beginning (``same_lower``); returns pads (begins then ends)."""
    begins, ends = [], []
    for h, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((-(-h // s) - 1) * s + (k - 1) * d + 1 - h, 0)
        small = total // 2
        begins.append(small if auto_pad == "same_upper" else total - small)
        ends.append(total - begins[-1])
    return tuple(begins + ends)


def _check_auto_pad(op, auto_pad, pads, ceil_mode=False):
    if auto_pad != "notset" and (any(pads) or ceil_mode):
        raise ShapeError(f"{op}: auto_pad={auto_pad!r} computes the padding; pads {tuple(pads)} and ceil_mode "
                         "must not be given with it")


def conv_out_dim(d, k, s, dil, pb, pe, ceil=False):
    eff = dil * (k - 1) + 1
    return affine(d, pb + pe - eff, s, 1, ceil=ceil)


# ---- conv -----------------------------------------------------------------------------------
def _conv_common(op, x, w, b, strides, dilations, pads):
    """Checks shared by conv and conv_transpose; returns (nd, strides, dilations, pads) with defaults."""
    require_float(op, x, w, b)
    require_same_dtype(op, x, w, b)
    if x.rank not in (3, 4, 5) or w.rank != x.rank:
        raise ShapeError(f"{op}: input {x} and weight {w} must both have rank 3, 4 or 5 (N, C, *spatial)")
    nd = x.rank - 2
    strides, dilations, pads = spatial_attrs(nd, strides, dilations, pads)
    _check_spatial(op, nd, strides, dilations, pads)
    return nd, strides, dilations, pads


def _conv_infer(x, w, b=None, *, strides, dilations, pads, groups, auto_pad="notset"):
    nd, strides, dilations, pads = _conv_common("conv", x, w, b, strides, dilations, pads)
    _check_auto_pad("conv", auto_pad, pads)
    if auto_pad != "notset" and max(dilations) > 1:
        raise ShapeError(f"conv: auto_pad={auto_pad!r} with dilation {dilations}: TensorFlow refuses SAME with a "
                         "stride and a dilation > 1, ONNX Runtime auto_pad with any dilation; give the input a "
                         "static spatial size (explicit SAME pads) or pad explicitly")
    o, cg = w.shape[0], w.shape[1]
    if groups < 1 or (isinstance(o, int) and o % groups):
        raise ShapeError(f"conv: {o} output channels are not divisible by groups={groups}")
    c = x.shape[1]
    if isinstance(c, int) and isinstance(cg, int) and c != cg * groups:
        raise ShapeError(f"conv: input has {c} channels but weight {fmt_shape(w.shape)} expects "
                         f"{cg}*groups({groups}) = {cg * groups}")
    if b is not None and (b.rank != 1 or b.shape[0] != o):
        raise ShapeError(f"conv: bias shape {fmt_shape(b.shape)} must be ({o},)")
    out = []
    for i in range(nd):
        k = w.shape[2 + i]
        if auto_pad != "notset":
            out.append(affine(x.shape[2 + i], 0, strides[i], 0, ceil=True))
            continue
        od = conv_out_dim(x.shape[2 + i], k, strides[i], dilations[i], pads[i], pads[nd + i])
        if isinstance(od, int) and od < 1:
            raise ShapeError(f"conv: kernel {fmt_shape(w.shape[2:])} (dilation {dilations}) is larger than "
                             f"the padded input {fmt_shape(x.shape[2:])}")
        out.append(od)
    return TensorSpec(x.dtype, (x.shape[0], o, *out))


def im2col_conv(x, w, strides, dilations, pads, groups):
    """Convolution as sliding windows + one matrix product per group (vectorized)."""
    nd = x.ndim - 2
    x = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[nd + i]) for i in range(nd)])
    ks = w.shape[2:]
    eff = tuple(dilations[i] * (ks[i] - 1) + 1 for i in range(nd))
    win = sliding_window_view(x, eff, axis=tuple(range(2, 2 + nd)))  # N C *out *eff
    sl = (slice(None),) * 2 + tuple(slice(None, None, s) for s in strides) + tuple(slice(None, None, d) for d in dilations)
    win = win[sl]  # N C *out *k
    n, c = x.shape[:2]
    o = w.shape[0]
    cg, og = c // groups, o // groups
    outs = []
    letters = "pqr"[:nd]  # not "abc": "c" is the channel label
    klet = "xyz"[:nd]
    for g in range(groups):
        wg = w[g * og:(g + 1) * og]
        xg = win[:, g * cg:(g + 1) * cg]
        outs.append(np.einsum(f"nc{letters}{klet},oc{klet}->no{letters}", xg, wg, optimize=True))
    return np.concatenate(outs, axis=1) if groups > 1 else outs[0]


def _conv_ref(x, w, b=None, *, strides, dilations, pads, groups, auto_pad="notset"):
    nd = x.ndim - 2
    strides, dilations, pads = spatial_attrs(nd, strides, dilations, pads)
    if auto_pad != "notset":
        pads = same_pads(x.shape[2:], w.shape[2:], strides, dilations, auto_pad)
    y = im2col_conv(x, w, strides, dilations, pads, groups)
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * nd)
    return y.astype(x.dtype, copy=False)


def _conv_macs(outs, x, w, b=None, **_):
    return _n(numel(outs[0].shape)) * _n(numel(w.shape[1:]))


def _n(d) -> int:
    return d if isinstance(d, int) else 0


_CONV_ATTRS = {"strides": Attr("ints", ()), "dilations": Attr("ints", ()), "pads": Attr("ints", ()),
               "groups": Attr("int", 1)}
_AUTO_PAD = Attr("str", "notset", choices=AUTO_PADS)
define("conv", inputs=("x", "w", "b?"), attrs={**_CONV_ATTRS, "auto_pad": _AUTO_PAD}, infer=_conv_infer,
       reference=_conv_ref, macs=_conv_macs, category="nn",
       doc="N-d convolution (1d/2d/3d), grouped/depthwise, with dilation; auto_pad='same_upper'/'same_lower' "
           "pads as TensorFlow's SAME from the size at run time (ceil(H / stride) outputs)")


# ---- conv_transpose --------------------------------------------------------------------------
def _convt_infer(x, w, b=None, *, strides, dilations, pads, output_padding, groups):
    nd, strides, dilations, pads = _conv_common("conv_transpose", x, w, b, strides, dilations, pads)
    op_ = tuple(output_padding) or (0,) * nd
    if len(op_) != nd or any(op_[i] >= max(strides[i], dilations[i]) or op_[i] < 0 for i in range(nd)):
        raise ShapeError(f"conv_transpose: output_padding {op_} must be smaller than stride or dilation")
    c = x.shape[1]
    if isinstance(c, int) and c != w.shape[0]:
        raise ShapeError(f"conv_transpose: input has {c} channels, weight {fmt_shape(w.shape)} expects {w.shape[0]}")
    if isinstance(c, int) and c % groups:
        raise ShapeError(f"conv_transpose: {c} input channels not divisible by groups={groups}")
    o = w.shape[1] * groups
    if b is not None and (b.rank != 1 or b.shape[0] != o):
        raise ShapeError(f"conv_transpose: bias shape {fmt_shape(b.shape)} must be ({o},)")
    out = []
    for i in range(nd):
        d = x.shape[2 + i]
        k = w.shape[2 + i]
        extra = dilations[i] * (k - 1) + op_[i] + 1 - pads[i] - pads[nd + i]
        if isinstance(d, int):
            out.append((d - 1) * strides[i] + extra)
        else:
            out.append(Sym.of(f"(({d}-1)*{strides[i]}{extra:+d})"))
    return TensorSpec(x.dtype, (x.shape[0], o, *out))


def _convt_ref(x, w, b=None, *, strides, dilations, pads, output_padding, groups):
    """Transposed conv = zero-stuffed input, flipped kernel, ordinary convolution."""
    nd = x.ndim - 2
    strides, dilations, pads = spatial_attrs(nd, strides, dilations, pads)
    op_ = tuple(output_padding) or (0,) * nd
    n, c = x.shape[:2]
    ks = w.shape[2:]
    # zero-stuff
    up_shape = (n, c) + tuple((x.shape[2 + i] - 1) * strides[i] + 1 for i in range(nd))
    up = np.zeros(up_shape, x.dtype)
    up[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)] = x
    # weight (C_in, O/g, *k) -> (O, C_in/g, *k), flipped
    og = w.shape[1]
    cg = c // groups
    wg = w.reshape((groups, cg, og) + ks).transpose((0, 2, 1) + tuple(range(3, 3 + nd)))
    wg = wg.reshape((groups * og, cg) + ks)
    wg = wg[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]
    full = [dilations[i] * (ks[i] - 1) for i in range(nd)]
    cpads = [full[i] - pads[i] for i in range(nd)] + [full[i] - pads[nd + i] + op_[i] for i in range(nd)]
    # negative pads mean cropping
    crop = [slice(None), slice(None)]
    padw = [(0, 0), (0, 0)]
    for i in range(nd):
        lo, hi = cpads[i], cpads[nd + i]
        padw.append((max(lo, 0), max(hi, 0)))
    up = np.pad(up, padw)
    for i in range(nd):
        lo, hi = cpads[i], cpads[nd + i]
        crop.append(slice(-lo if lo < 0 else 0, up.shape[2 + i] + hi if hi < 0 else None))
    up = up[tuple(crop)]
    y = im2col_conv(up, wg, (1,) * nd, dilations, (0,) * (2 * nd), groups)
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * nd)
    return y.astype(x.dtype, copy=False)


def _convt_macs(outs, x, w, b=None, **_):
    return _n(numel(x.shape)) * _n(numel(w.shape[1:]))


define("conv_transpose", inputs=("x", "w", "b?"),
       attrs={**_CONV_ATTRS, "output_padding": Attr("ints", ())}, infer=_convt_infer, reference=_convt_ref,
       macs=_convt_macs, category="nn", doc="N-d transposed convolution (deconvolution)")


# ---- pooling ----------------------------------------------------------------------------------
def _pool_out(op, x, kernel, strides, pads, ceil_mode, dilations=None, auto_pad="notset"):
    nd = x.rank - 2
    strides = tuple(strides) or tuple(kernel)
    pads = tuple(pads) or (0,) * (2 * nd)
    dil = dilations or (1,) * nd
    _check_spatial(op, nd, strides, dil, pads, kernel)
    _check_auto_pad(op, auto_pad, pads, ceil_mode)
    if auto_pad != "notset":
        if all(isinstance(d, int) for d in x.shape[2:]):
            pads = same_pads(x.shape[2:], kernel, strides, dil, auto_pad)
        return strides, pads, [affine(x.shape[2 + i], 0, strides[i], 0, ceil=True) for i in range(nd)]
    out = []
    for i in range(nd):
        k = kernel[i]
        if pads[i] >= k or pads[nd + i] >= k:
            raise ShapeError(f"{op}: pads {pads} must be smaller than the kernel {kernel}")
        d = x.shape[2 + i]
        od = conv_out_dim(d, k, strides[i], 1, pads[i], pads[nd + i], ceil=ceil_mode)
        if ceil_mode and isinstance(od, int) and (od - 1) * strides[i] >= d + pads[i]:
            od -= 1  # the last window must start inside the input or the begin padding
        if isinstance(od, int) and od < 1:
            raise ShapeError(f"{op}: kernel {kernel} is larger than the padded input {fmt_shape(x.shape[2:])}")
        out.append(od)
    return strides, pads, out


def _pool_infer(op):
    def infer(x, *, kernel, strides, pads, ceil_mode, auto_pad="notset", **_):
        require_float(op, x)
        if x.rank not in (3, 4, 5):
            raise ShapeError(f"{op}: input must be (N, C, *spatial) with 1-3 spatial dims, got {x}")
        if len(kernel) != x.rank - 2:
            raise ShapeError(f"{op}: kernel {kernel} needs {x.rank - 2} sizes for input {x}")
        _, _, out = _pool_out(op, x, kernel, strides, pads, ceil_mode, auto_pad=auto_pad)
        return TensorSpec(x.dtype, (*x.shape[:2], *out))
    return infer


def _pool_windows(x, kernel, strides, pads, out, fill):
    nd = x.ndim - 2
    # pad enough on the end for ceil_mode windows
    ends = [max(0, (out[i] - 1) * strides[i] + kernel[i] - x.shape[2 + i] - pads[i]) for i in range(nd)]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], ends[i]) for i in range(nd)], constant_values=fill)
    win = sliding_window_view(xp, tuple(kernel), axis=tuple(range(2, 2 + nd)))
    sl = (slice(None),) * 2 + tuple(slice(0, out[i] * strides[i], strides[i]) for i in range(nd))
    return win[sl], ends


def _max_pool_ref(x, *, kernel, strides, pads, ceil_mode, auto_pad="notset"):
    spec = TensorSpec(DType.float32, x.shape)
    strides, pads, out = _pool_out("max_pool", spec, kernel, strides, pads, ceil_mode, auto_pad=auto_pad)
    win, _ = _pool_windows(x, kernel, strides, pads, out, -np.inf)
    nd = x.ndim - 2
    return win.max(axis=tuple(range(-nd, 0)))


def _avg_pool_ref(x, *, kernel, strides, pads, ceil_mode, count_include_pad, auto_pad="notset"):
    spec = TensorSpec(DType.float32, x.shape)
    strides, pads, out = _pool_out("avg_pool", spec, kernel, strides, pads, ceil_mode, auto_pad=auto_pad)
    nd = x.ndim - 2
    win, ends = _pool_windows(x, kernel, strides, pads, out, 0)
    s = win.sum(axis=tuple(range(-nd, 0)))
    # divisor: valid elements, or elements inside the declared padding (never the ceil overhang)
    ones = np.ones((1, 1) + x.shape[2:], x.dtype)
    if count_include_pad:
        ones = np.pad(ones, [(0, 0), (0, 0)] + [(pads[i], pads[nd + i]) for i in range(nd)], constant_values=1)
        ones = np.pad(ones, [(0, 0), (0, 0)] + [(0, max(0, ends[i] - pads[nd + i])) for i in range(nd)])
    else:
        ones = np.pad(ones, [(0, 0), (0, 0)] + [(pads[i], ends[i]) for i in range(nd)])
    cwin = sliding_window_view(ones, tuple(kernel), axis=tuple(range(2, 2 + nd)))
    sl = (slice(None),) * 2 + tuple(slice(0, out[i] * strides[i], strides[i]) for i in range(nd))
    cnt = cwin[sl].sum(axis=tuple(range(-nd, 0)))
    return (s / cnt).astype(x.dtype)


_POOL_ATTRS = {"kernel": Attr("ints"), "strides": Attr("ints", ()), "pads": Attr("ints", ()),
               "ceil_mode": Attr("bool", False), "auto_pad": _AUTO_PAD}
define("max_pool", attrs=_POOL_ATTRS, infer=_pool_infer("max_pool"), reference=_max_pool_ref, category="nn",
       doc="max pooling; strides default to the kernel; padding never wins the max; auto_pad as conv's")
define("avg_pool", attrs={**_POOL_ATTRS, "count_include_pad": Attr("bool", False)}, infer=_pool_infer("avg_pool"),
       reference=_avg_pool_ref, category="nn",
       doc="average pooling; count_include_pad counts declared padding (never the ceil_mode overhang); "
           "auto_pad as conv's (TensorFlow's SAME average pooling is count_include_pad=False)")


def _gpool_infer(op):
    def infer(x):
        require_float(op, x)
        if x.rank < 3:
            raise ShapeError(f"{op}: input must be (N, C, *spatial), got {x}")
        return TensorSpec(x.dtype, x.shape[:2] + (1,) * (x.rank - 2))
    return infer


define("global_avg_pool", infer=_gpool_infer("global_avg_pool"),
       reference=lambda x: x.mean(axis=tuple(range(2, x.ndim)), keepdims=True), category="nn",
       doc="mean over all spatial dims, kept as size 1")
define("global_max_pool", infer=_gpool_infer("global_max_pool"),
       reference=lambda x: x.max(axis=tuple(range(2, x.ndim)), keepdims=True), category="nn",
       doc="max over all spatial dims, kept as size 1")


# ---- normalization ----------------------------------------------------------------------------
def _channel_vec(op, x, *vecs):
    c = x.shape[1] if x.rank >= 2 else None
    for v in vecs:
        if v is not None and (v.rank != 1 or v.shape[0] != c):
            raise ShapeError(f"{op}: per-channel tensor {v} must have shape ({c},) for input {x}")


def _bn_infer(x, scale, bias, mean, var, *, eps, eps_mode):
    require_float("batch_norm", x)
    require_same_dtype("batch_norm", x, scale, bias, mean, var)
    if x.rank < 2:
        raise ShapeError(f"batch_norm: input must be (N, C, ...), got {x}")
    _channel_vec("batch_norm", x, scale, bias, mean, var)
    return x


def _bcast_c(v, nd):
    return v.reshape((1, -1) + (1,) * (nd - 2))


BN_EPS_MODES = ("inside_sqrt", "outside_sqrt")


def bn_std(var: np.ndarray, eps: float, eps_mode: str) -> np.ndarray:
    """Batch norm's divisor: ``sqrt(var + eps)``, or ``sqrt(var) + eps`` for ``eps_mode="outside_sqrt"``
    (every backend's folding of known statistics uses this)."""
    e = np.asarray(eps, var.dtype)
    return np.sqrt(var + e) if eps_mode == "inside_sqrt" else np.sqrt(var) + e


def _bn_ref(x, scale, bias, mean, var, *, eps, eps_mode):
    nd = x.ndim
    std = bn_std(_bcast_c(var, nd), eps, eps_mode)
    return ((x - _bcast_c(mean, nd)) / std * _bcast_c(scale, nd) + _bcast_c(bias, nd)).astype(x.dtype)


define("batch_norm", inputs=("x", "scale", "bias", "mean", "var"),
       attrs={"eps": Attr("float", 1e-5), "eps_mode": Attr("str", "inside_sqrt", choices=BN_EPS_MODES)},
       infer=_bn_infer, reference=_bn_ref, category="norm",
       doc="inference batch norm over channel axis 1: (x - mean) / sqrt(var + eps) * scale + bias; "
           "eps_mode='outside_sqrt' divides by sqrt(var) + eps instead (Darknet's normalize_cpu, with eps 1e-6)")


def _ln_infer(x, scale=None, bias=None, *, axis, eps):
    require_float("layer_norm", x)
    require_same_dtype("layer_norm", x, scale, bias)
    if not -x.rank <= axis < x.rank:
        raise ShapeError(f"layer_norm: axis {axis} out of range for {x}")
    norm_shape = x.shape[axis % x.rank:]
    for v in (scale, bias):
        if v is not None and tuple(v.shape) != tuple(norm_shape):
            raise ShapeError(f"layer_norm: scale/bias {v} must have shape {fmt_shape(norm_shape)} (x{fmt_shape(x.shape)}"
                             f" normalized from axis {axis})")
    return x


def _ln_ref(x, scale=None, bias=None, *, axis, eps):
    axes = tuple(range(axis % x.ndim, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + np.asarray(eps, x.dtype))
    if scale is not None:
        y = y * scale
    if bias is not None:
        y = y + bias
    return y.astype(x.dtype)


define("layer_norm", inputs=("x", "scale?", "bias?"), attrs={"axis": Attr("int", -1), "eps": Attr("float", 1e-5)},
       infer=_ln_infer, reference=_ln_ref, category="norm",
       doc="normalize over axes axis..rank-1, then scale and shift (shape x.shape[axis:])")


def _gn_infer(x, scale, bias, *, num_groups, eps):
    require_float("group_norm", x)
    require_same_dtype("group_norm", x, scale, bias)
    if x.rank < 3:
        raise ShapeError(f"group_norm: input must be (N, C, *spatial), got {x}")
    c = x.shape[1]
    if num_groups < 1 or (isinstance(c, int) and c % num_groups):
        raise ShapeError(f"group_norm: {c} channels are not divisible by num_groups={num_groups}")
    _channel_vec("group_norm", x, scale, bias)
    return x


def _gn_ref(x, scale, bias, *, num_groups, eps):
    n, c = x.shape[:2]
    xg = x.reshape((n, num_groups, -1))
    mu = xg.mean(axis=2, keepdims=True)
    var = xg.var(axis=2, keepdims=True)
    y = ((xg - mu) / np.sqrt(var + np.asarray(eps, x.dtype))).reshape(x.shape)
    return (y * _bcast_c(scale, x.ndim) + _bcast_c(bias, x.ndim)).astype(x.dtype)


define("group_norm", inputs=("x", "scale", "bias"), attrs={"num_groups": Attr("int"), "eps": Attr("float", 1e-5)},
       infer=_gn_infer, reference=_gn_ref, category="norm", doc="group normalization, per-channel affine")


def _in_infer(x, scale, bias, *, eps):
    require_float("instance_norm", x)
    require_same_dtype("instance_norm", x, scale, bias)
    if x.rank < 3:
        raise ShapeError(f"instance_norm: input must be (N, C, *spatial), got {x}")
    _channel_vec("instance_norm", x, scale, bias)
    return x


def _in_ref(x, scale, bias, *, eps):
    axes = tuple(range(2, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + np.asarray(eps, x.dtype))
    return (y * _bcast_c(scale, x.ndim) + _bcast_c(bias, x.ndim)).astype(x.dtype)


define("instance_norm", inputs=("x", "scale", "bias"), attrs={"eps": Attr("float", 1e-5)}, infer=_in_infer,
       reference=_in_ref, category="norm", doc="per-sample, per-channel normalization over spatial dims")


def _lrn_infer(x, *, size, alpha, beta, bias):
    require_float("lrn", x)
    if x.rank < 3 or size < 1:
        raise ShapeError(f"lrn: input must be (N, C, *spatial) and size >= 1, got {x}, size={size}")
    return x


def _lrn_ref(x, *, size, alpha, beta, bias):
    sq = x.astype(np.float64) ** 2
    c = x.shape[1]
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    padded = np.pad(sq, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    csum = np.cumsum(np.concatenate([np.zeros_like(padded[:, :1]), padded], axis=1), axis=1)
    s = csum[:, size:size + c] - csum[:, :c]
    return (x / (bias + alpha / size * s) ** beta).astype(x.dtype)


define("lrn", attrs={"size": Attr("int"), "alpha": Attr("float", 1e-4), "beta": Attr("float", 0.75),
                     "bias": Attr("float", 1.0)},
       infer=_lrn_infer, reference=_lrn_ref, category="norm",
       doc="local response norm across channels: x / (bias + alpha/size * sum(x^2))^beta, the sum over "
           "channels c-floor((size-1)/2) .. c+ceil((size-1)/2) (ONNX/Caffe; PyTorch centres even sizes "
           "one channel earlier)")


# ---- linear / matmul / embedding ----------------------------------------------------------------
def _linear_infer(x, w, b=None):
    require_float("linear", x, w, b)
    require_same_dtype("linear", x, w, b)
    if w.rank != 2 or x.rank < 1:
        raise ShapeError(f"linear: weight must be (out, in), got {w}")
    if isinstance(x.shape[-1], int) and isinstance(w.shape[1], int) and x.shape[-1] != w.shape[1]:
        raise ShapeError(f"linear: input {x} has {x.shape[-1]} features but weight {fmt_shape(w.shape)} "
                         f"expects {w.shape[1]}")
    if b is not None and (b.rank != 1 or b.shape[0] != w.shape[0]):
        raise ShapeError(f"linear: bias {b} must have shape ({w.shape[0]},)")
    return TensorSpec(x.dtype, (*x.shape[:-1], w.shape[0]))


def _linear_ref(x, w, b=None):
    y = x @ w.T
    return (y + b if b is not None else y).astype(x.dtype, copy=False)


define("linear", inputs=("x", "w", "b?"), infer=_linear_infer, reference=_linear_ref, category="nn",
       macs=lambda outs, x, w, b=None: _n(numel(outs[0].shape)) * _n(w.shape[1]),
       doc="y = x @ w.T + b with w of shape (out, in) (fully connected)")


def _matmul_infer(a, b):
    require_same_dtype("matmul", a, b)
    if a.rank < 2 or b.rank < 2:
        raise ShapeError(f"matmul: both inputs need rank >= 2, got {a} and {b}")
    k1, k2 = a.shape[-1], b.shape[-2]
    if isinstance(k1, int) and isinstance(k2, int) and k1 != k2:
        raise ShapeError(f"matmul: inner dims differ: {a} @ {b}")
    try:
        batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ShapeError:
        raise ShapeError(f"matmul: batch dims of {a} and {b} do not broadcast") from None
    return TensorSpec(a.dtype, (*batch, a.shape[-2], b.shape[-1]))


define("matmul", inputs=("a", "b"), infer=_matmul_infer, reference=lambda a, b: np.matmul(a, b),
       macs=lambda outs, a, b: _n(numel(outs[0].shape)) * _n(a.shape[-1]), category="nn",
       doc="batched matrix product with broadcasting of the batch dims")


def _emb_infer(ids, table):
    if not ids.dtype.is_int:
        raise ShapeError(f"embedding: ids must be integers, got {ids}")
    if table.rank != 2:
        raise ShapeError(f"embedding: table must be (num, dim), got {table}")
    return TensorSpec(table.dtype, (*ids.shape, table.shape[1]))


define("embedding", inputs=("ids", "table"), infer=_emb_infer, reference=lambda ids, table: table[ids],
       category="nn", doc="rows of table picked by ids (ids in [0, num))")


# ---- attention ----------------------------------------------------------------------------------
def _attn_infer(q, k, v, mask=None, *, scale, causal):
    require_float("attention", q, k, v)
    require_same_dtype("attention", q, k, v)
    if q.rank < 2 or k.rank != q.rank or v.rank != q.rank:
        raise ShapeError(f"attention: q, k, v must have equal rank >= 2, got {q}, {k}, {v}")
    if isinstance(q.shape[-1], int) and isinstance(k.shape[-1], int) and q.shape[-1] != k.shape[-1]:
        raise ShapeError(f"attention: q {q} and k {k} differ in feature size")
    if isinstance(k.shape[-2], int) and isinstance(v.shape[-2], int) and k.shape[-2] != v.shape[-2]:
        raise ShapeError(f"attention: k {k} and v {v} differ in sequence length")
    try:
        batch = broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        if mask is not None:
            if mask.dtype != DType.bool and mask.dtype != q.dtype:
                raise ShapeError(f"attention: mask must be bool or {q.dtype}, got {mask}")
            broadcast_shapes(mask.shape, (*batch, q.shape[-2], k.shape[-2]))
    except ShapeError as e:
        raise ShapeError(f"attention: shapes q {q}, k {k}, v {v}, mask {mask} do not broadcast ({e})") from None
    return TensorSpec(q.dtype, (*batch, q.shape[-2], v.shape[-1]))


def _attn_ref(q, k, v, mask=None, *, scale, causal):
    s = scale if scale is not None else 1 / math.sqrt(q.shape[-1])
    logits = (q @ np.swapaxes(k, -1, -2)) * np.asarray(s, q.dtype)
    if mask is not None:
        if mask.dtype == bool:
            logits = np.where(mask, logits, np.asarray(-np.inf, q.dtype))
        else:
            logits = logits + mask
    if causal:
        L, S = q.shape[-2], k.shape[-2]
        keep = np.tril(np.ones((L, S), bool))
        logits = np.where(keep, logits, np.asarray(-np.inf, q.dtype))
    m = logits.max(axis=-1, keepdims=True)
    e = np.exp(logits - m)
    p = e / e.sum(axis=-1, keepdims=True)
    return (p @ v).astype(q.dtype)


define("attention", inputs=("q", "k", "v", "mask?"),
       attrs={"scale": Attr("float", None), "causal": Attr("bool", False)},
       infer=_attn_infer, reference=_attn_ref, category="nn",
       macs=lambda outs, q, k, v, mask=None, **_: _n(numel(q.shape)) * _n(k.shape[-2]) * 2,
       doc="softmax(q @ k^T * scale + mask) @ v; bool mask True = attend; scale defaults to 1/sqrt(E); "
           "causal keeps key j <= query i (top-left aligned when L != S); a query row with no key "
           "attended is undefined (the reference gives NaN)")
