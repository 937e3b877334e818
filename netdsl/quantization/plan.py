"""What post-training quantization decides from calibration data, and applying it to a graph.

A :class:`QuantPlan` holds every data-dependent decision, so the calibration cache can store it and a
second run needs no data: per-channel equalization factors, activation ranges, the layers kept in
float by sensitivity analysis, fitted int8 weights, and per-channel bias corrections. ``make_plan`` runs the float network
on the calibration batches in this order:

1. channel equalization (passes/equalize.py) from per-channel ranges, its balance chosen on held-out
   calibration batches;
2. activation ranges of the equalized network (``method``, shaped by ``scheme``), with
   ``refine_ranges`` then searched tensor by tensor for the best output SQNR;
3. wide (two-level) activations (passes/qdq.py) for the tensors named, or with ``wide="auto"`` for
   the tensors whose quantization alone costs the most output SQNR, one at a time until the
   calibration outputs reach the target (:func:`choose_wide`);
   where widening runs out of tensors (or folds layers into float) short of the target, the layers
   whose quantization alone costs the most output SQNR stay in float until the estimate meets it
   (:func:`keep_for_wide`); or sensitivity analysis when ``keep_float`` is set: the layers whose
   quantization alone costs the most output SQNR stay in float (``"auto"``: as many as the target on
   calibration data needs);
4. fitted weight rounding when ``rounding`` is not "nearest" (rounding.py: GPTQ on the quantized
   network, layer by layer);
5. bias correction (bias_correction.py) of the quantized network against the float one.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import NetdslError
from ..graph import Graph
from ..passes.equalize import channel_scales, consumer_column_amax, equalize, find_chains
from ..passes.qdq import activations, excluded, insert_qdq, layer_activations, targets
from .bias_correction import apply_biases, bias_deltas
from .calibrate import observe, run_observed
from ..progress import progress
from .observers import Observer
from .rounding import fit_rounding
from .sensitivity import (WEIGHTS, class_outputs, estimated_top1, layer_sensitivity, literal, network_outputs,
                          output_sqnr, tensor_sensitivity, top1_agreement, top1_outputs)


AUTO_ALPHAS = (0.0, 0.25, 0.5, 0.75)  # equalize="auto" tries these (0: no equalization)
REFINE_FACTORS = (0.7, 0.85, 1.15, 1.3, 1.6)  # refine_ranges: each range scaled by these is tried
WIDE_HEADROOM = 2.0  # a wide tensor's range: the range seen times this (one bit of its ~15 for new inputs)
MIN_GAIN_DB = 0.02  # a refined range must raise the output SQNR by more than this
ROUNDINGS = ("nearest", "gptq", "auto")  # weight rounding: to nearest, fitted (rounding.py), chosen on held-out data
WIDE_TOP1 = 0.995  # wide="auto": estimated top-1 agreement every class output must reach (calibration data)
WIDE_SQNR = 20.0   # and the output SQNR dB the other float outputs must reach


@dataclass
class QuantPlan:
    scales: dict = field(default_factory=dict)       # equalized tensor -> per-channel factor s
    ranges: dict = field(default_factory=dict)       # activation tensor -> (lo, hi)
    keep_float: list = field(default_factory=list)   # layers kept in float by sensitivity analysis
    sensitivity: dict = field(default_factory=dict)  # layer -> output SQNR dB with only it quantized
    biases: dict = field(default_factory=dict)       # layer -> per-channel bias correction
    bias_gain: tuple = ()                            # output SQNR dB without / with the corrections
    alpha: float = 0.0                               # the equalization balance used (0: none)
    alphas: dict = field(default_factory=dict)       # with equalize="auto": alpha -> output SQNR dB
    rounded: dict = field(default_factory=dict)      # layer -> int8 weights fitted by GPTQ
    rounding_gain: tuple = ()                        # held-out output SQNR dB, nearest / fitted rounding
    kept_scores: dict = field(default_factory=dict)  # keep_float="auto": layers kept float -> (SQNR dB, top-1)
    refine_gain: tuple = ()                          # refine_ranges: output SQNR dB before / after
    wide: list = field(default_factory=list)         # activation tensors quantized in two levels
    wide_weights: list = field(default_factory=list)  # layers whose int8 weights get their residual too
    wide_sensitivity: dict = field(default_factory=dict)  # wide="auto": tensor (or "<layer> weights") -> output
    # SQNR dB with only it quantized
    wide_scores: dict = field(default_factory=dict)  # wide="auto": tensors widened -> (SQNR dB, estimated top-1)
    wide_float: list = field(default_factory=list)  # wide="auto": layers that would run three INT8 copies, float
    wide_kept: list = field(default_factory=list)  # wide="auto": layers kept float where widening fell short

    def to_json(self) -> dict:
        return {"alpha": self.alpha, "alphas": {str(k): v for k, v in self.alphas.items()},
                "bias_gain": list(self.bias_gain),
                "channel_scales": {k: np.asarray(v).tolist() for k, v in self.scales.items()},
                "thresholds": {k: [float(v[0]), float(v[1])] for k, v in self.ranges.items()},
                "float_layers": list(self.keep_float), "sensitivity": dict(self.sensitivity),
                "bias_corrections": {k: np.asarray(v).tolist() for k, v in self.biases.items()},
                "rounding_gain": list(self.rounding_gain),
                "kept_scores": {str(k): list(v) for k, v in self.kept_scores.items()},
                "refine_gain": list(self.refine_gain), "wide": list(self.wide), "wide_weights": list(self.wide_weights),
                "wide_sensitivity": dict(self.wide_sensitivity),
                "wide_scores": {str(k): list(v) for k, v in self.wide_scores.items()},
                "wide_float_layers": list(self.wide_float), "wide_kept_layers": list(self.wide_kept),
                "rounded_weights": {k: _pack(v) for k, v in self.rounded.items()}}

    @classmethod
    def from_json(cls, d: dict, ranges: dict) -> "QuantPlan":
        return cls({k: np.asarray(v, np.float64) for k, v in d.get("channel_scales", {}).items()}, ranges,
                   [str(x) for x in d.get("float_layers", [])], {str(k): float(v) for k, v in d.get("sensitivity", {}).items()},
                   {k: np.asarray(v, np.float64) for k, v in d.get("bias_corrections", {}).items()},
                   tuple(float(x) for x in d.get("bias_gain", ())), float(d.get("alpha", 0.0)),
                   {float(k): float(v) for k, v in d.get("alphas", {}).items()},
                   {k: _unpack(v) for k, v in d.get("rounded_weights", {}).items()},
                   tuple(float(x) for x in d.get("rounding_gain", ())),
                   {int(k): (float(v[0]), float(v[1])) for k, v in d.get("kept_scores", {}).items()},
                   tuple(float(x) for x in d.get("refine_gain", ())), wide=[str(x) for x in d.get("wide", [])],
                   wide_weights=[str(x) for x in d.get("wide_weights", [])],
                   wide_sensitivity={str(k): float(v) for k, v in d.get("wide_sensitivity", {}).items()},
                   wide_scores={int(k): (float(v[0]), float(v[1])) for k, v in d.get("wide_scores", {}).items()},
                   wide_float=[str(x) for x in d.get("wide_float_layers", [])],
                   wide_kept=[str(x) for x in d.get("wide_kept_layers", [])])


def _pack(q: np.ndarray) -> dict:
    q = np.asarray(q, np.int8)
    return {"shape": list(q.shape), "int8": base64.b64encode(q.tobytes()).decode("ascii")}


def _unpack(d: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(d["int8"]), np.int8).reshape(d["shape"])


def quantized_inputs(graph: Graph, exclude: Sequence[str]) -> set:
    return {n.name for n, acts, _ in targets(graph, exclude) if 0 in acts}


def equalized(graph: Graph, scales: dict, exclude: Sequence[str]) -> Graph:
    """``graph`` with the chains named in ``scales`` equalized."""
    if not scales:
        return graph
    q = quantized_inputs(graph, exclude)
    chains = [c for c in find_chains(graph) if c.tensor.name in scales and all(n.name in q for n in c.consumers)]
    return equalize(graph, chains, scales)


def observe_channels(graph: Graph, batches: list, exclude: Sequence[str], backend: str) -> list:
    """[(chain, per-channel max |x|)] for every equalizable chain whose consumers are quantized."""
    q = quantized_inputs(graph, exclude)
    chains = [c for c in find_chains(graph) if all(n.name in q for n in c.consumers)]
    if not chains:
        return []
    obs = {c.tensor.name: Observer(False, channel_axis=c.axis) for c in chains}
    for values in run_observed(graph, list(obs), batches, backend, "equalizing"):
        for n, a in values.items():
            obs[n].update(a)
    return [(c, obs[c.tensor.name].channel_amax) for c in chains if obs[c.tensor.name].channel_amax is not None]


def scales_for(graph: Graph, observed: list, alpha: float) -> dict:
    """{tensor: s} with SmoothQuant balance ``alpha`` (1 where every consumer is depthwise)."""
    out = {}
    for c, amax in observed:
        s = channel_scales(amax, consumer_column_amax(graph, c), 1.0 if c.depthwise else alpha)
        if not np.allclose(s, 1.0):
            out[c.tensor.name] = s
    return out


def observe_ranges(graph: Graph, batches: list, exclude: Sequence[str], backend: str, method: str,
                   percentile: float, scheme: str, limits: Optional[dict] = None) -> dict:
    """{activation tensor: (lo, hi)} for every quantized layer's activation inputs (and into ``limits``
    each one's (min, max) seen)."""
    obs = observe(graph, activations(graph, exclude), batches, backend, method != "minmax")
    blind = [n for n, o in obs.items() if not o.count]
    if blind:  # its range would be (0, 0): the layer would read zeros
        raise NetdslError(f"calibration saw no finite value of tensor '{blind[0]}' in {len(batches)} batch(es) "
                          f"(network '{graph.name}'): the calibration data are NaN, infinite or empty")
    if limits is not None:
        limits.update({n: (min(o.lo, 0.0), max(o.hi, 0.0)) for n, o in obs.items() if o.count})
    return {n: o.range(method, percentile, scheme) for n, o in obs.items()}


