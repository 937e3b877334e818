"""uint8 images quantized exactly: the first layer's input, made by ``preprocess`` from a uint8 input.

A uint8 image normalized by ``(p - mean) / scale`` takes 256 values per channel, but with a mean such
as 127.5 they lie half way between the levels of any uint8 grid that has 0 on it (zero points are
integers): every pixel is off by up to half a step, and on FER this input alone cost the most output
SQNR of any tensor (32 dB). Shifting the tensor by ``(mean - z) / scale`` (z: the even integer next
to the mean; the one below a mean that is itself one, as OpenVINO folds an exact quantization of the
unshifted tensor away and runs the convolution in f32) makes it ``(p - z) / scale``, which uint8 with
scale ``1 / scale`` and zero point z holds exactly (the quantized value is p itself). Each convolution reading it gets the shift's contribution
subtracted from its bias, which is exact for a convolution without zero padding (every output sums
every kernel tap of real pixels); other readers keep the unshifted tensor.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..dtypes import DType
from ..graph import Graph, Node, Value
from ..passes.qdq import targets, weight_data
from ..passes.rewrite import clone_graph
from .bias_correction import add_to_bias


def _exact_readers(g: Graph, v: Value, quantized: set, shifted: bool) -> list:
    """The quantized convolutions reading ``v`` for which the shift is exact."""
    out = []
    for r in g.consumers().get(id(v), []):
        if r.name not in quantized or r.op != "conv" or r.inputs[0] is not v:
            continue
        if shifted and (r.attrs.get("groups", 1) != 1 or any(r.attrs.get("pads", ()))
                        or r.attrs.get("auto_pad", "notset") != "notset"):
            continue
        out.append(r)
    return out


def exact_image_inputs(graph: Graph, exclude: Sequence[str], scheme: str) -> tuple[Graph, dict]:
    """(``graph`` with each eligible preprocessed uint8 image shifted for its quantized convolutions,
    {shifted tensor: its exact (lo, hi) range}). The shift is for the asymmetric scheme (uint8 with a
    zero point); with the others (int8, no zero point: no grid holds the image exactly) the preprocessed
    image keeps its whole range of 256 levels, never clipped (see :func:`full_image_ranges`)."""
    quantized = {n.name for n, acts, w in targets(graph, exclude) if 0 in acts and w is not None}
    if scheme != "asymmetric":
        return graph, full_image_ranges(graph, quantized)
    found = []
    for n in graph.nodes:
        if n.op != "preprocess" or n.inputs[0].dtype is not DType.uint8 or "N" not in n.attrs["layout"]:
            continue
        scale = tuple(n.attrs.get("scale") or (1.0,))
        if len(set(scale)) != 1 or scale[0] <= 0:
            continue  # per-channel scales: no one grid holds every channel
        s = float(scale[0])
        mean = np.asarray(n.attrs.get("mean") or (0.0,), np.float64)
        z = int(np.clip(2 * np.rint(mean.mean() / 2), 0, 254))  # even: one FakeQuantize on OpenVINO
        if not np.any(mean - z):  # unshifted, OpenVINO would run the first convolution in f32
            z += 2 if z == 0 else -2
        shift = (mean - z) / s  # per channel (or one value)
        if _exact_readers(graph, n.outputs[0], quantized, bool(np.any(shift))):
            found.append((n.name, shift, s, z))
    if not found:
        return graph, {}
    g = clone_graph(graph)
    pinned = {}
    for name, shift, s, z in found:
        node = g.node(name)
        v = node.outputs[0]
        readers = _exact_readers(g, v, quantized, bool(np.any(shift)))
        x = v
        if np.any(shift):
            x = _add_shift(g, node, readers, shift)
            for r in readers:
                w = np.asarray(weight_data(g, r.inputs[1])(), np.float64)  # (O, C, *k)
                per_in = w.reshape(w.shape[0], w.shape[1], -1).sum(-1)   # (O, C)
                add_to_bias(g, r, -(per_in * np.broadcast_to(shift, (w.shape[1],))[None]).sum(1))
        pinned[x.name] = (-z / s, (255 - z) / s)
    g.validate()
    return g, pinned


def full_image_ranges(graph: Graph, quantized: set) -> dict:
    """{preprocessed uint8 image read by a quantized convolution: the (lo, hi) its 256 levels span}.

    A range fitted to calibration data (mse, percentile) may clip the darkest and brightest pixels by
    a fraction of a step; engines then differ at those pixels (OpenVINO folds the preprocessing into the
    quantization of a uint8 input and did not clip them: 3% of the output of one convolution), and
    nothing is gained: the values are known exactly."""
    out = {}
    for n in graph.nodes:
        if n.op != "preprocess" or n.inputs[0].dtype is not DType.uint8 or "N" not in n.attrs["layout"]:
            continue
        if not _exact_readers(graph, n.outputs[0], quantized, False):
            continue
        scale = np.asarray(n.attrs.get("scale") or (1.0,), np.float64)
        mean = np.asarray(n.attrs.get("mean") or (0.0,), np.float64)
        ends = np.stack([(0.0 - mean) / scale, (255.0 - mean) / scale])
        out[n.outputs[0].name] = (float(ends.min()), float(ends.max()))
    return out


def _add_shift(g: Graph, pre: Node, readers: list, shift: np.ndarray) -> Value:
    """A tensor ``pre``'s output + shift (per channel on axis 1), read by ``readers`` instead."""
    v = pre.outputs[0]
    used = {n.name for n in g.nodes} | {u.name for u in g.values()}
    name, k = f"{v.name}/exact_shift", 1
    while name in used or f"{name}/value" in used:
        name, k = f"{v.name}/exact_shift_{k}", k + 1
    arr = np.asarray(shift, np.float32).reshape((1, -1) + (1,) * (v.rank - 2))
    c = Node("constant", f"{name}/value", [], {"value": arr}, pre.location)
    c.outputs.append(Value(c.name, DType.float32, arr.shape, c, 0))
    add = Node("add", name, [v, c.outputs[0]], {}, pre.location)
    add.outputs.append(Value(name, v.dtype, tuple(v.shape), add, 0))
    i = g.nodes.index(pre) + 1
    g.nodes[i:i] = [c, add]
    for r in readers:
        r.inputs = [add.outputs[0]] + list(r.inputs[1:])
    return add.outputs[0]
