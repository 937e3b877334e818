"""Layer-by-layer comparison of backends with the float64 reference: find the first layer that diverges.

Every intermediate tensor is made observable on each backend: OpenVINO and ONNX Runtime run a copy of
the graph with every layer's output marked as a network output; TensorRT's network is read back
(:mod:`netdsl.backends.tensorrt.inspect`) and evaluated layer by layer in NumPy. Each tensor is then
compared with the float64 reference, in the graph's (topological) order::

    result = netdsl.compare_layers(net, backends=["openvino", "onnx"])
    d = result.backends["openvino"].first_divergence
    print(d.layer, d.location, d.max_abs)     # e.g. 'block.squash', 'model.py:12', 0.0123
    print(result)                              # the report ``netdsl compare`` prints
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from .compare import TOLERANCES
from .errors import BackendUnavailable, NetdslError
from .graph import Graph

_PRECISION_KEY = {"f32": "float32", "fp32": "float32", "float32": "float32", "f16": "float16", "fp16": "float16",
                  "float16": "float16", "bf16": "bfloat16", "bfloat16": "bfloat16"}


def tolerance_limit(precision: Any = "f32", tol: Optional[float] = None) -> float:
    """Largest accepted error relative to max(|reference|, 1): the precision's (rtol + atol) times ``tol``
    (default 10 at f32, where engines reorder sums, and 1 at f16/bf16)."""
    key = _PRECISION_KEY.get(str(precision or "f32").lower(), "float32")
    rtol, atol = TOLERANCES[key]
    return (rtol + atol) * (tol if tol is not None else (10.0 if key == "float32" else 1.0))


@dataclass
class LayerDiff:
    """One tensor of one layer on one backend, against the float64 reference."""

    layer: str
    op: str
    location: str
    tensor: str
    shape: tuple
    ok: bool
    max_abs: float = 0.0
    max_rel: float = 0.0          # max abs error / max(|reference|, 1)
    mean_abs: float = 0.0
    bad_fraction: float = 0.0     # elements whose error exceeds the limit (relative to the tensor's scale)
    worst_index: tuple = ()
    got: Any = None               # value at worst_index
    want: Any = None
    note: str = ""                # e.g. why the backend has no such tensor

    def describe(self, limit: float) -> str:
        if self.note:
            return f"{self.tensor}: {self.note}"
        s = (f"max abs err {self.max_abs:.3g}, max rel err {self.max_rel:.3g} (limit {limit:.1e}), "
             f"mean abs err {self.mean_abs:.3g}, {100 * self.bad_fraction:.3g}% of {int(np.prod(self.shape))} "
             f"elements over the limit")
        if self.worst_index:
            s += f"; worst at {self.worst_index}: got {self.got:.6g}, reference {self.want:.6g}"
        return s


@dataclass
class BackendComparison:
    """All layers of one backend: ``first_divergence`` is the layer to look at."""

    backend: str
    how: str = ""
    layers: list = field(default_factory=list)      # [LayerDiff], graph order
    error: str = ""                                 # the backend could not run the network
    unavailable: bool = False

    @property
    def first_divergence(self) -> Optional[LayerDiff]:
        return next((d for d in self.layers if not d.ok and not d.note), None)

    @property
    def ok(self) -> bool:
        return not self.error and self.first_divergence is None


@dataclass
class LayerComparison:
    """The result of :func:`compare_layers`; ``str()`` is the report, ``to_dict()`` its JSON form."""

    network: str
    precision: str
    limit: float
    backends: dict = field(default_factory=dict)    # name -> BackendComparison
    _graph: Any = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return all(b.ok for b in self.backends.values())

    def to_dict(self) -> dict:
        out: dict = {"network": self.network, "precision": self.precision, "limit": self.limit, "ok": self.ok,
                     "backends": {}}
        for name, b in self.backends.items():
            first = b.first_divergence
            out["backends"][name] = {
                "ok": b.ok, "how": b.how, "error": b.error or None, "unavailable": b.unavailable,
                "first_divergence": None if first is None else dict(asdict(first), **self._context(b, first)),
                "layers": [asdict(d) for d in b.layers]}
        return out

    def _context(self, b: BackendComparison, d: LayerDiff) -> dict:
        """Whether the diverging layer's own inputs still agree (then the layer itself is at fault)."""
        if self._graph is None:
            return {}
        node = next((n for n in self._graph.nodes if n.name == d.layer), None)
        if node is None:
            return {}
        by_tensor = {x.tensor: x for x in b.layers}
        fed = {v.name for v in self._graph.inputs}  # network inputs: the feeds themselves, exact everywhere
        ins = [v.name for v in node.inputs if v is not None and (v.name in by_tensor or v.name in fed)]
        return {"inputs": ins, "inputs_agree": all(by_tensor[t].ok for t in ins if t in by_tensor)}

    def __str__(self) -> str:
        lines = [f"layer-by-layer comparison of '{self.network}' with the float64 reference "
                 f"({self.precision}, limit {self.limit:.1e} relative to each tensor's max |reference|)"]
        for name, b in self.backends.items():
            lines.append(f"== {name}" + (f" ({b.how})" if b.how else ""))
            if b.error:
                lines.append(f"   {'UNAVAILABLE' if b.unavailable else 'FAILED'}: {b.error}")
                continue
            compared = [d for d in b.layers if not d.note]
            skipped = [d for d in b.layers if d.note]
            first = b.first_divergence
            if first is None:
                lines.append(f"   all {len(compared)} compared tensors agree with the reference")
            else:
                ctx = self._context(b, first)
                lines.append(f"   FIRST DIVERGING LAYER: '{first.layer}' ({first.op}) at {first.location or '?'}")
                lines.append(f"   {first.describe(self.limit)}")
                if ctx and ctx["inputs"]:
                    lines.append("   its inputs (" + ", ".join(ctx["inputs"]) + ") "
                                 + ("agree with the reference: this layer is where results part"
                                    if ctx["inputs_agree"] else "already differ"))
                later = [d for d in compared if not d.ok and d is not first]
                lines.append(f"   {len(later)} later tensor(s) differ as well; "
                             f"{len(compared) - len(later) - 1} agree")
            if skipped:
                lines.append(f"   {len(skipped)} tensor(s) not compared (e.g. {skipped[0].tensor}: {skipped[0].note})")
        return "\n".join(lines)


