"""Running the float network on calibration batches and observing the tensors to be quantized."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..backends.base import refuse_masked
from ..errors import NetdslError
from ..graph import Graph
from ..passes.rewrite import clone_graph
from ..progress import progress
from .observers import Observer

CALIBRATION_BACKENDS = ("reference", "openvino")


def observing(graph: Graph, names: Sequence[str]) -> Graph:
    """A copy of ``graph`` whose outputs are the tensors ``names`` (then its own outputs)."""
    g = clone_graph(graph)
    by_name = {v.name: v for v in g.values()}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise NetdslError(f"network '{graph.name}' has no tensor(s) {', '.join(missing[:5])}")
    outs = [by_name[n] for n in names]
    g.outputs = outs + [o for o in g.outputs if all(o is not x for x in outs)]
    return g


def pick_backend(backend: str) -> str:
    if backend == "auto":
        try:
            import openvino  # noqa: F401
            return "openvino"
        except ImportError:
            return "reference"
    if backend not in CALIBRATION_BACKENDS:
        raise NetdslError(f"calibration backend must be one of {', '.join(CALIBRATION_BACKENDS)} or auto, "
                          f"got {backend!r}")
    return backend


def run_observed(graph: Graph, names: Sequence[str], batches: Sequence[Mapping[str, Any]], backend: str,
                 desc: str) -> Iterable[dict]:
    """Yield, per batch, {name: array} of the observed tensors, run by ``backend`` in float32."""
    from ..backends import compile as _compile
    g = observing(graph, names)
    opts = {"precision": "f32"} if backend == "openvino" else {"dtype": "float32"}
    model = _compile(g, backend, **opts)
    with progress(total=len(batches), desc=desc, unit="batch") as bar:
        for feeds in batches:
            out = model(dict(feeds))
            yield {n: out[n] for n in names}
            bar.update(1)


def as_batches(graph: Graph, batches: Any) -> list[dict]:
    """Calibration data as a list of feed dicts (a single-input network also takes bare arrays)."""
    out = []
    for b in batches:
        if isinstance(b, Mapping):
            for name, a in b.items():
                refuse_masked(name, a)
            out.append(dict(b))
        elif len(graph.inputs) == 1:
            refuse_masked(graph.inputs[0].name, b)
            out.append({graph.inputs[0].name: np.asarray(b)})
        else:
            raise NetdslError(f"network '{graph.name}' has {len(graph.inputs)} inputs: give each calibration "
                              f"batch as a dict {{{', '.join(v.name for v in graph.inputs)}}}")
    if not out:
        raise NetdslError("calibration needs at least one batch of inputs")
    return out


def observe(graph: Graph, names: Sequence[str], batches: list, backend: str, histogram: bool) -> dict:
    """{tensor name: Observer} after running every calibration batch."""
    obs = {n: Observer(histogram) for n in names}
    for values in run_observed(graph, names, batches, backend, "calibrating"):
        for n, a in values.items():
            obs[n].update(a)
    return obs
