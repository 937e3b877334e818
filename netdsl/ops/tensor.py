"""Shape and data-movement ops: reshape, flatten, transpose, (un)squeeze, concat, split, slice,
gather, pad, resize, tile, expand."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from ..graph import TensorSpec
from ..shapes import Sym, broadcast_shapes, dim_div, normalize_axis, numel
from .registry import Attr, define, require_float


# ---- reshape ----------------------------------------------------------------------------------
def _reshape_infer(x, *, shape):
    out: list = []
    infer_at = None
    for i, s in enumerate(shape):
        if s == 0:
            if i >= x.rank:
                raise ShapeError(f"reshape: 0 at position {i} copies a dim that {x} does not have")
            out.append(x.shape[i])
        elif s == -1:
            if infer_at is not None:
                raise ShapeError(f"reshape: more than one -1 in {shape}")
            infer_at = i
            out.append(None)
        elif s < -1:
            raise ShapeError(f"reshape: bad size {s} in {shape}")
        else:
            out.append(s)
    total = numel(x.shape)
    known = numel([d for d in out if d is not None])
    if infer_at is not None:
        d = dim_div(total, known)
        if d is None or (isinstance(d, int) and known == 0):
            raise ShapeError(f"reshape: cannot reshape {x} to {list(shape)}: {total} elements do not divide by {known}")
        out[infer_at] = d
    elif total != known:
        ratio = dim_div(total, known)  # symbolic sizes: a constant ratio other than 1 is a sure mismatch
        if (isinstance(total, int) and isinstance(known, int)) or ratio is None or \
                (isinstance(ratio, int) and ratio != 1):
            raise ShapeError(f"reshape: cannot reshape {x} ({total} elements) to {list(shape)} ({known} elements)")
    return TensorSpec(x.dtype, tuple(out))


def _reshape_ref(x, *, shape):
    tgt = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(tgt)


define("reshape", attrs={"shape": Attr("ints")}, infer=_reshape_infer, reference=_reshape_ref, category="shape",
       doc="new shape; 0 copies the input dim at that position, -1 is inferred")


def _flatten_infer(x, *, start, end):
    if x.rank == 0:
        return TensorSpec(x.dtype, (1,))
    s, e = normalize_axis(start, x.rank, "start"), normalize_axis(end, x.rank, "end")
    if s > e:
        raise ShapeError(f"flatten: start {start} is after end {end} for {x}")
    return TensorSpec(x.dtype, x.shape[:s] + (numel(x.shape[s:e + 1]),) + x.shape[e + 1:])


def _flatten_ref(x, *, start, end):
    if x.ndim == 0:
        return x.reshape(1)
    s, e = start % x.ndim, end % x.ndim
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:]) if x.size else x.reshape(
        x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])


define("flatten", attrs={"start": Attr("int", 1), "end": Attr("int", -1)}, infer=_flatten_infer,
       reference=_flatten_ref, category="shape", doc="merge dims start..end (inclusive) into one")


def _transpose_infer(x, *, perm):
    if sorted(perm) != list(range(x.rank)):
        raise ShapeError(f"transpose: perm {list(perm)} is not a permutation of the {x.rank} axes of {x}")
    return TensorSpec(x.dtype, tuple(x.shape[p] for p in perm))


define("transpose", attrs={"perm": Attr("ints")}, infer=_transpose_infer,
       reference=lambda x, perm: np.transpose(x, perm).copy(), category="shape", doc="permute axes")


def _squeeze_infer(x, *, axes):
    ax = sorted({normalize_axis(a, x.rank, "squeeze axis") for a in axes})
    for a in ax:
        if isinstance(x.shape[a], int) and x.shape[a] != 1:
            raise ShapeError(f"squeeze: axis {a} of {x} has size {x.shape[a]}, not 1")
    return TensorSpec(x.dtype, tuple(d for i, d in enumerate(x.shape) if i not in ax))


define("squeeze", attrs={"axes": Attr("ints")}, infer=_squeeze_infer,
       reference=lambda x, axes: np.squeeze(x, tuple(a % x.ndim for a in axes)), category="shape",
       doc="remove size-1 axes")


def _unsqueeze_axes(rank, axes):
    out_rank = rank + len(axes)
    ax = sorted(normalize_axis(a, out_rank, "unsqueeze axis") for a in axes)
    if len(set(ax)) != len(ax):
        raise ShapeError(f"unsqueeze: repeated axes {axes}")
    return ax


def _unsqueeze_infer(x, *, axes):
    ax = _unsqueeze_axes(x.rank, axes)
    dims = list(x.shape)
    for a in ax:
        dims.insert(a, 1)
    return TensorSpec(x.dtype, tuple(dims))


define("unsqueeze", attrs={"axes": Attr("ints")}, infer=_unsqueeze_infer,
       reference=lambda x, axes: np.expand_dims(x, tuple(_unsqueeze_axes(x.ndim, axes))), category="shape",
       doc="insert size-1 axes at the given output positions")


# ---- concat / split ------------------------------------------------------------------------------
def _concat_infer(*xs, axis):
    if not xs:
        raise ShapeError("concat needs at least one input")
    r = xs[0].rank
    a = normalize_axis(axis, r, "concat axis")
    dts = {x.dtype for x in xs}
    if len(dts) > 1 or any(x.rank != r for x in xs):
        raise ShapeError("concat: inputs differ in dtype or rank: " + ", ".join(map(str, xs)))
    for i in range(r):
        if i == a:
            continue
        ds = {x.shape[i] for x in xs if isinstance(x.shape[i], int)}
        if len(ds) > 1:
            raise ShapeError(f"concat along axis {axis}: inputs differ in dim {i}: " + ", ".join(map(str, xs)))
    total = xs[0].shape[a]
    for x in xs[1:]:
        d = x.shape[a]
        total = total + d if isinstance(total, int) and isinstance(d, int) else Sym.of(f"({total}+{d})")
    shape = list(xs[0].shape)
    for i in range(r):  # prefer a static size where some input has one
        if i != a:
            for x in xs:
                if isinstance(x.shape[i], int):
                    shape[i] = x.shape[i]
    shape[a] = total
    return TensorSpec(xs[0].dtype, tuple(shape))


define("concat", inputs=("xs*",), attrs={"axis": Attr("int")}, infer=_concat_infer,
       reference=lambda *xs, axis: np.concatenate(xs, axis=axis), category="shape", doc="join along axis")


def _split_infer(x, *, axis, sizes):
    a = normalize_axis(axis, x.rank, "split axis")
    d = x.shape[a]
    if any(s < 1 for s in sizes) or not sizes:
        raise ShapeError(f"split: sizes {sizes} must be >= 1")
    if isinstance(d, int) and sum(sizes) != d:
        raise ShapeError(f"split: sizes {list(sizes)} sum to {sum(sizes)}, but axis {axis} of {x} has {d}")
    return [TensorSpec(x.dtype, x.shape[:a] + (s,) + x.shape[a + 1:]) for s in sizes]


def _split_ref(x, *, axis, sizes):
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


define("split", outputs=("ys*",), attrs={"axis": Attr("int"), "sizes": Attr("ints")}, infer=_split_infer,
       reference=_split_ref, category="shape", doc="cut along axis into pieces of the given sizes")


# ---- slice ---------------------------------------------------------------------------------------
def slice_len(d: int, start: int, end: int, step: int) -> tuple[int, int, int]:
    """Clamp (start, end) like Python slicing; returns (start, end, length)."""
    s, e, st = slice(start, end, step).indices(d)
    n = len(range(s, e, st))
    return s, e, n


def _slice_infer(x, *, starts, ends, axes, steps):
    axes = axes if axes is not None else tuple(range(len(starts)))
    steps = steps if steps is not None else (1,) * len(starts)
    if not (len(starts) == len(ends) == len(axes) == len(steps)):
        raise ShapeError(f"slice: starts {starts}, ends {ends}, axes {axes}, steps {steps} differ in length")
    shape = list(x.shape)
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        a = normalize_axis(ax, x.rank, "slice axis")
        if sp == 0:
            raise ShapeError("slice: step must not be 0")
        d = x.shape[a]
        if isinstance(d, int):
            shape[a] = slice_len(d, st, en, sp)[2]
        elif sp == 1 and (en == st + 1 or (st == -1 and en >= 2 ** 31 - 1)):
            shape[a] = 1  # a single index (valid by construction)
        elif sp == 1 and st >= 0 and en >= 2 ** 31 - 1:
            shape[a] = d if st == 0 else Sym.of(f"({d}-{st})")
        elif sp == 1 and st >= 0 and 0 <= en < 2 ** 31 - 1:
            shape[a] = Sym.of(f"min({d},{en})-{st}") if st else Sym.of(f"min({d},{en})")
        else:
            shape[a] = Sym.of(f"slice({d},{st},{en},{sp})")
    return TensorSpec(x.dtype, tuple(shape))


def _slice_ref(x, *, starts, ends, axes, steps):
    axes = axes if axes is not None else tuple(range(len(starts)))
    steps = steps if steps is not None else (1,) * len(starts)
    idx = [slice(None)] * x.ndim
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        idx[ax % x.ndim] = slice(st, en, sp)
    return x[tuple(idx)].copy()


define("slice", attrs={"starts": Attr("ints"), "ends": Attr("ints"), "axes": Attr("ints", None),
                       "steps": Attr("ints", None)},
       infer=_slice_infer, reference=_slice_ref, category="shape",
       doc="strided slice with Python semantics per axis (negative starts/ends count from the end; "
           "ends beyond the dim are clamped; negative steps reverse)")


# ---- gather --------------------------------------------------------------------------------------
def _gather_infer(data, indices, *, axis):
    if not indices.dtype.is_int:
        raise ShapeError(f"gather: indices must be integers, got {indices}")
    a = normalize_axis(axis, data.rank, "gather axis")
    return TensorSpec(data.dtype, data.shape[:a] + indices.shape + data.shape[a + 1:])


def _gather_ref(data, indices, *, axis):
    d = data.shape[axis]
    if indices.size and (indices.min() < -d or indices.max() >= d):
        raise IndexError(f"gather: index out of range [-{d}, {d})")
    return np.take(data, indices, axis=axis)


define("gather", inputs=("data", "indices"), attrs={"axis": Attr("int", 0)}, infer=_gather_infer,
       reference=_gather_ref, category="shape", doc="take entries along axis (numpy.take; negative indices count from the end)")


# ---- pad -----------------------------------------------------------------------------------------
def _pad_infer(x, *, pads, mode, value):
    r = x.rank
    if len(pads) != 2 * r:
        raise ShapeError(f"pad: needs {2 * r} pads (begins then ends) for {x}, got {len(pads)}")
    if min(pads) < 0:
        raise ShapeError(f"pad: negative pads {pads} (use slice to crop)")
    out = []
    for i, d in enumerate(x.shape):
        pb, pe = pads[i], pads[r + i]
        if mode == "reflect" and isinstance(d, int) and max(pb, pe) > d - 1:
            raise ShapeError(f"pad: reflect padding {pb},{pe} must be < dim {d} of {x}")
        out.append(d + pb + pe if isinstance(d, int) else (d if pb + pe == 0 else Sym.of(f"({d}+{pb + pe})")))
    return TensorSpec(x.dtype, tuple(out))


def _pad_ref(x, *, pads, mode, value):
    r = x.ndim
    pw = [(pads[i], pads[r + i]) for i in range(r)]
    if mode == "constant":
        return np.pad(x, pw, mode="constant", constant_values=np.asarray(value).astype(x.dtype))
    return np.pad(x, pw, mode=mode)


define("pad", attrs={"pads": Attr("ints"), "mode": Attr("str", "constant", choices=("constant", "reflect", "edge")),
                     "value": Attr("float", 0.0)},
       infer=_pad_infer, reference=_pad_ref, category="shape",
       doc="pad every axis (pads = begins then ends); constant, reflect (no edge repeat) or edge")


# ---- resize --------------------------------------------------------------------------------------
_COORD = ("half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel")
_NEAREST = ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")


def _resize_sizes(x_shape, scales, sizes):
    if (scales is None) == (sizes is None):
        raise ShapeError("resize: give exactly one of scales or sizes")
    r = len(x_shape)
    if scales is not None:
        if len(scales) != r or any(s <= 0 for s in scales):
            raise ShapeError(f"resize: scales {scales} need {r} positive entries")
        if any(s != 1 for s in scales[:2]):
            raise ShapeError(f"resize: only spatial axes (2..) can be scaled, got scales {scales}")
        out = []
        for d, s in zip(x_shape, scales):
            if s == 1:
                out.append(d)
            elif isinstance(d, int):
                out.append(int(math.floor(d * s)))
            else:
                out.append(d * int(s) if float(s).is_integer() else Sym.of(f"floor({d}*{s})"))
        return tuple(out)
    if len(sizes) != r:
        raise ShapeError(f"resize: sizes {sizes} need {r} entries")
    for i in range(2):
        if isinstance(x_shape[i], int) and sizes[i] != x_shape[i]:
            raise ShapeError(f"resize: only spatial axes (2..) can be resized, got sizes {sizes}")
    return tuple(x_shape[:2]) + tuple(sizes[2:])


def _resize_infer(x, *, scales, sizes, mode, coordinate_transformation, nearest_mode):
    require_float("resize", x)
    if x.rank < 3:
        raise ShapeError(f"resize: input must be (N, C, *spatial), got {x}")
    return TensorSpec(x.dtype, _resize_sizes(x.shape, scales, sizes))


def _src_coord(out_len, in_len, scale, ct):
    o = np.arange(out_len, dtype=np.float64)
    if ct == "align_corners":
        return o * (in_len - 1) / (out_len - 1) if out_len > 1 else np.zeros_like(o)
    if ct == "asymmetric":
        return o / scale
    if ct == "pytorch_half_pixel" and out_len == 1:
        return np.zeros_like(o)
    return (o + 0.5) / scale - 0.5


def _resize_ref(x, *, scales, sizes, mode, coordinate_transformation, nearest_mode):
    out_shape = _resize_sizes(x.shape, scales, sizes)
    y = x
    for ax in range(2, x.ndim):
        in_len, out_len = x.shape[ax], out_shape[ax]
        if in_len == out_len and (scales is None or scales[ax] == 1):
            continue
        scale = scales[ax] if scales is not None else out_len / in_len
        src = _src_coord(out_len, in_len, scale, coordinate_transformation)
        if mode == "nearest":
            if nearest_mode == "floor":
                idx = np.floor(src)
            elif nearest_mode == "ceil":
                idx = np.ceil(src)
            elif nearest_mode == "round_prefer_floor":
                idx = np.where(src - np.floor(src) == 0.5, np.floor(src), np.round(src))
            else:
                idx = np.floor(src + 0.5)
            idx = np.clip(idx, 0, in_len - 1).astype(np.int64)
            y = np.take(y, idx, axis=ax)
        else:
            src = np.clip(src, 0, in_len - 1)
            lo = np.floor(src).astype(np.int64)
            hi = np.minimum(lo + 1, in_len - 1)
            w = (src - lo).astype(x.dtype)
            shape = [1] * x.ndim
            shape[ax] = out_len
            w = w.reshape(shape)
            y = np.take(y, lo, axis=ax) * (1 - w) + np.take(y, hi, axis=ax) * w
    return y.astype(x.dtype, copy=False)


define("resize", attrs={"scales": Attr("floats", None), "sizes": Attr("ints", None),
                        "mode": Attr("str", "nearest", choices=("nearest", "linear")),
                        "coordinate_transformation": Attr("str", "half_pixel", choices=_COORD),
                        "nearest_mode": Attr("str", "round_prefer_floor", choices=_NEAREST)},
       infer=_resize_infer, reference=_resize_ref, category="shape",
       doc="nearest / (bi)linear resize of the spatial axes, ONNX coordinate conventions "
           "(linear clamps source coordinates to the input, as ONNX and PyTorch do)")


# ---- tile / expand ------------------------------------------------------------------------------
def _tile_infer(x, *, repeats):
    if len(repeats) != x.rank or min(repeats, default=1) < 1:
        raise ShapeError(f"tile: repeats {repeats} need {x.rank} entries >= 1 for {x}")
    return TensorSpec(x.dtype, tuple(d * r if r != 1 else d for d, r in zip(x.shape, repeats)))


define("tile", attrs={"repeats": Attr("ints")}, infer=_tile_infer, reference=lambda x, repeats: np.tile(x, repeats),
       category="shape", doc="repeat the tensor along each axis")


def _expand_infer(x, *, shape):
    tgt = tuple(x.shape[i - (len(shape) - x.rank)] if s == -1 else s for i, s in enumerate(shape))
    try:
        out = broadcast_shapes(x.shape, tgt)
    except ShapeError:
        raise ShapeError(f"expand: cannot broadcast {x} to {list(shape)}") from None
    return TensorSpec(x.dtype, out)


def _expand_ref(x, *, shape):
    tgt = tuple(x.shape[i - (len(shape) - x.ndim)] if s == -1 else s for i, s in enumerate(shape))
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, tgt)).copy()


define("expand", attrs={"shape": Attr("ints")}, infer=_expand_infer, reference=_expand_ref, category="shape",
       doc="broadcast to shape (bidirectional, like ONNX Expand; -1 keeps the input dim)")


def _expand_as_infer(x, like):
    try:
        return TensorSpec(x.dtype, broadcast_shapes(x.shape, like.shape))
    except ShapeError:
        raise ShapeError(f"expand_as: cannot broadcast {x} with {like}") from None


define("expand_as", inputs=("x", "like"), infer=_expand_as_infer,
       reference=lambda x, like: np.broadcast_to(x, np.broadcast_shapes(x.shape, like.shape)).copy(),
       category="shape", doc="broadcast x against like's shape (like's values are not read; its dims may be "
                             "symbolic, e.g. a class token expanded to a dynamic batch)")
