"""Copying graphs and rewiring values: the tools passes are built from."""
from __future__ import annotations

from ..graph import Graph, Node, Value


def clone_graph(graph: Graph) -> Graph:
    """A structural copy (new Values/Nodes; Params shared, since they are immutable references)."""
    vmap: dict[int, Value] = {}
    g = Graph(name=graph.name, params=dict(graph.params), precision=dict(graph.precision))
    for v in graph.inputs:
        nv = Value(v.name, v.dtype, v.shape)
        vmap[id(v)] = nv
        g.inputs.append(nv)
    for n in graph.nodes:
        nn_ = Node(n.op, n.name, [None if v is None else vmap[id(v)] for v in n.inputs], dict(n.attrs), n.location)
        for o in n.outputs:
            no = Value(o.name, o.dtype, o.shape, nn_, o.index)
            vmap[id(o)] = no
            nn_.outputs.append(no)
        g.nodes.append(nn_)
    g.outputs = [vmap[id(v)] for v in graph.outputs]
    return g


def replace_uses(graph: Graph, old: Value, new: Value) -> None:
    """Make every reader of ``old`` (nodes and graph outputs) read ``new`` instead."""
    for n in graph.nodes:
        n.inputs = [new if v is old else v for v in n.inputs]
    graph.outputs = [new if v is old else v for v in graph.outputs]


def prune(graph: Graph) -> None:
    """Drop nodes whose outputs nobody reads, and parameters no node refers to."""
    while True:
        used = {id(v) for n in graph.nodes for v in n.inputs if v is not None} | {id(v) for v in graph.outputs}
        keep = [n for n in graph.nodes if any(id(o) in used for o in n.outputs)]
        if len(keep) == len(graph.nodes):
            break
        graph.nodes = keep
    live = {n.attrs["name"] for n in graph.nodes if n.op == "parameter"}
    graph.params = {k: p for k, p in graph.params.items() if k in live}
