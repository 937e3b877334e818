"""Folding passes: batch norm into the preceding convolution/linear layer, constant subgraphs into
constants, identity/dropout layers away."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..graph import Graph, Node, Param, Value
from ..ops import get_op
from ..ops.nn import bn_std
from .rewrite import clone_graph, prune, replace_uses


def _readers(graph: Graph) -> dict[int, list[Node]]:
    return graph.consumers()


def _is_param(v: Optional[Value]) -> bool:
    return v is not None and v.producer is not None and v.producer.op == "parameter"


def _pname(v: Value) -> str:
    return v.producer.attrs["name"]  # type: ignore[union-attr]


def fold_batch_norm(graph: Graph) -> Graph:
    """conv/linear -> batch_norm (inference, parameter statistics) becomes one conv/linear.

    The fused layer keeps the conv's layer name and the batch norm's output tensor name; its weights
    ``<conv weight>+<bn>`` are computed lazily when a backend reads them.
    """
    g = clone_graph(graph)
    readers = _readers(g)
    for bn in list(g.nodes):
        if bn.op != "batch_norm":
            continue
        x = bn.inputs[0]
        conv = x.producer if x is not None else None
        if conv is None or conv.op not in ("conv", "linear") or len(readers.get(id(x), [])) != 1:
            continue
        if any(o is x for o in g.outputs) or not all(_is_param(v) for v in bn.inputs[1:]):
            continue
        w, b = conv.inputs[1], conv.inputs[2] if len(conv.inputs) > 2 else None
        if not _is_param(w) or (b is not None and not _is_param(b)):
            continue
        if conv.op == "linear" and x.rank != 2:
            continue  # batch norm's channel axis is 1; only (N, C) for linear
        P = g.params
        wp = P[_pname(w)]
        bp = P[_pname(b)] if b is not None else None
        scale, shift, mean, var = (P[_pname(v)] for v in bn.inputs[1:])
        eps, eps_mode = bn.attrs["eps"], bn.attrs["eps_mode"]

        def factor(scale=scale, var=var, eps=eps, eps_mode=eps_mode) -> np.ndarray:
            return scale.value().astype(np.float64) / bn_std(var.value().astype(np.float64), eps, eps_mode)

        def new_w(wp=wp, factor=factor) -> np.ndarray:
            f = factor()
            wv = wp.value()
            return (wv * f.reshape((-1,) + (1,) * (wv.ndim - 1))).astype(wv.dtype)

        def new_b(bp=bp, mean=mean, shift=shift, factor=factor, dt=wp.dtype.numpy) -> np.ndarray:
            b0 = bp.value().astype(np.float64) if bp is not None else 0.0
            return ((b0 - mean.value()) * factor() + shift.value()).astype(dt)

        if conv.op == "conv_transpose":  # pragma: no cover - not folded (weight layout differs)
            continue
        wname, bname = f"{wp.name}+{bn.name}", f"{(bp.name if bp else conv.name + '.bias')}+{bn.name}"
        P[wname] = Param(wname, wp.dtype, wp.shape, new_w, f"{wp.origin or wp.name} folded with {bn.name}")
        P[bname] = Param(bname, wp.dtype, (wp.shape[0],), new_b, f"bias folded with {bn.name}")
        wnode = _param_node(wname, P[wname], conv.location)
        bnode = _param_node(bname, P[bname], conv.location)
        i = g.nodes.index(conv)
        g.nodes[i:i] = [wnode, bnode]
        conv.inputs = [conv.inputs[0], wnode.outputs[0], bnode.outputs[0]]
        out = conv.outputs[0]
        bn_out = bn.outputs[0]
        out.name = bn_out.name  # downstream layers and outputs keep seeing the batch norm's tensor name
        replace_uses(g, bn_out, out)
        g.nodes.remove(bn)
    prune(g)
    return g


def _param_node(name: str, p: Param, location: str) -> Node:
    n = Node("parameter", name, [], {"name": name, "dtype": p.dtype, "shape": tuple(p.shape)}, location)
    n.outputs.append(Value(name, p.dtype, tuple(p.shape), n, 0))
    return n


def fold_constants(graph: Graph, max_elements: int = 1 << 22) -> Graph:
    """Replace nodes whose inputs are all constants by a constant (results up to ``max_elements``)."""
    g = clone_graph(graph)
    for n in list(g.nodes):
        if n.op in ("constant", "parameter") or not n.inputs:
            continue
        if not all(v is not None and v.producer is not None and v.producer.op == "constant" for v in n.inputs
                   if v is not None):
            continue
        if any(v is None for v in n.inputs) and n.op not in ("conv", "linear", "layer_norm", "attention"):
            pass
        args = [None if v is None else v.producer.attrs["value"] for v in n.inputs]  # type: ignore[union-attr]
        try:
            res = get_op(n.op).run_reference(args, n.attrs)
        except Exception:
            continue
        if any(r.size > max_elements for r in res):
            continue
        i = g.nodes.index(n)
        new_nodes = []
        for o, r in zip(n.outputs, res):
            c = Node("constant", o.name if len(n.outputs) > 1 else n.name, [],
                     {"value": np.asarray(r).astype(o.dtype.numpy)}, n.location)
            cv = Value(o.name, o.dtype, o.shape, c, 0)
            c.outputs.append(cv)
            replace_uses(g, o, cv)
            new_nodes.append(c)
        g.nodes[i:i + 1] = new_nodes
    prune(g)
    return g


def remove_identities(graph: Graph) -> Graph:
    """Drop identity and dropout layers (unless they produce a graph output read from an input)."""
    g = clone_graph(graph)
    for n in list(g.nodes):
        if n.op not in ("identity", "dropout"):
            continue
        src, out = n.inputs[0], n.outputs[0]
        if any(o is out for o in g.outputs) and (src in g.inputs or any(o is src for o in g.outputs) or
                                                 (src.producer is not None and src.producer.op in ("parameter", "constant"))):
            continue  # an output must stay a distinct, named tensor
        if any(o is out for o in g.outputs):
            src.name = out.name
        replace_uses(g, out, src)
        g.nodes.remove(n)
    prune(g)
    return g


DEFAULT_PASSES: tuple[Callable[[Graph], Graph], ...] = (remove_identities, fold_constants, fold_batch_norm)


def optimize(graph: Graph, passes: tuple = DEFAULT_PASSES) -> Graph:
    """Run the default passes (identity removal, constant folding, batch-norm folding)."""
    for p in passes:
        graph = p(graph)
    graph.validate()
    return graph
