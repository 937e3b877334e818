"""Inserting quantize/dequantize pairs: the graph rewrite behind post-training quantization.

For each quantizable layer (convolution, linear, matmul) not excluded by name:

* every float activation input gets ``quantize_linear -> dequantize_linear`` with a per-tensor scale
  (and zero point) made from its calibrated range by the quantization scheme
  (:mod:`netdsl.quantization.schemes`; one pair per tensor, shared by all its readers);
* a weight (a parameter or constant) is replaced by an int8 parameter holding
  ``round(w / s_c)`` with per-output-channel symmetric scales ``s_c = max|w_c| / 127``, followed by
  ``dequantize_linear``. The int8 data is computed lazily, when a backend reads it.

* a residual ``add`` whose result is itself quantized (it feeds a quantized layer, directly or through
  a ReLU) and whose two inputs are quantized layers' outputs or quantized tensors reads both inputs
  through Q/DQ pairs too (:func:`residual_adds`; MobileNetV2's linear bottlenecks, ResNet's blocks).
  Each input tensor then has one quantized form that every reader shares, so the layer that makes it
  can emit it as INT8 and OpenVINO fuses the requantization (and the add, as a sum) into that
  convolution instead of running it as a separate node next to an f32 copy for the add.

Engines fuse these patterns into INT8 kernels (OpenVINO's low-precision transformations, TensorRT's
explicit quantization, ONNX Runtime's QDQ handling).

A *wide* (two-level) activation ``x`` (``insert_qdq(..., wide=...)``) keeps INT8 kernels and gains
about 8 bits of input resolution: a layer is linear in it, so each reader becomes

    layer(W, x) ~= layer(W, q1) + layer(W, q2)   (the bias once)
    q1 = DQ(Q(x)),  q2 = DQ(Q(x - q1)) with symmetric int8 and scale s1 / 254

where q2 quantizes the rounding residual of q1 (within +-s1/2 where x is not clipped): two INT8
layers with the same int8 weights, one subtract and one add. The sum takes the layer's output name;
the first layer keeps its name and bias, the second is named ``<layer>/residual``. A wide weight
(``wide_weights``) likewise: ``W ~= W1 + W2``, W2 the int8 rounding residual of W1 in steps of the
per-channel scale / 254, one more INT8 layer ``layer(W2, q1)``. A residual add with a wide input,
or a wide sum (or ReLU of it), reads both inputs in float (a coarse input would cap its sum's precision).
"""
from __future__ import annotations

import fnmatch
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..dtypes import DType
from ..errors import NetdslError
from ..graph import Graph, Node, Param, Value
from .rewrite import clone_graph, prune

QUANTIZABLE = ("conv", "linear", "matmul")
QMAX = 127
RESIDUAL_STEPS = 2 * QMAX  # a wide tensor's residual scale: its first scale / this
RESIDUAL = "/residual"   # the second layer of a widened layer: <layer>/residual
WIDE_SUM = "/wide_sum"   # and the sum of the two: <layer>/wide_sum


def excluded(name: str, patterns: Sequence[str]) -> bool:
    """Whether layer ``name`` matches one of the fnmatch ``patterns`` (``head*``, ``*/attention/*``)."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _source(v: Optional[Value]) -> Optional[Node]:
    p = None if v is None else v.producer
    return p if p is not None and p.op in ("parameter", "constant") else None


def targets(graph: Graph, exclude: Sequence[str] = ()) -> list[tuple[Node, list[int], Optional[tuple]]]:
    """(layer, activation input indices, (weight input index, channel axis) or None) per quantizable layer."""
    out = []
    for n in graph.nodes:
        if n.op not in QUANTIZABLE or excluded(n.name, exclude):
            continue
        if not all(v is None or v.dtype is DType.float32 for v in n.inputs[:2]):
            continue
        if n.op in ("conv", "linear"):
            w = (1, 0) if _source(n.inputs[1]) is not None else None
            acts = [0] if w is not None else [0, 1]
        else:  # matmul: a constant B (K, N) is a weight quantized per output column; a batched one
            b = n.inputs[1]  # (..., K, N) stays float (ONNX Runtime takes per-column scales of a 2-d B only)
            w = (1, 1) if _source(b) is not None and b.rank == 2 else None
            acts = [i for i in (0, 1) if _source(n.inputs[i]) is None]
        out.append((n, acts, w))
    return out


def residual_adds(graph: Graph, exclude: Sequence[str] = ()) -> list[Node]:
    """The ``add`` nodes whose inputs get Q/DQ pairs: two float32 activations of one shape, each the
    output of a quantized layer or an input of one, whose sum is itself an input of a quantized layer,
    directly (MobileNetV2's linear bottlenecks) or through a ReLU that is its only reader (ResNet's
    add -> relu); not a transformer's add -> layer norm, whose sum stays float."""
    found = targets(graph, exclude)
    made = {id(n.outputs[0]) for n, _, _ in found}
    read = {id(n.inputs[i]) for n, acts, _ in found for i in acts}
    readers = graph.consumers()
    outputs = {id(v) for v in graph.outputs}

    def quantized_sum(v: Value) -> bool:
        after = readers.get(id(v), [])
        return id(v) in read or (id(v) not in outputs and len(after) == 1 and after[0].op == "relu"
                                 and id(after[0].outputs[0]) in read)
    out = []
    for n in graph.nodes:
        if n.op != "add" or len(n.inputs) != 2 or not quantized_sum(n.outputs[0]):
            continue
        a, b = n.inputs
        if all(v is not None and v.dtype is DType.float32 and _source(v) is None and v.shape == a.shape
               and (id(v) in made or id(v) in read) for v in (a, b)):
            out.append(n)
    return out


