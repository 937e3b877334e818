"""The netdsl IR: values, nodes, parameters and the graph that holds them.

A :class:`Graph` is built by the DSL (:mod:`netdsl.dsl`) and consumed by backends. Nodes are kept
in topological order (the DSL can only refer to values that already exist). Parameters (weights)
are named and carry a lazy *source* that is read only when a backend lowers the graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import numpy as np

from .dtypes import DType, as_dtype, canonical_array
from .errors import GraphError, WeightError
from .shapes import Dim, Sym, fmt_shape, symbols_of


@dataclass(frozen=True)
class TensorSpec:
    """dtype + shape of a tensor, as seen by shape inference."""

    dtype: DType
    shape: tuple  # tuple[Dim, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        return f"{self.dtype}{fmt_shape(self.shape)}"


class Value:
    """A tensor in the graph: produced by one node (or a graph input)."""

    __slots__ = ("name", "dtype", "shape", "producer", "index", "_spec")

    def __init__(self, name: str, dtype: DType, shape: tuple, producer: "Optional[Node]" = None, index: int = 0):
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.producer = producer
        self.index = index
        self._spec: Optional[TensorSpec] = None

    @property
    def spec(self) -> TensorSpec:
        s = self._spec  # made again only when dtype or shape was replaced (specs are immutable)
        if s is None or s.dtype is not self.dtype or s.shape is not self.shape:
            s = self._spec = TensorSpec(self.dtype, self.shape)
        return s

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"Value({self.name!r}, {self.dtype}{fmt_shape(self.shape)})"


class Node:
    """One op application: ``outputs = op(inputs, **attrs)``; ``location`` is the user's file:line."""

    __slots__ = ("op", "name", "inputs", "outputs", "attrs", "location")

    def __init__(self, op: str, name: str, inputs: list, attrs: dict, location: str = ""):
        self.op = op
        self.name = name
        self.inputs: list[Optional[Value]] = inputs
        self.outputs: list[Value] = []
        self.attrs: dict[str, Any] = attrs
        self.location = location

    def __repr__(self) -> str:
        return f"Node({self.op!r}, {self.name!r})"


@dataclass
class Param:
    """A named weight: shape/dtype are fixed by the network; data comes lazily from ``source``."""

    name: str
    dtype: DType
    shape: tuple
    source: Optional[Callable[[], np.ndarray]] = None
    origin: str = ""  # where the data comes from (e.g. 'ckpt.h5:conv1/kernel'), for messages
    init: str = "normal"  # how init_random() fills it: normal | ones | zeros | positive | uniform

    @property
    def bound(self) -> bool:
        return self.source is not None

    def value(self) -> np.ndarray:
        """Read the weight (from its checkpoint, constant, ...) and check it against the declaration."""
        if self.source is None:
            raise WeightError(f"parameter '{self.name}' {fmt_shape(self.shape)} has no weights bound: "
                              "bind a checkpoint (net.load_weights / --weights) or call net.init_random()")
        arr = np.asarray(self.source())
        if tuple(arr.shape) != tuple(self.shape):
            raise WeightError(f"parameter '{self.name}': expected shape {fmt_shape(self.shape)}, "
                              f"got {fmt_shape(arr.shape)} from {self.origin or 'its source'}")
        return canonical_array(arr, self.dtype.numpy)  # the one boundary: engines get canonical arrays


