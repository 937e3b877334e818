"""The CPU proof of a TensorRT lowering (no GPU needed; used by ``netdsl check``).

4a  the network is accepted by a real TensorRT builder, builds and serializes;
4b  for every DSL tensor, TensorRT's inferred shape (and type) equals netdsl's;
4c  the network read back from TensorRT (:mod:`.inspect`) evaluates to the float64 reference.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ...compare import close, errors, graph_tolerance
from ...graph import Graph
from ._ctx import dims_of


@dataclass
class Step:
    name: str           # "4a build", "4b shapes", "4c evaluate"
    ok: bool
    detail: str
    problems: list = field(default_factory=list)


@dataclass
class CheckReport:
    """Result of :func:`check`: ``ok``, the steps, per-output errors; ``str(report)`` is the text to print."""

    network: str
    trt_version: str
    precision: str
    steps: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)   # name -> {"max_abs": ..., "max_rel": ..., "ok": ...}
    layers: int = 0
    plan_bytes: int = 0
    build_seconds: float = 0.0
    gpu: str = ""                                 # why the engine itself was not run here (if it was not)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    def to_dict(self) -> dict:
        return {"network": self.network, "ok": self.ok, "trt": self.trt_version, "precision": self.precision,
                "layers": self.layers, "plan_bytes": self.plan_bytes, "build_seconds": self.build_seconds,
                "gpu": self.gpu, "steps": [s.__dict__ for s in self.steps], "outputs": self.outputs}

    def __str__(self) -> str:
        lines = [f"tensorrt CPU proof of '{self.network}' with {self.trt_version} ({self.precision}): "
                 + ("PASS" if self.ok else "FAIL")]
        if self.gpu:
            lines.append(f"  engine not executed: {self.gpu}; ran the CPU proof 4a-4c instead")
        for s in self.steps:
            lines.append(f"  [{'ok' if s.ok else 'FAIL'}] {s.name}: {s.detail}")
            lines += [f"      - {p}" for p in s.problems[:20]]
            if len(s.problems) > 20:
                lines.append(f"      ... {len(s.problems) - 20} more")
        for k, e in self.outputs.items():
            lines.append(f"  output {k}: max abs err {e['max_abs']:.3g}, max err/max|ref| {e['max_rel']:.3g}"
                         f" ({'ok' if e['ok'] else 'MISMATCH'}{'; ' + e['note'] if e.get('note') else ''})")
        return "\n".join(lines)


def bind_symbols(graph: Graph, env: dict) -> Graph:
    """A copy of ``graph`` whose inputs have the symbolic dims replaced by ``env`` values (shapes re-inferred)."""
    from ...graph import Node, Value
    from ...ops import get_op
    from ...shapes import Sym

    def dim(d: Any) -> Any:
        if isinstance(d, Sym) and all(n in env for n in d.symbols):
            return d.evaluate(env)
        return d

    g = Graph(graph.name, params=graph.params)
    vmap: dict[int, Value] = {}
    for v in graph.inputs:
        nv = Value(v.name, v.dtype, tuple(dim(d) for d in v.shape))
        vmap[id(v)] = nv
        g.inputs.append(nv)
    for n in graph.nodes:
        ins = [None if v is None else vmap[id(v)] for v in n.inputs]
        nn = Node(n.op, n.name, ins, n.attrs, n.location)
        specs = get_op(n.op).infer_specs([None if v is None else v.spec for v in ins], n.attrs)
        for i, (o, sp) in enumerate(zip(n.outputs, specs)):
            nv = Value(o.name, sp.dtype, sp.shape, nn, i)
            nn.outputs.append(nv)
            vmap[id(o)] = nv
        g.nodes.append(nn)
    g.outputs = [vmap[id(v)] for v in graph.outputs]
    return g


def shape_problems(graph: Graph, lowered: Any) -> list[str]:
    """4b: DSL tensors whose TensorRT shape or type differs from netdsl's inference."""
    ctx = lowered.ctx
    out = []
    for node in graph.nodes:
        for v in node.outputs:
            t = ctx.tensors.get(v.name)
            if t is None:
                if node.op in ("parameter", "constant"):
                    continue  # used in place as layer weights (no tensor)
                out.append(f"{v.name} ({node.op} '{node.name}'): no TensorRT tensor")
                continue
            want = dims_of(v.shape)
            got = tuple(t.shape)
            if got != want:
                out.append(f"{v.name} ({node.op} '{node.name}', {node.location}): TensorRT shape {got}, "
                           f"netdsl {want}")
            want_t = ctx.trt_dtype(v.dtype)
            island = ctx.islands.get(node.name)  # per-layer precision: float32-class values in its type
            if island is not None and v.dtype.value in ("float32", "float64"):
                want_t = island
            if ctx.islands and node.op in ("parameter", "constant") and v.dtype.is_float:
                want_t = t.dtype  # typed by the layer that first reads it
            if t.dtype != want_t:
                out.append(f"{v.name} ({node.op} '{node.name}'): TensorRT type {t.dtype.name}, netdsl {v.dtype}")
    return out


