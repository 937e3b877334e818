"""Sensitivity analysis: how much the network's outputs lose when one layer alone is quantized.

Each quantizable layer is quantized on its own (its activation inputs and its weights, every other
layer in float) and the SQNR of the network's float outputs against the float network is measured
on calibration batches. The layers with the lowest SQNR are the ones to keep in float first
(``quantize(..., keep_float=k)``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..graph import Graph, Node, Value
from ..passes.qdq import insert_qdq
from ..progress import progress
from .calibrate import run_observed


def network_outputs(graph: Graph, batches: list, backend: str, names: list, shaped: bool = False,
                    desc: str = "network outputs") -> dict:
    """{output name: every batch's values, flattened and concatenated} (``shaped``: a list of each
    batch's array); ``desc`` labels the progress bar."""
    got: dict = {n: [] for n in names}
    for values in run_observed(graph, names, batches, backend, desc):
        for n in names:
            got[n].append(np.asarray(values[n], np.float64))
    return got if shaped else {n: np.concatenate([a.reshape(-1) for a in v]) for n, v in got.items()}


_HEADS = ("conv", "conv_transpose", "linear", "matmul")  # layers whose axis 1 can be classes
# ops a classifier's scores pass through unchanged in their axis 1 (walking back from the output)
_THROUGH = ("softmax", "log_softmax", "sigmoid", "identity", "cast", "dropout", "flatten", "reshape", "squeeze",
            "global_avg_pool", "global_max_pool", "avg_pool", "max_pool", "resize", "resize_to", "batch_norm",
            "add", "sub", "mul", "div", "dequantize_linear")


def class_source(value: Value) -> Optional[Node]:
    """The layer whose axis 1 an output's arg-max over axis 1 picks among, found by walking back through
    ``_THROUGH`` ops: a convolution (its channels) or a linear layer / matmul with a 2-d output (its
    features); None when the walk meets anything else (a layer norm, a tanh: hidden states, embeddings),
    or axis 1 has fewer than two entries."""
    shape = tuple(value.shape)
    if not value.dtype.is_float or len(shape) < 2 or (isinstance(shape[1], int) and shape[1] < 2):
        return None
    v = value
    for _ in range(32):
        n = v.producer
        if n is None:
            return None
        if n.op in _HEADS:
            return n if n.op.startswith("conv") or v.rank == 2 else None
        if n.op not in _THROUGH or (n.op in ("softmax", "log_softmax") and n.attrs["axis"] % v.rank != 1):
            return None
        moving = [x for x in n.inputs if x is not None and x.producer is not None
                  and x.producer.op not in ("constant", "parameter")]
        if not moving:
            return None
        v = moving[0]
    return None


def top1_outputs(graph: Graph) -> list[str]:
    """The outputs of ``graph`` whose top-1 agreement ``min_top1`` measures: classes on axis 1 (see
    :func:`class_source`; logits count, unlike :func:`class_outputs`' class scores)."""
    return [v.name for v in graph.outputs if class_source(v) is not None]


def top1_agreement(ref: dict, got: dict) -> float:
    """The fraction of positions where the arg-max over axis 1 (the classes) of the outputs agrees, for
    the least agreeing output (give only outputs with classes: :func:`top1_outputs`); 1.0 for none.
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


CLASS_OPS = ("softmax", "log_softmax", "sigmoid")  # an output these make holds class scores (axis 1)


def class_outputs(graph: Graph) -> list:
    """Names of the float outputs that hold class scores on axis 1: made by a softmax, log-softmax or
    sigmoid, with more than one class (their top-1 is what a user reads); the others are values."""
    return [v.name for v in graph.outputs if v.dtype.is_float and v.producer is not None
            and v.producer.op in CLASS_OPS and v.rank >= 2 and isinstance(v.shape[1], int) and v.shape[1] > 1]


TIE = 2.0 ** -10  # a top-2 margin under this fraction of the top score is a tie at float16 precision
NEAR = 4.0  # estimated_top1: top-2 margins under this many sqrt(2) sigma count as evenly spread from 0


def estimated_top1(ref: np.ndarray, got: np.ndarray) -> float:
    """The expected top-1 agreement (axis 1: classes) of outputs ``got`` with ``ref`` if their error were
    Gaussian noise of the power measured on the two highest classes of every position (those that
    compete): the mean over positions of 1 - P(flip), P(flip) = min(1, sum over the other classes j of
    Phi(-(r_top - r_j) / (sqrt(2) sigma))). One sigma for all positions makes it a smooth, monotone
    function of the noise, set by the float outputs' margins (the per-position error of one input
    is too noisy a sample; the mean over all classes dilutes it where most are near zero, as CREPE's
    360 pitch bins). Positions whose top-2 margin is under ``TIE`` of the top score are ties that no
    reduced precision reproduces (float16 flips them): not counted.

    The flips come from the few positions whose top-2 margin is within a few sigma of zero, and a few
    dozen calibration inputs sample that end of the margins coarsely (CREPE in TensorRT's form: 2 of
    its 64 calibration inputs within 2 sqrt(2) sigma, 7.4% of the 512 evaluated ones; estimated 99.63%
    on calibration data, 98.9% on the evaluated inputs, 98.6% counted). So the estimate is also made
    with the top-2 margins under ``NEAR`` units of sqrt(2) sigma spread evenly over [0, NEAR] (a
    margin's density is about flat near zero: each such position's P(flip) is the mean over that
    interval), and the lesser of the two agreements is returned (that CREPE network: 99.37%, under
    the 99.5% target)."""
    from math import erfc, sqrt
    r = np.moveaxis(np.asarray(ref, np.float64), 1, -1).reshape(-1, np.shape(ref)[1])
    e = np.moveaxis(np.asarray(got, np.float64), 1, -1).reshape(r.shape) - r
    two = np.argsort(-r, axis=1)[:, :2]
    sigma = np.sqrt(np.mean(np.take_along_axis(e, two, axis=1) ** 2))
    top = r.max(axis=1, keepdims=True)
    gap = np.sort(top - r, axis=1)[:, 1:]  # margins to every other class, the smallest first
    keep = gap[:, 0] > TIE * np.abs(top[:, 0])
    if not keep.any() or sigma == 0:
        return 1.0
    z = gap[keep] / (np.sqrt(2) * sigma)
    phi = 0.5 * np.vectorize(erfc, otypes=[np.float64])(np.minimum(z, 40.0) / sqrt(2))
    flips = np.mean(np.minimum(1.0, phi.sum(axis=1)))
    near = z[:, 0] < NEAR
    if near.any():  # the mean of Phi(-u) over [0, NEAR]: (a Phi(-a) - pdf(a) + pdf(0)) / a, a = NEAR
        phi[near, 0] = (NEAR * 0.5 * erfc(NEAR / sqrt(2)) + (1 - np.exp(-NEAR ** 2 / 2)) / sqrt(2 * np.pi)) / NEAR
        flips = max(flips, np.mean(np.minimum(1.0, phi.sum(axis=1))))
    return float(1.0 - flips)


WEIGHTS = " weights"  # tensor_sensitivity's key for a layer's weights: "<layer> weights"


def tensor_sensitivity(graph: Graph, ranges: dict, tensors: Sequence[str], batches: list, backend: str,
                       scheme: str, exclude: Sequence[str] = (), layers: Sequence[str] = ()) -> dict:
    """{activation tensor: output SQNR dB with only that tensor quantized} (weights and every other
    tensor in float) for each of ``tensors``, and {"<layer> weights": the same with only that layer's
    weights quantized} for each of ``layers``."""
    names = [v.name for v in graph.outputs if v.dtype.is_float]
    ref = network_outputs(graph, batches, backend, names, desc="tensor sensitivity: float")
    out = {}
    with progress(total=len(tensors) + len(layers), desc="tensor sensitivity", unit="tensor") as bar:
        for t in tensors:
            q = insert_qdq(graph, {t: ranges[t]}, exclude, scheme, weights=False)
            out[t] = output_sqnr(ref, network_outputs(q, batches, backend, names, desc=f"tensor sensitivity: {t}"))
            bar.update(1)
        for layer in layers:
            q = insert_qdq(graph, {}, list(exclude) + [literal(n) for n in layers if n != layer], scheme)
            out[layer + WEIGHTS] = output_sqnr(ref, network_outputs(q, batches, backend, names,
                                                                    desc=f"tensor sensitivity: {layer}{WEIGHTS}"))
            bar.update(1)
    return out


def layer_sensitivity(graph: Graph, ranges: dict, layers: Sequence[str], batches: list, backend: str,
                      scheme: str, exclude: Sequence[str] = ()) -> dict:
    """{layer: output SQNR dB with only that layer quantized}, for each of ``layers``."""
    names = [v.name for v in graph.outputs if v.dtype.is_float]
    ref = network_outputs(graph, batches, backend, names, desc="sensitivity: float")
    out = {}
    with progress(total=len(layers), desc="sensitivity", unit="layer") as bar:
        for layer in layers:
            others = [n for n in layers if n != layer] + list(exclude)
            q = insert_qdq(graph, ranges, [literal(n) for n in others], scheme)
            out[layer] = output_sqnr(ref, network_outputs(q, batches, backend, names, desc=f"sensitivity: {layer}"))
            bar.update(1)
    return out


def literal(name: str) -> str:
    """An fnmatch pattern matching exactly ``name``."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
