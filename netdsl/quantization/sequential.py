"""Running a (quantized) network layer by layer in NumPy on every calibration batch, with hooks that
see each layer's inputs and outputs and may replace them: what bias correction and fitted weight
rounding need (each layer's decision made with every layer before it already quantized and fixed)."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..errors import NetdslError
from ..graph import Graph, Node
from ..ops import get_op

# hook(node, per-input list of per-batch arrays) -> replacement (or None: keep)
InputsHook = Callable[[Node, list], Optional[list]]
# hook(node, per-batch arrays of its first output) -> replacement (or None: keep)
OutputHook = Callable[[Node, list], Optional[list]]


def _f32(r: np.ndarray) -> np.ndarray:
    r = np.asarray(r)
    return r.astype(np.float32) if r.dtype.kind == "f" else r


def run_sequential(g: Graph, batches: list, before: Optional[InputsHook] = None,
                  after: Optional[OutputHook] = None) -> None:
    """Run ``g`` node by node (float32, the reference implementations) on ``batches``; ``before`` may
    replace a node's inputs, ``after`` its first output, for every batch at once. Tensors are freed as
    soon as their last reader has run."""
    env: dict = {}
    for v in g.inputs:
        env[id(v)] = [np.asarray(b[v.name]).astype(np.float32 if v.dtype.is_float else v.dtype.numpy, copy=False)
                      for b in batches]
    readers = {k: len(v) for k, v in g.consumers().items()}
    for node in g.nodes:
        if node.op == "parameter":
            res = [[_f32(g.params[node.attrs["name"]].value())] * len(batches)]
        else:
            op = get_op(node.op)
            args = [None if v is None else env[id(v)] for v in node.inputs]
            args = (before(node, args) if before else None) or args
            res = [[] for _ in node.outputs]
            for i in range(len(batches)):
                try:
                    out = op.run_reference([None if a is None else a[i] for a in args], node.attrs)
                except Exception as e:
                    raise NetdslError(f"layer '{node.name}' ({node.op}, {node.location}) failed on calibration "
                                      f"data: {type(e).__name__}: {e}") from e
                for j, r in enumerate(out):
                    res[j].append(_f32(r))
            if after is not None:
                res[0] = after(node, res[0]) or res[0]
        for v, r in zip(node.outputs, res):
            env[id(v)] = r
        for v in node.inputs:
            if v is not None and id(v) in readers:
                readers[id(v)] -= 1
                if readers[id(v)] == 0:
                    env.pop(id(v), None)
