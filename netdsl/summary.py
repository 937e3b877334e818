"""Per-layer summary: name, op, output shape, parameter count, MACs; totals."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import Graph, TensorSpec
from .ops import get_op
from .shapes import fmt_shape


@dataclass
class LayerRow:
    name: str
    op: str
    shape: str
    params: int
    macs: int


def _unit(spec: TensorSpec) -> TensorSpec:
    """Symbolic dims counted as 1 (MACs are then per batch element)."""
    return TensorSpec(spec.dtype, tuple(d if isinstance(d, int) else 1 for d in spec.shape))


def layer_rows(graph: Graph) -> list[LayerRow]:
    """One row per computing layer; a parameter counts for the first layer that reads it."""
    claimed: set[str] = set()
    rows = []
    for n in graph.nodes:
        if n.op in ("parameter", "constant"):
            continue
        params = 0
        for v in n.inputs:
            if v is not None and v.producer is not None and v.producer.op == "parameter":
                pname = v.producer.attrs["name"]
                if pname not in claimed:
                    claimed.add(pname)
                    params += int(np.prod(graph.params[pname].shape, dtype=np.int64))
        opdef = get_op(n.op)
        macs = 0
        if opdef.macs is not None:
            try:
                macs = int(opdef.macs([_unit(o.spec) for o in n.outputs],
                                      *[None if v is None else _unit(v.spec) for v in n.inputs], **n.attrs))
            except Exception:  # MACs are informative only
                macs = 0
        shape = ", ".join(fmt_shape(o.shape) for o in n.outputs)
        rows.append(LayerRow(n.name, n.op, shape, params, macs))
    return rows


def summary(graph: Graph) -> str:
    rows = layer_rows(graph)
    total_params = sum(int(np.prod(p.shape, dtype=np.int64)) for p in graph.params.values())
    total_macs = sum(r.macs for r in rows)
    w = [max(len("layer"), *(len(r.name) for r in rows)) if rows else 5,
         max(len("op"), *(len(r.op) for r in rows)) if rows else 2,
         max(len("output shape"), *(len(r.shape) for r in rows)) if rows else 12]
    head = f"{'layer':<{w[0]}}  {'op':<{w[1]}}  {'output shape':<{w[2]}}  {'params':>12}  {'MACs':>15}"
    lines = [f"network {graph.name}", "inputs: " + ", ".join(f"{v.name} {v.dtype}{fmt_shape(v.shape)}"
                                                          for v in graph.inputs), head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.name:<{w[0]}}  {r.op:<{w[1]}}  {r.shape:<{w[2]}}  {r.params:>12,}  {r.macs:>15,}")
    lines.append("-" * len(head))
    weight_bytes = sum(int(np.prod(p.shape, dtype=np.int64)) * p.dtype.itemsize for p in graph.params.values())
    lines.append(f"total: {len(rows)} layers, {total_params:,} parameters ({weight_bytes / 1e6:.2f} MB), "
                 f"{total_macs:,} MACs" + (" (symbolic dims counted as 1)" if graph.symbols else ""))
    lines.append("outputs: " + ", ".join(f"{v.name} {v.dtype}{fmt_shape(v.shape)}" for v in graph.outputs))
    return "\n".join(lines)
