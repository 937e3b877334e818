"""Input generators and a general case builder for the conformance table (see cases.py)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .cases import case  # noqa: F401  (re-exported for the cases_*.py modules)

Gen = Callable[[np.random.Generator, tuple], np.ndarray]


def uniform(low: float = -2.0, high: float = 2.0) -> Gen:
    """Float32 uniform in [low, high), never exactly zero."""
    def g(rng: np.random.Generator, shape: tuple) -> np.ndarray:
        a = rng.uniform(low, high, size=shape)
        return np.where(np.abs(a) < 1e-3, 1e-3 if low < 1e-3 < high else low, a).astype(np.float32)
    return g


def distinct(scale: float = 0.25) -> Gen:
    """A scaled random permutation: values well separated, so max/argmax/topk have no near-ties."""
    def g(rng: np.random.Generator, shape: tuple) -> np.ndarray:
        n = int(np.prod(shape))
        return ((rng.permutation(n) - n / 2 + 0.5) * scale).reshape(shape).astype(np.float32)
    return g


def ints(low: int, high: int, dtype: str = "int32") -> Gen:
    """Random integers in [low, high)."""
    return lambda rng, shape: rng.integers(low, high, size=shape).astype(dtype)


def int_floats(low: int = -2, high: int = 3) -> Gen:
    """Small integer values held as float32 (so that equality comparisons are sometimes true)."""
    return lambda rng, shape: rng.integers(low, high, size=shape).astype(np.float32)


def bools(p: float = 0.5) -> Gen:
    return lambda rng, shape: rng.random(shape) < p


def f32(shape: Sequence[Any], low: float = -2.0, high: float = 2.0) -> tuple:
    """A float32 input spec with uniform data."""
    return (tuple(shape), "float32", uniform(low, high))


DYN = (1, 3)  # batch sizes for cases with a symbolic batch