def refine_ranges(g: Graph, plan: QuantPlan, limits: dict, outputs: "_Outputs", exclude: Sequence[str],
                  scheme: str) -> None:
    """Output-aware range search: tensor by tensor in network order, each range scaled by each of
    ``REFINE_FACTORS`` (within the values seen) is kept where it raises the quantized network's output
    SQNR on calibration data (a range the tensor's own error prefers can clip values a later layer
    needs: FER's classifier input)."""
    cur = dict(plan.ranges)
    before = best = outputs.sqnr(insert_qdq(g, cur, exclude, scheme))
    with progress(total=len(cur), desc="refining ranges", unit="tensor") as bar:
        for name in [k for k in cur if k in limits]:
            lo, hi = cur[name]
            mn, mx = limits[name]
            tried = {(lo, hi)}
            for f in REFINE_FACTORS:
                cand = (max(lo * f, mn), min(hi * f, mx))
                if cand in tried:
                    continue
                tried.add(cand)
                trial = {**cur, name: cand}
                score = outputs.sqnr(insert_qdq(g, trial, exclude, scheme))
                if score > best + MIN_GAIN_DB:
                    best, cur = score, trial
            bar.update(1)
    plan.ranges, plan.refine_gain = cur, (before, best)


class _Outputs:
    """The float network's outputs on a few calibration batches, and the SQNR of a graph against them."""

    def __init__(self, graph: Graph, batches: list, backend: str):
        self.batches, self.backend = batches, backend
        self.names = [v.name for v in graph.outputs if v.dtype.is_float]
        self.classes = set(top1_outputs(graph))  # the outputs top-1 agreement is measured on
        self.ref = network_outputs(graph, batches, backend, self.names, shaped=True, desc="scoring: float")

    def scores(self, graph: Graph) -> tuple[float, float]:
        """(output SQNR dB, top-1 agreement) of ``graph`` against the float network."""
        got = network_outputs(graph, self.batches, self.backend, self.names, shaped=True, desc="scoring")
        classes = {k: v for k, v in self.ref.items() if k in self.classes}
        return output_sqnr(_flat(self.ref), _flat(got)), top1_agreement(classes, got)

    def sqnr(self, graph: Graph) -> float:
        return self.scores(graph)[0]

    def estimated(self, graph: Graph) -> tuple[float, float]:
        """(output SQNR dB of the outputs that are not class scores -- inf if none --, the least estimated
        top-1 agreement of the class outputs -- 1.0 if none; sensitivity.estimated_top1)."""
        got = network_outputs(graph, self.batches, self.backend, self.names, shaped=True, desc="scoring")
        classes = set(class_outputs(graph)) & set(self.names)
        values = [k for k in self.names if k not in classes]
        sq = output_sqnr(_flat({k: self.ref[k] for k in values}), _flat({k: got[k] for k in values})) if values \
            else float("inf")
        top1 = min([estimated_top1(np.concatenate(self.ref[k]), np.concatenate(got[k])) for k in classes] or [1.0])
        return sq, top1


