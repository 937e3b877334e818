"""Post-training INT8 quantization: calibrate activation ranges, insert Q/DQ, report the loss.

    qnet = netdsl.quantize(net, batches, exclude=["classifier*"], cache="calib.json")
    print(qnet.quantization)                       # per-layer SQNR against the float network
    model = netdsl.compile(qnet, "openvino")       # convolutions and matmuls run as INT8
    qnet = netdsl.quantize(net, batches, target="tensorrt")   # symmetric int8: TensorRT's Q/DQ form

Weights: per-output-channel symmetric int8. Activations: per tensor, in the ``scheme`` the target
engine runs fastest and most accurately (schemes.py: asymmetric uint8 for OpenVINO and ONNX
Runtime, symmetric int8 for TensorRT), with ranges chosen by ``method`` ("mse": least expected squared
error, the default; "percentile", "minmax", or "entropy": TensorRT's KL-divergence calibrator), observed on
``backend`` ("reference" = NumPy float32, "openvino" = OpenVINO f32, "auto" = OpenVINO when installed).
Before the ranges are taken, channels may be equalized across layers (``equalize``, passes/equalize.py);
after, each layer's bias is corrected for the mean shift quantization causes (``bias_correction``);
``rounding="gptq"`` fits each layer's int8 weights to its quantized inputs (GPTQ, rounding.py;
``"auto"``: kept only where it raises the output SQNR on held-out calibration batches);
``refine_ranges=True`` searches each activation range for the best output SQNR (output-aware);
``keep_float=k`` keeps the k layers that lose the most, alone, in float (sensitivity analysis), and
``keep_float="auto"`` the fewest such layers for the output to reach ``min_sqnr`` dB and/or a top-1
agreement ``min_top1`` with the float network on the calibration data (accuracy-aware quantization);
``wide_activations`` quantizes chosen activations (and with "auto", the default, weights) in two
levels, still on INT8 kernels (the value and its rounding residual, each read by an INT8 copy of the
layer; "auto": the most sensitive tensors until the calibration outputs reach an estimated top-1
agreement of 99.5% on class scores and an SQNR of 20 dB elsewhere -- none where plain INT8 already
does, as for every example model but FER and CREPE; passes/qdq.py).
Layers whose names match an ``exclude`` pattern stay in float. A uint8 image input normalized by
``preprocess`` is shifted so that its uint8 grid holds it exactly (image_inputs.py).
"""
from __future__ import annotations

import numbers
import warnings
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from ..errors import NetdslError
from ..graph import Graph
from ..passes.fold import optimize
from ..passes.qdq import QUANTIZABLE, activations, excluded, targets
from . import cache as _cache
from .calibrate import as_batches, pick_backend
from .image_inputs import exact_image_inputs
from .observers import METHODS
from .plan import ROUNDINGS, WIDE_SQNR, WIDE_TOP1, QuantPlan, apply_plan, make_plan, observe_ranges
from .report import QuantizationReport, counted, measure
from .schemes import SCHEMES, pick_scheme

DEFAULT_MIN_SQNR = 30.0  # keep_float="auto"'s target when neither min_sqnr nor min_top1 is given
from .sensitivity import class_outputs, literal, top1_outputs


def _check(method: str, scheme: str) -> None:
    if method not in METHODS:
        raise NetdslError(f"unknown calibration method {method!r}; choose {', '.join(METHODS)}")
    if scheme not in SCHEMES:
        raise NetdslError(f"unknown quantization scheme {scheme!r}; choose auto, {', '.join(SCHEMES)}")


def calibrate(graph: Graph, batches: Iterable[Any], method: str = "mse", exclude: Sequence[str] = (),
              backend: str = "auto", percentile: float = 99.99, scheme: str = "symmetric") -> dict:
    """{activation tensor: (lo, hi) clipping range} for the layers ``quantize`` would quantize."""
    _check(method, scheme)
    return observe_ranges(graph, as_batches(graph, batches), exclude, pick_backend(backend), method, percentile,
                          scheme)


