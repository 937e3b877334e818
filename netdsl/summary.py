"""Per-layer summary: layers (output shape, parameters, MACs, inputs), parameters, totals by module.

``summary(graph)`` is the text ``netdsl summary`` prints; ``summary_dict(graph)`` the same as data
(``netdsl summary --json``).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np

from .graph import Graph, Param, TensorSpec
from .ops import get_op
from .shapes import fmt_shape

# parameters fed to these (op, input position) are statistics, not trained by gradient descent
_NON_TRAINABLE = {("batch_norm", 3), ("batch_norm", 4)}


@dataclass
class LayerRow:
    name: str
    op: str
    shape: str
    params: int
    macs: int
    inputs: list = field(default_factory=list)   # names of the layers / network inputs it reads
    location: str = ""


def _unit(spec: TensorSpec) -> TensorSpec:
    """Symbolic dims counted as 1 (MACs are then per batch element)."""
    return TensorSpec(spec.dtype, tuple(d if isinstance(d, int) else 1 for d in spec.shape))


def _numel(p: Param) -> int:
    return int(np.prod(p.shape, dtype=np.int64))


def _source_name(v: object) -> str:
    prod = getattr(v, "producer", None)
    return getattr(v, "name") if prod is None else prod.name


def layer_rows(graph: Graph) -> list[LayerRow]:
    """One row per computing layer; a parameter counts for the first layer that reads it."""
    claimed: set[str] = set()
    rows = []
    for n in graph.nodes:
        if n.op in ("parameter", "constant"):
            continue
        params = 0
        inputs = []
        for v in n.inputs:
            if v is None:
                continue
            if v.producer is not None and v.producer.op == "parameter":
                pname = v.producer.attrs["name"]
                if pname not in claimed:
                    claimed.add(pname)
                    params += _numel(graph.params[pname])
            elif v.producer is None or v.producer.op != "constant":
                inputs.append(_source_name(v))
        opdef = get_op(n.op)
        macs = 0
        if opdef.macs is not None:
            try:
                macs = int(opdef.macs([_unit(o.spec) for o in n.outputs],
                                      *[None if v is None else _unit(v.spec) for v in n.inputs], **n.attrs))
            except Exception:  # MACs are informative only
                macs = 0
        shape = ", ".join(fmt_shape(o.shape) for o in n.outputs)
        rows.append(LayerRow(n.name, n.op, shape, params, macs, list(dict.fromkeys(inputs)), n.location))
    return rows


def trainable_params(graph: Graph) -> dict[str, bool]:
    """{parameter: trainable?}; batch-norm running statistics (mean, variance) are not trainable."""
    out = {name: True for name in graph.params}
    for n in graph.nodes:
        for i, v in enumerate(n.inputs):
            if v is not None and v.producer is not None and v.producer.op == "parameter" \
                    and (n.op, i) in _NON_TRAINABLE:
                out[v.producer.attrs["name"]] = False
    return out


def module_of(name: str, depth: int = 1) -> str:
    """The module scope of a layer or parameter name, ``depth`` levels deep (``layer1.0.conv1`` -> ``layer1``)."""
    parts = re.split(r"[./]", name)
    if len(parts) <= 1:
        return ""
    return ".".join(parts[:min(depth, len(parts) - 1)])


def module_totals(graph: Graph, rows: list[LayerRow], depth: int = 1) -> list[dict]:
    """Layers, parameters and MACs per module scope (top-level layers without a module count as '(top)')."""
    out: dict[str, dict] = {}
    for r in rows:
        m = module_of(r.name, depth) or "(top)"
        e = out.setdefault(m, {"module": m, "layers": 0, "params": 0, "macs": 0})
        e["layers"] += 1
        e["params"] += r.params
        e["macs"] += r.macs
    return list(out.values())


def _origin(p: Param) -> str:
    if not p.bound:
        return "unbound"
    o = p.origin or "bound"
    path, sep, tensor = o.rpartition(":")
    if sep and os.path.sep in path:
        return f"{os.path.basename(path)}:{tensor}"
    return o


def summary_dict(graph: Graph, depth: int = 1) -> dict:
    """Everything :func:`summary` shows, as JSON-ready data."""
    rows = layer_rows(graph)
    train = trainable_params(graph)
    params = [{"name": p.name, "shape": list(p.shape), "dtype": str(p.dtype), "count": _numel(p),
               "trainable": train[p.name], "bound": p.bound, "origin": _origin(p)} for p in graph.params.values()]
    total = sum(x["count"] for x in params)
    trainable = sum(x["count"] for x in params if x["trainable"])
    return {
        "network": graph.name,
        "inputs": [{"name": v.name, "dtype": str(v.dtype), "shape": [str(d) for d in v.shape]} for v in graph.inputs],
        "outputs": [{"name": v.name, "dtype": str(v.dtype), "shape": [str(d) for d in v.shape]}
                    for v in graph.outputs],
        "layers": [{"name": r.name, "op": r.op, "output_shape": r.shape, "params": r.params, "macs": r.macs,
                    "inputs": r.inputs, "location": r.location} for r in rows],
        "parameters": params,
        "modules": module_totals(graph, rows, depth),
        "totals": {"layers": len(rows), "params": total, "trainable_params": trainable,
                   "non_trainable_params": total - trainable,
                   "bound_params": sum(x["count"] for x in params if x["bound"]),
                   "weight_bytes": sum(_numel(p) * p.dtype.itemsize for p in graph.params.values()),
                   "macs": sum(r.macs for r in rows), "symbolic_dims_counted_as_1": bool(graph.symbols)},
    }


def _table(head: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    w = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.rjust(w[i]) if i in right else c.ljust(w[i]) for i, c in enumerate(r)).rstrip()
    line = fmt(head)
    return [line, "-" * len(line)] + [fmt(r) for r in rows]


def summary(graph: Graph, depth: int = 1, parameters: bool = True) -> str:
    """The text of ``netdsl summary``: layers with their inputs ("connected to"), parameters (trainable,
    bound to what), totals by module and overall."""
    d = summary_dict(graph, depth)
    t = d["totals"]
    lines = [f"network {graph.name}", "inputs: " + ", ".join(f"{v.name} {v.dtype}{fmt_shape(v.shape)}"
                                                          for v in graph.inputs)]
    lines += _table(["layer", "op", "output shape", "params", "MACs", "connected to"],
                    [[r["name"], r["op"], r["output_shape"], f"{r['params']:,}", f"{r['macs']:,}",
                      ", ".join(r["inputs"])] for r in d["layers"]], right={3, 4})
    if parameters and d["parameters"]:
        lines.append("")
        lines += _table(["parameter", "shape", "dtype", "trainable", "weights"],
                        [[p["name"], fmt_shape(tuple(p["shape"])), p["dtype"], "yes" if p["trainable"] else "no",
                          p["origin"]] for p in d["parameters"]], right=set())
    if len(d["modules"]) > 1:
        lines.append("")
        lines += _table(["module", "layers", "params", "MACs"],
                        [[m["module"], str(m["layers"]), f"{m['params']:,}", f"{m['macs']:,}"] for m in d["modules"]],
                        right={1, 2, 3})
    lines.append("")
    lines.append(f"total: {t['layers']} layers, {t['params']:,} parameters ({t['weight_bytes'] / 1e6:.2f} MB), "
                 f"{t['macs']:,} MACs" + (" (symbolic dims counted as 1)" if graph.symbols else ""))
    unbound = t["params"] - t["bound_params"]
    lines.append(f"trainable: {t['trainable_params']:,}; non-trainable: {t['non_trainable_params']:,}"
                 + (f"; without weights: {unbound:,}" if unbound else "; all bound"))
    lines.append("outputs: " + ", ".join(f"{v.name} {v.dtype}{fmt_shape(v.shape)}" for v in graph.outputs))
    return "\n".join(lines)