def _flat(outputs: dict) -> dict:
    return {k: np.concatenate([a.reshape(-1) for a in v]) for k, v in outputs.items()}


def choose_equalization(graph: Graph, batches: list, exclude: Sequence[str], backend: str, method: str,
                        percentile: float, scheme: str, alpha: Any, plan: QuantPlan,
                        limits: Optional[dict] = None, pinned: Optional[dict] = None) -> None:
    """Set ``plan``'s equalization factors and ranges. For ``alpha="auto"`` each candidate alpha (0: none)
    is fitted on the even calibration batches and scored by the quantized network's output SQNR on the
    odd ones (scored on the data it was fitted on, equalization looked best and was worst on new
    inputs: it scales up channels that happened to stay small); the best is refitted on every batch."""
    auto = alpha == "auto" and len(batches) >= 2
    observed = observe_channels(graph, batches, exclude, backend) if alpha and (alpha != "auto" or auto) else []
    if auto and observed:
        fit, held = batches[0::2], batches[1::2]
        fit_observed = observe_channels(graph, fit, exclude, backend)
        scored = _Outputs(graph, held, backend)
        for a in AUTO_ALPHAS:
            g = equalized(graph, scales_for(graph, fit_observed, a) if a else {}, exclude)
            ranges = {**observe_ranges(g, fit, exclude, backend, method, percentile, scheme), **(pinned or {})}
            plan.alphas[a] = scored.sqnr(insert_qdq(g, ranges, exclude, scheme))
        plan.alpha = max(AUTO_ALPHAS, key=lambda a: (plan.alphas[a], -a))
    else:
        plan.alpha = 0.0 if alpha == "auto" or not observed else float(alpha)
    plan.scales = scales_for(graph, observed, plan.alpha) if plan.alpha else {}
    plan.ranges = observe_ranges(equalized(graph, plan.scales, exclude), batches, exclude, backend, method,
                                 percentile, scheme, limits)
    plan.ranges.update(pinned or {})  # exact by construction (image_inputs.py)


