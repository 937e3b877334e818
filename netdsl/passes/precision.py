"""Per-layer precision: which layers must run in which float type when a backend compiles the network
at reduced precision (float16 / bfloat16).

Three sources, later ones winning: an explicit ``cast`` to a float type and every layer that computes
only from such cast values (the explicit types are kept, never dropped: ``cast(x, "float32")`` before a
layer norm keeps the layer norm in float32, up to the next cast or the first mix with a
reduced-precision value); layers made under ``with net.precision(dtype):``; and compile-time
``layer_precision={pattern: dtype}`` (fnmatch on layer names).
"""
from __future__ import annotations

import fnmatch
from typing import Any, Mapping, Optional

from ..dtypes import DType, as_dtype
from ..errors import NetdslError
from ..graph import Graph

_SOURCES = ("parameter", "constant")


def layer_precisions(graph: Graph, patterns: Optional[Mapping[str, Any]] = None) -> dict:
    """{layer name: DType} for the layers whose float computation is pinned to a type."""
    out: dict[str, DType] = {}
    pinned: dict[int, DType] = {}  # id(Value) -> the float type an explicit cast gave it
    for n in graph.nodes:
        if n.op in _SOURCES:
            continue
        if n.op == "cast" and n.attrs["dtype"].is_float:
            dt = DType.float32 if n.attrs["dtype"] is DType.float64 else n.attrs["dtype"]
            if dt is DType.float32:
                out[n.name] = dt
                pinned[id(n.outputs[0])] = dt
            continue
        floats = [v for v in n.inputs if v is not None and v.dtype.is_float
                  and (v.producer is None or v.producer.op not in _SOURCES)]
        types = {pinned.get(id(v)) for v in floats}
        if floats and len(types) == 1 and None not in types:
            dt = types.pop()
            out[n.name] = dt
            for o in n.outputs:
                if o.dtype.is_float:
                    pinned[id(o)] = dt
    out.update(graph.precision)
    for pat, dtype in (patterns or {}).items():
        try:
            dt = as_dtype(dtype)
        except TypeError as e:
            raise NetdslError(f"layer_precision {pat!r}: {e}") from None
        if not dt.is_float:
            raise NetdslError(f"layer_precision {pat!r}: {dt} is not a float type")
        dt = DType.float32 if dt is DType.float64 else dt  # as a cast to float64: engines' widest type
        hits = [n.name for n in graph.nodes if n.op not in _SOURCES and fnmatch.fnmatchcase(n.name, pat)]
        if not hits:
            raise NetdslError(f"layer_precision pattern {pat!r} matches no layer of network '{graph.name}'")
        out.update({h: dt for h in hits})
    return out


def apply_layer_precision(graph: Graph, options: dict) -> Graph:
    """``graph`` with the backend option ``layer_precision={pattern: dtype}`` (taken out of ``options``)
    applied; ``graph`` itself without it."""
    patterns = options.pop("layer_precision", None)
    return with_layer_precision(graph, patterns) if patterns else graph


def with_layer_precision(graph: Graph, patterns: Mapping[str, Any]) -> Graph:
    """A copy of ``graph`` whose layers matching ``patterns`` ({fnmatch pattern: dtype}) are pinned."""
    from .rewrite import clone_graph
    g = clone_graph(graph)
    pinned = layer_precisions(g, patterns)
    g.precision.update({k: v for k, v in pinned.items()
                        if any(fnmatch.fnmatchcase(k, p) for p in patterns)})
    return g
