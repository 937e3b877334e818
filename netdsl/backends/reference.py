"""The NumPy reference executor: runs any graph; the oracle every other backend is checked against.

``dtype="float32"`` (default) computes in float32; ``dtype="float64"`` computes every floating
tensor in float64 (use it as the oracle). Ops are vectorized (convolution is sliding windows + one
tensor contraction per group).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import NetdslError
from ..graph import Graph
from ..ops import get_op
from .base import CompiledModel


class ReferenceModel(CompiledModel):
    backend = "reference"

    def __init__(self, graph: Graph, dtype: str = "float32", keep: bool = False):
        super().__init__(graph)
        if dtype not in ("float32", "float64"):
            raise ValueError("reference dtype must be float32 or float64")
        self.compute = np.dtype(dtype)
        self.keep = keep  # keep every intermediate (model.values) for debugging
        self.values: dict[str, np.ndarray] = {}
        graph.validate()

    def _fdt(self, declared: np.dtype) -> np.dtype:
        if declared.kind != "f":
            return declared
        if self.compute == np.float64:
            return self.compute
        return declared if declared == np.float16 else np.dtype(np.float32)

    def run(self, feeds: dict) -> dict:
        env: dict[int, np.ndarray] = {}
        for v in self.graph.inputs:
            env[id(v)] = feeds[v.name].astype(self._fdt(v.dtype.numpy), copy=False)
        consumers = self.graph.consumers()
        remaining = {k: len(vs) for k, vs in consumers.items()}
        outs = {id(v) for v in self.graph.outputs}
        for node in self.graph.nodes:
            if node.op == "parameter":
                p = self.graph.params[node.attrs["name"]]
                res = [p.value().astype(self._fdt(p.dtype.numpy), copy=False)]
            else:
                args = [None if v is None else env[id(v)] for v in node.inputs]
                try:
                    res = get_op(node.op).run_reference(args, node.attrs)
                except NetdslError:  # not a lowering path
                    raise
                except Exception as e:  # not a lowering path: name the layer and the user's line
                    from ..plugins.declaration import author_line  # a plugin's reference: the author's line
                    raise NetdslError(f"reference: layer '{node.name}' ({node.op}, {node.location}) failed: "
                                      f"{type(e).__name__}: {e}{author_line(e)}") from e
            for v, r in zip(node.outputs, res):
                env[id(v)] = np.asarray(r).astype(self._fdt(v.dtype.numpy), copy=False)
                if self.keep:
                    self.values[v.name] = env[id(v)]
            for v in node.inputs:  # free what no one needs any more
                if v is not None and id(v) in remaining:
                    remaining[id(v)] -= 1
                    if remaining[id(v)] == 0 and id(v) not in outs and not self.keep:
                        env.pop(id(v), None)
        return {v.name: env[id(v)] for v in self.graph.outputs}


def compile(graph: Graph, dtype: str = "float32", keep: bool = False, **_: Any) -> ReferenceModel:  # noqa: A001
    """A callable that runs ``graph`` in NumPy."""
    return ReferenceModel(graph, dtype=dtype, keep=keep)


def run(graph: Graph, inputs: dict, dtype: str = "float64") -> dict:
    """Run once (float64 by default: the oracle)."""
    return ReferenceModel(graph, dtype=dtype)(inputs)