def make_plan(graph: Graph, batches: list, exclude: Sequence[str], backend: str, method: str, percentile: float,
              scheme: str, alpha: Any, keep_float: int, bias_correction: bool, few_batches: int = 4,
              rounding: str = "nearest", min_sqnr: Optional[float] = 30.0,
              min_top1: Optional[float] = None, refine: bool = False, pinned: Optional[dict] = None,
              wide: Any = (), wide_targets: tuple = (WIDE_SQNR, WIDE_TOP1), wide_weights: Sequence[str] = ()) -> QuantPlan:
    """Every data-dependent decision of post-training quantization (see the module docstring)."""
    plan = QuantPlan()
    outputs = _Outputs(graph, batches[:max(1, few_batches)], backend)
    limits: dict = {}
    choose_equalization(graph, batches, exclude, backend, method, percentile, scheme, alpha, plan, limits, pinned)
    g = equalized(graph, plan.scales, exclude)
    if refine:
        refine_ranges(g, plan, {k: v for k, v in limits.items() if k not in (pinned or {})}, outputs, exclude, scheme)
    # only uint8 with a zero point holds a preprocessed image exactly (image_inputs.py): with symmetric int8
    # its pinned range is the whole of its 256 levels (not widened further), and it can be widened
    exact = (pinned or {}) if scheme == "asymmetric" else {}
    seen = {k: v for k, v in limits.items() if k not in (pinned or {})}
    if wide == "auto":
        every = _Outputs(g, batches, backend)
        choose_wide(g, plan, every, outputs.batches, exclude, scheme, exact, seen, *wide_targets)
        if not keep_float:  # keep_float given: the user's own choice of float layers
            keep_for_wide(g, plan, every, outputs.batches, exclude, scheme, *wide_targets)
    elif wide:
        plan.wide = wide_tensors(g, wide, exclude, exact)
        plan.ranges = wide_ranges(plan.ranges, plan.wide, seen)
    if wide_weights:
        plan.wide_weights = [n.name for n, _, w in targets(g, exclude) if w is not None and excluded(n.name, wide_weights)]
    if keep_float:
        kept = tuple(exclude) + tuple(literal(n) for n in plan.wide_float)
        layers = [t[0].name for t in targets(g, kept)]
        plan.sensitivity = layer_sensitivity(g, plan.ranges, layers, outputs.batches, backend, scheme, kept)
        order = sorted(plan.sensitivity, key=plan.sensitivity.get)
        plan.keep_float = plan.wide_float + (order[:keep_float] if keep_float != "auto" else
                                             keep_until(g, plan.ranges, order, _Outputs(g, batches, backend), kept,
                                                        scheme, min_sqnr, min_top1, plan, plan.wide, plan.wide_weights))
    ex = tuple(exclude) + tuple(literal(n) for n in plan.keep_float)
    if rounding != "nearest":
        choose_rounding(g, batches, ex, backend, scheme, rounding, plan)
    if bias_correction:
        qg = insert_qdq(g, plan.ranges, ex, scheme, plan.rounded, plan.wide, wide_weights=plan.wide_weights)
        deltas = bias_deltas(g, qg, [t[0].name for t in targets(g, ex)], outputs.batches, backend)
        # a mean shift that is not the same on every input (an outlier channel of some tokens) can make
        # things worse downstream (a layer norm): keep the corrections only if the outputs gain
        plan.bias_gain = (outputs.sqnr(qg), outputs.sqnr(apply_biases(qg, deltas)))
        if plan.bias_gain[1] > plan.bias_gain[0]:
            plan.biases = deltas
    return plan


