"""The network as a picture, drawn by Graphviz: layers grouped by module scope, shapes on the edges.

``to_dot(graph)`` returns a ``graphviz.Digraph`` (the ``graphviz`` package; ``pip install graphviz``):
one box per layer (name, op, parameter count), one cluster per module scope (``layer1`` holding
``layer1.0`` holding ``layer1.0.conv1`` ...), edges labelled with tensor shapes, and on every layer a
tooltip with its op, output shapes, parameters and the user's file:line. ``render(graph, path)`` writes
``.dot`` (no program needed), ``.svg`` / ``.png`` / ``.pdf`` (Graphviz's ``dot`` program) or ``.html``
(the SVG in a page: hover a layer to see its file:line).
"""
from __future__ import annotations

import html
import os
import re
from typing import Any

import numpy as np

from .errors import BackendUnavailable, NetdslError
from .graph import Graph
from .shapes import fmt_shape

FORMATS = ("svg", "html", "png", "pdf", "dot")


def _import_graphviz() -> Any:
    from .backends.base import import_engine
    return import_engine("graphviz", "drawing the network (netdsl graph)",
                         "pip install graphviz (or pip install 'netdsl[graph]'), and Graphviz's dot program "
                         "(apt-get install graphviz)")


def _scopes(name: str) -> list[str]:
    """Enclosing module scopes of a layer name: ``layer1.0.conv1`` -> ``['layer1', 'layer1.0']``."""
    cuts = [m.start() for m in re.finditer(r"[./]", name)]
    return [name[:i] for i in cuts]


def _params_of(graph: Graph, node: Any) -> int:
    total = 0
    for v in node.inputs:
        if v is not None and v.producer is not None and v.producer.op == "parameter":
            total += int(np.prod(graph.params[v.producer.attrs["name"]].shape, dtype=np.int64))
    return total


def to_dot(graph: Graph, rankdir: str = "TB") -> Any:
    """A ``graphviz.Digraph`` of ``graph`` (see the module docstring)."""
    gv = _import_graphviz()
    graph = getattr(graph, "graph", graph)
    dot = gv.Digraph(graph.name, graph_attr={"rankdir": rankdir, "fontname": "Helvetica", "fontsize": "11",
                                             "tooltip": graph.name, "label": f"network {graph.name}",
                                             "labelloc": "t"},
                     node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": "#eef3fb",
                                "fontname": "Helvetica", "fontsize": "10"},
                     edge_attr={"fontname": "Helvetica", "fontsize": "8", "color": "#555555"})
    layers = [n for n in graph.nodes if n.op not in ("parameter", "constant")]
    ids = {}
    for i, v in enumerate(graph.inputs):
        ids[id(v)] = f"in{i}"
        dot.node(f"in{i}", f"{v.name}\n{v.dtype}{fmt_shape(v.shape)}", shape="ellipse", fillcolor="#e3f4e1",
                 tooltip=f"input {v.name}: {v.dtype}{fmt_shape(v.shape)}")
    # clusters: one per scope, nested; layers go into their innermost scope
    scope_params: dict[str, int] = {}
    members: dict[str, list] = {}
    for n in layers:
        sc = _scopes(n.name)
        p = _params_of(graph, n)
        for s in sc:
            scope_params[s] = scope_params.get(s, 0) + p
        members.setdefault(sc[-1] if sc else "", []).append((n, p))
    children: dict[str, list[str]] = {}
    for s in scope_params:
        parent = _scopes(s)
        children.setdefault(parent[-1] if parent else "", []).append(s)

    def add_layers(g: Any, scope: str) -> None:
        for n, p in members.get(scope, []):
            nid = f"n{len(ids)}"
            for o in n.outputs:
                ids[id(o)] = nid
            shapes = ", ".join(f"{o.dtype}{fmt_shape(o.shape)}" for o in n.outputs)
            label = n.name if not scope else n.name[len(scope) + 1:]
            text = (label if label == n.op else f"{label}\n{n.op}") + (f"\n{p:,} params" if p else "")
            tip = f"{n.name} ({n.op}) at {n.location or '?'}\noutput {shapes}" + (f"\n{p:,} parameters" if p else "")
            g.node(nid, text, tooltip=tip)
        for child in children.get(scope, []):
            with g.subgraph(name=f"cluster_{len(ids)}_{child}") as c:
                c.attr(label=f"{child} ({scope_params[child]:,} params)" if scope_params[child] else child,
                       style="rounded,dashed", color="#8899aa", tooltip=child, fontsize="10")
                add_layers(c, child)

    add_layers(dot, "")
    for i, v in enumerate(graph.outputs):
        dot.node(f"out{i}", f"{v.name}\n{v.dtype}{fmt_shape(v.shape)}", shape="ellipse", fillcolor="#fbeee3",
                 tooltip=f"output {v.name}: {v.dtype}{fmt_shape(v.shape)}")
        if id(v) in ids:
            dot.edge(ids[id(v)], f"out{i}")
    for n in layers:
        for v in n.inputs:
            if v is None or id(v) not in ids:
                continue  # weights and constants are counted on the layer
            dot.edge(ids[id(v)], ids[id(n.outputs[0])], label=fmt_shape(v.shape), tooltip=f"{v.name}: "
                     f"{v.dtype}{fmt_shape(v.shape)}")
    return dot


def render(graph: Graph, path: Any, fmt: str = "", rankdir: str = "TB") -> str:
    """Write the picture to ``path`` in ``fmt`` (default: from the extension); returns the path."""
    path = os.fspath(path)
    fmt = (fmt or os.path.splitext(path)[1].lstrip(".")).lower()
    if fmt not in FORMATS:
        raise NetdslError(f"{path}: unknown picture format {fmt!r} (use {', '.join('.' + f for f in FORMATS)})")
    dot = to_dot(graph, rankdir)
    if fmt == "dot":
        data = dot.source.encode()
    else:
        gv = _import_graphviz()
        try:
            data = dot.pipe(format="svg" if fmt == "html" else fmt)
        except gv.ExecutableNotFound:
            raise BackendUnavailable("drawing needs Graphviz's dot program: apt-get install graphviz "
                                     "(or write .dot and render it elsewhere)") from None
        except gv.CalledProcessError as e:
            raise NetdslError(f"Graphviz's dot failed drawing '{graph.name}': {e}") from e
        if fmt == "html":
            data = html_page(getattr(graph, "graph", graph).name, data.decode()).encode()
    with open(path, "wb") as f:
        f.write(data)
    return path


def html_page(title: str, svg: str) -> str:
    """A standalone page around an SVG drawing (tooltips show as the browser's hover text)."""
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and doctype
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title>"
            "<style>body{font-family:Helvetica,sans-serif;margin:1em} svg{max-width:100%;height:auto}</style>"
            f"</head><body><h3>{html.escape(title)}</h3><p>Hover a layer for its op, shapes, parameters and "
            f"file:line.</p>\n{svg}\n</body></html>\n")


__all__ = ["FORMATS", "html_page", "render", "to_dot"]