def _fed_sizes(graph: Graph, feeds: dict) -> dict:
    """{symbol: (n, n, n)} for each plain symbolic input dim, n its size in ``feeds``."""
    from .profiles import _sym_name
    out: dict = {}
    for v in graph.inputs:
        for i, d in enumerate(v.shape):
            name = _sym_name(d) if not isinstance(d, int) else None
            if name is not None and v.name in feeds:
                n = int(feeds[v.name].shape[i])
                out.setdefault(name, (n, n, n))
    return out


def check(graph: Graph, feeds: dict, *, precision: str = "float32", profiles: Any = None,
          dynamic: Optional[dict] = None, flavour: Optional[str] = None, workspace: int = 1 << 30,
          target: Any = None, tol: float = 1.0, progress: Any = False, static: Optional[dict] = None,
          device: int = 0, tf32: bool = False, timing_cache: Optional[str] = None, **_: Any) -> CheckReport:
    """Run 4a-4c for ``graph`` on these inputs; never raises for a failed step (see ``report.ok``).

    Outputs pass when every element is within ``atol + rtol * |ref|`` (:func:`netdsl.compare.graph_tolerance`:
    by precision and the graph's ops, range-scaled for deep networks), times ``tol``.
    ``static={"N": 2}`` binds symbolic dims first (a static network; 4b then compares static shapes).
    At reduced precision integer outputs (argmax, topk indices) are reported but not required to match.
    """
    from ...backends.base import check_inputs
    from ...backends.reference import run as reference_run
    from . import _trt
    from .builder import build_lowered
    from .gpu import status
    from .inspect import evaluate
    from .lower import lower
    from .profiles import make_profiles

    trt = _trt.load(flavour)
    rep = CheckReport(graph.name, _trt.version_string(trt), precision)
    usable, why = status(trt, device)
    rep.gpu = "" if usable else why
    if static:
        graph = bind_symbols(graph, static)
    feeds = check_inputs(graph, feeds)
    if not profiles:  # a symbol with no range given: the profile is exactly the fed size (always a valid shape)
        dynamic = {**_fed_sizes(graph, feeds), **(dynamic or {})}
    # 4a
    t0 = time.perf_counter()
    try:
        lowered = lower(graph, trt, precision=precision)
        profs = make_profiles(graph, profiles, dynamic)
        plan = build_lowered(lowered, profs, workspace, target, progress, tf32, timing_cache)
    except Exception as e:
        rep.steps.append(Step("4a build", False, f"{type(e).__name__}: {e}"))
        return rep
    rep.build_seconds = time.perf_counter() - t0
    rep.layers = lowered.network.num_layers
    rep.plan_bytes = len(plan)
    rep.steps.append(Step("4a build", True, f"{rep.layers} TensorRT layers, serialized plan of {len(plan)} bytes "
                                            f"in {rep.build_seconds:.2f} s"
                                            + (f", {len(profs)} optimization profile(s)" if profs else "")))
    # 4b
    probs = shape_problems(graph, lowered)
    n = sum(len(nd.outputs) for nd in graph.nodes)
    rep.steps.append(Step("4b shapes", not probs, f"{n - len(probs)}/{n} tensors: TensorRT shapes and types equal "
                                                  "netdsl's", probs))
    # 4c
    try:
        got = evaluate(lowered.network, feeds, trt)
        ref = reference_run(graph, feeds, dtype="float64")
    except Exception as e:
        rep.steps.append(Step("4c evaluate", False, f"{type(e).__name__}: {e}"))
        return rep
    limit = graph_tolerance(graph, precision)
    bad = []
    for k, r in ref.items():
        g = got[k]
        ok, note = close(g, r, precision, scale=tol, tol=limit)
        try:
            mx, rel = errors(g, r)
        except AssertionError:
            mx = rel = float("inf")
        if not ok and np.asarray(r).dtype.kind in "biu" and precision != "float32" and g.shape == r.shape:
            ok, note = True, f"integer output differs at {precision} (ties after rounding): not compared"
        rep.outputs[k] = {"max_abs": mx, "max_rel": rel, "ok": bool(ok), "note": note}
        if not ok:
            bad.append(k)
    rep.steps.append(Step("4c evaluate", not bad, "the network read back from TensorRT, evaluated in NumPy, "
                          + ("equals the float64 reference" if not bad else f"differs at {', '.join(bad)}")))
    return rep