def keep_until(g: Graph, ranges: dict, order: list, outputs: "_Outputs", exclude: Sequence[str], scheme: str,
               min_sqnr: Optional[float], min_top1: Optional[float], plan: QuantPlan, wide: Sequence[str] = (),
               wide_weights: Sequence[str] = (), estimated: bool = False) -> list:
    """The fewest of the most sensitive layers (``order``, most sensitive first) to keep in float for the
    quantized network to reach, on calibration data, an output SQNR of ``min_sqnr`` dB and a top-1
    agreement of ``min_top1`` with the float network (weights rounded to nearest, no bias correction:
    what comes after only adds); records each count tried. ``estimated``: the targets are
    ``_Outputs.estimated``'s (value-output SQNR, estimated top-1 of the class outputs) instead of
    ``_Outputs.scores``' (SQNR of every output, top-1 counted)."""
    score = outputs.estimated if estimated else outputs.scores
    for k in range(len(order) + 1):
        ex = tuple(exclude) + tuple(literal(n) for n in order[:k])
        plan.kept_scores[k] = score(insert_qdq(g, ranges, ex, scheme, wide=wide, wide_weights=wide_weights)) if k < len(order) \
            else (float("inf"), 1.0)
        sqnr, top1 = plan.kept_scores[k]
        if (min_sqnr is None or sqnr >= min_sqnr) and (min_top1 is None or top1 >= min_top1):
            return order[:k]
    return list(order)


def choose_rounding(g: Graph, batches: list, exclude: Sequence[str], backend: str, scheme: str, rounding: str,
                    plan: QuantPlan) -> None:
    """Set ``plan.rounded`` (GPTQ-fitted int8 weights, rounding.py). With ``rounding="auto"`` they are
    fitted on part of the calibration data (:func:`held_out`) and kept only if the quantized network's
    output SQNR on the rest is higher than with rounding to nearest (then refitted on every batch);
    without held-out data to decide on, rounding stays nearest (``plan.rounding_gain`` empty)."""
    qg = insert_qdq(g, plan.ranges, exclude, scheme, wide=plan.wide, wide_weights=plan.wide_weights)
    layers = [t[0].name for t in targets(g, exclude)]
    if rounding == "auto":
        split = held_out(g, batches)
        if split is None:
            return
        fit, held = split
        scored = _Outputs(g, held, backend)
        trial = fit_rounding(g, qg, layers, fit, backend)
        plan.rounding_gain = (scored.sqnr(qg), scored.sqnr(insert_qdq(g, plan.ranges, exclude, scheme, trial, plan.wide,
                                                                   wide_weights=plan.wide_weights)))
        if plan.rounding_gain[1] <= plan.rounding_gain[0]:
            return
    plan.rounded = fit_rounding(g, qg, layers, batches, backend)


