"""Weight rounding fitted to calibration data: GPTQ (Frantar et al. 2022) on the quantized network.

Rounding each int8 weight to its nearest level ignores that the errors of a layer's weights add up
on its inputs. Here each quantized convolution, linear or matmul layer is treated, in network order,
with every layer before it already quantized (activations and weights, run layer by layer in NumPy):

1. its inputs X^ as the quantized network computes them are collected as patches (the rows a
   convolution multiplies its weights with), H = X^'X^ per group of channels;
2. optionally (``compensate``) the float weights W are first refitted so that the layer on its
   quantized inputs reproduces the float layer on its float inputs X: W' = W X'X^ H^-1 (least
   squares, damped), which absorbs the mean and the correlated part of the upstream errors;
3. W' is rounded column by column, each column's rounding error spread over the columns not yet
   rounded in proportion to H^-1 (GPTQ's optimal update, largest-H columns first); the per-output-
   channel scales are those of round-to-nearest (max |W| / 127), so only the integers change.

A layer with fewer input rows than twice its weight columns (a classifier seen on 64 calibration
inputs) keeps round-to-nearest: H has too low a rank there, and GPTQ would move the error into the
directions the calibration inputs happen not to cover. The result is {layer: int8 weight array},
used by insert_qdq in place of round-to-nearest. Cost: one pass of the network in NumPy over the
calibration batches, and per layer a K x K solve and a loop over its K weight columns (K up to a few
thousand: seconds per layer).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..graph import Graph, Node
from ..ops import get_op
from ..passes.qdq import QMAX, targets, weight_data, weight_scales
from ..progress import progress
from .calibrate import run_observed
from .sequential import run_sequential

DAMP = 0.01  # H + DAMP * mean(diag H) * I: GPTQ's damping
MIN_FIT_ROWS = 2  # a layer is fitted only with at least this many input rows per weight column
MIN_ROWS = 8  # the least-squares refit needs at least this many
LS_DAMP = 1e-5  # the least-squares refit's (neighbouring pixels are so correlated that 1% shrinks W by half)


def weight_matrix(node: Node, w: np.ndarray) -> np.ndarray:
    """The weight as (groups, outputs per group, inputs K) in the order ``patches`` makes columns."""
    if node.op == "conv":
        g = node.attrs.get("groups", 1)
        return w.reshape(g, w.shape[0] // g, -1)
    if node.op == "linear":  # (out, in)
        return w[None]
    return w.T[None]  # matmul B (K, N)


def from_matrix(node: Node, m: np.ndarray, shape: tuple) -> np.ndarray:
    """The inverse of ``weight_matrix``."""
    if node.op == "matmul":
        return m[0].T.reshape(shape)
    return m.reshape(shape)


def patches(node: Node, x: np.ndarray, wshape: tuple) -> np.ndarray:
    """(groups, samples, K): the input rows the layer multiplies its weight matrix rows with. For a
    convolution they are made by the convolution itself with one-hot kernels, so padding, strides and
    dilations are exactly the layer's."""
    x = np.asarray(x, np.float32)
    if node.op != "conv":
        return x.reshape(1, -1, x.shape[-1])
    g = node.attrs.get("groups", 1)
    cpg, ks = wshape[1], tuple(wshape[2:])
    k = cpg * int(np.prod(ks))
    eye = np.tile(np.eye(k, dtype=np.float32).reshape((k, cpg) + ks), (g,) + (1,) * (1 + len(ks)))
    cols = get_op("conv").run_reference([x, eye, None], node.attrs)[0]  # (N, g*k, *out)
    cols = cols.reshape(cols.shape[0], g, k, -1)
    return np.ascontiguousarray(cols.transpose(1, 0, 3, 2).reshape(g, -1, k))


