"""How much each quantized layer loses: SQNR of its output against the float network's, in dB."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..graph import Graph
from .calibrate import run_observed


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun`` in the number it takes: "1 more layer", "2 more layers"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass
class LayerSQNR:
    name: str
    op: str
    sqnr_db: float


@dataclass
class QuantizationReport:
    """Per-layer and per-output SQNR (signal-to-quantization-noise ratio; higher is better). A layer's
    value includes the error of every quantized layer before it, so a sudden drop marks the culprit."""

    method: str
    backend: str
    layers: list = field(default_factory=list)    # LayerSQNR, in network order
    outputs: dict = field(default_factory=dict)   # output name -> SQNR dB
    excluded: list = field(default_factory=list)  # quantizable layers kept in float
    thresholds: dict = field(default_factory=dict)  # activation tensor -> (lo, hi) range
    scheme: str = "symmetric"
    kept_float: list = field(default_factory=list)  # kept in float by sensitivity analysis
    sensitivity: dict = field(default_factory=dict)  # layer -> output SQNR dB with only it quantized
    equalized: list = field(default_factory=list)   # tensors whose channels were equalized
    bias_corrected: list = field(default_factory=list)  # layers whose bias was corrected
    bias_gain: tuple = ()  # calibration output SQNR dB without / with bias correction
    alpha: float = 0.0  # the equalization balance used (0: none)
    alphas: dict = field(default_factory=dict)  # equalize="auto": each alpha tried -> output SQNR dB
    rounded: list = field(default_factory=list)  # layers whose int8 weights were fitted (GPTQ)
    rounding_gain: tuple = ()  # rounding="auto": held-out output SQNR dB, nearest / fitted
    rounding: str = "nearest"  # the weight rounding asked for (nearest, gptq, auto)
    kept_scores: dict = field(default_factory=dict)  # keep_float="auto": layers kept float -> (SQNR dB, top-1)
    keep_target: tuple = ()  # keep_float="auto"'s (min_sqnr, min_top1)
    refine_gain: tuple = ()  # refine_ranges: calibration output SQNR dB before / after
    exact_inputs: list = field(default_factory=list)  # uint8 image tensors quantized exactly (image_inputs.py)
    wide: list = field(default_factory=list)  # activation tensors quantized in two levels (passes/qdq.py)
    wide_weights: list = field(default_factory=list)  # layers whose weights are two-level too
    wide_sensitivity: dict = field(default_factory=dict)  # wide "auto": tensor -> output SQNR dB, it alone quantized
    wide_scores: dict = field(default_factory=dict)  # wide "auto": tensors widened -> (SQNR dB, estimated top-1)
    wide_target: tuple = ()  # wide "auto"'s (min_sqnr of the value outputs, estimated top-1 of the class outputs)
    wide_layers: int = 0  # the second-level INT8 layers the wide tensors and weights added
    wide_float: list = field(default_factory=list)  # layers kept float instead of three INT8 copies
    wide_kept: list = field(default_factory=list)  # layers kept float where widening fell short of its target

    def worst(self, n: int = 5) -> list:
        return sorted(self.layers, key=lambda r: r.sqnr_db)[:n]

    def __str__(self) -> str:
        lines = [f"quantization report ({self.method} calibration on {self.backend}, {self.scheme} activations, "
                 f"{len(self.equalized)} tensor(s) equalized, {len(self.bias_corrected)} bias(es) corrected): "
                 f"SQNR vs float, dB"]
        w = max([len(r.name) for r in self.layers] + [10])
        for r in self.layers:
            lines.append(f"  {r.name:<{w}}  {r.op:<8} {r.sqnr_db:7.1f}")
        for k, v in self.outputs.items():
            lines.append(f"  output {k}: {v:.1f} dB")
        if self.alphas:
            lines.append("  equalization: output SQNR on calibration data " +
                         ", ".join(f"alpha {a:g} {v:.1f} dB" for a, v in self.alphas.items()) + f"; alpha {self.alpha:g} used")
        if self.bias_gain:
            lines.append(_gain("bias correction: output SQNR on calibration data", self.bias_gain, self.bias_corrected))
        if self.exact_inputs:
            lines.append(f"  uint8 image input(s) quantized exactly: {', '.join(self.exact_inputs)}")
        if self.refine_gain:
            lines.append(f"  output-aware ranges: output SQNR on calibration data {self.refine_gain[0]:.1f} -> "
                         f"{self.refine_gain[1]:.1f} dB")
        if self.rounding_gain:
            lines.append(_gain("fitted weight rounding: output SQNR on held-out calibration data", self.rounding_gain,
                               self.rounded))
        elif self.rounded:
            lines.append(f"  fitted weight rounding (GPTQ): {counted(len(self.rounded), 'layer')}")
        elif self.rounding == "auto":
            lines.append("  fitted weight rounding: no held-out calibration data to decide on (one batch that "
                         "cannot be split by samples): kept nearest")
        if self.wide or self.wide_weights or self.wide_scores:
            why = ""
            if self.wide_scores:
                k = max(self.wide_scores)
                sq, t1 = self.wide_scores[k]
                why = (f" (wide_activations='auto': the {counted(k, 'tensor')} whose quantization alone costs the most output SQNR, "
                       f"for an estimated top-1 of {100 * t1:.2f}% and a value-output SQNR of {sq:.1f} dB on "
                       f"calibration data; target {100 * self.wide_target[1]:g}%, {self.wide_target[0]:g} dB; "
                       + ", ".join(f"{n} wide: {100 * v[1]:.2f}%" + ("" if v[0] == float("inf") else f" {v[0]:.1f} dB")
                                   for n, v in sorted(self.wide_scores.items())) + ")")
            lines.append(f"  wide (two-level) activations, INT8 twice: {', '.join(self.wide) or 'none'}; weights: "
                         f"{', '.join(self.wide_weights) or 'none'}" + why)
            if self.wide_float:
                lines.append(f"  kept in float instead of three INT8 copies (a wide input and wide weights, or two wide inputs): "
                             f"{', '.join(self.wide_float)}")
            if self.wide_layers:
                lines.append(f"  {counted(self.wide_layers, 'more INT8 layer')} read{'s' * (self.wide_layers == 1)} the second levels")
            if self.wide_sensitivity:
                lines.append("  tensor sensitivity (output SQNR with only that tensor quantized): " + ", ".join(
                    f"{n} {self.wide_sensitivity[n]:.1f}"
                    for n in sorted(self.wide_sensitivity, key=self.wide_sensitivity.get)[:max(5, len(self.wide))]))
        if self.kept_scores:
            k = max(self.kept_scores)
            want = [f"{t:g} dB" for t in self.keep_target[:1] if t is not None] + \
                [f"top-1 {100 * t:g}%" for t in self.keep_target[1:] if t is not None]
            lines.append(("  widening fell short of its target" if self.wide_kept else "  keep_float='auto'") +
                         f": {counted(k, 'layer')} kept in float for an output SQNR of "
                         f"{self.kept_scores[k][0]:.1f} dB, top-1 {100 * self.kept_scores[k][1]:.2f}% on calibration "
                         f"data (target {', '.join(want)}; " + ", ".join(
                             f"{n} float: {v[0]:.1f} dB {100 * v[1]:.1f}%" for n, v in sorted(self.kept_scores.items())) + ")")
        if self.sensitivity:
            worst = sorted(self.sensitivity, key=self.sensitivity.get)[:max(5, len(self.kept_float))]
            lines.append("  sensitivity (output SQNR with only that layer quantized): " +
                         ", ".join(f"{n} {self.sensitivity[n]:.1f}" for n in worst))
        if self.excluded:
            chosen = [n for n in self.kept_float if n not in self.wide_float]
            lines.append(f"  kept in float: {', '.join(self.excluded)}" +
                         (f" ({', '.join(chosen)} by sensitivity)" if chosen else ""))
        return "\n".join(lines)


def _gain(what: str, gain: tuple, kept: Any) -> str:
    """A report line: ``what`` before -> after (dB), and whether the technique was kept."""
    return f"  {what} {gain[0]:.1f} -> {gain[1]:.1f} dB" + ("" if kept else ", not kept")


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    ref = np.asarray(ref, np.float64)
    noise = float(np.sum((ref - np.asarray(got, np.float64)) ** 2))
    signal = float(np.sum(ref ** 2))
    if noise == 0:
        return float("inf")
    return 10 * np.log10(max(signal, 1e-30) / noise)


def measure(float_graph: Graph, quant_graph: Graph, layers: Sequence[Any], batches: list, backend: str) -> tuple:
    """(per-layer SQNR list, per-output SQNR) of ``quant_graph`` against ``float_graph`` on ``batches``."""
    names = [n.outputs[0].name for n in layers]
    outs = [v.name for v in float_graph.outputs if v.dtype.is_float and v.name not in names]
    watch = names + outs
    ref = list(run_observed(float_graph, watch, batches, backend, "report: float"))
    # the quantized network runs in NumPy: OpenVINO 2026.4's CPU plugin miscomputes an INT8 chain
    # conv -> relu -> max_pool -> flatten -> quantize when the conv's output is also a model output
    got = list(run_observed(quant_graph, watch, batches, "reference", "report: int8"))

    def total(name: str) -> float:
        r = np.concatenate([b[name].reshape(-1) for b in ref])
        q = np.concatenate([b[name].reshape(-1) for b in got])
        return sqnr_db(r, q)

    rows = [LayerSQNR(n.name, n.op, total(nm)) for n, nm in zip(layers, names)]
    return rows, {o: total(o) for o in outs}