def quantize(network: Any, calibration_batches: Iterable[Any], method: str = "mse",
             exclude: Sequence[str] = (), backend: str = "auto", percentile: float = 99.99,
             cache: Optional[str] = None, report: bool = True, report_batches: int = 4,
             scheme: str = "auto", target: Optional[str] = None, equalize: Any = "auto",
             bias_correction: bool = True, keep_float: Any = 0, rounding: str = "nearest",
             min_sqnr: Optional[float] = None, min_top1: Optional[float] = None,
             refine_ranges: bool = False, wide_activations: Any = "auto", wide_weights: Any = "none") -> Any:
    """An INT8 copy of ``network`` (a Network; ``.quantization`` holds the QuantizationReport).

    calibration_batches: feed dicts (or arrays for a one-input network); method: mse (least expected
    squared error of each tensor) | percentile | minmax | entropy; exclude: fnmatch patterns of layer names kept in float; backend: where the float
    network runs for calibration (reference | openvino | auto); cache: a JSON file holding every
    decision calibration made, reused when it matches (then no calibration runs); report: measure
    per-layer SQNR on the first ``report_batches`` batches; scheme: symmetric | unsigned | asymmetric
    | auto (by ``target``: symmetric for "tensorrt", else asymmetric); equalize: cross-layer channel
    equalization, "auto" (per tensor, the SmoothQuant balance alpha -- or none -- of least estimated
    noise), a fixed alpha in [0, 1], or 0 / None (off); bias_correction: correct each layer's mean
    output (kept when it raises the output SQNR on calibration data); keep_float: keep the k most
    sensitive layers in float, or "auto": the fewest of them that reach ``min_sqnr`` (output SQNR dB,
    30 when neither target is given) and ``min_top1`` (fraction of calibration inputs -- and positions,
    for a map -- whose arg-max over axis 1 agrees with the float network's, for the least agreeing float
    output that has classes: rank >= 2, more than one entry on axis 1; refused for a network with no such
    output, a regression value or a rank-1 output); rounding: "nearest" (the
    default), "gptq" (weights fitted to the quantized layer inputs, in network order) or "auto" (GPTQ
    where it raises the output SQNR on held-out calibration data: the odd batches, or the odd samples of a
    single batch; nearest when there is none, one batch of one sample or of a fixed batch dim); refine_ranges: output-aware
    range search after ``method`` (each range scaled x0.7 .. x1.6 where that raises the output SQNR on
    the first ``report_batches`` calibration batches); wide_activations: activation tensors quantized
    in two levels (the 8-bit value and its rounding residual in int8, each read by an INT8 copy of the
    layer, the two outputs added: ~16-bit inputs on INT8 kernels, one more layer each): "none", fnmatch
    patterns of tensor or layer names, or "auto" (the default): the tensors whose quantization alone costs the most
    output SQNR, added one at a time until, on the calibration data, every class-score output
    (softmax / sigmoid) reaches an estimated top-1 agreement of ``min_top1`` (default 0.995; estimated
    from each input's output margins and measured output noise) and the other outputs an SQNR of
    ``min_sqnr`` dB (default 20; with ``keep_float="auto"`` the two targets are its own and these
    defaults hold for the wide tensors); with "auto" the layers' int8 weights are candidates as well
    (a wide weight: its int8 rounding residual as a second int8 weight, one more INT8 layer), and a
    layer whose input and weights are both chosen (or a matmul whose two inputs are) runs in float
    instead (one exact layer, not three INT8 copies); where widening every candidate falls short of the
    target (and ``keep_float`` is 0), the layers left in INT8 whose quantization alone costs the most stay
    float until the estimate meets it; a warning says when the second levels add INT8 layers for half the quantized ones;
    wide_weights: "none" or fnmatch patterns of the layers whose weights are wide.
    """
    from ..dsl import Network, user_stacklevel
    if cache:
        _cache.check_writable(cache)  # before calibration, not after it
    graph = optimize(getattr(network, "graph", network))  # batch norms folded into their convolutions
    batches = as_batches(graph, calibration_batches)
    exclude = tuple([exclude] if isinstance(exclude, str) else exclude or ())
    for pat in exclude:  # a typo would silently quantize the layer it meant to keep
        if not any(excluded(n.name, [pat]) for n in graph.nodes):
            raise NetdslError(f"exclude pattern {pat!r} matches no layer of network '{graph.name}'")
    scheme = pick_scheme(scheme, target)
    _check(method, scheme)
    wide, wide_w = _wide_option(wide_activations, "wide_activations"), _wide_option(wide_weights, "wide_weights", False)
    for opt, pats, names in (("wide_activations", () if wide == "auto" else wide,
                              [n.name for n in graph.nodes] + [v.name for v in graph.values()]),
                             ("wide_weights", wide_w, [n.name for n in graph.nodes if n.op in QUANTIZABLE])):
        for pat in pats:
            if not any(excluded(x, [pat]) for x in names):
                raise NetdslError(f"{opt} pattern {pat!r} matches no {'layer or tensor' if opt == 'wide_activations' else 'layer'}"
                                  f" of network '{graph.name}' (give {'auto, ' if opt == 'wide_activations' else ''}"
                                  f"none, or name patterns)")
    _check_options(graph, exclude, keep_float, equalize, method, percentile, rounding, min_sqnr, min_top1,
                   wide == "auto")
    mine = keep_float != "auto"  # with keep_float="auto" the targets are its own; wide "auto" keeps its defaults
    if wide == "auto" and mine and min_top1 is not None and not class_outputs(graph):
        outs = ", ".join(f"{v.name} (from {v.producer.op if v.producer else 'input'})" for v in graph.outputs)
        raise NetdslError(f"min_top1 with wide_activations='auto' is estimated on class-score outputs (made by a "
                          f"softmax, log-softmax or sigmoid); network '{graph.name}' has none ({outs}): give "
                          f"min_sqnr instead")
    wide_targets = (WIDE_SQNR if min_sqnr is None or not mine else min_sqnr,
                    WIDE_TOP1 if min_top1 is None or not mine else min_top1)
    for flag, value in (("refine_ranges", refine_ranges), ("bias_correction", bias_correction)):
        if not isinstance(value, (bool, np.bool_)):  # bool("no") would turn it on
            raise NetdslError(f"{flag} must be True or False, got {value!r}")
    if isinstance(report_batches, bool) or not isinstance(report_batches, numbers.Integral) or report_batches < 1:
        raise NetdslError(f"report_batches must be a whole number of batches >= 1, got {report_batches!r}")
    if keep_float == "auto" and min_sqnr is None and min_top1 is None:
        min_sqnr = DEFAULT_MIN_SQNR
    backend = pick_backend(backend)
    graph, pinned = exact_image_inputs(graph, exclude, scheme)  # deterministic: the cache sees its result
    key = {"network": graph.name, "structure": graph.structure_hash(),
           "weights": getattr(network, "graph", network).weights_hash() if cache else None, "method": method,
           "percentile": percentile if method == "percentile" else None, "exclude": sorted(exclude),
           "scheme": scheme, "equalize": equalize if equalize == "auto" else float(equalize or 0), "bias_correction": bool(bias_correction),
           "keep_float": keep_float if keep_float == "auto" else int(keep_float), "rounding": rounding,
           "keep_target": [min_sqnr, min_top1] if keep_float == "auto" else None,
           "refine_ranges": bool(refine_ranges),
           "wide_activations": wide if isinstance(wide, str) else list(wide),
           "wide_target": list(wide_targets) if wide == "auto" else None, "wide_weight_patterns": list(wide_w),
           "report_batches": max(1, int(report_batches))}  # refined ranges, kept layers, bias corrections
    plan = _cached_plan(cache, key, graph, exclude) if cache else None
    if plan is None:
        plan = make_plan(graph, batches, exclude, backend, method, percentile, scheme, equalize, keep_float,
                         bias_correction, report_batches, rounding, min_sqnr, min_top1, bool(refine_ranges), pinned,
                         wide, wide_targets, wide_w)
        if cache:
            _cache.save(cache, key, plan.to_json())
    fgraph, qgraph = apply_plan(graph, plan, exclude, scheme)
    rep = QuantizationReport(method, backend, thresholds=plan.ranges, scheme=scheme, kept_float=plan.keep_float,
                             sensitivity=plan.sensitivity, equalized=sorted(plan.scales),
                             bias_corrected=sorted(plan.biases), bias_gain=plan.bias_gain,
                             alpha=plan.alpha, alphas=plan.alphas, rounded=sorted(plan.rounded),
                             rounding_gain=plan.rounding_gain, rounding=rounding, kept_scores=plan.kept_scores,
                             keep_target=(min_sqnr, min_top1) if keep_float == "auto" else
                             wide_targets if plan.wide_kept else (),
                             refine_gain=plan.refine_gain,
                             exact_inputs=sorted(pinned) if scheme == "asymmetric" else [],
                             wide=list(plan.wide), wide_weights=list(plan.wide_weights),
                             wide_sensitivity=plan.wide_sensitivity,
                             wide_scores=plan.wide_scores, wide_target=wide_targets if wide == "auto" else (),
                             wide_float=list(plan.wide_float), wide_kept=list(plan.wide_kept))
    quantized = [t[0] for t in targets(fgraph, exclude + tuple(literal(n) for n in plan.keep_float))]
    rep.excluded = [n.name for n in graph.nodes if n.op in QUANTIZABLE and n.name not in {q.name for q in quantized}]
    rep.wide_layers = sum(n.op in QUANTIZABLE for n in qgraph.nodes) - sum(n.op in QUANTIZABLE for n in fgraph.nodes)
    if wide == "auto" and (rep.wide_layers * 2 >= len(quantized) if quantized else bool(plan.wide_float)):
        warnings.warn(_wide_cost_message(graph.name, rep.wide_layers, len(quantized), plan.wide_scores,
                                         len(plan.wide_float)), stacklevel=user_stacklevel())
    if report:
        rep.layers, rep.outputs = measure(fgraph, qgraph, quantized, batches[:max(1, report_batches)], backend)
    qnet = Network.from_graph(qgraph)
    qnet.quantization = rep
    return qnet


