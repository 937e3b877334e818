"""Post-training INT8 quantization: calibrate activation ranges, insert Q/DQ, report the loss.

    qnet = netdsl.quantize(net, batches, method="entropy", exclude=["classifier*"], cache="calib.json")
    print(qnet.quantization)                       # per-layer SQNR against the float network
    model = netdsl.compile(qnet, "openvino")       # convolutions and matmuls run as INT8

Activations: per-tensor symmetric int8, threshold by ``method`` ("minmax", "percentile", or
"entropy": TensorRT's KL-divergence calibrator), observed on ``backend`` ("reference" = NumPy float32,
"openvino" = OpenVINO f32, "auto" = OpenVINO when installed). Weights: per-output-channel symmetric
int8. Layers whose names match an ``exclude`` pattern stay in float.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

from ..errors import NetdslError
from ..graph import Graph
from ..passes.fold import optimize
from ..passes.qdq import activations, excluded, insert_qdq, targets
from . import cache as _cache
from .calibrate import as_batches, observe, pick_backend
from .observers import METHODS
from .report import QuantizationReport, measure


def calibrate(graph: Graph, batches: Iterable[Any], method: str = "percentile", exclude: Sequence[str] = (),
              backend: str = "auto", percentile: float = 99.99, cache: Optional[str] = None) -> dict:
    """{activation tensor: |x| clipping threshold} for the layers ``quantize`` would quantize."""
    if method not in METHODS:
        raise NetdslError(f"unknown calibration method {method!r}; choose {', '.join(METHODS)}")
    backend = pick_backend(backend)
    names = activations(graph, exclude)
    key = {"network": graph.name, "structure": graph.structure_hash(), "method": method,
           "percentile": percentile if method == "percentile" else None, "exclude": sorted(exclude)}
    if cache:
        found = _cache.load(cache, key)
        if found is not None:
            missing = [n for n in names if n not in found]
            if missing:
                raise NetdslError(f"calibration cache {cache} has no threshold for {', '.join(missing[:5])}")
            return {n: found[n] for n in names}
    obs = observe(graph, names, as_batches(graph, batches), backend, histogram=method != "minmax")
    thresholds = {n: o.threshold(method, percentile) for n, o in obs.items()}
    if cache:
        _cache.save(cache, key, thresholds, {"ranges": {n: [o.lo, o.hi] for n, o in obs.items()}})
    return thresholds


def quantize(network: Any, calibration_batches: Iterable[Any], method: str = "percentile",
             exclude: Sequence[str] = (), backend: str = "auto", percentile: float = 99.99,
             cache: Optional[str] = None, report: bool = True, report_batches: int = 4) -> Any:
    """An INT8 copy of ``network`` (a Network; ``.quantization`` holds the QuantizationReport).

    calibration_batches: feed dicts (or arrays for a one-input network); method: minmax | percentile |
    entropy; exclude: fnmatch patterns of layer names kept in float; backend: where the float network
    runs for calibration (reference | openvino | auto); cache: a JSON calibration cache to reuse;
    report: measure per-layer SQNR on the first ``report_batches`` batches.
    """
    from ..dsl import Network
    graph = optimize(getattr(network, "graph", network))  # batch norms folded into their convolutions
    batches = as_batches(graph, calibration_batches)
    exclude = tuple([exclude] if isinstance(exclude, str) else exclude)
    for pat in exclude:  # a typo would silently quantize the layer it meant to keep
        if not any(excluded(n.name, [pat]) for n in graph.nodes):
            raise NetdslError(f"exclude pattern {pat!r} matches no layer of network '{graph.name}'")
    thresholds = calibrate(graph, batches, method, exclude, backend, percentile, cache)
    qgraph = insert_qdq(graph, thresholds, exclude)
    rep = QuantizationReport(method, pick_backend(backend), thresholds=thresholds)
    rep.excluded = [n.name for n in graph.nodes if n.op in ("conv", "linear", "matmul")
                    and n.name not in {t[0].name for t in targets(graph, exclude)}]
    if report:
        layers = [t[0] for t in targets(graph, exclude)]
        rep.layers, rep.outputs = measure(graph, qgraph, layers, batches[:max(1, report_batches)], rep.backend)
    qnet = Network.from_graph(qgraph)
    qnet.quantization = rep
    return qnet


__all__ = ["QuantizationReport", "calibrate", "quantize", "METHODS"]
