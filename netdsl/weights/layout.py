"""Layout transforms between framework weight layouts and netdsl's (PyTorch/ONNX) layouts.

A :class:`Transform` maps an array *and its shape* (so binding can check shapes without reading
data). netdsl layouts: conv weight (O, C/g, *k); conv_transpose weight (C_in, O/g, *k); linear
weight (out, in).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import WeightError


class Transform:
    """A named array transform with a matching shape function."""

    def __init__(self, name: str, fn: Callable[[np.ndarray], np.ndarray],
                 shape_fn: Optional[Callable[[tuple], tuple]] = None):
        self.name, self.fn, self.shape_fn = name, fn, shape_fn

    def __call__(self, arr: np.ndarray) -> np.ndarray:
        return self.fn(arr)

    def shape(self, shape: tuple) -> Optional[tuple]:
        """Output shape for an input shape (None when unknown until the data is read, or it does not apply)."""
        if self.shape_fn is None:
            return None
        try:
            return tuple(self.shape_fn(tuple(shape)))
        except (ValueError, IndexError, ZeroDivisionError):
            return None

    def __repr__(self) -> str:
        return self.name


def _perm_shape(perm: Sequence[int]) -> Callable[[tuple], tuple]:
    def f(s: tuple) -> tuple:
        if len(s) != len(perm):
            raise ValueError("rank")
        return tuple(s[p] for p in perm)
    return f


def permute(perm: Sequence[int], name: Optional[str] = None) -> Transform:
    perm = tuple(perm)
    return Transform(name or f"transpose{perm}", lambda a: np.transpose(a, perm), _perm_shape(perm))


def hwio_to_oihw(rank: int = 4) -> Transform:
    """Keras/TF conv kernel (*k, I, O) -> (O, I, *k)."""
    perm = (rank - 1, rank - 2) + tuple(range(rank - 2))
    return permute(perm, "HWIO->OIHW")


def keras_deconv_to_torch(rank: int = 4) -> Transform:
    """Keras Conv2DTranspose kernel (*k, out, in) -> netdsl/PyTorch conv_transpose (in, out, *k)."""
    perm = (rank - 1, rank - 2) + tuple(range(rank - 2))
    return permute(perm, "(H,W,out,in)->(in,out,H,W)")


def dense_to_linear() -> Transform:
    """Keras Dense kernel (in, out) -> linear weight (out, in)."""
    return permute((1, 0), "(in,out)->(out,in)")


def depthwise_to_grouped() -> Transform:
    """Keras DepthwiseConv2D kernel (H, W, C, M) -> grouped conv weight (C*M, 1, H, W) (groups=C)."""
    def fn(a: np.ndarray) -> np.ndarray:
        h, w, c, m = a.shape
        return np.ascontiguousarray(np.transpose(a, (2, 3, 0, 1))).reshape(c * m, 1, h, w)

    def sh(s: tuple) -> tuple:
        h, w, c, m = s
        return (c * m, 1, h, w)
    return Transform("depthwise (H,W,C,M)->(C*M,1,H,W)", fn, sh)


def nhwc_flatten_dense(c: int, h: int, w: int) -> Transform:
    """Keras Dense kernel after Flatten of an NHWC (H,W,C) map -> linear weight for an NCHW (C,H,W) flatten."""
    def fn(a: np.ndarray) -> np.ndarray:
        out = a.shape[1]
        return np.ascontiguousarray(a.reshape(h, w, c, out).transpose(3, 2, 0, 1)).reshape(out, c * h * w)

    def sh(s: tuple) -> tuple:
        if len(s) != 2 or s[0] != c * h * w:
            raise ValueError("shape")
        return (s[1], s[0])
    return Transform(f"(in,out)->(out,in) with NHWC->NCHW flatten order (C,H,W)=({c},{h},{w})", fn, sh)


def nchw_flatten_from_nhwc_linear(c: int, h: int, w: int) -> Transform:
    """A (out, H*W*C) linear weight written for an NHWC flatten -> (out, C*H*W) for an NCHW flatten."""
    def fn(a: np.ndarray) -> np.ndarray:
        out = a.shape[0]
        return np.ascontiguousarray(a.reshape(out, h, w, c).transpose(0, 3, 1, 2)).reshape(out, c * h * w)
    return Transform(f"NHWC->NCHW flatten order (C,H,W)=({c},{h},{w})", fn, lambda s: s)


def identity() -> Transform:
    """Unchanged."""
    return Transform("identity", lambda a: a, lambda s: s)


def reshape_to(shape: Sequence[int]) -> Transform:
    shape = tuple(shape)

    def sh(s: tuple) -> tuple:
        if int(np.prod(s)) != int(np.prod(shape)):
            raise ValueError("numel")
        return shape
    return Transform(f"reshape{shape}", lambda a: np.reshape(a, shape), sh)


def transpose() -> Transform:
    """Reverse all axes (a.T): (in, out) -> (out, in) for a matrix."""
    return Transform("transpose", lambda a: np.transpose(a), lambda s: tuple(reversed(s)))


#: transforms by name (``transforms={param: name}``, ``--transform PARAM=NAME``)
NAMED = {"transpose": transpose, "hwio_to_oihw": hwio_to_oihw, "dense_to_linear": dense_to_linear,
         "depthwise_to_grouped": depthwise_to_grouped, "keras_deconv_to_torch": keras_deconv_to_torch,
         "identity": identity}


def describe_named() -> str:
    """One line per named transform: its name and what it does (for --help and the README)."""
    return "\n".join(f"  {n:<22} {(f.__doc__ or '').strip().splitlines()[0]}" for n, f in NAMED.items())


def as_transform(t: object) -> Transform:
    """A Transform from a Transform, a name in NAMED, or a plain callable (shape checked when read)."""
    if isinstance(t, Transform):
        return t
    if isinstance(t, str):
        if t not in NAMED:
            raise WeightError(f"unknown transform {t!r}; known: {', '.join(NAMED)}")
        return NAMED[t]()
    if callable(t):
        return Transform(getattr(t, "__name__", "custom"), t, None)  # type: ignore[arg-type]
    raise TypeError(f"not a transform: {t!r}")
