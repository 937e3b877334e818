"""Channel equalization before quantization (cross-layer scaling, as SmoothQuant does for matmuls and
data-free quantization's cross-layer equalization for convolutions).

A tensor X whose channels are quantized with one per-tensor scale loses the channels whose range is
much smaller than the largest. When X is made by a layer that can scale each of its output channels
(a convolution, a linear layer, a batch norm or a layer norm over the last axis), possibly through layers that commute with a
positive per-channel factor (relu, leaky relu, prelu, max/avg pooling, zero padding, dropout), and
is read only by layers with constant weights (convolution, linear, matmul), then

    producer channel c  *  1 / s_c     and     consumer weights of input channel c  *  s_c

computes the same function in float, and ``s_c = a_c**alpha / w_c**(1 - alpha)`` (a_c: channel c's
largest |x| seen in calibration; w_c: the largest |weight| reading channel c) moves range from the
activations into the weights. The producer's weights are quantized per output channel, so scaling
them costs nothing; ``alpha`` balances the activation's per-tensor grid against the consumers'
per-output-channel weight grids (1 for depthwise consumers, whose weights are per channel too).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..graph import Graph, Node, Param, Value
from .rewrite import clone_graph

# layers that commute with a positive per-channel factor on their channel axis (1)
_TRANSPARENT = {"relu", "leaky_relu", "max_pool", "avg_pool", "global_avg_pool", "global_max_pool",
                "dropout", "identity"}


@dataclass
class Chain:
    """producer -> path (transparent layers) -> tensor -> consumers, channels on ``axis`` of ``tensor``.
    Without a producer, the consumers read ``tensor`` through a new per-channel multiply (SmoothQuant's
    form for a tensor whose maker cannot absorb the factor: a GELU, a layer norm also feeding a residual)."""

    producer: Optional[Node]
    path: list
    tensor: Value
    consumers: list
    axis: int = 1
    depthwise: bool = False  # every consumer quantizes its weights per input channel too
    notes: list = field(default_factory=list)


def _const(v: Optional[Value]) -> Optional[Node]:
    p = None if v is None else v.producer
    return p if p is not None and p.op in ("parameter", "constant") else None


def _out_axis(n: Node) -> Optional[int]:
    """The channel axis of a producer's output it can scale per channel, else None."""
    if n.op == "conv" and _const(n.inputs[1]) and (len(n.inputs) < 3 or n.inputs[2] is None or _const(n.inputs[2])):
        return 1
    if n.op == "linear" and _const(n.inputs[1]) and (len(n.inputs) < 3 or n.inputs[2] is None or _const(n.inputs[2])):
        return n.outputs[0].rank - 1
    if n.op == "batch_norm" and all(_const(v) for v in n.inputs[1:]):
        return 1
    if (n.op == "layer_norm" and n.attrs["axis"] % n.outputs[0].rank == n.outputs[0].rank - 1
            and len(n.inputs) == 3 and all(_const(v) for v in n.inputs[1:])):
        return n.outputs[0].rank - 1  # y = normalized * scale + bias, per channel of the last axis
    return None


def _in_axis(n: Node, x: Value) -> Optional[int]:
    """The channel axis of ``x`` whose channels a consumer can absorb a factor for, else None."""
    if not n.inputs or n.inputs[0] is not x or any(v is x for v in n.inputs[1:]):
        return None
    if n.op == "conv" and _const(n.inputs[1]):
        return 1
    if n.op == "linear" and _const(n.inputs[1]):
        return x.rank - 1
    if n.op == "matmul" and _const(n.inputs[1]) and n.inputs[1].rank >= 2 and x.rank >= 2:
        return x.rank - 1
    return None


def _passes(n: Node) -> bool:
    if n.op == "pad":  # zeros stay zeros; the batch and channel axes must not be padded
        pads, r = list(n.attrs["pads"]), n.inputs[0].rank
        return (n.attrs.get("mode") == "constant" and float(n.attrs.get("value", 0.0)) == 0.0
                and not any(pads[i] or pads[r + i] for i in (0, 1)))
    if n.op == "prelu":
        return _const(n.inputs[1]) is not None
    return n.op in _TRANSPARENT