def held_out(graph: Graph, batches: list) -> Optional[tuple[list, list]]:
    """(batches to fit on, held-out batches to score on): the even and the odd batches; of a single
    batch, its even and its odd samples when every input's first dim is the same symbolic dim and the
    batch holds two samples or more; None otherwise (no held-out data)."""
    if len(batches) >= 2:
        return batches[0::2], batches[1::2]
    first = {str(v.shape[0]) if len(v.shape) and not isinstance(v.shape[0], int) else None for v in graph.inputs}
    counts = {len(np.asarray(a)) if np.ndim(a) else 0 for a in batches[0].values()}
    if None in first or len(first) != 1 or len(counts) != 1 or min(counts) < 2:
        return None
    return [{k: a[0::2] for k, a in batches[0].items()}], [{k: a[1::2] for k, a in batches[0].items()}]


def apply_plan(graph: Graph, plan: QuantPlan, exclude: Sequence[str], scheme: str) -> tuple[Graph, Graph]:
    """(the equalized float graph, the quantized graph) that ``plan`` makes of ``graph``."""
    g = equalized(graph, plan.scales, exclude)
    ex = tuple(exclude) + tuple(literal(n) for n in plan.keep_float)
    return g, apply_biases(insert_qdq(g, plan.ranges, ex, scheme, plan.rounded, plan.wide, wide_weights=plan.wide_weights), plan.biases)


def wide_tensors(g: Graph, patterns: Sequence[str], exclude: Sequence[str], pinned: dict) -> list:
    """The activation tensors to widen for fnmatch ``patterns`` of tensor names or of the layers reading
    them (a preprocessed uint8 image quantized exactly needs no second level)."""
    readers: dict = {}
    for n, acts, _ in targets(g, exclude):
        for i in acts:
            readers.setdefault(n.inputs[i].name, []).append(n.name)
    return [t for t in layer_activations(g, exclude) if t not in pinned
            and any(excluded(x, patterns) for x in [t] + readers.get(t, []))]


def wide_ranges(ranges: dict, wide: Sequence[str], limits: dict) -> dict:
    """``ranges`` with each wide tensor's range the whole range seen (``limits``) times ``WIDE_HEADROOM``:
    its rounding error is the residual's, 254 times smaller, so a range chosen against 8-bit rounding
    (mse, percentile) would now only clip, and so would the range seen on calibration data for new
    inputs a little beyond it (the small CNN of the tests: 86.6 dB on its calibration data, 36.0 dB on
    new inputs at the range seen; 80.4 dB on both with the headroom)."""
    return {**ranges, **{t: (limits[t][0] * WIDE_HEADROOM, limits[t][1] * WIDE_HEADROOM) for t in wide if t in limits}}


def choose_wide(g: Graph, plan: QuantPlan, outputs: "_Outputs", few: list, exclude: Sequence[str], scheme: str,
                pinned: dict, limits: dict, min_sqnr: Optional[float], min_top1: Optional[float]) -> None:
    """Set ``plan.wide`` and ``plan.wide_weights``: the fewest activation tensors and layer weights to
    widen, the most sensitive first (each quantized alone, everything else in float, on the ``few``
    batches: sensitivity.tensor_sensitivity), for the quantized network to reach on calibration data an
    estimated top-1 agreement of ``min_top1`` on its class outputs and an output SQNR of ``min_sqnr`` dB
    on its other outputs (rounded-to-nearest weights, no bias correction); records each count tried."""
    def met(score: tuple) -> bool:
        return _met(score, min_sqnr, min_top1)
    plan.wide_scores[0] = outputs.estimated(insert_qdq(g, plan.ranges, exclude, scheme))
    if met(plan.wide_scores[0]):  # no sensitivity analysis needed
        return
    acts = set(layer_activations(g, exclude))
    tensors = [t for t in plan.ranges if t not in pinned and t in acts]
    layers = [n.name for n, _, w in targets(g, exclude) if w is not None]
    plan.wide_sensitivity = tensor_sensitivity(g, plan.ranges, tensors, few, outputs.backend, scheme, exclude, layers)
    order = sorted(plan.wide_sensitivity, key=plan.wide_sensitivity.get)
    ranges = plan.ranges
    with progress(total=len(order), desc="wide activations", unit="step") as bar:
        for k in range(1, len(order) + 1):
            plan.wide = [t for t in order[:k] if not t.endswith(WEIGHTS)]
            plan.wide_weights = [t[:-len(WEIGHTS)] for t in order[:k] if t.endswith(WEIGHTS)]
            plan.ranges = wide_ranges(ranges, plan.wide, limits)
            plan.wide_scores[k] = sq, top1 = outputs.estimated(insert_qdq(g, plan.ranges, exclude, scheme, wide=plan.wide,
                                                                          wide_weights=plan.wide_weights))
            bar.update(1)
            if met((sq, top1)):
                break
    fold_triples(g, plan, exclude)