def layer_activations(graph: Graph, exclude: Sequence[str] = ()) -> list[str]:
    """Names of the activation inputs of quantized layers (those a wide tensor can be: see insert_qdq)."""
    return list(dict.fromkeys(n.inputs[i].name for n, acts, _ in targets(graph, exclude) for i in acts))


def activations(graph: Graph, exclude: Sequence[str] = ()) -> list[str]:
    """Names of the tensors whose ranges calibration must observe (inputs of quantized layers and of
    :func:`residual_adds`)."""
    names: list[str] = []
    ins = [[n.inputs[i] for i in acts] for n, acts, _ in targets(graph, exclude)]
    for vals in ins + [list(n.inputs) for n in residual_adds(graph, exclude)]:
        for v in vals:
            if v.name not in names:
                names.append(v.name)
    return names


def weight_scales(w: np.ndarray, axis: int) -> np.ndarray:
    """Per-channel symmetric scales max|w_c| / 127 along ``axis`` (1 for an all-zero channel)."""
    red = tuple(i for i in range(w.ndim) if i != axis % w.ndim)
    amax = np.abs(w.astype(np.float64)).max(axis=red) if red else np.abs(w.astype(np.float64))
    return np.where(amax > 0, amax / QMAX, 1.0).astype(np.float32)