def find_chains(graph: Graph) -> list[Chain]:
    """Every producer -> transparent path -> tensor -> constant-weight consumers chain of ``graph``."""
    readers = graph.consumers()
    outputs = {id(v) for v in graph.outputs}
    chains = []
    for p in graph.nodes:
        axis = _out_axis(p)
        if axis is None or not p.outputs[0].dtype.is_float:
            continue
        v, path = p.outputs[0], []
        while True:
            rs = readers.get(id(v), [])
            if id(v) in outputs or not rs:
                break
            if len(rs) == 1 and _passes(rs[0]) and rs[0].inputs[0] is v and axis == 1:
                path.append(rs[0])
                v = rs[0].outputs[0]
                continue
            axes = [_in_axis(r, v) for r in rs]
            if all(a is not None and a % v.rank == axis % v.rank for a in axes):
                dw = all(r.op == "conv" and r.attrs.get("groups", 1) == v.shape[1] for r in rs)
                chains.append(Chain(p, path, v, rs, axis % v.rank, dw))
            break
    return chains + smoothing_chains(graph, {id(c.tensor) for c in chains})


def smoothing_chains(graph: Graph, taken: set) -> list[Chain]:
    """Chains without a producer: every float tensor read by linear / matmul layers with constant
    weights (on its last axis), not already the end of a producer chain."""
    readers = graph.consumers()
    seen, out = set(taken), []
    for n in graph.nodes:
        if n.op not in ("linear", "matmul") or not n.inputs or n.inputs[0] is None:
            continue
        x = n.inputs[0]
        if id(x) in seen or not x.dtype.is_float or x.rank < 2:
            continue
        seen.add(id(x))
        rs = [r for r in readers.get(id(x), []) if r.op in ("linear", "matmul")
              and _in_axis(r, x) is not None and _in_axis(r, x) % x.rank == x.rank - 1]
        if rs and isinstance(x.shape[-1], int):
            out.append(Chain(None, [], x, rs, x.rank - 1))
    return out


def _values(g: Graph, v: Value) -> Callable[[], np.ndarray]:
    n = v.producer
    if n.op == "constant":
        arr = np.asarray(n.attrs["value"])
        return lambda: arr
    return g.params[n.attrs["name"]].value


def _replace(g: Graph, node: Node, i: int, make: Callable[[], np.ndarray], tag: str) -> None:
    """Input ``i`` of ``node`` becomes a new parameter whose data is ``make()`` (computed lazily)."""
    old = node.inputs[i]
    name = f"{old.name}*{tag}"
    k = 1
    while name in g.params:
        name, k = f"{old.name}*{tag}_{k}", k + 1
    dt = old.dtype
    g.params[name] = Param(name, dt, tuple(old.shape), lambda: make().astype(dt.numpy), f"{old.name} equalized", "normal")
    pn = Node("parameter", name, [], {"name": name, "dtype": dt, "shape": tuple(old.shape)}, node.location)
    pn.outputs.append(Value(name, dt, tuple(old.shape), pn, 0))
    g.nodes.insert(g.nodes.index(node), pn)
    node.inputs = list(node.inputs)
    node.inputs[i] = pn.outputs[0]


def _scale_producer(g: Graph, p: Node, s: np.ndarray, tag: str) -> None:
    """Divide output channel c of producer ``p`` by s[c]."""
    if p.op in ("batch_norm", "layer_norm"):  # y = normalized x * scale + bias
        for i in (1, 2):
            read = _values(g, p.inputs[i])
            _replace(g, p, i, lambda read=read: read().astype(np.float64) / s, tag)
        return
    w = _values(g, p.inputs[1])
    if p.op == "conv":
        _replace(g, p, 1, lambda: w().astype(np.float64) / s.reshape((-1,) + (1,) * (p.inputs[1].rank - 1)), tag)
    else:  # linear: weight (out, in)
        _replace(g, p, 1, lambda: w().astype(np.float64) / s[:, None], tag)
    if len(p.inputs) > 2 and p.inputs[2] is not None:
        b = _values(g, p.inputs[2])
        _replace(g, p, 2, lambda: b().astype(np.float64) / s, tag)