def _wide_cost_message(name: str, extra: int, layers: int, scores: dict, floats: int = 0) -> str:
    """The warning when wide_activations='auto' needed many second-level INT8 layers (see quantize)."""
    sq, top1 = scores.get(0, (float("inf"), 1.0))
    est = ", ".join(([f"an estimated {100 * top1:.2f}% top-1 agreement"] if top1 < 1.0 else [])
                    + ([f"{sq:.1f} dB output SQNR"] if sq != float("inf") else []))
    est = f" ({est} on the calibration data)" if est else ""
    if not layers:  # every layer folded: no INT8 layer left
        return (f"quantize: network '{name}' met its accuracy target only by keeping every layer float "
                f"({counted(floats, 'layer')} instead of three INT8 copies each): nothing is quantized, it runs as float32. "
                f"wide_activations='none' gives plain INT8{est}; keep_float='auto' keeps the most sensitive layers "
                f"float instead")
    return (f"quantize: network '{name}' met its accuracy target only with two-level (wide) activations or weights "
            f"on many layers: {counted(extra, 'more INT8 layer')} for its {counted(layers, 'quantized one')}"
            + (f" ({counted(floats, 'more layer')} kept float instead of three INT8 copies)" if floats else "")
            + ", so the quantized network "
            f"may run slower than float32 (per-layer overhead). wide_activations='none' gives plain INT8{est}; "
            f"keep_float='auto' keeps the most sensitive layers float instead")