# ---- observing every tensor -------------------------------------------------------------------------
def observable_tensors(graph: Graph) -> list:
    """Values worth comparing: every output of every layer except weights and constants, graph order."""
    return [v for n in graph.nodes if n.op not in ("parameter", "constant") for v in n.outputs]


def marked_graph(graph: Graph) -> Graph:
    """A copy of ``graph`` (sharing nodes and weights) with every layer output marked as a network output."""
    outs = list(graph.outputs)
    have = {id(v) for v in outs}
    outs += [v for v in observable_tensors(graph) if id(v) not in have]
    return Graph(graph.name, inputs=list(graph.inputs), outputs=outs, nodes=graph.nodes, params=graph.params)


def backend_tensors(backend: str, graph: Graph, feeds: dict, **options: Any) -> tuple[dict, str, dict]:
    """({tensor name: array} for every layer output the backend exposes, how they were obtained,
    {tensor name: why it is not compared})."""
    from .backends import get_backend
    if backend == "reference":
        from .backends.reference import ReferenceModel
        m = ReferenceModel(graph, dtype=options.get("dtype", "float32"), keep=True)
        m(feeds)
        return dict(m.values), "NumPy reference in float32", {}
    if backend == "tensorrt":
        return _tensorrt_tensors(graph, feeds, **options)
    be = get_backend(backend)
    g = marked_graph(graph)
    model = be.compile(g, **options)
    got = model(feeds)
    return got, f"{len(g.outputs)} layer outputs marked as network outputs", {}


def _tensorrt_tensors(graph: Graph, feeds: dict, precision: str = "float32", flavour: Any = None,
                      **_: Any) -> tuple[dict, str, dict]:
    from .backends.base import check_inputs
    from .backends.tensorrt import _trt, options as trt_options
    from .backends.tensorrt.inspect import Evaluator
    from .backends.tensorrt.lower import lower
    trt = _trt.load(flavour)
    precision = trt_options({"precision": precision})["precision"]
    lowered = lower(graph, trt, precision=precision)
    ev = Evaluator(lowered.network, trt)
    ev.run(check_inputs(graph, feeds))
    env = {k: v for k, v in ev.env.items() if isinstance(v, np.ndarray)}
    notes = {}
    producers = {id(o): n for n in graph.nodes for o in n.outputs}
    for node in graph.nodes:  # conv + batch norm folded into one TensorRT convolution: compare after the norm
        if node.op == "batch_norm" and lowered.ctx.fold.get(node.name) is True:
            conv = producers[id(node.inputs[0])].outputs[0]
            if conv.name in env:
                env[node.outputs[0].name] = env.pop(conv.name)
                notes[conv.name] = f"folded with batch norm '{node.name}' into one TensorRT convolution " \
                                   "(compared there)"
    return env, (f"TensorRT network ({lowered.network.num_layers} layers, {_trt.version_string(trt)}) read back "
                 "and evaluated in NumPy"), notes


