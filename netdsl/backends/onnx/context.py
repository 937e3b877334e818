"""The state of one export: ONNX nodes, initializers and fresh names, plus small builders.

Table functions (``fn(ctx, node)``) only talk to :class:`ExportContext`; they never import ``onnx``.
Names: each layer's node that produces one of the layer's outputs is named after the layer; helper
nodes and helper tensors get ``<layer>/<hint>`` names (made unique).
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from ...dtypes import DType
from ...graph import Graph, Node, Value

ONNX_DTYPES = {DType.float32: 1, DType.uint8: 2, DType.int8: 3, DType.int32: 6, DType.int64: 7,
               DType.bool: 9, DType.float16: 10, DType.float64: 11, DType.bfloat16: 16}


def to_bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest even (NaN stays NaN)."""
    b = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), r).astype(np.uint16)


class ExportContext:
    """Collects the ONNX graph for one netdsl Graph."""

    def __init__(self, graph: Graph, opset: int, onnx: Any, sink: Any):
        self.graph = graph
        self.opset = opset
        self.onnx = onnx
        self.helper = onnx.helper
        self.sink = sink  # makes TensorProtos (inline or external data)
        self.nodes: list = []
        self.initializers: list = []
        self.value_info: list = []
        self.domains: dict[str, int] = {}
        self._values = {v.name for v in graph.values()}
        self._node_names = {n.name for n in graph.nodes}
        self._used_nodes: set[str] = set()
        self.current: Optional[Node] = None

    # ---- names --------------------------------------------------------------------------
    def inp(self, node: Node, i: int) -> str:
        """ONNX name of input ``i`` ('' when the optional input is omitted)."""
        v = node.inputs[i] if i < len(node.inputs) else None
        return "" if v is None else v.name

    def out(self, node: Node, i: int = 0) -> str:
        return node.outputs[i].name

    def fresh(self, hint: str) -> str:
        """A new tensor name ``<layer>/<hint>`` unused so far."""
        base = f"{self.current.name}/{hint}" if self.current is not None else hint
        name, i = base, 0
        while name in self._values:
            i += 1
            name = f"{base}_{i}"
        self._values.add(name)
        return name

    def _node_name(self, op_type: str, outputs: Sequence[str]) -> str:
        layer = self.current
        if layer is not None and layer.name not in self._used_nodes and \
                any(o == v.name for o in outputs for v in layer.outputs):
            self._used_nodes.add(layer.name)
            return layer.name
        base = f"{layer.name}/{op_type}" if layer is not None else op_type
        name, i = base, 0
        while name in self._used_nodes or name in self._node_names:
            i += 1
            name = f"{base}_{i}"
        self._used_nodes.add(name)
        return name

    # ---- nodes --------------------------------------------------------------------------
    def add(self, op_type: str, inputs: Sequence[str], outputs: Union[int, Sequence[str], None] = None,
            domain: str = "", **attrs: Any) -> list[str]:
        """Append one ONNX node; ``outputs`` are names, or a count of fresh names (default 1)."""
        if outputs is None or isinstance(outputs, int):
            outputs = [self.fresh(op_type) for _ in range(outputs or 1)]
        outputs = list(outputs)
        inputs = list(inputs)
        while inputs and inputs[-1] == "":  # trailing omitted optionals
            inputs.pop()
        attrs = {k: v for k, v in attrs.items() if v is not None}
        n = self.helper.make_node(op_type, inputs, outputs, name=self._node_name(op_type, outputs),
                                  domain=domain or None, **attrs)
        if self.current is not None and self.current.location:
            n.doc_string = self.current.location
        if domain:
            self.domains.setdefault(domain, 1)
        self.nodes.append(n)
        return outputs

    def add1(self, op_type: str, inputs: Sequence[str], output: Optional[str] = None, **attrs: Any) -> str:
        return self.add(op_type, inputs, None if output is None else [output], **attrs)[0]

    # ---- constants ----------------------------------------------------------------------
    def initializer(self, name: str, array: Any, dtype: DType, external_ok: bool = True) -> str:
        """Add an initializer (weights and DSL constants may go to external data; helpers never do:
        shape inference must read shapes, axes and pads)."""
        self.initializers.append(self.sink.tensor(name, array, dtype, external_ok))
        return name

    def const(self, value: Any, dtype: Union[DType, str, None] = None, hint: str = "const") -> str:
        """A new initializer holding ``value`` (numpy dtype, or the given netdsl dtype)."""
        arr = np.asarray(value)
        if dtype is not None:
            dt = DType(dtype)
            arr = arr.astype(dt.numpy)
        else:
            from ...dtypes import as_dtype
            dt = as_dtype(arr.dtype)
        return self.initializer(self.fresh(hint), arr, dt, external_ok=False)

    def ints(self, values: Iterable[int], hint: str = "ints") -> str:
        """A 1-d int64 initializer (shapes, axes, pads ...)."""
        return self.const(np.asarray(list(values), np.int64).reshape(-1), "int64", hint)

    def scalar(self, value: float, like: Value, hint: str = "scalar") -> str:
        """A 0-d constant with the dtype of ``like``."""
        return self.const(np.asarray(value, like.dtype.numpy), like.dtype, hint)

    def dtype(self, v: Union[Value, DType]) -> int:
        return ONNX_DTYPES[v.dtype if isinstance(v, Value) else v]

    # ---- shapes -------------------------------------------------------------------------
    def shape_of(self, x: str, start: Optional[int] = None, end: Optional[int] = None) -> str:
        return self.add1("Shape", [x], start=start, end=end)

    def target_shape(self, x: Value, dims: Sequence[Union[int, tuple]]) -> str:
        """An int64 shape tensor for Reshape: ints are literal (-1 inferred), ``("dim", i)`` copies
        dim ``i`` of ``x`` (a literal when static, 0 when at the same position, else read at run time)."""
        lit: list[Optional[int]] = []
        for p, d in enumerate(dims):
            if isinstance(d, tuple):
                i = d[1]
                src = x.shape[i]
                lit.append(src if isinstance(src, int) else (0 if i == p else None))
            else:
                lit.append(int(d))
        if all(v is not None for v in lit):
            return self.ints(lit, "shape")
        parts: list[str] = []
        run: list[int] = []
        for d, v in zip(dims, lit):
            if v is not None:
                run.append(v)
                continue
            if run:
                parts.append(self.ints(run, "shape"))
                run = []
            parts.append(self.shape_of(x.name, d[1], d[1] + 1))
        if run:
            parts.append(self.ints(run, "shape"))
        return self.add1("Concat", parts, axis=0)

    def unsqueeze_channels(self, v: str, rank: int) -> str:
        """Reshape a per-channel vector (C,) to (C, 1, ...) so it broadcasts over (N, C, *spatial)."""
        if rank <= 2:
            return v
        return self.add1("Reshape", [v, self.ints([-1] + [1] * (rank - 2), "shape")])