def _wide_option(wide: Any, option: str, auto: bool = True) -> Any:
    """``wide_activations`` (or ``wide_weights``: no "auto") as "auto", or a tuple of fnmatch patterns
    (empty: none)."""
    if wide is None or wide == "none":
        return ()
    if wide == "auto":
        if auto:
            return "auto"
        raise NetdslError(f"{option} must be 'none' or a list of layer name patterns, got 'auto' "
                          "(wide_activations='auto' chooses weights too)")
    pats = [wide] if isinstance(wide, str) else wide
    try:
        pats = tuple(pats)
    except TypeError:
        pats = (wide,)
    if not all(isinstance(p, str) and p for p in pats):
        raise NetdslError(f"{option} must be {chr(39) + 'auto' + chr(39) + ', ' if auto else ''}'none' or a list of "
                          f"{'tensor or layer' if auto else 'layer'} name patterns, got {wide!r}")
    return pats


def _check_options(graph: Graph, exclude: Sequence[str], keep_float: Any, equalize: Any, method: str,
                   percentile: float, rounding: str = "nearest", min_sqnr: Any = None, min_top1: Any = None,
                   wide_auto: bool = False) -> None:
    """One NetdslError for an option out of its domain (as the CLI's argument checks), before calibration."""
    if keep_float == "auto":
        pass
    elif isinstance(keep_float, bool) or not isinstance(keep_float, numbers.Integral) or keep_float < 0:
        raise NetdslError(f"keep_float must be a whole number of layers >= 0 or 'auto', got {keep_float!r}")
    n = len(targets(graph, exclude))
    if keep_float != "auto" and keep_float > n:
        raise NetdslError(f"keep_float={keep_float}: network '{graph.name}' has {counted(n, 'layer')} to quantize"
                          + (" (after exclude)" if exclude else ""))
    if not (equalize in ("auto", None) or (isinstance(equalize, (int, float)) and not isinstance(equalize, bool)
                                           and 0 <= equalize <= 1)):
        raise NetdslError(f"equalize must be 'auto', None or 0 (off), or a balance alpha in [0, 1]; got {equalize!r}")
    if rounding not in ROUNDINGS:
        raise NetdslError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    if min_sqnr is not None and (isinstance(min_sqnr, bool) or not isinstance(min_sqnr, numbers.Real)
                                 or not 0 < min_sqnr < 200):
        raise NetdslError(f"min_sqnr must be an output SQNR in dB in (0, 200), got {min_sqnr!r}")
    if min_top1 is not None and (isinstance(min_top1, bool) or not isinstance(min_top1, numbers.Real)
                                 or not 0 < min_top1 <= 1):
        raise NetdslError(f"min_top1 must be a fraction of inputs in (0, 1], got {min_top1!r}")
    if min_sqnr is not None and not any(v.dtype.is_float for v in graph.outputs):
        raise NetdslError(f"min_sqnr is the SQNR of the float outputs; network '{graph.name}' has none "
                          f"({', '.join(f'{v.name} {v.dtype}' for v in graph.outputs)})")
    if min_top1 is not None and not top1_outputs(graph):
        outs = ", ".join(f"{v.name} ({', '.join(map(str, v.shape))}) from {v.producer.op if v.producer else 'input'}"
                         for v in graph.outputs)
        raise NetdslError(f"min_top1 is the agreement of the arg-max over axis 1 (the classes) of a classifier's "
                          f"output (a convolution's channels or a 2-d linear layer's features, through softmax, "
                          f"pooling, flatten ...); network '{graph.name}' has none ({outs}): give min_sqnr instead")
    if (min_sqnr is not None or min_top1 is not None) and keep_float != "auto" and not wide_auto:
        raise NetdslError("min_sqnr / min_top1 are the targets of keep_float='auto' and wide_activations='auto': "
                          "give one of them with them")
    if method == "percentile" and not 0 < percentile <= 100:
        raise NetdslError(f"percentile must lie in (0, 100], got {percentile!r}")


def _cached_plan(path: str, key: dict, graph: Graph, exclude: Sequence[str]) -> Optional[QuantPlan]:
    found = _cache.load(path, key)
    if found is None:
        return None
    data, ranges = found
    plan = QuantPlan.from_json(data, ranges)
    names = activations(apply_plan(graph, plan, exclude, key["scheme"])[0], exclude)
    missing = [n for n in names if n not in ranges]
    if missing:
        raise NetdslError(f"calibration cache {path} has no range for {', '.join(missing[:5])}")
    return plan


__all__ = ["QuantizationReport", "calibrate", "quantize", "METHODS", "SCHEMES"]