def _column_scaler(n: Node, c: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """f(weight, s): the consumer's weight with input channel j multiplied by s[j]."""
    if n.op == "conv":
        groups = n.attrs.get("groups", 1)

        def conv(w: np.ndarray, s: np.ndarray) -> np.ndarray:
            o, cpg = w.shape[0], w.shape[1]
            f = s.reshape(groups, 1, cpg)  # input channel j = group * cpg + local index
            ws = w.astype(np.float64).reshape((groups, o // groups, cpg) + w.shape[2:])
            return (ws * f.reshape(f.shape + (1,) * (w.ndim - 2))).reshape(w.shape)
        return conv
    if n.op == "linear":  # (out, in)
        return lambda w, s: w.astype(np.float64) * s[None, :]
    return lambda w, s: w.astype(np.float64) * s.reshape((-1, 1))  # matmul B (..., K, N)


def consumer_column_amax(g: Graph, chain: Chain) -> np.ndarray:
    """The largest |weight| reading each input channel of the chain's tensor, over every consumer."""
    c = chain.tensor.shape[chain.axis]
    out = np.zeros(c)
    for n in chain.consumers:
        w = np.abs(np.asarray(_values(g, n.inputs[1])(), np.float64))
        if n.op == "conv":
            groups = n.attrs.get("groups", 1)
            o, cpg = w.shape[0], w.shape[1]
            m = w.reshape((groups, o // groups, cpg, -1)).max(axis=(1, 3)).reshape(-1)
        elif n.op == "linear":
            m = w.max(axis=0)
        else:
            m = np.moveaxis(w, -2, 0).reshape(w.shape[-2], -1).max(axis=1)
        out = np.maximum(out, m)
    return out


def channel_scales(act_amax: np.ndarray, w_amax: np.ndarray, alpha: float) -> np.ndarray:
    """s_c = a_c**alpha / w_c**(1 - alpha), normalized to a geometric mean of 1; 1 where a_c or w_c is 0."""
    a, w = np.asarray(act_amax, np.float64), np.asarray(w_amax, np.float64)
    ok = (a > 0) & (w > 0) & np.isfinite(a) & np.isfinite(w)
    s = np.ones_like(a)
    if not ok.any():
        return s
    s[ok] = a[ok] ** alpha / w[ok] ** (1 - alpha)
    s[ok] /= np.exp(np.mean(np.log(s[ok])))
    return s


def _smooth(g: Graph, consumers: list, s: np.ndarray, tag: str) -> None:
    """The consumers read their input times 1 / s (a new multiply by a constant) instead."""
    first = consumers[0]
    x = first.inputs[0]
    i = min(g.nodes.index(c) for c in consumers)
    name = f"{x.name}/{tag}"
    c = Node("constant", f"{name}/factor", [], {"value": (1.0 / s).astype(x.dtype.numpy)}, first.location)
    c.outputs.append(Value(c.name, x.dtype, (len(s),), c, 0))
    m = Node("mul", name, [x, c.outputs[0]], {}, first.location)
    m.outputs.append(Value(name, x.dtype, tuple(x.shape), m, 0))
    g.nodes[i:i] = [c, m]
    for n in consumers:
        n.inputs = [m.outputs[0]] + list(n.inputs[1:])


def equalize(graph: Graph, chains: list, scales: dict) -> Graph:
    """A copy of ``graph`` with each chain's channels scaled: ``scales`` maps the chain's tensor name to
    s (one factor per channel); the producer divides by s, the consumers' weights multiply by it."""
    g = clone_graph(graph)
    by_name = {n.name: n for n in g.nodes}
    for ch in chains:
        s = scales.get(ch.tensor.name)
        if s is None or np.allclose(s, 1.0):
            continue
        s = np.asarray(s, np.float64)
        tag = f"eq[{ch.tensor.name}]"
        if ch.producer is not None:
            _scale_producer(g, by_name[ch.producer.name], s, tag)
        else:
            _smooth(g, [by_name[n.name] for n in ch.consumers], s, tag)
        for n in ch.consumers:
            node = by_name[n.name]
            w = _values(g, node.inputs[1])
            f = _column_scaler(node, len(s))
            _replace(g, node, 1, lambda w=w, f=f, s=s: f(w(), s), tag)
    g.validate()
    return g
