"""Optimization profiles from a graph's symbolic input dims.

Give them per input (``profiles={"data": ((1, 3, 224, 224), (4, 3, 224, 224), (16, 3, 224, 224))}``, or
a list of such dicts for several profiles) or per symbol (``dynamic={"N": (1, 8, 16)}``); a symbol given
neither way gets ``DEFAULT_RANGE``.
"""
from __future__ import annotations

from typing import Any, Optional

from ...errors import ShapeError
from ...graph import Graph
from ...shapes import Sym

DEFAULT_RANGE = (1, 1, 32)


def _sym_name(d: Any) -> Optional[str]:
    if isinstance(d, Sym) and len(d.terms) == 1 and d.terms[0][1] == 1 and d.coeff == 1:
        return d.terms[0][0]
    return None


def make_profiles(graph: Graph, profiles: Any = None, dynamic: Optional[dict] = None) -> list[dict]:
    """Normalize profile options to ``[{input name: (min, opt, max)}]`` covering every dynamic input."""
    dyn_inputs = [v for v in graph.inputs if any(isinstance(d, Sym) for d in v.shape)]
    if not dyn_inputs:
        if profiles:
            raise ShapeError(f"network '{graph.name}' has only static inputs: it takes no profiles")
        return []
    plist = profiles if isinstance(profiles, (list, tuple)) else [profiles or {}]
    dynamic = dict(dynamic or {})
    unknown = set(dynamic) - set(graph.symbols)
    if unknown:
        raise ShapeError(f"dynamic={{...}} names unknown symbol(s) {', '.join(sorted(unknown))}; "
                         f"the inputs have {', '.join(graph.symbols) or 'none'}")
    out = []
    for p in plist:
        p = dict(p or {})
        extra = set(p) - {v.name for v in graph.inputs}
        if extra:
            raise ShapeError(f"profiles name unknown input(s) {', '.join(sorted(extra))}")
        prof = {}
        for v in dyn_inputs:
            if v.name in p:
                mn, opt, mx = (tuple(int(d) for d in s) for s in p[v.name])
                for s in (mn, opt, mx):
                    if len(s) != len(v.shape) or any(isinstance(d, int) and d != s[i] for i, d in enumerate(v.shape)):
                        raise ShapeError(f"profile for input '{v.name}' {s} does not fit its shape {v.shape}")
                if not all(a <= b <= c for a, b, c in zip(mn, opt, mx)):
                    raise ShapeError(f"profile for input '{v.name}' needs min <= opt <= max, got {mn}, {opt}, {mx}")
            else:
                dims = []
                for d in v.shape:
                    if isinstance(d, int):
                        dims.append((d, d, d))
                        continue
                    name = _sym_name(d)
                    if name is None:
                        raise ShapeError(f"input '{v.name}' dim {d} is an expression: give profiles={{'{v.name}': "
                                         "(min, opt, max)}")
                    r = tuple(int(x) for x in dynamic.get(name, DEFAULT_RANGE))
                    if len(r) != 3 or not r[0] <= r[1] <= r[2] or r[0] < 0:
                        raise ShapeError(f"dynamic['{name}'] must be (min, opt, max) with min <= opt <= max, got {r}")
                    dims.append(r)
                mn, opt, mx = (tuple(x[i] for x in dims) for i in range(3))
            prof[v.name] = (mn, opt, mx)
        out.append(prof)
    return out
