"""Sensitivity analysis: how much the network's outputs lose when one layer alone is quantized.

Each quantizable layer is quantized on its own (its activation inputs and its weights, every other
layer in float) and the SQNR of the network's float outputs against the float network is measured
on calibration batches. The layers with the lowest SQNR are the ones to keep in float first
(``quantize(..., keep_float=k)``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..graph import Graph, Value
from ..passes.qdq import insert_qdq
from ..progress import progress
from .calibrate import run_observed


def network_outputs(graph: Graph, batches: list, backend: str, names: list, shaped: bool = False) -> dict:
    """{output name: every batch's values, flattened and concatenated} (``shaped``: a list of each
    batch's array)."""
    got: dict = {n: [] for n in names}
    for values in run_observed(graph, names, batches, backend, ""):
        for n in names:
            got[n].append(np.asarray(values[n], np.float64))
    return got if shaped else {n: np.concatenate([a.reshape(-1) for a in v]) for n, v in got.items()}


def has_classes(value: Value) -> bool:
    """Whether an output has classes to take the arg-max of: float, rank >= 2, more than one entry on
    axis 1 (a symbolic axis 1 counts)."""
    shape = tuple(value.shape)
    return value.dtype.is_float and len(shape) >= 2 and not (isinstance(shape[1], int) and shape[1] < 2)


def top1_agreement(ref: dict, got: dict) -> float:
    """The fraction of positions where the arg-max over axis 1 (the classes) of the outputs agrees, for
    the least agreeing output with classes (rank >= 2, more than one class); 1.0 when none has any.
    ``ref`` and ``got`` hold each output's per-batch arrays."""
    worst = 1.0
    for k, batches in ref.items():
        if not batches or batches[0].ndim < 2 or batches[0].shape[1] < 2:
            continue
        same = [np.argmax(r, 1) == np.argmax(g, 1) for r, g in zip(batches, got[k])]
        worst = min(worst, float(np.concatenate([a.reshape(-1) for a in same]).mean()))
    return worst


def output_sqnr(ref: dict, got: dict) -> float:
    """SQNR in dB of every output together (each output weighted by its own signal power)."""
    from .report import sqnr_db
    noise = sum(10 ** (-sqnr_db(ref[k], got[k]) / 10) for k in ref) / max(len(ref), 1)
    return float("inf") if noise == 0 else float(-10 * np.log10(noise))


def layer_sensitivity(graph: Graph, ranges: dict, layers: Sequence[str], batches: list, backend: str,
                      scheme: str, exclude: Sequence[str] = ()) -> dict:
    """{layer: output SQNR dB with only that layer quantized}, for each of ``layers``."""
    names = [v.name for v in graph.outputs if v.dtype.is_float]
    ref = network_outputs(graph, batches, backend, names)
    out = {}
    with progress(total=len(layers), desc="sensitivity", unit="layer") as bar:
        for layer in layers:
            others = [n for n in layers if n != layer] + list(exclude)
            q = insert_qdq(graph, ranges, [literal(n) for n in others], scheme)
            out[layer] = output_sqnr(ref, network_outputs(q, batches, backend, names))
            bar.update(1)
    return out


def literal(name: str) -> str:
    """An fnmatch pattern matching exactly ``name``."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