@dataclass
class Graph:
    """A network: named inputs and outputs, nodes in topological order, and parameters."""

    name: str = "network"
    inputs: list = field(default_factory=list)   # list[Value]
    outputs: list = field(default_factory=list)  # list[Value]
    nodes: list = field(default_factory=list)    # list[Node]
    params: dict = field(default_factory=dict)   # dict[str, Param]
    precision: dict = field(default_factory=dict)  # layer name -> DType it must run in (net.precision)

    # ---- lookup -------------------------------------------------------------------------
    def values(self) -> Iterator[Value]:
        yield from self.inputs
        for n in self.nodes:
            yield from n.outputs

    def value(self, name: str) -> Value:
        for v in self.values():
            if v.name == name:
                return v
        raise KeyError(f"no tensor named {name!r} in network '{self.name}'")

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no layer named {name!r} in network '{self.name}'")

    def consumers(self) -> dict[int, list[Node]]:
        """id(Value) -> nodes that read it."""
        out: dict[int, list[Node]] = {}
        for n in self.nodes:
            for v in n.inputs:
                if v is not None:
                    out.setdefault(id(v), []).append(n)
        return out

    @property
    def symbols(self) -> list[str]:
        """Names of the symbolic dims of the inputs (e.g. ``['N']``), in order of appearance."""
        seen: list[str] = []
        for v in self.inputs:
            for s in sorted(symbols_of(v.shape)):
                if s not in seen:
                    seen.append(s)
        return seen

    # ---- structure ----------------------------------------------------------------------
    def toposort(self) -> list[Node]:
        """Nodes in a topological order (validates that there is no cycle)."""
        produced = {id(v) for v in self.inputs}
        remaining = list(self.nodes)
        order: list[Node] = []
        while remaining:
            progress = False
            rest = []
            for n in remaining:
                if all(v is None or id(v) in produced for v in n.inputs):
                    order.append(n)
                    produced.update(id(o) for o in n.outputs)
                    progress = True
                else:
                    rest.append(n)
            if not progress:
                raise GraphError(f"network '{self.name}': cycle or dangling input at layers "
                                 + ", ".join(n.name for n in rest[:5]))
            remaining = rest
        return order

    def validate(self) -> None:
        """Check names are unique, every input exists, outputs are produced, and shapes re-infer."""
        from .ops import get_op

        names: dict[str, str] = {}
        for v in self.values():
            if v.name in names:
                raise GraphError(f"network '{self.name}': tensor name {v.name!r} is used twice")
            names[v.name] = v.name
        layer_names = set()
        for n in self.nodes:
            if n.name in layer_names:
                raise GraphError(f"network '{self.name}': layer name {n.name!r} is used twice")
            layer_names.add(n.name)
        self.toposort()
        known = {id(v) for v in self.values()}
        for o in self.outputs:
            if id(o) not in known:
                raise GraphError(f"network '{self.name}': output {o.name!r} is not produced by any layer")
        if not self.outputs:
            raise GraphError(f"network '{self.name}' has no outputs: call net.output(tensor, name)")
        for n in self.nodes:
            opdef = get_op(n.op)
            specs = opdef.infer_specs([None if v is None else v.spec for v in n.inputs], n.attrs)
            got = [o.spec for o in n.outputs]
            if specs != got:
                raise GraphError(f"layer '{n.name}' ({n.op}): stored output types {got} differ from "
                                 f"inferred {specs}")
            if n.op == "parameter" and n.attrs["name"] not in self.params:
                raise GraphError(f"layer '{n.name}' refers to unknown parameter {n.attrs['name']!r}")

    # ---- hashing ------------------------------------------------------------------------
    def structure_hash(self) -> str:
        """A stable hash of the structure (ops, attributes, names, shapes), not of weight data."""
        import hashlib  # on use: loading OpenSSL would cost every ``import netdsl`` a few ms
        h = hashlib.sha256()
        h.update(self.name.encode())
        for v in self.inputs:
            h.update(f"in:{v.name}:{v.dtype}:{_fmt(v.shape)}".encode())
        for n in self.nodes:
            h.update(f"node:{n.op}:{n.name}:".encode())
            h.update(",".join("-" if v is None else v.name for v in n.inputs).encode())
            for k in sorted(n.attrs):
                h.update(f"|{k}=".encode())
                h.update(_attr_bytes(n.attrs[k]))
            for o in n.outputs:
                h.update(f"->{o.name}:{o.dtype}:{_fmt(o.shape)}".encode())
        for v in self.outputs:
            h.update(f"out:{v.name}".encode())
        for k in sorted(self.precision):
            h.update(f"precision:{k}:{self.precision[k]}".encode())
        return h.hexdigest()

    def weights_hash(self) -> str:
        """A hash of every parameter's data (reads all weights)."""
        import hashlib
        h = hashlib.sha256()
        for name in sorted(self.params):
            p = self.params[name]
            h.update(f"{name}:{p.dtype}:{_fmt(p.shape)}".encode())
            if p.bound:
                h.update(np.ascontiguousarray(p.value()).tobytes())
        return h.hexdigest()

    def content_hash(self) -> str:
        """Hash of structure and weights together (use as a cache key)."""
        import hashlib
        return hashlib.sha256((self.structure_hash() + self.weights_hash()).encode()).hexdigest()

    # ---- printing -----------------------------------------------------------------------
    def __str__(self) -> str:
        lines = [f"network {self.name}("]
        lines += [f"    {v.name}: {v.dtype}{fmt_shape(v.shape)}," for v in self.inputs]
        lines.append("):")
        for n in self.nodes:
            outs = ", ".join(f"%{o.name}: {o.dtype}{fmt_shape(o.shape)}" for o in n.outputs)
            if n.op == "parameter":
                lines.append(f"    {outs} = parameter '{n.attrs['name']}'")
                continue
            args = ", ".join("None" if v is None else f"%{v.name}" for v in n.inputs)
            attrs = ", ".join(f"{k}={_short(v)}" for k, v in n.attrs.items())
            lines.append(f"    {outs} = {n.op}({args}{', ' if args and attrs else ''}{attrs})")
        lines.append("    return " + ", ".join(f"%{v.name}" for v in self.outputs))
        return "\n".join(lines)


def _fmt(shape: tuple) -> str:
    return ",".join(str(d) for d in shape)


def _attr_bytes(v: Any) -> bytes:
    if isinstance(v, np.ndarray):
        return f"nd{v.dtype}{v.shape}".encode() + np.ascontiguousarray(v).tobytes()
    if isinstance(v, (list, tuple)):
        return b"[" + b",".join(_attr_bytes(x) for x in v) + b"]"
    if isinstance(v, dict):
        return b"{" + b",".join(k.encode() + b":" + _attr_bytes(v[k]) for k in sorted(v)) + b"}"
    return repr(v).encode()


def _short(v: Any) -> str:
    if isinstance(v, np.ndarray):
        if v.size <= 4:
            return repr(v.tolist())
        return f"array<{v.dtype}{fmt_shape(v.shape)}>"
    if isinstance(v, DType):
        return str(v)
    return repr(v)


__all__ = ["TensorSpec", "Value", "Node", "Param", "Graph", "DType", "as_dtype", "Dim", "Sym"]
