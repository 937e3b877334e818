"""Seeded random inputs for a network: the data ``netdsl run/check/bench/compare`` use by default."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np


def random_inputs(graph: Any, seed: int = 0, dims: Optional[dict] = None) -> dict:
    """Seeded random feeds for every input; symbolic dims take ``dims`` values (default 1).

    Floats are standard normal; bools fair coins; integers index what they feed (the vocabulary of an
    embedding, the gathered axis), else 0 or 1.
    """
    from .shapes import Sym
    graph = getattr(graph, "graph", graph)
    rng = np.random.default_rng(seed)
    dims = dims or {}
    consumers = graph.consumers()
    feeds = {}
    for v in graph.inputs:
        shape = []
        for d in v.shape:
            if isinstance(d, Sym):
                env = {s: dims.get(s, 1) for s in d.symbols}
                shape.append(d.evaluate(env))
            else:
                shape.append(d)
        if v.dtype.is_float:
            feeds[v.name] = rng.standard_normal(shape).astype(v.dtype.numpy)
        elif v.dtype.value == "bool":
            feeds[v.name] = rng.random(shape) < 0.5
        else:
            hi = 2
            for n in consumers.get(id(v), []):
                if n.op == "embedding" and n.inputs[0] is v:
                    hi = n.inputs[1].shape[0]
                elif n.op == "gather" and n.inputs[1] is v:
                    hi = n.inputs[0].shape[n.attrs["axis"] % n.inputs[0].rank]
            feeds[v.name] = rng.integers(0, hi if isinstance(hi, int) else 2, size=shape).astype(v.dtype.numpy)
    return feeds


__all__ = ["random_inputs"]