def quantize_weight(w: np.ndarray, scales: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * w.ndim
    shape[axis % w.ndim] = -1
    return np.clip(np.rint(w.astype(np.float64) / scales.reshape(shape)), -QMAX, QMAX).astype(np.int8)


class _Builder:
    """Makes the new nodes with names no layer or tensor uses yet."""

    def __init__(self, g: Graph):
        self.g = g
        self.used = {v.name for v in g.values()} | {n.name for n in g.nodes} | set(g.params)
        self.nodes: list[Node] = []

    def name(self, base: str) -> str:
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def node(self, op: str, base: str, inputs: list, attrs: dict, dtype: DType, shape: tuple, loc: str) -> Value:
        n = Node(op, self.name(base), inputs, attrs, loc)
        n.outputs.append(Value(n.name, dtype, tuple(shape), n, 0))
        self.nodes.append(n)
        return n.outputs[0]

    def const(self, base: str, arr: np.ndarray, loc: str) -> Value:
        from ..dtypes import as_dtype
        return self.node("constant", base, [], {"value": arr}, as_dtype(arr.dtype), arr.shape, loc)

    def param(self, base: str, p: Param, loc: str) -> Value:
        name = self.name(base)
        self.g.params[name] = p
        p.name = name
        n = Node("parameter", name, [], {"name": name, "dtype": p.dtype, "shape": tuple(p.shape)}, loc)
        n.outputs.append(Value(name, p.dtype, tuple(p.shape), n, 0))
        self.nodes.append(n)
        return n.outputs[0]


def weight_data(g: Graph, v: Value) -> Callable[[], np.ndarray]:
    p = v.producer
    if p.op == "constant":
        arr = np.asarray(p.attrs["value"])
        return lambda: arr
    param = g.params[p.attrs["name"]]
    return param.value


def _activation_qparams(r: Any, scheme: str) -> Any:
    from ..quantization.schemes import qparams
    if isinstance(r, (int, float, np.floating, np.integer)):  # a symmetric |x| threshold
        return qparams(-float(r), float(r), "symmetric")
    return qparams(r[0], r[1], scheme)


def _qdq(b: "_Builder", v: Value, qp: Any, base: str, loc: str) -> Value:
    """``dequantize(quantize(v))`` with the quantized type, scale and zero point ``qp``."""
    s = b.const(f"{base}/scale", np.asarray(qp.scale, np.float32), loc)
    z = None if qp.zero_point is None else b.const(f"{base}/zero_point", np.asarray(qp.zero_point, qp.dtype.numpy), loc)
    q = b.node("quantize_linear", f"{base}/quantize", [v, s, z], {"axis": 1, "dtype": qp.dtype}, qp.dtype, v.shape, loc)
    return b.node("dequantize_linear", f"{base}/dequantize", [q, s, z], {"axis": 1}, DType.float32, v.shape, loc)


def residual_qparams(qp: Any) -> Any:
    """The symmetric int8 quantization of a wide tensor's rounding residual (``qp``: its first level's)."""
    from ..quantization.schemes import QParams
    return QParams(DType.int8, float(qp.scale) / RESIDUAL_STEPS, None)


def insert_qdq(graph: Graph, ranges: dict, exclude: Sequence[str] = (), scheme: str = "symmetric",
               rounded: Optional[dict] = None, wide: Sequence[str] = (), weights: bool = True,
               wide_weights: Sequence[str] = ()) -> Graph:
    """A copy of ``graph`` with Q/DQ pairs on the activations in ``ranges`` ({tensor: (lo, hi)}, or
    {tensor: |x| threshold} for symmetric ranges) quantized by ``scheme`` (symmetric | unsigned |
    asymmetric), and int8 per-channel weights (``weights``; False: float weights), for every
    quantizable layer not matching ``exclude``: rounded to nearest, or for a layer in ``rounded``
    ({layer: int8 array}) those integers. The tensors in ``wide`` are quantized in two levels, their
    readers split in two INT8 layers (see the module docstring); the layers in ``wide_weights`` get
    their weights' rounding residual as a second int8 weight, read by one more INT8 layer."""
    g = clone_graph(graph)
    b = _Builder(g)
    todo = {id(n): (acts, w) for n, acts, w in targets(g, exclude)}
    wide, wide_weights = set(wide), set(wide_weights)
    # a residual add with a wide input, or whose sum (or its ReLU) is wide, reads both in float: quantized
    # once, its inputs would cap the sum at one level
    readers = g.consumers()

    def wide_sum(n: Node) -> bool:
        s = n.outputs[0]
        return s.name in wide or any(r.op == "relu" and r.outputs[0].name in wide for r in readers.get(id(s), []))
    todo.update({id(n): ([0, 1], None) for n in residual_adds(g, exclude)
                 if all(v.name in ranges and v.name not in wide for v in n.inputs) and not wide_sum(n)})
    dq_of: dict[int, Value] = {}
    res_of: dict[int, Value] = {}
    new_nodes: list[Node] = []
    for n in g.nodes:
        split: dict[int, Value] = {}  # input index -> its residual's Q/DQ (or weight), for a widened layer
        if id(n) in todo:
            acts, w = todo[id(n)]
            b.nodes = []
            inputs = list(n.inputs)
            for i in acts:
                v = inputs[i]
                if v.name not in ranges or (v.name in wide and n.op not in QUANTIZABLE):
                    continue  # a residual add reads a wide tensor in float (its sum would lose the second level)
                if id(v) not in dq_of:
                    qp = _activation_qparams(ranges[v.name], scheme)
                    dq_of[id(v)] = _qdq(b, v, qp, v.name, n.location)
                    if v.name in wide:
                        r = b.node("sub", f"{v.name}/rounding_residual", [v, dq_of[id(v)]], {}, DType.float32,
                                   v.shape, n.location)
                        res_of[id(v)] = _qdq(b, r, residual_qparams(qp), r.name, n.location)
                inputs[i] = dq_of[id(v)]
                if id(v) in res_of:
                    split[i] = res_of[id(v)]
            if w is not None and weights:
                wi, axis = w
                wv = inputs[wi]
                read = weight_data(g, wv)
                data = read()
                scales = weight_scales(data, axis)
                fixed = (rounded or {}).get(n.name)
                if fixed is not None and tuple(np.shape(fixed)) != tuple(data.shape):
                    raise NetdslError(f"layer '{n.name}' ({n.location}): fitted int8 weights of shape {np.shape(fixed)} "
                                      f"for its weight of shape {data.shape}")
                qp = Param("", DType.int8, tuple(wv.shape),
                           (lambda read=read, scales=scales, axis=axis: quantize_weight(read(), scales, axis))
                           if fixed is None else (lambda fixed=fixed: np.asarray(fixed, np.int8)),
                           f"{wv.name} quantized to int8 per channel", "normal")
                qv = b.param(f"{wv.name}/int8", qp, n.location)
                s = b.const(f"{wv.name}/scale", scales, n.location)
                inputs[wi] = b.node("dequantize_linear", f"{wv.name}/dequantize", [qv, s, None],
                                    {"axis": axis % wv.rank}, DType.float32, wv.shape, n.location)
                if n.name in wide_weights:
                    rp = Param("", DType.int8, tuple(wv.shape),
                               lambda read=read, qp=qp, scales=scales, axis=axis: residual_weight(read(), qp.value(),
                                                                                                  scales, axis),
                               f"{wv.name}'s int8 rounding residual per channel", "normal")
                    rv = b.param(f"{wv.name}/int8_residual", rp, n.location)
                    rs = b.const(f"{wv.name}/residual_scale", scales / RESIDUAL_STEPS, n.location)
                    split[wi] = b.node("dequantize_linear", f"{wv.name}/residual_dequantize", [rv, rs, None],
                                       {"axis": axis % wv.rank}, DType.float32, wv.shape, n.location)
            n.inputs = inputs
            new_nodes.extend(b.nodes)
        new_nodes.append(n)
        if split:
            new_nodes.extend(_split_layer(b, n, split))
    g.nodes = new_nodes
    prune(g)
    g.validate()
    return g


def residual_weight(w: np.ndarray, q: np.ndarray, scales: np.ndarray, axis: int) -> np.ndarray:
    """The int8 rounding residual of weight ``w`` quantized to ``q`` with per-channel ``scales``, in
    steps of ``scales / RESIDUAL_STEPS``."""
    shape = [1] * w.ndim
    shape[axis % w.ndim] = -1
    s = scales.reshape(shape).astype(np.float64)
    r = (w.astype(np.float64) - q.astype(np.float64) * s) / (s / RESIDUAL_STEPS)
    return np.clip(np.rint(r), -QMAX, QMAX).astype(np.int8)


def _split_layer(b: "_Builder", n: Node, split: dict) -> list[Node]:
    """The nodes making layer ``n`` (already reading its first-level inputs and weight) the sum of
    itself and, per entry of ``split`` (input index -> a residual's Q/DQ), a twin reading that residual
    and the first levels elsewhere (products of two residuals dropped); the sum takes over ``n``'s
    output Value."""
    b.nodes = []
    out = n.outputs[0]
    terms = []
    part = Value(b.name(f"{out.name}/coarse"), out.dtype, out.shape, n, 0)
    n.outputs[0] = part
    for i, r in split.items():
        inputs = [r if j == i else v for j, v in enumerate(n.inputs)]
        if n.op in ("conv", "linear") and len(inputs) > 2:
            inputs[2] = None  # the bias once
        terms.append(b.node(n.op, f"{n.name}{RESIDUAL}", inputs, dict(n.attrs), out.dtype, out.shape, n.location))
    total = part
    for k, t in enumerate(terms):
        total = b.node("add", f"{n.name}{WIDE_SUM if k == len(terms) - 1 else '/wide_part'}", [total, t], {},
                       out.dtype, out.shape, n.location)
    last = total.producer
    out.producer, out.index = last, 0
    last.outputs[0] = out
    return b.nodes


def wide_sums(g: Graph) -> dict:
    """{id(sum node): its widened layer} for each layer ``insert_qdq`` split in two (the sum's output is
    the layer's output in the float network)."""
    by_name = {n.name: n for n in g.nodes}
    return {id(n): by_name[n.name[:-len(WIDE_SUM)]] for n in g.nodes
            if n.op == "add" and n.name.endswith(WIDE_SUM) and n.name[:-len(WIDE_SUM)] in by_name}
