"""Bias correction: quantization shifts each layer's mean output (int8 weights err the same way on
every input; clipping cuts one tail). Each quantized convolution or linear layer gets, per output
channel, the float network's mean output minus the quantized network's, measured on the calibration
batches and added to its bias (a bias is added where the layer had none).

Layers are corrected in network order and the quantized network is run layer by layer (NumPy, in
float32, every calibration batch at once), so each correction sees the upstream layers already
corrected (the empirical bias correction of Nagel et al. 2019 and of NNCF's BiasCorrection).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..graph import Graph, Node, Param, Value
from ..passes.qdq import wide_sums
from ..passes.rewrite import clone_graph, prune
from .calibrate import run_observed
from .sequential import run_sequential

CORRECTED = ("conv", "linear")


def _axis(node: Node) -> int:
    return 1 if node.op == "conv" else node.outputs[0].rank - 1


def _channel_mean(a: np.ndarray, axis: int) -> tuple[np.ndarray, int]:
    """(sum over every axis but ``axis``, count of summed values per channel)."""
    axis %= a.ndim
    red = tuple(i for i in range(a.ndim) if i != axis)
    return a.sum(axis=red, dtype=np.float64), int(a.size // a.shape[axis])


def float_means(graph: Graph, layers: Sequence[Node], batches: list, backend: str) -> dict:
    """{layer name: per-channel mean of its output} in the float network."""
    names = [n.outputs[0].name for n in layers]
    acc: dict = {}
    for values in run_observed(graph, names, batches, backend, "bias correction: float"):
        for n, nm in zip(layers, names):
            s, c = _channel_mean(values[nm], _axis(n))
            t = acc.get(n.name)
            acc[n.name] = (s, c) if t is None else (t[0] + s, t[1] + c)
    return {k: s / max(c, 1) for k, (s, c) in acc.items()}


def add_to_bias(g: Graph, node: Node, delta: np.ndarray) -> None:
    """Input 2 (the bias) of ``node`` becomes its old value plus ``delta`` (lazily for parameters)."""
    old = node.inputs[2] if len(node.inputs) > 2 else None
    dt = node.outputs[0].dtype
    if old is None:
        read = lambda: 0.0  # noqa: E731
        base = f"{node.name}.bias"
    elif old.producer.op == "constant":
        arr = np.asarray(old.producer.attrs["value"])
        read, base = (lambda: arr), old.name
    else:
        read, base = g.params[old.producer.attrs["name"]].value, old.name
    name = f"{base}+bias_correction"
    k = 1
    while name in g.params or any(n.name == name for n in g.nodes):
        name, k = f"{base}+bias_correction_{k}", k + 1
    g.params[name] = Param(name, dt, (len(delta),), lambda: (np.asarray(read(), np.float64) + delta).astype(dt.numpy),
                           f"{base} corrected for quantization", "normal")
    pn = Node("parameter", name, [], {"name": name, "dtype": dt, "shape": (len(delta),)}, node.location)
    pn.outputs.append(Value(name, dt, (len(delta),), pn, 0))
    g.nodes.insert(g.nodes.index(node), pn)
    node.inputs = list(node.inputs[:2]) + [pn.outputs[0]] + list(node.inputs[3:])


def bias_deltas(float_graph: Graph, qgraph: Graph, layers: Sequence[str], batches: list, backend: str) -> dict:
    """{layer: per-channel correction} for the corrected layers among ``layers`` of ``qgraph`` (run here
    layer by layer in NumPy, the float network on ``backend``)."""
    g = qgraph
    by_name = {n.name: n for n in g.nodes}
    todo = [by_name[n] for n in layers if n in by_name and by_name[n].op in CORRECTED
            and by_name[n].outputs[0].dtype.is_float
            and isinstance(by_name[n].outputs[0].shape[_axis(by_name[n])], int)]  # a bias needs fixed channels
    if not todo:
        return {}
    want = float_means(float_graph, [float_graph.node(n.name) for n in todo], batches, backend)
    # a widened layer's output is the sum of its two INT8 halves (passes/qdq.py): corrected there
    sums = {k: layer for k, layer in wide_sums(g).items() if layer in todo}
    fix = {id(n): n for n in todo if n not in sums.values()} | sums
    deltas: dict = {}

    def after(node: Node, res: list) -> Optional[list]:
        if id(node) not in fix:
            return None
        layer = fix[id(node)]
        axis = _axis(layer)
        acc = [_channel_mean(r, axis) for r in res]
        mean = sum(a[0] for a in acc) / max(sum(a[1] for a in acc), 1)
        delta = want[layer.name] - mean
        deltas[layer.name] = delta
        shape = [1] * layer.outputs[0].rank
        shape[axis] = -1
        return [(r + delta.reshape(shape)).astype(np.float32) for r in res]
    run_sequential(g, batches, after=after)
    return deltas


def apply_biases(qgraph: Graph, deltas: dict) -> Graph:
    """A copy of ``qgraph`` whose layers in ``deltas`` have the correction added to their bias."""
    if not deltas:
        return qgraph
    g = clone_graph(qgraph)
    for node in [n for n in g.nodes if n.name in deltas]:
        add_to_bias(g, node, np.asarray(deltas[node.name], np.float64))
    prune(g)  # the replaced biases
    g.validate()
    return g
