"""Seeded random weights for unbound parameters (tests, demos, benchmarks)."""
from __future__ import annotations

import hashlib
import math

import numpy as np

from ..graph import Graph, Param


def random_array(p: Param, seed: int) -> np.ndarray:
    """Deterministic values for ``p`` from (seed, parameter name), shaped by its init kind."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{p.name}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(h)
    shape = tuple(p.shape)
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else max(shape[0] if shape else 1, 1)
    if p.dtype.is_int:
        return rng.integers(0, 4, size=shape).astype(p.dtype.numpy)
    if p.init == "ones":
        a = 1 + 0.1 * rng.standard_normal(shape)
    elif p.init == "zeros":
        a = np.zeros(shape)
    elif p.init == "positive":
        a = rng.uniform(0.5, 1.5, size=shape)
    elif p.init == "small":
        a = 0.1 * rng.standard_normal(shape)
    elif p.init == "he":
        a = rng.standard_normal(shape) * math.sqrt(2.0 / max(fan_in, 1))
    else:
        a = rng.standard_normal(shape) * (1.0 / math.sqrt(max(fan_in, 1)))
    return a.astype(p.dtype.numpy)


def init_random(graph: Graph, seed: int = 0, overwrite: bool = False) -> None:
    """Bind seeded random data to every (unbound, unless ``overwrite``) parameter."""
    for p in graph.params.values():
        if p.bound and not overwrite:
            continue
        arr = random_array(p, seed)
        p.source = (lambda a: (lambda: a))(arr)
        p.origin = f"random(seed={seed})"
