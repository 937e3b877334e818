"""Comparing a backend's outputs with the float64 reference, element by element, with tolerances set by
precision and op.

An output passes when every element satisfies ``|got - ref| <= atol + rtol * |ref|`` (times a case's
``scale``). :data:`TOLERANCES` holds ``(rtol, atol)`` per precision; :data:`OP_TOLERANCES` loosens them
for particular ops at particular precisions, each with its reason; :func:`tolerance` combines both for
the ops of a network. At float32 the limits are tight enough that a formula error of 1e-4 relative
(GELU's tanh form instead of erf, a batch-norm epsilon outside the square root, ...) fails.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

# (rtol, atol): |got - ref| <= atol + rtol * |ref|, element-wise
TOLERANCES = {
    "float64": (1e-9, 1e-9),
    "float32": (1e-5, 1e-5),
    "float16": (1e-2, 1e-2),
    "bfloat16": (6e-2, 6e-2),
}


@dataclass(frozen=True)
class Tolerance:
    """An element-wise limit; with ``range_atol`` the atol is multiplied by max(1, max |ref|)."""

    rtol: float
    atol: float
    range_atol: bool = False
    why: str = ""

    def limit(self, ref: np.ndarray, scale: float = 1.0) -> np.ndarray:
        a = self.atol * (max(1.0, float(np.abs(ref).max())) if self.range_atol and ref.size else 1.0)
        return (a + self.rtol * np.abs(ref)) * scale


_QUANT = ("a value rounded to the quantization grid after the input was rounded to {p} moves by a whole "
          "step, which is proportional to the tensor's range, not to the element")
# op -> precision -> Tolerance (used instead of the precision's default when looser). "dtype:X" entries
# apply when the graph itself holds X values (graph_ops adds them): its results are only X-accurate.
OP_TOLERANCES: dict[str, dict[str, Tolerance]] = {
    **{op: {p: Tolerance(*TOLERANCES[p], range_atol=True, why=_QUANT.format(p=p)) for p in ("float16", "bfloat16")}
       for op in ("quantize_linear", "dequantize_linear")},
    "dtype:float16": {"float32": Tolerance(*TOLERANCES["float16"], why="the graph computes in float16")},
    # a wide (two-level) quantization (passes/qdq.py) quantizes x - DQ(Q(x)) in steps of 1/254 of Q's:
    # float32 rounding of x / scale, amplified 254 times, moves it by a whole step there
    "quantize:wide": {p: Tolerance(1e-4, 1e-4, range_atol=True, why="a wide tensor's second level is 254 times "
                                   f"finer than its first: rounding its input at {p} moves it by a whole step")
                      for p in ("float32",)},
    "dtype:bfloat16": {p: Tolerance(*TOLERANCES["bfloat16"], why="the graph computes in bfloat16")
                       for p in ("float32", "float16")},
}


# Whole networks of many layers (end-to-end model checks, not the per-op conformance table): float32
# rounding accumulates with depth and near-zero outputs inherit errors of the size of the large ones.
_DEEP = "a deep network: rounding accumulates over its layers, and errors scale with the output's range"
WHOLE_MODEL = {"float64": Tolerance(1e-8, 1e-8, range_atol=True, why=_DEEP),
               "float32": Tolerance(1e-4, 1e-4, range_atol=True, why=_DEEP),
               "float16": Tolerance(*TOLERANCES["float16"], range_atol=True, why=_DEEP),
               "bfloat16": Tolerance(*TOLERANCES["bfloat16"], range_atol=True, why=_DEEP)}
WHOLE_MODEL_FLOAT32 = WHOLE_MODEL["float32"]
# ops that sum many products (their rounding errors add up along a path) and the path length from which a
# network counts as deep
ACCUMULATING = frozenset({"conv", "conv_transpose", "matmul", "linear", "attention"})
DEEP_PATH = 8


def tolerance(precision: str = "float32", ops: Optional[Iterable[str]] = None) -> Tolerance:
    """The limit for outputs of a network made of ``ops`` computed at ``precision``."""
    rtol, atol = TOLERANCES[precision]
    best = Tolerance(rtol, atol)
    for op in set(ops or ()):
        t = OP_TOLERANCES.get(op, {}).get(precision)
        if t is not None:
            best = Tolerance(max(best.rtol, t.rtol), max(best.atol, t.atol), best.range_atol or t.range_atol,
                             "; ".join(w for w in (best.why, f"{op}: {t.why}") if w))
    return best


def accumulation_depth(graph: object) -> int:
    """The most :data:`ACCUMULATING` ops on any path from an input to an output."""
    depth: dict[int, int] = {}
    for n in getattr(graph, "nodes", ()):
        d = max((depth.get(id(v), 0) for v in n.inputs if v is not None), default=0) + (n.op in ACCUMULATING)
        for v in n.outputs:
            depth[id(v)] = d
    return max((depth.get(id(v), 0) for v in getattr(graph, "outputs", ())), default=0)


def graph_tolerance(graph: object, precision: str = "float32") -> Tolerance:
    """The limit for a network's outputs: :func:`tolerance` of its ops; for a deep network (more than
    :data:`DEEP_PATH` accumulating ops on a path) no tighter than :data:`WHOLE_MODEL`."""
    t = tolerance(precision, graph_ops(graph))
    if accumulation_depth(graph) <= DEEP_PATH:
        return t
    w = WHOLE_MODEL[precision]
    return Tolerance(max(t.rtol, w.rtol), max(t.atol, w.atol), True, "; ".join(x for x in (t.why, w.why) if x))


def graph_ops(graph: object) -> set[str]:
    """The op names of a graph, and ``dtype:float16`` / ``dtype:bfloat16`` when it holds such values or
    layers pinned to such a type (for :func:`tolerance`)."""
    out = {n.op for n in getattr(graph, "nodes", ())}
    values = [v for n in getattr(graph, "nodes", ()) for v in n.outputs] + list(getattr(graph, "inputs", ()))
    out |= {f"dtype:{v.dtype.value}" for v in values if str(getattr(v.dtype, "value", "")) in ("float16", "bfloat16")}
    out |= {f"dtype:{t.value}" for t in getattr(graph, "precision", {}).values()  # net.precision islands
            if t.value in ("float16", "bfloat16")}
    if any(n.op == "quantize_linear" and n.inputs[0].producer is not None and n.inputs[0].producer.op == "sub"
           and any(v is not None and v.producer is not None and v.producer.op == "dequantize_linear"
                   for v in n.inputs[0].producer.inputs) for n in getattr(graph, "nodes", ())):
        out.add("quantize:wide")
    return out


def errors(got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(max abs error, max abs error / max |ref|); inf when shapes or non-finite positions differ."""
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        raise AssertionError(f"shape {got.shape} != reference shape {ref.shape}")
    if ref.size == 0:
        return 0.0, 0.0
    finite = np.isfinite(ref)
    if not np.array_equal(finite, np.isfinite(got)) or not np.array_equal(ref[~finite], got[~finite]):
        return float("inf"), float("inf")
    d = np.abs(got[finite] - ref[finite])
    mx = float(d.max()) if d.size else 0.0
    scale = max(float(np.abs(ref[finite]).max()) if d.size else 0.0, 1.0)
    return mx, mx / scale