def _met(score: tuple, min_sqnr: Optional[float], min_top1: Optional[float]) -> bool:
    return (min_sqnr is None or score[0] >= min_sqnr) and (min_top1 is None or score[1] >= min_top1)


def keep_for_wide(g: Graph, plan: QuantPlan, outputs: "_Outputs", few: list, exclude: Sequence[str], scheme: str,
                  min_sqnr: Optional[float], min_top1: Optional[float]) -> None:
    """Where :func:`choose_wide` widened every candidate, or folded layers into float, and the estimate
    on calibration data is still short of its targets, keep in float the fewest of the layers left in
    INT8 whose quantization alone costs the most output SQNR (sensitivity.layer_sensitivity; the
    ``keep_float="auto"`` search with the estimated targets) -- ``plan.wide_kept``. Widening alone
    falls short where a layer's only candidate is its input (a matmul by a batched constant) or a
    layer's input cannot be widened (an exact image input), as FER's first convolution in TensorRT's
    form before its inexact int8 image input became a candidate (41 tensors and weights wide: an
    estimated 99.37% of 99.5%)."""
    if 0 not in plan.wide_scores or _met(plan.wide_scores[0], min_sqnr, min_top1):
        return  # plain INT8 met the targets: nothing was widened
    kept = tuple(exclude) + tuple(literal(n) for n in plan.keep_float)
    now = outputs.estimated(insert_qdq(g, plan.ranges, kept, scheme, wide=plan.wide, wide_weights=plan.wide_weights))
    layers = [t[0].name for t in targets(g, kept)]
    if _met(now, min_sqnr, min_top1) or not layers:
        return
    plan.sensitivity = layer_sensitivity(g, plan.ranges, layers, few, outputs.backend, scheme, kept)
    order = sorted(plan.sensitivity, key=plan.sensitivity.get)
    plan.wide_kept = keep_until(g, plan.ranges, order, outputs, kept, scheme, min_sqnr, min_top1, plan, plan.wide,
                                plan.wide_weights, estimated=True)
    plan.keep_float = plan.keep_float + plan.wide_kept
    _drop_unread(g, plan, exclude)


def _drop_unread(g: Graph, plan: QuantPlan, exclude: Sequence[str]) -> None:
    """Drop from ``plan.wide`` the tensors that only float layers read, and the float layers' wide weights."""
    ex = tuple(exclude) + tuple(literal(n) for n in plan.keep_float)
    read = {n.inputs[i].name for n, acts, _ in targets(g, ex) for i in acts}
    plan.wide = [t for t in plan.wide if t in read]
    plan.wide_weights = [n for n in plan.wide_weights if n not in plan.keep_float]


def fold_triples(g: Graph, plan: QuantPlan, exclude: Sequence[str]) -> None:
    """Keep in float each layer that its wide inputs and weights would make three INT8 copies or more
    (a wide input and wide weights, or two wide inputs): one float layer computes what they
    approximate, exactly, with fewer layers (FER: 41 more INT8 layers for 23 made it 3x slower than
    float32); the tensors only such layers read are no longer wide."""
    wide, wide_weights = set(plan.wide), set(plan.wide_weights)
    plan.wide_float = [n.name for n, acts, _ in targets(g, exclude)
                       if sum(n.inputs[i].name in wide for i in acts) + (n.name in wide_weights) >= 2]
    if not plan.wide_float:
        return
    plan.keep_float = list(plan.wide_float)
    _drop_unread(g, plan, exclude)