def gptq(w: np.ndarray, h: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """int8 levels of ``w`` (G, O, K) with per-row ``scales`` (G, O) minimizing the output error on inputs
    of second moment ``h`` (G, K, K) (damped here)."""
    w = np.array(w, np.float64)
    h = np.array(h, np.float64)
    G, O, K = w.shape
    q = np.zeros(w.shape, np.float64)
    for g in range(G) if G > 1 and K > 16 else [None]:
        sl = slice(None) if g is None else slice(g, g + 1)
        wg, hg, sg = w[sl], h[sl], scales[sl][..., None].astype(np.float64)
        d = np.einsum("gkk->gk", hg)
        dead = d <= 0
        hg[:, np.arange(K), np.arange(K)] += np.where(dead, 1.0, 0.0) + DAMP * np.maximum(d.mean(-1, keepdims=True), 1e-12)
        order = np.argsort(-d[0]) if wg.shape[0] == 1 else np.arange(K)  # GPTQ's act order
        wg, hg = wg[..., order], hg[:, order][:, :, order]
        u = np.linalg.cholesky(np.linalg.inv(hg)).transpose(0, 2, 1)  # upper: H^-1 = U'U
        qg = np.zeros_like(wg)
        for i in range(K):
            qi = np.clip(np.rint(wg[..., i] / sg[..., 0]), -QMAX, QMAX)
            qg[..., i] = qi
            err = (wg[..., i] - qi * sg[..., 0]) / u[:, i, i][:, None]
            wg[..., i + 1:] -= err[..., None] * u[:, None, i, i + 1:]
        q[sl] = qg[..., np.argsort(order)]
    return q.astype(np.int8)


def fit_rounding(float_graph: Graph, qgraph: Graph, layers: Sequence[str], batches: list, backend: str,
                 compensate: bool = True) -> dict:
    """{layer: int8 weights} for the weighted layers among ``layers`` (GPTQ on ``qgraph``, the float network
    ``float_graph`` -- whose weights are rounded -- run on ``backend`` for ``compensate``)."""
    fnodes = {n.name: n for n, _, w in targets(float_graph) if w is not None and n.name in set(layers)}
    if not fnodes:
        return {}
    ref: dict = {}
    if compensate:
        names = list(dict.fromkeys(n.inputs[0].name for n in fnodes.values()))
        got = {k: [] for k in names}
        for values in run_observed(float_graph, names, batches, backend, "weight rounding: float"):
            for k in names:
                got[k].append(np.asarray(values[k], np.float32))
        ref = got
    readers: dict = {}  # float input -> fitted layers still to read it (freed after the last)
    for n in fnodes.values():
        readers[n.inputs[0].name] = readers.get(n.inputs[0].name, 0) + 1
    fitted: dict = {}

    def before(node: Node, args: list) -> Optional[list]:
        f = fnodes.get(node.name)
        if f is None:
            return None
        bar.update(1)
        xname = f.inputs[0].name
        readers[xname] -= 1
        xf = ref.pop(xname, None) if readers[xname] == 0 else ref.get(xname)
        wi, axis = (1, 0) if node.op in ("conv", "linear") else (1, f.inputs[1].rank - 1)
        w = np.asarray(weight_data(float_graph, f.inputs[wi])(), np.float64)
        if node.op == "matmul" and w.ndim != 2:
            return None
        scales = weight_scales(w, axis).astype(np.float64)
        wm = weight_matrix(node, w)
        sm = scales.reshape(wm.shape[:2])
        h = cross = None
        first = patches(node, args[0][0], w.shape)
        rows = first.shape[1] * sum(len(a) for a in args[0]) // max(len(args[0][0]), 1)
        if rows < MIN_FIT_ROWS * wm.shape[-1]:  # H of too few inputs: GPTQ would fit the calibration inputs
            return None
        for i, xq in enumerate(args[0]):
            pq = (first if i == 0 else patches(node, xq, w.shape)).astype(np.float64)
            h = pq.transpose(0, 2, 1) @ pq if h is None else h + pq.transpose(0, 2, 1) @ pq
            if compensate:
                pf = patches(node, xf[i], w.shape).astype(np.float64)
                c = pf.transpose(0, 2, 1) @ pq
                cross = c if cross is None else cross + c
        if compensate and rows >= MIN_ROWS * wm.shape[-1]:  # fewer rows than that: the refit overfits
            d = np.einsum("gkk->gk", h)
            damped = h + (LS_DAMP * np.maximum(d.mean(-1, keepdims=True), 1e-12))[..., None] * np.eye(h.shape[-1])
            wm = np.linalg.solve(damped, (wm @ cross).transpose(0, 2, 1)).transpose(0, 2, 1)  # W X'X^ H^-1
        q = gptq(wm, h, sm)
        fitted[node.name] = from_matrix(node, q, w.shape)
        new = (from_matrix(node, q * sm[..., None], w.shape)).astype(np.float32)
        return [a if j != wi else [new] * len(a) for j, a in enumerate(args)]

    with progress(total=len(fnodes), desc="weight rounding", unit="layer") as bar:
        run_sequential(qgraph, batches, before=before)
    return fitted