def excess(got: np.ndarray, ref: np.ndarray, tol: Tolerance, scale: float = 1.0) -> tuple[float, Optional[tuple]]:
    """(max over elements of |got - ref| / limit, index of the worst element); <= 1 passes; inf when shapes or
    non-finite positions differ."""
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        return float("inf"), None
    if ref.size == 0:
        return 0.0, None
    finite = np.isfinite(ref)
    if not np.array_equal(finite, np.isfinite(got)) or not np.array_equal(ref[~finite], got[~finite]):
        return float("inf"), None
    r = np.where(finite, ref, 0.0)
    ratio = np.abs(np.where(finite, got, 0.0) - r) / tol.limit(r, scale)
    i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    return float(ratio[i]), tuple(int(k) for k in i)


def close(got: np.ndarray, ref: np.ndarray, precision: str = "float32", scale: float = 1.0,
          ops: Optional[Iterable[str]] = None, tol: Optional[Tolerance] = None) -> tuple[bool, str]:
    """(ok, one-line detail): exact for integer/bool outputs, the element-wise limit for floats (``tol``, or
    :func:`tolerance` of ``precision`` and ``ops``)."""
    ref = np.asarray(ref)
    got = np.asarray(got)
    if ref.dtype.kind in "biu":
        if got.shape != ref.shape:
            return False, f"shape {got.shape} != reference shape {ref.shape}"
        bad = np.argwhere(got.astype(ref.dtype) != ref)
        return (not bad.size), ("" if not bad.size else f"integer/bool result differs from the reference at "
                                f"{[tuple(int(v) for v in b) for b in bad[:5]]}")
    tol = tol or tolerance(precision, ops)
    worst, at = excess(got, ref, tol, scale)
    if worst <= 1.0:
        return True, ""
    if at is None:
        return False, (f"shape {got.shape} != reference shape {ref.shape}" if got.shape != ref.shape
                       else "non-finite values differ from the reference")
    g, r = float(got[at]), float(ref[at])
    limit = float(tol.limit(np.where(np.isfinite(ref), ref, 0.0).astype(np.float64), scale)[at])
    return False, (f"element {at}: got {g:.8g}, reference {r:.8g}, |diff| {abs(g - r):.3g} > "
                   f"{limit:.3g} = atol + rtol*|ref| "
                   f"(rtol {tol.rtol:g}, atol {tol.atol:g}{' x range' if tol.range_atol else ''}, {precision}"
                   f"{', x' + format(scale, 'g') if scale != 1 else ''})")


def assert_close(got: np.ndarray, ref: np.ndarray, precision: str = "float32", scale: float = 1.0,
                 what: str = "output", ops: Optional[Iterable[str]] = None, tol: Optional[Tolerance] = None) -> None:
    """Fail unless ``got`` matches ``ref``: exact for integer/bool outputs, element-wise
    ``|got - ref| <= (atol + rtol * |ref|) * scale`` for floats (see :func:`tolerance`; ``tol`` overrides)."""
    ok, detail = close(got, ref, precision, scale, ops, tol)
    if not ok:
        raise AssertionError(f"{what}: {detail}")
