"""Inputs for the benchmarks: random data shaped for an example network's inputs, and how netdsl's
OpenVINO models take them (``copying``).

Symbolic dims: ``N`` is the batch, any other (BERT's ``S``) the sequence length ``seq``. BERT gets
token ids inside its vocabulary and an attention mask with a padded tail (the last quarter).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

SEQ = 128  # default sequence length


def dims(graph: Any, batch: int, seq: int = SEQ) -> dict:
    """{symbol: value} for ``graph``'s symbolic dims."""
    return {s: (batch if s == "N" else seq) for s in graph.symbols}


def make_feeds(graph: Any, batch: int, rng: np.random.Generator, seq: int = SEQ) -> dict:
    """One feed dict of batch ``batch`` (fresh random data from ``rng``)."""
    env = dims(graph, batch, seq)
    out = {}
    for v in graph.inputs:
        shape = tuple(d if isinstance(d, int) else d.evaluate(env) for d in v.shape)
        if v.name == "input_ids":
            out[v.name] = rng.integers(0, 30522, size=shape).astype(v.dtype.numpy)
        elif v.name == "attention_mask":
            m = np.ones(shape, v.dtype.numpy)
            m[:, shape[1] * 3 // 4:] = 0
            out[v.name] = m
        elif v.dtype.is_int:
            out[v.name] = rng.integers(0, 4, size=shape).astype(v.dtype.numpy)
        else:
            out[v.name] = rng.standard_normal(shape).astype(v.dtype.numpy)
    return out


def copying(run: Callable) -> Callable:
    """``run`` (a compiled model, or its ``run_many``) with every input copied into the requests' own
    tensors, none handed to OpenVINO in place (``runtime.SHARE_BYTES``): netdsl before large inputs
    were shared."""
    from netdsl.backends.openvino import runtime

    def copied(feeds: Any) -> Any:
        old, runtime.SHARE_BYTES = runtime.SHARE_BYTES, float("inf")
        try:
            return run(feeds)
        finally:
            runtime.SHARE_BYTES = old
    return copied