# ---- comparing ----------------------------------------------------------------------------------------
def diff_tensor(node: Any, v: Any, got: Optional[np.ndarray], ref: np.ndarray, limit: float,
                note: str = "") -> LayerDiff:
    """Compare one tensor with the reference (integer and bool tensors exactly); ``note`` says why it is
    not compared."""
    ref = np.asarray(ref)
    d = LayerDiff(node.name, node.op, node.location, v.name, tuple(ref.shape), ok=True)
    if got is None or note:
        d.note = note or "not observable on this backend (fused into another layer or folded away)"
        return d
    got = np.asarray(got)
    if got.shape != ref.shape:
        if got.size != ref.size:
            d.ok, d.note = False, ""
            d.max_abs = d.max_rel = d.mean_abs = float("inf")
            d.bad_fraction = 1.0
            d.got, d.want = f"shape {got.shape}", f"shape {ref.shape}"
            return d
        got = got.reshape(ref.shape)
    if ref.size == 0:
        return d
    exact = ref.dtype.kind in "biu"
    g64, r64 = got.astype(np.float64), ref.astype(np.float64)
    both_nan = np.isnan(g64) & np.isnan(r64)
    same_inf = np.isinf(r64) & (g64 == r64)
    err = np.where(both_nan | same_inf, 0.0, np.abs(g64 - r64))
    err = np.where(np.isnan(err), np.inf, err)
    finite = np.isfinite(r64)
    scale = max(float(np.abs(r64[finite]).max()) if finite.any() else 0.0, 1.0)
    bad = err > 0 if exact else err / scale > limit
    i = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
    d.max_abs = float(err.max())
    d.max_rel = d.max_abs / scale
    d.mean_abs = float(err.mean()) if np.isfinite(err).all() else float("inf")
    d.bad_fraction = float(bad.mean())
    d.ok = not bad.any()
    d.worst_index = tuple(int(x) for x in i)
    d.got, d.want = float(g64[i]), float(r64[i])
    return d


def compare_layers(net: Any, backends: Sequence[str] = ("openvino",), inputs: Optional[dict] = None, *,
                   precision: str = "f32", tol: Optional[float] = None, seed: int = 0,
                   dims: Optional[dict] = None, options: Optional[dict] = None) -> LayerComparison:
    """Compare every layer's output on each backend with the float64 reference (see the module docstring).

    ``inputs``: feeds (default: seeded random data, symbolic dims from ``dims`` or 1); ``precision``: the
    engines' compute precision (f32, f16, bf16), which also sets the tolerance; ``tol`` multiplies it;
    ``options``: {backend: extra compile options}. A backend that cannot run here is reported
    (``unavailable``), not raised.
    """
    from .backends.reference import ReferenceModel
    from .feeds import random_inputs
    graph: Graph = getattr(net, "graph", net)
    graph.validate()
    feeds = inputs if inputs is not None else random_inputs(graph, seed, dims)
    ref_model = ReferenceModel(graph, dtype="float64", keep=True)
    ref_model(feeds)
    ref = ref_model.values
    limit = tolerance_limit(precision, tol)
    result = LayerComparison(graph.name, str(precision), limit, _graph=graph)
    for b in backends:
        bc = BackendComparison(b)
        result.backends[b] = bc
        opts = dict((options or {}).get(b, {}))
        if b in ("openvino", "tensorrt") and precision:
            opts.setdefault("precision", precision)
        try:
            got, bc.how, notes = backend_tensors(b, graph, feeds, **opts)
        except BackendUnavailable as e:
            bc.error, bc.unavailable = str(e), True
            continue
        except NetdslError as e:
            bc.error = str(e)
            continue
        for node in graph.nodes:
            if node.op in ("parameter", "constant"):
                continue
            for v in node.outputs:
                bc.layers.append(diff_tensor(node, v, got.get(v.name), ref[v.name], limit, notes.get(v.name, "")))
    return result


__all__ = ["compare_layers", "LayerComparison", "BackendComparison", "LayerDiff", "marked_graph",
           "observable_tensors", "tolerance_limit"]
